import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { formatDay } from '../time';
import { api, ApiError, unwrap } from '../api/client';
import { retryUnreachable } from '../connection';
import { useAuth } from '../auth';
import { Empty, ErrorState, Loading } from '../components/States';

const ROLES = [
  'radiologist',
  'technologist',
  'referring-physician',
  'student',
  'sysadmin',
  'data-owner',
  'data-steward',
  'data-custodian',
  'privacy-officer',
  'researcher',
];

/**
 * Roles only the administrator grants, and whose accounts only the administrator administers (separation of
 * duties, docs/accounts.md; the server refuses the rest with 403 whatever this offers).
 */
const GUARDED_ROLES = ['administrator', 'sysadmin', 'data-custodian', 'privacy-officer'];

/** Accounts, their MFA and tokens, and the DICOM application entities allowed to associate. */
export function Users() {
  return (
    <section aria-labelledby="users-title">
      <h1 id="users-title">Users, roles and AEs</h1>
      <Accounts />
      <ApplicationEntities />
    </section>
  );
}

function Accounts() {
  const qc = useQueryClient();
  const { session } = useAuth();
  const isAdministrator = session?.role === 'administrator';
  /** The roles this caller may grant. */
  const grantable = isAdministrator
    ? [...ROLES, 'administrator']
    : ROLES.filter((r) => !GUARDED_ROLES.includes(r));
  /** Whether this caller may change, reset or mint tokens for an account holding `role`. */
  const manages = (username: string, role: string) =>
    isAdministrator || username === session?.username || !GUARDED_ROLES.includes(role);
  const [form, setForm] = useState({ username: '', role: 'radiologist', displayName: '', department: '' });
  const [secret, setSecret] = useState<{ label: string; value: string } | null>(null);
  const [tokensOf, setTokensOf] = useState<string | null>(null);
  const users = useQuery({
    queryKey: ['users'],
    queryFn: async () => unwrap(await api.GET('/api/admin/users')),
    retry: retryUnreachable,
  });
  const refresh = () => qc.invalidateQueries({ queryKey: ['users'] });
  const create = useMutation({
    mutationFn: async () =>
      unwrap(
        await api.POST('/api/admin/users', {
          body: {
            username: form.username,
            role: form.role,
            ...(form.displayName ? { displayName: form.displayName } : {}),
            ...(form.department ? { department: form.department } : {}),
          },
        }),
      ),
    onSuccess: (r) => {
      setSecret({ label: `One-time password of ${r.username}`, value: r.password });
      setForm({ ...form, username: '', displayName: '' });
    },
    // Read again whatever the answer: a name refused as taken (account.exists) is often an account created
    // meanwhile (another administrator, SCIM, the CLI), which the list then shows. Until 8 Dec 2026 only a success
    // read it again.
    onSettled: refresh,
  });
  const action = useMutation({
    mutationFn: async ({
      kind,
      username,
    }: {
      kind: 'deactivate' | 'activate' | 'mfa' | 'unlock';
      username: string;
    }) => {
      const path = { params: { path: { username } } };
      if (kind === 'mfa') return unwrap(await api.POST('/api/admin/users/{username}/mfa/reset', path));
      if (kind === 'unlock') return unwrap(await api.POST('/api/admin/users/{username}/unlock', path));
      return unwrap(
        await api.PATCH('/api/admin/users/{username}', { ...path, body: { active: kind === 'activate' } }),
      );
    },
    // Read again whatever the answer: a refusal often means the list is out of date (the account's role changed
    // meanwhile). Until 7 Dec 2026 the list was read again only after a success, and kept offering what was refused.
    onSettled: refresh,
  });
  /**
   * Role changes chosen in the table, by account, not applied yet: granting or removing a role is a governance
   * action recorded in the ledger, so it is applied by Save after a confirmation that names each change. Until
   * 6 Dec 2026 a role was changed the moment another was picked in the list.
   */
  const [staged, setStaged] = useState<Record<string, string>>({});
  const [confirming, setConfirming] = useState(false);
  /**
   * What the last Save did with each change it was given. The changes are applied one at a time, in the order
   * listed, each its own request and ledger record: those before a refusal stay applied, the refused one and those
   * after it are not applied and stay staged. Until 7 Dec 2026 the screen said only which change was refused,
   * not that the ones before it had taken effect and the ones after it had not been tried.
   */
  const [outcomes, setOutcomes] = useState<RoleOutcome[] | null>(null);
  const stage = (username: string, current: string, role: string) => {
    setOutcomes(null);
    const next = { ...staged };
    if (role === current) delete next[username];
    else next[username] = role;
    setStaged(next);
  };
  const changes = Object.entries(staged).map(([username, role]) => ({
    username,
    from: users.data?.find((u) => u.username === username)?.role ?? '',
    role,
  }));
  const setRoles = useMutation({
    mutationFn: async () => {
      const asked = changes;
      const results: RoleOutcome[] = asked.map((c) => ({ ...c, result: 'not tried' }));
      try {
        for (const [i, { username, role }] of asked.entries()) {
          try {
            unwrap(
              await api.PATCH('/api/admin/users/{username}', {
                params: { path: { username } },
                body: { role },
              }),
            );
          } catch (err) {
            results[i] = {
              ...results[i]!,
              result: 'refused',
              reason: err instanceof Error ? err.message : String(err),
              ...(err instanceof ApiError ? { code: err.code } : {}),
            };
            return;
          }
          results[i] = { ...results[i]!, result: 'applied' };
          setStaged((s) => Object.fromEntries(Object.entries(s).filter(([u]) => u !== username)));
        }
      } finally {
        // Closed first: while the modal confirmation is open the rest of the page is inert, and the outcome could
        // not take the focus.
        setConfirming(false);
        setOutcomes(results);
        await refresh();
      }
    },
    onMutate: () => setOutcomes(null),
    onSettled: () => setConfirming(false),
  });
  // Left out, not faked, while the archive has no account administration API.
  if (users.isError && users.error instanceof ApiError && users.error.code === 'http.not-found') return null;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <>
      <h2>Accounts</h2>
      {secret ? (
        <div className="secret-box" role="status">
          <strong>{secret.label}</strong> (shown once): <code className="secret">{secret.value}</code>
          <button type="button" onClick={() => setSecret(null)}>
            Done
          </button>
        </div>
      ) : null}
      <form className="filters" onSubmit={submit} aria-label="Create an account">
        <div className="field">
          <label htmlFor="u-name">Account name</label>
          <input
            id="u-name"
            value={form.username}
            onChange={(e) => setForm({ ...form, username: e.target.value })}
            required
          />
        </div>
        <div className="field">
          <label htmlFor="u-display">Full name</label>
          <input
            id="u-display"
            value={form.displayName}
            onChange={(e) => setForm({ ...form, displayName: e.target.value })}
          />
        </div>
        <div className="field">
          <label htmlFor="u-role">Role</label>
          <select id="u-role" value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value })}>
            {grantable.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="u-dept">Department</label>
          <input
            id="u-dept"
            value={form.department}
            onChange={(e) => setForm({ ...form, department: e.target.value })}
          />
        </div>
        <button type="submit" disabled={create.isPending}>
          Create account
        </button>
      </form>
      {create.isError ? <ErrorState error={create.error} /> : null}
      {action.isError ? <ErrorState error={action.error} /> : null}
      {setRoles.isError ? <ErrorState error={setRoles.error} /> : null}
      {outcomes?.some((o) => o.result === 'refused') ? (
        <RoleOutcomes outcomes={outcomes} />
      ) : outcomes?.length ? (
        <RolesSaved outcomes={outcomes} />
      ) : null}
      {users.isPending ? (
        <Loading what="accounts" />
      ) : users.isError ? (
        <ErrorState error={users.error} />
      ) : users.data.length === 0 ? (
        <Empty>No accounts.</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-label="Accounts">
            <thead>
              <tr>
                <th scope="col">Account</th>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Department</th>
                <th scope="col">MFA</th>
                <th scope="col">Status</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {users.data.map((u) => (
                <tr key={u.username}>
                  <td>{u.username}</td>
                  <td>{u.displayName}</td>
                  <td>
                    {manages(u.username, u.role) ? (
                      <>
                        <select
                          aria-label={`Role of ${u.username}`}
                          value={staged[u.username] ?? u.role}
                          onChange={(e) => stage(u.username, u.role, e.target.value)}
                          {...(staged[u.username] ? { 'aria-describedby': `staged-role-${u.username}` } : {})}
                        >
                          {(grantable.includes(u.role) ? grantable : [u.role, ...grantable]).map((r) => (
                            <option key={r}>{r}</option>
                          ))}
                        </select>
                        {/* A staged role is not the account's role yet, nor after a refused Save. */}
                        {staged[u.username] ? (
                          <span id={`staged-role-${u.username}`} className="staged-note">
                            not saved; the role is {u.role}
                          </span>
                        ) : null}
                      </>
                    ) : (
                      u.role
                    )}
                  </td>
                  <td>{u.department ?? ''}</td>
                  <td>{u.mfaEnrolled ? 'enrolled' : '—'}</td>
                  <td>{u.active ? (u.lockedUntil ? 'locked' : 'active') : 'deactivated'}</td>
                  <td className="row-actions">
                    {/* Disabled while one is pending, until the list is read again: the button's place then holds its
                        opposite (Deactivate becomes Activate), and until 7 Dec 2026 a double click deactivated the
                        account and activated it again, each recorded in the ledger. */}
                    {/* The server refuses anyone's deactivation of their own account (account.self-deactivation). */}
                    {manages(u.username, u.role) && u.username !== session?.username ? (
                      <button
                        type="button"
                        onClick={() =>
                          action.mutate({ kind: u.active ? 'deactivate' : 'activate', username: u.username })
                        }
                        disabled={action.isPending}
                        aria-label={`${u.active ? 'Deactivate' : 'Activate'} ${u.username}`}
                      >
                        {u.active ? 'Deactivate' : 'Activate'}
                      </button>
                    ) : null}
                    {u.mfaEnrolled && manages(u.username, u.role) ? (
                      <button
                        type="button"
                        onClick={() => action.mutate({ kind: 'mfa', username: u.username })}
                        disabled={action.isPending}
                        aria-label={`Reset MFA of ${u.username}`}
                      >
                        Reset MFA
                      </button>
                    ) : null}
                    {u.lockedUntil ? (
                      <button
                        type="button"
                        onClick={() => action.mutate({ kind: 'unlock', username: u.username })}
                        disabled={action.isPending}
                        aria-label={`Unlock ${u.username}`}
                      >
                        Unlock
                      </button>
                    ) : null}
                    {manages(u.username, u.role) &&
                    (u.role !== 'privacy-officer' || u.username === session?.username) ? (
                      <button
                        type="button"
                        onClick={() => setTokensOf(u.username)}
                        aria-label={`Tokens of ${u.username}`}
                      >
                        Tokens
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {changes.length ? (
        <div className="staged" role="region" aria-label="Unsaved role changes">
          <p>
            {changes.length === 1 ? 'One role change is' : `${changes.length} role changes are`} not saved
            yet.
          </p>
          <ul aria-label="Staged role changes">
            {changes.map((c) => (
              <li key={c.username}>
                {c.username}: {c.from} → {c.role}
              </li>
            ))}
          </ul>
          <button type="button" onClick={() => setConfirming(true)} disabled={setRoles.isPending}>
            Save role changes…
          </button>
          <button
            type="button"
            onClick={() => {
              setStaged({});
              setOutcomes(null);
            }}
            disabled={setRoles.isPending}
          >
            Discard
          </button>
        </div>
      ) : null}
      {confirming ? (
        <ConfirmRoles
          changes={changes}
          applying={setRoles.isPending}
          onConfirm={() => setRoles.mutate()}
          onClose={() => setConfirming(false)}
        />
      ) : null}
      {tokensOf ? (
        <Tokens
          username={tokensOf}
          onToken={(v) => setSecret({ label: `Token for ${tokensOf}`, value: v })}
        />
      ) : null}
    </>
  );
}

interface RoleOutcome {
  username: string;
  from: string;
  role: string;
  result: 'applied' | 'refused' | 'not tried';
  reason?: string;
  code?: string;
}

/**
 * After a Save that was refused part-way: each change and what became of it. It takes the keyboard focus when it
 * appears, so that a screen reader reads it: the confirmation that had the focus is gone by then, and until
 * 7 Dec 2026 the focus was left on the page's body, where nothing is read.
 */
function RoleOutcomes({ outcomes }: { outcomes: RoleOutcome[] }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, [outcomes]);
  const refused = outcomes.find((o) => o.result === 'refused')!;
  const applied = outcomes.filter((o) => o.result === 'applied').length;
  const left = outcomes.filter((o) => o.result === 'not tried').length;
  return (
    <div
      ref={ref}
      tabIndex={-1}
      className="state error denied"
      role="alert"
      aria-label="Role changes not all saved"
    >
      <strong>
        The role change of {refused.username} was refused: {refused.reason}
        {refused.code ? (
          <>
            {' '}
            (<code>{refused.code}</code>)
          </>
        ) : null}
      </strong>
      <span>
        Changes are applied one at a time, in the order listed.{' '}
        {applied === 0
          ? 'None was applied.'
          : applied === 1
            ? 'The one before it was applied.'
            : `The ${applied} before it were applied.`}{' '}
        {left === 0
          ? 'The refused change is still staged.'
          : left === 1
            ? 'The one after it was not tried; it and the refused change are still staged.'
            : `The ${left} after it were not tried; they and the refused change are still staged.`}
      </span>
      <ul aria-label="Outcome of each role change">
        {outcomes.map((o) => (
          <li key={o.username}>
            {o.username}: {o.from} → {o.role}:{' '}
            {o.result === 'refused' ? `refused: ${o.reason ?? ''}` : o.result}
          </li>
        ))}
      </ul>
    </div>
  );
}

/**
 * After a Save that applied every change: says so, and takes the keyboard focus, since the confirmation and the
 * Save button that had it are gone. Until 7 Dec 2026 nothing was said and the focus was left on the page's body.
 */
function RolesSaved({ outcomes }: { outcomes: RoleOutcome[] }) {
  const ref = useRef<HTMLParagraphElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, [outcomes]);
  return (
    <p ref={ref} tabIndex={-1} className="state" role="status">
      Saved: {outcomes.map((o) => `${o.username} is now ${o.role}`).join('; ')}.
    </p>
  );
}

/** Names each staged role change and applies them only when confirmed. */
function ConfirmRoles({
  changes,
  applying,
  onConfirm,
  onClose,
}: {
  changes: { username: string; from: string; role: string }[];
  applying: boolean;
  onConfirm: () => void;
  onClose: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="roles-title" onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onConfirm();
        }}
      >
        <h2 id="roles-title">Change roles</h2>
        <p>
          The changes are applied one at a time, in this order; each takes effect at once for the account and
          is recorded in the audit ledger. If one is refused, those before it stay applied and the rest are
          not applied.
        </p>
        <ul aria-label="Role changes">
          {changes.map((c) => (
            <li key={c.username}>
              <strong>{c.username}</strong>: {c.from} → {c.role}
            </li>
          ))}
        </ul>
        <div className="actions">
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button type="submit" className="danger" disabled={applying}>
            {changes.length === 1 ? 'Change the role' : `Change ${changes.length} roles`}
          </button>
        </div>
      </form>
    </dialog>
  );
}

function Tokens({ username, onToken }: { username: string; onToken: (token: string) => void }) {
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const [days, setDays] = useState(90);
  const tokens = useQuery({
    queryKey: ['tokens', username],
    queryFn: async () =>
      unwrap(await api.GET('/api/admin/users/{username}/tokens', { params: { path: { username } } })),
  });
  const create = useMutation({
    mutationFn: async () =>
      unwrap(
        await api.POST('/api/admin/users/{username}/tokens', {
          params: { path: { username } },
          body: { name, ttlDays: days },
        }),
      ),
    onSuccess: async (t) => {
      onToken(t.token);
      setName('');
      await qc.invalidateQueries({ queryKey: ['tokens', username] });
    },
  });
  // Read again whatever the answer: a refused revocation may mean the list is out of date.
  const revoke = useMutation({
    mutationFn: async (id: number) =>
      unwrap(
        await api.DELETE('/api/admin/users/{username}/tokens/{id}', {
          params: { path: { username, id: String(id) } },
        }),
      ),
    onSettled: () => qc.invalidateQueries({ queryKey: ['tokens', username] }),
  });
  return (
    <div className="card">
      <h3>API tokens of {username}</h3>
      {tokens.isPending ? (
        <Loading what="tokens" />
      ) : tokens.isError ? (
        <ErrorState error={tokens.error} />
      ) : tokens.data.length === 0 ? (
        <Empty>No tokens.</Empty>
      ) : (
        <ul>
          {tokens.data.map((t) => (
            <li key={t.id}>
              {t.name} · created {formatDay(t.createdAt)} (UTC)
              {t.revokedAt ? (
                ' · revoked'
              ) : (
                <button
                  type="button"
                  onClick={() => revoke.mutate(t.id)}
                  disabled={revoke.isPending}
                  aria-label={`Revoke token ${t.name}`}
                >
                  Revoke
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {revoke.isError ? <ErrorState error={revoke.error} /> : null}
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <div className="field">
          <label htmlFor="t-name">Token name</label>
          <input id="t-name" value={name} onChange={(e) => setName(e.target.value)} required />
        </div>
        <div className="field">
          <label htmlFor="t-days">Valid for (days)</label>
          <input
            id="t-days"
            type="number"
            min={1}
            max={365}
            value={days}
            onChange={(e) => setDays(Number(e.target.value))}
          />
        </div>
        {/* Disabled while a creation is pending: a second click or Enter minted a second live token, whose secret
            replaced the first one's on screen, so the first was never seen and never revoked (until 7 Dec 2026). */}
        <button type="submit" disabled={create.isPending}>
          Create token
        </button>
      </form>
      {create.isError ? <ErrorState error={create.error} /> : null}
    </div>
  );
}

function ApplicationEntities() {
  const qc = useQueryClient();
  const [form, setForm] = useState({ title: '', host: '', port: '104' });
  const aes = useQuery({ queryKey: ['aes'], queryFn: async () => unwrap(await api.GET('/api/admin/aes')) });
  const add = useMutation({
    mutationFn: async () =>
      unwrap(
        await api.POST('/api/admin/aes', {
          body: { title: form.title, host: form.host, port: Number(form.port) },
        }),
      ),
    onSuccess: () => setForm({ title: '', host: '', port: '104' }),
    // Read again whatever the answer: a title refused as taken (ae.exists) is often an entity registered meanwhile
    // (another administrator, `custos ae add`), which the list then shows. Until 8 Dec 2026 only a success read it
    // again.
    onSettled: () => qc.invalidateQueries({ queryKey: ['aes'] }),
  });
  /**
   * A refused removal says why, and the list is read again whatever the answer: an entity removed meanwhile (by
   * another administrator, or `custos ae remove`) is a 404 ae.not-found, and its row goes. Until 7 Dec 2026 a
   * refused Remove or Revoke said nothing and the row stayed, so the button seemed not to work.
   */
  const remove = useMutation({
    mutationFn: async (title: string) =>
      unwrap(await api.DELETE('/api/admin/aes/{title}', { params: { path: { title } } })),
    onSettled: () => qc.invalidateQueries({ queryKey: ['aes'] }),
  });
  return (
    <>
      <h2>DICOM application entities</h2>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          add.mutate();
        }}
        aria-label="Register an application entity"
      >
        <div className="field">
          <label htmlFor="ae-title">AE title</label>
          <input
            id="ae-title"
            value={form.title}
            onChange={(e) => setForm({ ...form, title: e.target.value })}
            required
          />
        </div>
        <div className="field">
          <label htmlFor="ae-host">Host</label>
          <input
            id="ae-host"
            value={form.host}
            onChange={(e) => setForm({ ...form, host: e.target.value })}
            required
          />
        </div>
        <div className="field">
          <label htmlFor="ae-port">Port</label>
          <input
            id="ae-port"
            type="number"
            value={form.port}
            onChange={(e) => setForm({ ...form, port: e.target.value })}
            required
          />
        </div>
        <button type="submit" disabled={add.isPending}>
          Register
        </button>
      </form>
      {add.isError ? <ErrorState error={add.error} /> : null}
      {remove.isError ? <ErrorState error={remove.error} /> : null}
      {aes.isPending ? (
        <Loading what="application entities" />
      ) : aes.isError ? (
        <ErrorState error={aes.error} />
      ) : aes.data.length === 0 ? (
        <Empty>No application entity is registered: every association is refused.</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-label="Application entities">
            <thead>
              <tr>
                <th scope="col">AE title</th>
                <th scope="col">Host</th>
                <th scope="col">Port</th>
                <th scope="col">Account</th>
                <th scope="col">TLS certificate</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {aes.data.map((a) => (
                <tr key={a.title}>
                  <td>{a.title}</td>
                  <td>{a.host}</td>
                  <td>{a.port}</td>
                  <td>{a.user ?? '—'}</td>
                  <td>{a.certSha256 ? `${a.certSha256.slice(0, 12)}…` : '—'}</td>
                  <td>
                    <button
                      type="button"
                      onClick={() => remove.mutate(a.title)}
                      disabled={remove.isPending}
                      aria-label={`Remove ${a.title}`}
                    >
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
