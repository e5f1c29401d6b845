// An archive always keeps an active administrator (docs/accounts.md): a change that would leave none, through the
// console's API or SCIM, is 409 `account.last-administrator` and changes nothing. Until 7 Dec 2026 the only
// administrator could give themselves another role, and nobody could then administer accounts again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { scimUserId, startTestServer, type TestServer } from './support/test-server.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const operator = systemPrincipal('test');

describe.each(backends())('the last active administrator on %s', (backend) => {
  let s: TestServer;
  const tokens: Record<string, string> = {};

  const call = async (who: string, method: string, path: string, body?: unknown) => {
    const scim = path.startsWith('/scim/v2/');
    const res = await fetch(`${s.url}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${tokens[who]}`,
        ...(body !== undefined
          ? { 'Content-Type': scim ? 'application/scim+json' : 'application/json' }
          : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json };
  };

  const administrators = async () =>
    (
      await s.app.index.db
        .selectFrom('users')
        .select('username')
        .where('role', '=', 'administrator')
        .where('active', '=', 1)
        .where('deleted_at', 'is', null)
        .orderBy('username')
        .execute()
    ).map((u) => u.username);

  const refused = (r: { status: number; body: Json }) => {
    expect(r.status, JSON.stringify(r.body)).toBe(409);
    expect(JSON.stringify(r.body)).toMatch(/would leave no active administrator/);
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    tokens.admin = s.token;
    for (const username of ['admin2', 'admin3']) {
      await s.app.accounts.add(operator, { username, role: 'administrator', department: 'IT' });
      tokens[username] = (await s.app.auth.createToken(operator, username)).token;
    }
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('lets administrators step down while another remains, and refuses the last one, by the console API and SCIM', async () => {
    const first = s.config.admin.username;
    expect(await administrators()).toEqual([first, 'admin2', 'admin3'].sort());
    // Two of three step down or are stepped down: allowed.
    expect((await call('admin2', 'PATCH', `/api/admin/users/${first}`, { role: 'sysadmin' })).status).toBe(
      200,
    );
    expect((await call('admin2', 'PATCH', '/api/admin/users/admin3', { active: false })).status).toBe(200);
    expect(await administrators()).toEqual(['admin2']);
    // The last one: not by a role change of its own, nor by SCIM deactivation, role removal or deletion.
    refused(await call('admin2', 'PATCH', '/api/admin/users/admin2', { role: 'radiologist' }));
    const id = await scimUserId(s, 'admin2');
    const patch = (path: string, value: unknown, op = 'replace') => ({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op, path, value }],
    });
    refused(await call('admin2', 'PATCH', `/scim/v2/Users/${id}`, patch('active', false)));
    refused(await call('admin2', 'PATCH', `/scim/v2/Users/${id}`, patch('roles', undefined, 'remove')));
    refused(await call('admin2', 'DELETE', `/scim/v2/Users/${id}`));
    expect(await administrators()).toEqual(['admin2']);
    // Nothing of the refused changes was recorded as done.
    const changes = await s.app.index.db
      .selectFrom('audit_ledger')
      .select('record')
      .where('action', '=', 'account-change')
      .where('actor', '=', 'admin2')
      .execute();
    expect(changes.filter((c) => (JSON.parse(c.record) as Json).objects?.user === 'admin2')).toEqual([]);
    // With another administrator again, the same change goes through.
    expect((await call('admin2', 'PATCH', '/api/admin/users/admin3', { active: true })).status).toBe(200);
    expect((await call('admin2', 'PATCH', '/api/admin/users/admin2', { role: 'radiologist' })).status).toBe(
      200,
    );
    expect(await administrators()).toEqual(['admin3']);
  });

  it('keeps one of the last two when each demotes the other at the same moment', async () => {
    // admin3 is the last administrator (a new token: its deactivation ended the old one); it makes admin2 one
    // again, then both demote each other at once.
    tokens.admin3 = (await s.app.auth.createToken(operator, 'admin3')).token;
    expect((await call('admin3', 'PATCH', '/api/admin/users/admin2', { role: 'administrator' })).status).toBe(
      200,
    );
    const [a, b] = await Promise.all([
      call('admin2', 'PATCH', '/api/admin/users/admin3', { role: 'radiologist' }),
      call('admin3', 'PATCH', '/api/admin/users/admin2', { role: 'radiologist' }),
    ]);
    // One goes through; the other is refused: 409, or 403 when its caller had already stopped being an
    // administrator by the time its request was decided.
    const [done, other] = [a.status, b.status].sort();
    expect(done).toBe(200);
    expect([403, 409]).toContain(other);
    expect(await administrators()).toHaveLength(1);
  });
});
