// Separation of duties in user administration (docs/accounts.md): an account allowed to administer accounts
// (sysadmin, data-custodian) may not grant the administrator, sysadmin, data-custodian or privacy-officer roles,
// act on an account holding one, or mint API tokens for it; nobody but the privacy officer mints the privacy
// officer's tokens. Each refusal is 403 application/problem+json naming why, with a `denied` record. Until
// 6 Dec 2026 a sysadmin could create administrators and mint tokens for the administrator and the privacy
// officer, through the real HTTP API below.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { changeWithSeparation, SeparationRefusal } from '../src/services/user-admin-service.js';
import { backends } from './support/backends.js';
import { scimUserId, startTestServer, type TestServer } from './support/test-server.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const operator = systemPrincipal('test');

describe.each(backends())('separation of duties in user administration on %s', (backend) => {
  let s: TestServer;
  const tokens: Record<string, string> = {};

  const call = async (
    who: string,
    method: string,
    path: string,
    body?: unknown,
    type = 'application/json',
  ) => {
    const res = await fetch(`${s.url}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${tokens[who]}`,
        ...(body !== undefined ? { 'Content-Type': type } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      type: res.headers.get('content-type') ?? '',
      body: (text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as Json,
    };
  };

  const lastSeq = async () =>
    Number(
      (
        await s.app.index.db
          .selectFrom('audit_ledger')
          .select((eb) => eb.fn.max('seq').as('seq'))
          .executeTakeFirstOrThrow()
      ).seq ?? 0,
    );

  const recordsAfter = async (seq: number) =>
    (
      await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['actor', 'action', 'outcome', 'record'])
        .where('seq', '>', seq)
        .orderBy('seq')
        .execute()
    ).map((r) => ({ ...r, record: JSON.parse(r.record) as Json }));

  /**
   * A refusal: 403 naming separation of duties, one `denied` record of `action` on `user`. Under /scim/v2 the
   * request is SCIM's and the answer a SCIM error, the record's channel `scim`; elsewhere problem+json.
   */
  const expectRefused = async (
    who: string,
    method: string,
    path: string,
    body: unknown,
    action: string,
    user: string,
    why: RegExp,
  ) => {
    const scim = path.startsWith('/scim/v2/');
    const before = await lastSeq();
    const r = await call(who, method, path, body, scim ? 'application/scim+json' : 'application/json');
    expect(r.status, JSON.stringify(r.body)).toBe(403);
    expect(r.body.detail).toMatch(why);
    if (scim)
      expect(r.body).toMatchObject({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
        status: '403',
      });
    else {
      expect(r.type).toContain('application/problem+json');
      expect(r.body.code).toBe('access.denied');
      expect(r.body.policy).toBe('builtin:separation-of-duties');
    }
    const recs = await recordsAfter(before);
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ actor: who, action, outcome: 'denied' });
    expect(recs[0]!.record.policy).toBe('builtin:separation-of-duties');
    expect(recs[0]!.record.objects.user).toBe(user);
    expect(recs[0]!.record.detail.reason).toMatch(why);
    if (scim) expect(recs[0]!.record.channel).toBe('scim');
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    for (const [username, role] of [
      ['sys1', 'sysadmin'],
      ['sys2', 'sysadmin'],
      ['cust1', 'data-custodian'],
      ['po1', 'privacy-officer'],
      ['admin2', 'administrator'],
      ['rad1', 'radiologist'],
    ] as const) {
      await s.app.accounts.add(operator, { username, role, department: 'Radiology' });
      tokens[username] = (await s.app.auth.createToken(operator, username)).token;
    }
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('refuses a sysadmin or data custodian the administrator and privacy-officer roles, at creation and by change', async () => {
    for (const who of ['sys1', 'cust1'])
      for (const role of ['administrator', 'privacy-officer', 'sysadmin', 'data-custodian']) {
        const name = `${who}-made-${role}`;
        await expectRefused(
          who,
          'POST',
          '/api/admin/users',
          { username: name, role },
          'account-create',
          name,
          new RegExp(`only an administrator may grant the role '${role}'`),
        );
        expect(
          await s.app.index.db.selectFrom('users').select('pk').where('username', '=', name).execute(),
        ).toEqual([]);
        await expectRefused(
          who,
          'PATCH',
          '/api/admin/users/rad1',
          { role },
          'account-change',
          'rad1',
          new RegExp(`only an administrator may grant the role '${role}'`),
        );
      }
    // Nor raise themselves.
    await expectRefused(
      'sys1',
      'PATCH',
      '/api/admin/users/sys1',
      { role: 'administrator' },
      'account-change',
      'sys1',
      /only an administrator may grant the role 'administrator'/,
    );
    const rad = await call('sys1', 'GET', '/api/admin/users');
    expect(rad.body.find((u: Json) => u.username === 'rad1').role).toBe('radiologist');
    expect(rad.body.find((u: Json) => u.username === 'sys1').role).toBe('sysadmin');
  });

  it('refuses a sysadmin tokens, password and MFA resets and changes of more privileged accounts', async () => {
    for (const target of ['admin', 'admin2', 'po1', 'cust1', 'sys2']) {
      await expectRefused(
        'sys1',
        'POST',
        `/api/admin/users/${target}/tokens`,
        { name: 'takeover' },
        'token-create',
        target,
        target === 'po1'
          ? /only the privacy officer 'po1' may create API tokens/
          : new RegExp(`only an administrator may administer the account '${target}'`),
      );
      const why = new RegExp(`only an administrator may administer the account '${target}'`);
      for (const [method, path, body, action] of [
        ['POST', `/api/admin/users/${target}/password/reset`, undefined, 'account-change'],
        ['POST', `/api/admin/users/${target}/mfa/reset`, undefined, 'mfa'],
        ['PATCH', `/api/admin/users/${target}`, { role: 'student' }, 'account-change'],
      ] as const)
        await expectRefused('sys1', method, path, body, action, target, why);
    }
    const tokensOfPo = await s.app.auth.listTokens('po1');
    expect(tokensOfPo).toHaveLength(1); // the one made in beforeAll
  });

  it('lets the administrator mint no token for the privacy officer either, but the privacy officer may', async () => {
    await expectRefused(
      'admin2',
      'POST',
      '/api/admin/users/po1/tokens',
      { name: 'as-po' },
      'token-create',
      'po1',
      /only the privacy officer 'po1' may create API tokens/,
    );
    const own = await call('po1', 'POST', '/api/auth/tokens', { name: 'reports' });
    expect(own.status).toBe(201);
  });

  // The identity provider's channel (SCIM 2.0) holds the same rules: its token is an account's, and a sysadmin's
  // token may not provision what the sysadmin may not grant (until 6 Dec 2026 SCIM did not check them).
  it('holds the same rules through SCIM: a sysadmin token creates, raises, changes and deletes no guarded account', async () => {
    const scim = (who: string, method: string, path: string, body?: unknown) =>
      call(who, method, `/scim/v2${path}`, body, 'application/scim+json');
    const refused = (
      method: string,
      path: string,
      body: unknown,
      action: string,
      user: string,
      why: RegExp,
    ) => expectRefused('sys1', method, `/scim/v2${path}`, body, action, user, why);
    const patchRole = (role: string) => ({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'roles', value: [{ value: role, primary: true }] }],
    });
    await refused(
      'POST',
      '/Users',
      { userName: 'scim-admin', roles: [{ value: 'administrator', primary: true }] },
      'account-create',
      'scim-admin',
      /only an administrator may grant the role 'administrator'/,
    );
    expect(
      await s.app.index.db.selectFrom('users').select('pk').where('username', '=', 'scim-admin').execute(),
    ).toEqual([]);
    const rad1 = await scimUserId(s, 'rad1');
    await refused(
      'PATCH',
      `/Users/${rad1}`,
      patchRole('sysadmin'),
      'account-change',
      'rad1',
      /the role 'sysadmin'/,
    );
    await refused(
      'PUT',
      `/Users/${rad1}`,
      { userName: 'rad1', roles: [{ value: 'privacy-officer' }] },
      'account-change',
      'rad1',
      /the role 'privacy-officer'/,
    );
    const sys1 = await scimUserId(s, 'sys1');
    await refused(
      'PATCH',
      `/Users/${sys1}`,
      patchRole('administrator'),
      'account-change',
      'sys1',
      /'administrator'/,
    );
    for (const target of ['admin', 'po1', 'sys2']) {
      const pk = await scimUserId(s, target);
      const why = new RegExp(`only an administrator may administer the account '${target}'`);
      await refused(
        'PATCH',
        `/Users/${pk}`,
        {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', path: 'active', value: false }],
        },
        'account-change',
        target,
        why,
      );
      await refused('DELETE', `/Users/${pk}`, undefined, 'account-change', target, why);
    }
    const rows = await s.app.index.db
      .selectFrom('users')
      .select(['username', 'role', 'active', 'deleted_at'])
      .where('username', 'in', ['rad1', 'sys1', 'admin', 'po1', 'sys2'])
      .execute();
    expect(Object.fromEntries(rows.map((r) => [r.username, [r.role, r.active, r.deleted_at]]))).toEqual({
      rad1: ['radiologist', 1, null],
      sys1: ['sysadmin', 1, null],
      admin: ['administrator', 1, null],
      po1: ['privacy-officer', 1, null],
      sys2: ['sysadmin', 1, null],
    });
    // What a sysadmin may do through SCIM it still may; the administrator's token provisions any role.
    const made = await scim('sys1', 'POST', '/Users', {
      userName: 'scim-rad',
      roles: [{ value: 'radiologist' }],
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect((await scim('sys1', 'PATCH', `/Users/${made.body.id}`, patchRole('technologist'))).status).toBe(
      200,
    );
    const byAdmin = await scim('admin2', 'POST', '/Users', {
      userName: 'scim-sys',
      roles: [{ value: 'sysadmin' }],
    });
    expect(byAdmin.status, JSON.stringify(byAdmin.body)).toBe(201);
  });

  // The check repeated inside a change's transaction (the target's role may change after the first check):
  // until 6 Dec 2026 its refusal left no record.
  it('rolls back a change refused inside its transaction, then records the refusal as denied', async () => {
    const before = await lastSeq();
    const sys1 = { ...systemPrincipal('test'), kind: 'user' as const, name: 'sys1', role: 'sysadmin' };
    const refused = changeWithSeparation(
      s.app.index.db,
      s.app.ledger,
      sys1,
      'account-change',
      async (trx) => {
        await trx
          .updateTable('users')
          .set({ display_name: 'half-made' })
          .where('username', '=', 'rad1')
          .execute();
        throw new SeparationRefusal('rad1', 'the account became an administrator meanwhile');
      },
    );
    await expect(refused).rejects.toMatchObject({
      code: 'access.denied',
      httpStatus: 403,
      message: 'sys1 may not do this: the account became an administrator meanwhile',
    });
    const rad1 = await s.app.index.db
      .selectFrom('users')
      .select('display_name')
      .where('username', '=', 'rad1')
      .executeTakeFirstOrThrow();
    expect(rad1.display_name).not.toBe('half-made');
    const recs = await recordsAfter(before);
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ actor: 'sys1', action: 'account-change', outcome: 'denied' });
    expect(recs[0]!.record).toMatchObject({
      policy: 'builtin:separation-of-duties',
      objects: { user: 'rad1' },
      detail: { reason: 'the account became an administrator meanwhile' },
    });
  });

  it('still lets a sysadmin administer ordinary accounts and itself, and the administrator grant any role', async () => {
    const made = await call('sys1', 'POST', '/api/admin/users', { username: 'rad2', role: 'radiologist' });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect((await call('sys1', 'PATCH', '/api/admin/users/rad2', { role: 'technologist' })).status).toBe(200);
    expect((await call('sys1', 'POST', '/api/admin/users/rad1/tokens', { name: 'bridge' })).status).toBe(201);
    expect((await call('sys1', 'POST', '/api/admin/users/sys1/tokens', { name: 'mine' })).status).toBe(201);
    expect((await call('sys1', 'POST', '/api/admin/users/rad1/password/reset')).status).toBe(200);
    const po = await call('admin2', 'POST', '/api/admin/users', { username: 'po2', role: 'privacy-officer' });
    expect(po.status, JSON.stringify(po.body)).toBe(201);
    expect((await call('admin2', 'PATCH', '/api/admin/users/rad2', { role: 'sysadmin' })).status).toBe(200);
    expect((await call('admin2', 'POST', '/api/admin/users/sys2/tokens', { name: 'ops' })).status).toBe(201);
  });
});
