// Issue 4 item 1: local accounts (password policy, lockout, TOTP, console sessions, tokens, user administration),
// through the real HTTP server on every backend.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/app/config.js';
import { openApp } from '../src/app/custos-app.js';
import { base32Decode, totp } from '../src/domain/totp.js';
import { backends } from './support/backends.js';
import { startTestServer, type TestServer } from './support/test-server.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Auth {
  cookie?: string;
  token?: string;
  /** Send X-Requested-With: custos-console (default true with a cookie). */
  console?: boolean;
}

describe.each(backends())('accounts on %s', (backend) => {
  let s: TestServer;
  let now = Date.parse('2026-11-23T09:00:00.000Z');
  const advance = (ms: number) => (now += ms);
  const MIN = 60_000;

  const call = async (method: string, path: string, body?: unknown, auth: Auth = { token: s.token }) => {
    const headers: Record<string, string> = {};
    if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
    if (auth.cookie) headers.Cookie = `custos_session=${auth.cookie}`;
    if (auth.cookie && auth.console !== false) headers['X-Requested-With'] = 'custos-console';
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${s.url}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: (text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as Json,
    };
  };
  const login = async (username: string, password: string, code?: string) => {
    const r = await call(
      'POST',
      '/api/auth/login',
      { username, password, ...(code ? { totp: code } : {}) },
      {},
    );
    const cookie = /custos_session=([^;]*)/.exec(r.headers.get('set-cookie') ?? '')?.[1];
    return { ...r, cookie: cookie! };
  };
  const createUser = async (username: string, role: string, extra: Json = {}) => {
    const r = await call('POST', '/api/admin/users', { username, role, ...extra });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.password as string;
  };
  const code = (secret: string, at = now) => totp(base32Decode(secret), new Date(at));
  const ledger = (action: string) =>
    s.app.index.db
      .selectFrom('audit_ledger')
      .select(['record'])
      .where('action', '=', action)
      .orderBy('seq')
      .execute()
      .then((rows) => rows.map((r) => JSON.parse(r.record as string) as Json));
  const setPassword = async (username: string, oneTime: string, password: string) => {
    const l = await login(username, oneTime);
    expect(l.status).toBe(200);
    const r = await call(
      'POST',
      '/api/auth/password',
      { currentPassword: oneTime, newPassword: password },
      { cookie: l.cookie },
    );
    expect(r.status, JSON.stringify(r.body)).toBe(204);
    await call('POST', '/api/auth/logout', undefined, { cookie: l.cookie });
  };

  beforeAll(async () => {
    s = await startTestServer(backend, { clock: { now: () => new Date(now) } });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('takes a radiologist from a one-time password through the password policy and mandatory TOTP', async () => {
    const oneTime = await createUser('rad1', 'radiologist', {
      department: 'Radiology',
      displayName: 'Dr One',
    });
    expect(oneTime).toMatch(/^[A-Za-z0-9_-]{20}$/);
    const first = await login('rad1', oneTime);
    expect(first.status).toBe(200);
    expect(first.headers.get('set-cookie')).toMatch(
      /^custos_session=[A-Za-z0-9_-]{40,}; HttpOnly; Secure; SameSite=Strict; Path=\/$/,
    );
    expect(first.body).toMatchObject({
      username: 'rad1',
      role: 'radiologist',
      displayName: 'Dr One',
      department: 'Radiology',
      mfaEnrolled: false,
      mfaRequired: true,
      mfaEnrollmentRequired: true,
      mustChangePassword: true,
      token: expect.stringMatching(/^cst_/),
    });
    expect(first.body.sessionId).toBeUndefined();
    const c = { cookie: first.cookie };

    // Confined: only me, password, logout and MFA until the password is changed.
    expect((await call('GET', '/dicom-web/studies', undefined, c)).body.code).toBe(
      'auth.password-change-required',
    );
    expect((await call('GET', '/dicom-web/studies', undefined, { token: first.body.token })).status).toBe(
      403,
    );
    expect((await call('GET', '/api/auth/me', undefined, c)).body).toMatchObject({
      username: 'rad1',
      mustChangePassword: true,
      mfaEnrollmentRequired: true,
      sessionExpiresAt: new Date(now + 8 * 60 * MIN).toISOString(),
    });

    // CSRF: a cookie-authenticated POST without X-Requested-With is refused.
    const csrf = await call(
      'POST',
      '/api/auth/password',
      { currentPassword: oneTime, newPassword: 'tulip-harbour-47-violin' },
      { cookie: first.cookie, console: false },
    );
    expect(csrf.status).toBe(403);
    expect(csrf.body.code).toBe('auth.csrf');
    expect(csrf.headers.get('content-type')).toMatch(/^application\/problem\+json/);

    const weak = async (newPassword: string) => {
      const r = await call('POST', '/api/auth/password', { currentPassword: oneTime, newPassword }, c);
      expect(r.status, newPassword).toBe(400);
      expect(r.body.code).toBe('account.weak-password');
      return r.body.rule ?? r.body.detail?.rule ?? r.body.title + r.body.detail;
    };
    expect(await weak('short-1')).toMatch(/min-length|at least 12/);
    expect(await weak('my-rad1-password-x')).toMatch(/contains-username|account name/);
    expect(await weak('Password12345!')).toMatch(/common/);
    expect(await weak('x'.repeat(257))).toMatch(/max-length|at most 256/);
    const wrongCurrent = await call(
      'POST',
      '/api/auth/password',
      { currentPassword: 'not-it', newPassword: 'tulip-harbour-47-violin' },
      c,
    );
    expect(wrongCurrent.status).toBe(401);
    expect(
      (
        await call(
          'POST',
          '/api/auth/password',
          { currentPassword: oneTime, newPassword: 'tulip-harbour-47-violin' },
          c,
        )
      ).status,
    ).toBe(204);

    // Now the second factor: a radiologist may export, so TOTP is mandatory.
    const studies = await call('GET', '/dicom-web/studies', undefined, c);
    expect(studies.status).toBe(403);
    expect(studies.body.code).toBe('auth.mfa-enrollment-required');
    const enrol = await call('POST', '/api/auth/mfa/enroll', undefined, c);
    expect(enrol.status).toBe(200);
    expect(enrol.body.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(enrol.body.otpauthUri).toMatch(
      /^otpauth:\/\/totp\/Custos:rad1\?secret=[A-Z2-7]{32}&issuer=Custos/,
    );
    const secret = enrol.body.secret as string;
    const stored = await s.app.index.db
      .selectFrom('users')
      .select(['totp_pending', 'totp_secret'])
      .where('username', '=', 'rad1')
      .executeTakeFirstOrThrow();
    expect(stored.totp_secret).toBeNull();
    expect(stored.totp_pending).toMatch(/^v1\./);
    expect(stored.totp_pending).not.toContain(secret);
    const wrongCode = String((Number(code(secret)) + 1) % 1_000_000).padStart(6, '0');
    const bad = await call('POST', '/api/auth/mfa/confirm', { code: wrongCode }, c);
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('auth.mfa-invalid');
    expect((await call('POST', '/api/auth/mfa/confirm', { code: code(secret) }, c)).body).toEqual({
      mfaEnrolled: true,
    });
    expect((await call('GET', '/dicom-web/studies', undefined, c)).status).toBe(200);
    expect((await call('GET', '/api/auth/me', undefined, c)).body).toMatchObject({
      mfaEnrolled: true,
      mfaEnrollmentRequired: false,
      mustChangePassword: false,
    });

    const out = await call('POST', '/api/auth/logout', undefined, c);
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^custos_session=; .*Max-Age=0/);
    expect((await call('GET', '/api/auth/me', undefined, c)).status).toBe(401);

    // Signing in now needs a code: missing, wrong, then right, then the same code again.
    advance(31_000);
    const missing = await login('rad1', 'tulip-harbour-47-violin');
    expect([missing.status, missing.body.code]).toEqual([401, 'auth.mfa-required']);
    const wrong = await login(
      'rad1',
      'tulip-harbour-47-violin',
      wrongCode === code(secret) ? '000000' : wrongCode,
    );
    expect([wrong.status, wrong.body.code]).toEqual([401, 'auth.mfa-invalid']);
    const ok = await login('rad1', 'tulip-harbour-47-violin', code(secret));
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      mfaEnrolled: true,
      mfaEnrollmentRequired: false,
      mustChangePassword: false,
    });
    const reused = await login('rad1', 'tulip-harbour-47-violin', code(secret));
    expect([reused.status, reused.body.code]).toEqual([401, 'auth.mfa-invalid']);
    advance(30_000);
    expect((await login('rad1', 'tulip-harbour-47-violin', code(secret))).status).toBe(200);
    // A wrong password with a right code is still just a wrong password.
    advance(30_000);
    const wrongPw = await login('rad1', 'tulip-harbour-47-violon', code(secret));
    expect([wrongPw.status, wrongPw.body.code]).toEqual([401, 'auth.unauthenticated']);

    const mfa = await ledger('mfa');
    expect(mfa.map((r) => [r.outcome, r.detail.change])).toEqual([
      ['success', 'enrol-start'],
      ['failure', 'enrol-confirm'],
      ['success', 'enrolled'],
    ]);
    const logins = (await ledger('login')).filter((r) => r.actor.name === 'rad1');
    expect(logins.map((r) => r.outcome)).toEqual([
      'success',
      'failure',
      'failure',
      'success',
      'failure',
      'success',
      'failure',
    ]);
    expect(logins.map((r) => r.detail?.reason).filter(Boolean)).toEqual([
      'second factor missing',
      'bad TOTP code',
      'TOTP code reused',
      'bad password',
    ]);
  });

  it('locks an account after five failures without saying whether the password was right, and unlocks it', async () => {
    await setPassword(
      'tech1',
      await createUser('tech1', 'technologist', { department: 'Radiology' }),
      'granite-owl-93-meadow',
    );
    for (let i = 0; i < 4; i++) {
      const r = await login('tech1', `wrong-password-${i}`);
      expect([r.status, r.body.code]).toEqual([401, 'auth.unauthenticated']);
    }
    const fifth = await login('tech1', 'wrong-password-4');
    expect([fifth.status, fifth.body.code]).toEqual([423, 'auth.locked']);
    const right = await login('tech1', 'granite-owl-93-meadow');
    const wrong = await login('tech1', 'wrong-password-5');
    expect(right.status).toBe(423);
    expect(right.body).toEqual(wrong.body);
    expect(right.headers.get('set-cookie')).toBeNull();
    expect(
      (await call('GET', '/api/admin/users')).body.find((u: Json) => u.username === 'tech1').lockedUntil,
    ).toBe(new Date(now + 15 * MIN).toISOString());

    // An administrator unlocks it.
    expect((await call('POST', '/api/admin/users/tech1/unlock')).status).toBe(204);
    expect((await login('tech1', 'granite-owl-93-meadow')).status).toBe(200);

    // Failures spread over more than the window do not lock; a lock also ends by itself.
    for (let i = 0; i < 4; i++) expect((await login('tech1', 'nope-nope-nope')).status).toBe(401);
    advance(16 * MIN);
    expect((await login('tech1', 'nope-nope-nope')).status).toBe(401);
    for (let i = 0; i < 4; i++) await login('tech1', 'nope-nope-nope');
    expect((await login('tech1', 'granite-owl-93-meadow')).status).toBe(423);
    advance(15 * MIN + 1000);
    expect((await login('tech1', 'granite-owl-93-meadow')).status).toBe(200);

    const changes = (await ledger('account-change'))
      .filter((r) => r.objects?.user === 'tech1')
      .map((r) => [r.actor.name, r.detail.change, r.detail.reason ?? null]);
    expect(changes).toEqual([
      ['tech1', 'password', null],
      ['system:lockout', 'lock', null],
      ['system:admin', 'unlock', null].map((v, i) => (i === 0 ? expect.any(String) : v)),
      ['system:lockout', 'lock', null],
      ['system:lockout', 'unlock', 'lock expired'],
    ]);
    const refusals = (await ledger('login')).filter(
      (r) => r.actor.name === 'tech1' && r.detail?.reason === 'account locked',
    );
    expect(refusals).toHaveLength(3);
  });

  it('answers a made-up or deactivated name as it answers an account, lock included, so locking tells no names', async () => {
    await setPassword('tech7', await createUser('tech7', 'technologist'), 'basalt-heron-41-quarry');
    await createUser('tech8', 'technologist');
    expect((await call('PATCH', '/api/admin/users/tech8', { active: false })).status).toBe(200);
    const answers = async (username: string) => {
      const seen: unknown[] = [];
      for (let i = 0; i < 7; i++) {
        const r = await login(username, `wrong-guess-${i}`);
        seen.push([r.status, r.body.code, r.body.detail, r.body.lockedUntil ?? null]);
      }
      return seen;
    };
    const real = await answers('tech7');
    expect(real.map((a) => (a as unknown[])[0])).toEqual([401, 401, 401, 401, 423, 423, 423]);
    expect(await answers('nobody-by-this-name')).toEqual(real);
    expect(await answers('TECH8')).toEqual(real);
    const refusals = (await ledger('login')).filter((r) => r.actor.name === 'nobody-by-this-name');
    expect(refusals.map((r) => r.detail.reason)).toEqual([
      ...Array(5).fill('no such account'),
      ...Array(2).fill('no such account (answered as locked)'),
    ]);
    // The made-up name's lock ends when an account's would.
    advance(15 * MIN + 1000);
    expect((await login('nobody-by-this-name', 'again')).status).toBe(401);
    expect((await login('tech7', 'basalt-heron-41-quarry')).status).toBe(200);
  });

  it('counts a made-up name in the index, so every process over it answers it as locked alike', async () => {
    // A second app over the same index stands for another `--workers` process or node.
    const other = await openApp(s.config, { clock: { now: () => new Date(now) }, initialise: false });
    try {
      const elsewhere = async (password: string) => {
        const err = await other.auth
          .login('made-up-elsewhere', password, '127.0.0.1')
          .catch((e: unknown) => e);
        return (err as { httpStatus?: number }).httpStatus;
      };
      const here = async (password: string) => (await login('made-up-elsewhere', password)).status;
      expect([await here('g1'), await elsewhere('g2'), await here('g3'), await elsewhere('g4')]).toEqual([
        401, 401, 401, 401,
      ]);
      // The fifth failure, wherever it lands, locks the name for both, as it would an account.
      expect(await here('g5')).toBe(423);
      expect(await elsewhere('g6')).toBe(423);
      expect(await here('g7')).toBe(423);
    } finally {
      await other.close();
    }
  });

  it('counts concurrent failures one by one: eight at once lock the account once, after the fifth', async () => {
    await createUser('tech6', 'technologist');
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => login('tech6', `parallel-guess-${i}`)),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([401, 401, 401, 401, 423, 423, 423, 423]);
    const locks = (await ledger('account-change')).filter(
      (r) => r.objects?.user === 'tech6' && r.detail.change === 'lock',
    );
    expect(locks).toHaveLength(1);
    expect(locks[0]!.detail.failures).toBe(5);
  });

  it('ends a console session after the idle timeout and after the absolute timeout, cookie and token alike', async () => {
    await setPassword('tech2', await createUser('tech2', 'technologist'), 'copper-lantern-58-fjord');
    const a = await login('tech2', 'copper-lantern-58-fjord');
    // Used every 14 minutes, the session outlives the idle timeout up to its absolute end (8 h).
    for (let i = 1; i <= 34; i++) {
      advance(14 * MIN);
      const r = await call(
        'GET',
        '/api/auth/me',
        undefined,
        i % 2 ? { cookie: a.cookie } : { token: a.body.token },
      );
      expect(r.status, `after ${i * 14} min`).toBe(200);
    }
    advance(5 * MIN);
    expect((await call('GET', '/api/auth/me', undefined, { token: a.body.token })).status).toBe(401);
    expect((await call('GET', '/api/auth/me', undefined, { cookie: a.cookie })).status).toBe(401);

    const b = await login('tech2', 'copper-lantern-58-fjord');
    advance(14 * MIN);
    expect((await call('GET', '/api/auth/me', undefined, { token: b.body.token })).status).toBe(200);
    advance(15 * MIN);
    expect((await call('GET', '/api/auth/me', undefined, { cookie: b.cookie })).status).toBe(401);
    expect((await call('GET', '/api/auth/me', undefined, { token: b.body.token })).status).toBe(401);
    const reasons = (await ledger('token-use')).map((r) => r.detail?.reason);
    expect(reasons).toContain('session absolute timeout');
    expect(reasons).toContain('session idle timeout');
  });

  it('ends sessions and tokens at once on deactivation by an administrator or by SCIM, and on password reset', async () => {
    for (const name of ['tech3', 'tech4', 'tech5'])
      await setPassword(
        name,
        await createUser(name, 'technologist', { department: 'Radiology' }),
        'saffron-kettle-71-dune',
      );
    const live = async (name: string) => {
      const l = await login(name, 'saffron-kettle-71-dune');
      const t = await call('POST', `/api/admin/users/${name}/tokens`, { name: 'pacs-bridge', ttlDays: 30 });
      expect(t.status).toBe(201);
      expect((await call('GET', '/dicom-web/studies', undefined, { cookie: l.cookie })).status).toBe(200);
      expect((await call('GET', '/dicom-web/studies', undefined, { token: t.body.token })).status).toBe(200);
      return { cookie: l.cookie, token: t.body.token as string, loginToken: l.body.token as string };
    };
    const dead = async (k: { cookie: string; token: string; loginToken: string }) => {
      expect((await call('GET', '/dicom-web/studies', undefined, { cookie: k.cookie })).status).toBe(401);
      expect((await call('GET', '/dicom-web/studies', undefined, { token: k.token })).status).toBe(401);
      expect((await call('GET', '/dicom-web/studies', undefined, { token: k.loginToken })).status).toBe(401);
    };

    const k3 = await live('tech3');
    const off = await call('PATCH', '/api/admin/users/tech3', { active: false });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ username: 'tech3', active: false });
    await dead(k3);
    expect((await login('tech3', 'saffron-kettle-71-dune')).status).toBe(401);
    expect((await call('PATCH', '/api/admin/users/tech3', { active: true })).body.active).toBe(true);
    expect((await login('tech3', 'saffron-kettle-71-dune')).status).toBe(200);

    const k4 = await live('tech4');
    const found = await fetch(`${s.url}/scim/v2/Users?filter=userName+eq+%22tech4%22`, {
      headers: { Authorization: `Bearer ${s.token}` },
    }).then((r) => r.json() as Promise<Json>);
    const scim = await fetch(`${s.url}/scim/v2/Users/${found.Resources[0].id}`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': 'application/scim+json' },
      body: JSON.stringify({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', path: 'active', value: false }],
      }),
    });
    expect(scim.status).toBe(200);
    await dead(k4);

    const k5 = await live('tech5');
    const reset = await call('POST', '/api/admin/users/tech5/password/reset');
    expect(reset.status).toBe(200);
    expect(reset.body.password).toMatch(/^[A-Za-z0-9_-]{20}$/);
    await dead(k5);
    expect((await login('tech5', 'saffron-kettle-71-dune')).status).toBe(401);
    const again = await login('tech5', reset.body.password);
    expect(again.body.mustChangePassword).toBe(true);
  });

  it('scopes API tokens to their owner: list, create, revoke, last use', async () => {
    await setPassword('dsa', await createUser('dsa', 'data-steward'), 'marble-heron-26-quartz');
    await setPassword('dsb', await createUser('dsb', 'data-steward'), 'marble-heron-26-quartz');
    const a = await login('dsa', 'marble-heron-26-quartz');
    const b = await login('dsb', 'marble-heron-26-quartz');
    const mine = await call(
      'POST',
      '/api/auth/tokens',
      { name: 'nightly-report', ttlDays: 7 },
      { cookie: a.cookie },
    );
    expect(mine.status).toBe(201);
    expect(mine.body).toMatchObject({ id: expect.any(Number), token: expect.stringMatching(/^cst_/) });
    expect(mine.body.expiresAt).toBe(new Date(now + 7 * 86_400_000).toISOString());
    expect((await call('GET', '/dicom-web/studies', undefined, { token: mine.body.token })).status).toBe(200);

    const listA = await call('GET', '/api/auth/tokens', undefined, { cookie: a.cookie });
    expect(listA.body).toEqual([
      {
        id: mine.body.id,
        name: 'nightly-report',
        createdAt: new Date(now).toISOString(),
        expiresAt: mine.body.expiresAt,
        revokedAt: null,
        lastUsedAt: new Date(now).toISOString(),
      },
    ]);
    expect((await call('GET', '/api/auth/tokens', undefined, { cookie: b.cookie })).body).toEqual([]);
    const steal = await call('DELETE', `/api/auth/tokens/${mine.body.id}`, undefined, { cookie: b.cookie });
    expect(steal.status).toBe(404);
    expect((await call('GET', '/dicom-web/studies', undefined, { token: mine.body.token })).status).toBe(200);
    expect(
      (await call('DELETE', `/api/auth/tokens/${mine.body.id}`, undefined, { cookie: a.cookie })).status,
    ).toBe(204);
    expect((await call('GET', '/dicom-web/studies', undefined, { token: mine.body.token })).status).toBe(401);
    const revoked = await ledger('token-revoke');
    expect(revoked.at(-1)).toMatchObject({
      actor: { name: 'dsa' },
      objects: { user: 'dsa', tokenId: mine.body.id },
    });
  });

  it('lets only accounts allowed to administer manage users, and validates what they send', async () => {
    await setPassword('steward', await createUser('steward', 'data-steward'), 'violet-anchor-64-mesa');
    const st = await login('steward', 'violet-anchor-64-mesa');
    const refused = await call('GET', '/api/admin/users', undefined, { cookie: st.cookie });
    expect([refused.status, refused.body.code]).toEqual([403, 'access.denied']);
    expect(
      (await call('POST', '/api/admin/users', { username: 'x', role: 'student' }, { cookie: st.cookie }))
        .status,
    ).toBe(403);

    const list = await call('GET', '/api/admin/users');
    expect(list.status).toBe(200);
    expect(list.body.find((u: Json) => u.username === 'steward')).toEqual({
      username: 'steward',
      displayName: '',
      role: 'data-steward',
      department: null,
      physicianName: null,
      physicianId: null,
      active: true,
      mfaEnrolled: false,
      lockedUntil: null,
      mustChangePassword: false,
      projects: [],
    });
    const badRole = await call('POST', '/api/admin/users', { username: 'y', role: 'superuser' });
    expect([badRole.status, badRole.body.code]).toEqual([400, 'account.bad-role']);
    const badField = await call('PATCH', '/api/admin/users/steward', { password: 'x' });
    expect([badField.status, badField.body.code]).toEqual([400, 'account.bad-request']);
    expect((await call('PATCH', '/api/admin/users/nobody', { active: false })).status).toBe(404);
    const promoted = await call('PATCH', '/api/admin/users/steward', {
      role: 'data-owner',
      department: 'Radiology',
    });
    expect(promoted.body).toMatchObject({ role: 'data-owner', department: 'Radiology' });
    // A data owner approves deletions: from now on the same session must enrol TOTP first.
    const confined = await call('GET', '/dicom-web/studies', undefined, { cookie: st.cookie });
    expect(confined.body.code).toBe('auth.mfa-enrollment-required');

    // MFA reset: the account enrols again.
    const e = await call('POST', '/api/auth/mfa/enroll', undefined, { cookie: st.cookie });
    await call('POST', '/api/auth/mfa/confirm', { code: code(e.body.secret) }, { cookie: st.cookie });
    expect(
      (await call('GET', '/api/admin/users')).body.find((u: Json) => u.username === 'steward').mfaEnrolled,
    ).toBe(true);
    expect((await call('POST', '/api/admin/users/steward/mfa/reset')).status).toBe(204);
    expect(
      (await call('GET', '/api/admin/users')).body.find((u: Json) => u.username === 'steward').mfaEnrolled,
    ).toBe(false);
    const mfa = (await ledger('mfa')).at(-1)!;
    expect(mfa).toMatchObject({
      policy: 'archive-administer',
      detail: { change: 'mfa-reset' },
      objects: { user: 'steward' },
    });
  });

  it('refuses an account whose name differs from an existing one only in letter case, naming that one', async () => {
    await createUser('JSmith', 'student');
    // Until 6 Dec 2026 'jsmith' was a second account, and audit records named two people the reader could not tell apart.
    for (const name of ['jsmith', 'JSMITH', 'JSmith']) {
      const r = await call('POST', '/api/admin/users', { username: name, role: 'student' });
      expect([r.status, r.body.code], name).toEqual([409, 'account.exists']);
      expect(r.body.detail, name).toContain("an account named 'JSmith' already exists");
    }
    const users = (await call('GET', '/api/admin/users')).body as Json[];
    expect(users.filter((u) => u.username.toLowerCase() === 'jsmith').map((u) => u.username)).toEqual([
      'JSmith',
    ]);
  });

  it('takes token lifetimes in whole days from 1 to 3650 and names of printable characters, and says so', async () => {
    await createUser('svc-pacs', 'technologist');
    const token = (body: Json) => call('POST', '/api/admin/users/svc-pacs/tokens', body);
    // Until 6 Dec 2026 {"ttlDays": 0.0001} made a token of nine seconds, and a name could hold a newline.
    for (const ttlDays of [0.0001, 1.5, 0, -1, 3651, '7', null]) {
      const r = await token({ name: 'pacs', ttlDays });
      expect([r.status, r.body.code], JSON.stringify(ttlDays)).toEqual([400, 'auth.bad-request']);
      expect(r.body.detail).toBe(
        `"ttlDays": expected a whole number of days from 1 to 3650; got ${JSON.stringify(ttlDays)}`,
      );
    }
    for (const [name, why] of [
      ['nightly\nexport', 'got U+000A at character 8'],
      ['tab\there', 'got U+0009 at character 4'],
      ['abc\u202Eevil', 'got U+202E at character 4'],
      ['   ', 'got 0 characters'],
      ['x'.repeat(101), 'got 101 characters'],
    ]) {
      const r = await token({ name, ttlDays: 7 });
      expect([r.status, r.body.code], JSON.stringify(name)).toEqual([400, 'auth.bad-request']);
      expect(r.body.detail).toBe(
        `"name": expected a label of 1-100 printable characters (no control characters or line breaks); ${why}`,
      );
    }
    const ok = await token({ name: ' Übergabe PACS → RIS ', ttlDays: 3650 });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.expiresAt).toBe(new Date(now + 3650 * 86_400_000).toISOString());
    expect((await call('GET', '/api/admin/users/svc-pacs/tokens')).body).toMatchObject([
      { name: 'Übergabe PACS → RIS' },
    ]);
  });

  it('keeps the default MFA roles to those policies/default.cedar lets export, delete or administer', async () => {
    const text = await readFile(new URL('../policies/default.cedar', import.meta.url), 'utf8');
    const sensitive = ['export-clinical', 'export-deidentified', 'approve-deletion', 'administer'];
    const roles = new Set<string>();
    for (const policy of text.split(/^@id\(/m).slice(1)) {
      if (
        !policy
          .trimStart()
          .replace(/^"[^"]*"\)\s*/, '')
          .startsWith('permit')
      )
        continue;
      if (!sensitive.some((a) => policy.includes(`Action::"${a}"`))) continue;
      for (const m of policy.matchAll(/Role::"([^"]+)"/g)) roles.add(m[1]!);
    }
    // A directory of its own: a fixed path such as /tmp/x failed the start's checks whenever a file stood there.
    const dir = await mkdtemp(join(tmpdir(), 'custos-mfa-roles-'));
    try {
      const config = loadConfig({ env: {}, cwd: '/', flags: { dataDir: join(dir, 'data') } });
      expect([...roles].sort()).toEqual([...config.auth.mfa.requiredRoles].sort());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
