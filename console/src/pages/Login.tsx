import { useState, type FormEvent } from 'react';
import { api, ApiError, unwrap } from '../api/client';
import { useAuth } from '../auth';
import { QrCode } from '../components/QrCode';
import { SignOut } from '../components/SignOut';

/** Sign in: password, then a TOTP code when the account has MFA. */
export function Login() {
  const { refresh } = useAuth();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [needTotp, setNeedTotp] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      unwrap(
        await api.POST('/api/auth/login', {
          body: { username, password, ...(needTotp ? { totp } : {}) },
        }),
      );
      await refresh();
    } catch (err) {
      if (err instanceof ApiError && err.code === 'auth.mfa-required') {
        setNeedTotp(true);
        setError('Enter the 6-digit code from your authenticator app.');
      } else if (err instanceof ApiError && err.code === 'auth.mfa-invalid') {
        setError('That code is not valid. Try the current one.');
      } else if (err instanceof ApiError && err.code === 'auth.locked') {
        setError(err.message);
      } else if (err instanceof ApiError && err.status === 401) {
        setError('Wrong account name or password.');
      } else setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login" id="main">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Custos console</h1>
        <p className="muted">Governance-first imaging archive</p>
        <label htmlFor="username">Account name</label>
        <input
          id="username"
          autoComplete="username"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          required
        />
        <label htmlFor="password">Password</label>
        <input
          id="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          required
        />
        {needTotp ? (
          <>
            <label htmlFor="totp">Authenticator code</label>
            <input
              id="totp"
              inputMode="numeric"
              autoComplete="one-time-code"
              pattern="[0-9]{6}"
              value={totp}
              onChange={(e) => setTotp(e.target.value)}
              required
              autoFocus
            />
          </>
        ) : null}
        {error ? (
          <p className="form-error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

/** Before anything else: a first-login password change and, for roles that must have it, MFA enrolment. */
export function AccountSetup({ mustChangePassword, mfa }: { mustChangePassword: boolean; mfa: boolean }) {
  const { refresh } = useAuth();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [secret, setSecret] = useState<{ secret: string; otpauthUri: string } | null>(null);
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  /**
   * While a step's request is pending its button is disabled. Until 7 Dec 2026 a double click sent it twice: the
   * password change's second request was refused (the current password had just changed) and its error stood on the
   * next step; a second "Show my key" replaced the key on the server with another.
   */
  const [busy, setBusy] = useState(false);
  const step = async (send: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await send();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  const changePassword = (e: FormEvent) => {
    e.preventDefault();
    void step(async () => {
      unwrap(await api.POST('/api/auth/password', { body: { currentPassword: current, newPassword: next } }));
      await refresh();
    });
  };
  const enroll = () =>
    void step(async () => {
      setSecret(unwrap(await api.POST('/api/auth/mfa/enroll')));
    });
  const confirm = (e: FormEvent) => {
    e.preventDefault();
    void step(async () => {
      unwrap(await api.POST('/api/auth/mfa/confirm', { body: { code } }));
      await refresh();
    });
  };

  return (
    <main className="login" id="main">
      {mustChangePassword ? (
        <form onSubmit={changePassword} aria-labelledby="pw-title">
          <h1 id="pw-title">Choose your password</h1>
          <p className="muted">The password you were given works once. Choose your own to continue.</p>
          <label htmlFor="current">Current password</label>
          <input
            id="current"
            type="password"
            autoComplete="current-password"
            value={current}
            onChange={(e) => setCurrent(e.target.value)}
            required
          />
          <label htmlFor="new">New password (at least 12 characters)</label>
          <input
            id="new"
            type="password"
            autoComplete="new-password"
            value={next}
            onChange={(e) => setNext(e.target.value)}
            required
          />
          {error ? (
            <p className="form-error" role="alert">
              {error}
            </p>
          ) : null}
          <button type="submit" disabled={busy}>
            Change password
          </button>
        </form>
      ) : mfa ? (
        <form onSubmit={confirm} aria-labelledby="mfa-title">
          <h1 id="mfa-title">Set up two-factor sign-in</h1>
          <p className="muted">Your role requires an authenticator app (TOTP) before you can continue.</p>
          {secret ? (
            <>
              <p>Scan this code with your authenticator app:</p>
              <QrCode text={secret.otpauthUri} label="QR code of your authenticator key" />
              <p>
                Or, if the app cannot scan, add this key to it:{' '}
                <code className="secret">{secret.secret}</code>
              </p>
              <label htmlFor="code">Code shown by the app</label>
              <input
                id="code"
                inputMode="numeric"
                autoComplete="one-time-code"
                value={code}
                onChange={(e) => setCode(e.target.value)}
                required
              />
              <button type="submit" disabled={busy}>
                Confirm
              </button>
            </>
          ) : (
            <button type="button" onClick={enroll} disabled={busy}>
              Show my key
            </button>
          )}
          {error ? (
            <p className="form-error" role="alert">
              {error}
            </p>
          ) : null}
        </form>
      ) : null}
      <SignOut className="link" />
    </main>
  );
}
