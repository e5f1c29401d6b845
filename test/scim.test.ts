import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe.each(backends())('SCIM 2.0 on %s', (backend) => {
  let s: TestServer;
  const call = async (method: string, path: string, body?: unknown, token = s.token) => {
    const res = await fetch(`${s.url}/scim/v2${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body ? { 'Content-Type': 'application/scim+json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      type: res.headers.get('content-type'),
      body: (text ? JSON.parse(text) : undefined) as Json,
    };
  };
  const qido = (token: string) =>
    fetch(`${s.dicomweb}/studies`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.status);

  beforeAll(async () => {
    s = await startTestServer(backend);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('provisions a user the way Microsoft Entra ID does, and deactivation stops its tokens at once', async () => {
    // Entra first looks the user up, then creates it.
    const lookup = await call('GET', '/Users?filter=userName+eq+%22alice%40contoso.example%22');
    expect(lookup).toMatchObject({ status: 200, body: { totalResults: 0, Resources: [] } });
    expect(lookup.type).toMatch(/^application\/scim\+json/);
    const created = await call('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE],
      externalId: 'f3a9c1d2-0001',
      userName: 'alice@contoso.example',
      active: true,
      displayName: 'Alice Moreau',
      emails: [{ primary: true, type: 'work', value: 'alice@contoso.example' }],
      name: { formatted: 'Alice Moreau', familyName: 'Moreau', givenName: 'Alice' },
      roles: [{ primary: 'True', type: 'WindowsAzureActiveDirectoryRole', value: 'administrator' }],
      [ENTERPRISE]: { department: 'Radiology' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      userName: 'alice@contoso.example',
      active: true,
      externalId: 'f3a9c1d2-0001',
      roles: [{ value: 'administrator' }],
      [ENTERPRISE]: { department: 'Radiology' },
    });
    const id = created.body.id as string;
    expect(
      (await call('GET', '/Users?filter=userName+eq+%22alice%40contoso.example%22')).body.totalResults,
    ).toBe(1);

    const { token } = await s.app.auth.createToken(
      { kind: 'system', id: 'x' as never, name: 'system:test', role: 'administrator', source: 'test' },
      'alice@contoso.example',
    );
    expect(await qido(token)).toBe(200);

    const off = await call('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
    });
    expect(off).toMatchObject({ status: 200, body: { active: false } });
    expect(await qido(token)).toBe(401);
    const [rec] = await s.app.auditStore.search({ action: ['account-change'], limit: 1 });
    expect(rec).toMatchObject({
      channel: 'scim',
      objects: { user: 'alice@contoso.example' },
      detail: { active: false, tokensRevoked: true },
    });
  });

  it('takes Okta-shaped PATCH and PUT, and DELETE leaves no way back in', async () => {
    const created = await call('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'bob.okta',
      name: { givenName: 'Bob', familyName: 'Ngata' },
      emails: [{ primary: true, value: 'bob@example.org', type: 'work' }],
      active: true,
    });
    const id = created.body.id as string;
    expect(created.body.roles).toEqual([{ value: 'none', primary: true }]);
    const patched = await call('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [
        { op: 'replace', value: { active: false, displayName: 'Bob N.', roles: [{ value: 'radiologist' }] } },
      ],
    });
    expect(patched.body).toMatchObject({
      active: false,
      displayName: 'Bob N.',
      roles: [{ value: 'radiologist' }],
    });
    const put = await call('PUT', `/Users/${id}`, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'bob.okta',
      name: { givenName: 'Robert', familyName: 'Ngata' },
      active: true,
      roles: [{ value: 'radiologist', primary: true }],
    });
    expect(put.body).toMatchObject({
      active: true,
      name: { givenName: 'Robert' },
      displayName: 'Robert Ngata',
    });
    expect((await call('DELETE', `/Users/${id}`)).status).toBe(204);
    expect(await call('GET', `/Users/${id}`)).toMatchObject({ status: 404, body: { status: '404' } });
    const user = await s.app.index.db
      .selectFrom('users')
      .select(['active', 'deleted_at'])
      .where('username', '=', 'bob.okta')
      .executeTakeFirstOrThrow();
    expect(user.active).toBe(0);
    expect(user.deleted_at).not.toBeNull();
  });

  it('manages groups and their members (Entra removes one member by path)', async () => {
    const u1 = (await call('POST', '/Users', { userName: 'carol', active: true })).body.id as string;
    const u2 = (await call('POST', '/Users', { userName: 'dan', active: true })).body.id as string;
    const g = await call('POST', '/Groups', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      displayName: 'Radiology Residents',
      members: [{ value: u1 }],
    });
    expect(g).toMatchObject({
      status: 201,
      body: { displayName: 'Radiology Residents', members: [{ value: u1, display: 'carol' }] },
    });
    const gid = g.body.id as string;
    await call('PATCH', `/Groups/${gid}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Add', path: 'members', value: [{ value: u2 }] }],
    });
    const removed = await call('PATCH', `/Groups/${gid}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Remove', path: `members[value eq "${u1}"]` }],
    });
    expect(removed.body.members).toEqual([expect.objectContaining({ value: u2, display: 'dan' })]);
    expect(
      (await call('GET', '/Groups?filter=displayName+eq+%22Radiology+Residents%22')).body.totalResults,
    ).toBe(1);
    expect((await call('DELETE', `/Groups/${gid}`)).status).toBe(204);
    expect((await call('GET', `/Groups/${gid}`)).status).toBe(404);
  });

  it('answers bad requests with SCIM errors that say what is wrong', async () => {
    await call('POST', '/Users', { userName: 'erin', active: true });
    expect(await call('POST', '/Users', { userName: 'erin', active: true })).toMatchObject({
      status: 409,
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
        scimType: 'uniqueness',
        detail: expect.stringContaining('erin'),
      },
    });
    expect(await call('GET', '/Users?filter=emails+co+%22x%22')).toMatchObject({
      status: 400,
      body: { scimType: 'invalidFilter' },
    });
    expect(await call('POST', '/Users', { userName: 'frank', roles: [{ value: 'god' }] })).toMatchObject({
      status: 400,
      body: { scimType: 'invalidValue', detail: expect.stringContaining('god') },
    });
    expect(
      await call('PATCH', '/Users/999999', {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'active', value: false }],
      }),
    ).toMatchObject({
      status: 404,
    });
    expect(await call('PATCH', '/Users/1', { Operations: [] })).toMatchObject({
      status: 400,
      body: { scimType: 'invalidSyntax' },
    });
  });

  it('treats userName as case-insensitive (RFC 7643 §8.7.1): no second account by case, and the filter finds it', async () => {
    const created = await call('POST', '/Users', { userName: 'Grace.Hopper', active: true });
    expect(created.status).toBe(201);
    // Until 6 Dec 2026 'grace.hopper' became a second account.
    expect(await call('POST', '/Users', { userName: 'grace.hopper', active: true })).toMatchObject({
      status: 409,
      body: {
        scimType: 'uniqueness',
        detail: expect.stringContaining("a user named 'Grace.Hopper' already exists"),
      },
    });
    // What an identity provider asks before creating: the account is found whatever the case it sends.
    const found = await call('GET', '/Users?filter=userName+eq+%22GRACE.HOPPER%22');
    expect(found.body.Resources.map((u: Json) => u.id)).toEqual([created.body.id]);
    // Nor by renaming another account to it, by PUT or PATCH; renaming an account's own case is allowed.
    const other = await call('POST', '/Users', { userName: 'ghopper', active: true });
    expect(
      await call('PUT', `/Users/${other.body.id}`, { userName: 'GRACE.hopper', active: true }),
    ).toMatchObject({
      status: 409,
      body: { scimType: 'uniqueness', detail: expect.stringContaining('Grace.Hopper') },
    });
    expect(
      await call('PATCH', `/Users/${other.body.id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'userName', value: 'grace.HOPPER' }],
      }),
    ).toMatchObject({ status: 409, body: { scimType: 'uniqueness' } });
    expect(
      await call('PATCH', `/Users/${other.body.id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'userName', value: 'bad\nname' }],
      }),
    ).toMatchObject({ status: 400, body: { scimType: 'invalidValue' } });
    expect(
      await call('PATCH', `/Users/${created.body.id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'userName', value: 'grace.hopper' }],
      }),
    ).toMatchObject({ status: 200, body: { userName: 'grace.hopper' } });
  });

  it('pages users by startIndex and count as RFC 7644 §3.4.2.4 says, past any cap on the count', async () => {
    for (const n of ['page1', 'page2', 'page3'])
      expect((await call('POST', '/Users', { userName: n, active: true })).status).toBe(201);
    const all = await call('GET', '/Users');
    const names = (all.body.Resources as Json[]).map((u) => u.userName as string);
    expect(names).toEqual(expect.arrayContaining(['page1', 'page2', 'page3']));
    const total = all.body.totalResults as number;

    const second = await call('GET', '/Users?startIndex=2&count=1');
    expect(second.body).toMatchObject({ totalResults: total, startIndex: 2, itemsPerPage: 1 });
    expect((second.body.Resources as Json[])[0]!.userName).toBe(names[1]);
    // Beyond the results: an empty page at the index asked for. (Capping startIndex at 1,000, as the count is,
    // gave a client paging past 1,000 users the same page again and again.)
    expect((await call('GET', '/Users?startIndex=1500&count=10')).body).toMatchObject({
      totalResults: total,
      startIndex: 1500,
      itemsPerPage: 0,
      Resources: [],
    });
    // Below the minimum: taken as 1 and 0; a count above 1,000 as 1,000.
    expect((await call('GET', '/Users?startIndex=0&count=1')).body).toMatchObject({
      startIndex: 1,
      itemsPerPage: 1,
    });
    expect((await call('GET', '/Users?count=-3')).body).toMatchObject({ itemsPerPage: 0, Resources: [] });
    expect((await call('GET', '/Users?count=5000')).body).toMatchObject({ itemsPerPage: total });
    // Groups page alike (they used to come all at once, each page saying startIndex 1).
    const groups: string[] = [];
    for (const n of ['Page A', 'Page B', 'Page C'])
      groups.push((await call('POST', '/Groups', { displayName: n })).body.id as string);
    const g2 = await call('GET', '/Groups?startIndex=2&count=1');
    expect(g2.body).toMatchObject({ startIndex: 2, itemsPerPage: 1, Resources: [{ id: groups[1] }] });
    expect(g2.body.totalResults).toBeGreaterThanOrEqual(3);
    expect((await call('GET', '/Groups?startIndex=1500')).body).toMatchObject({
      startIndex: 1500,
      Resources: [],
    });
    for (const id of groups) expect((await call('DELETE', `/Groups/${id}`)).status).toBe(204);
    expect(await call('GET', '/Users?startIndex=two')).toMatchObject({
      status: 400,
      body: {
        scimType: 'invalidValue',
        detail: expect.stringContaining("startIndex must be an integer, got 'two'"),
      },
    });
  });

  it('refuses an account that may not administer, and records the refusal', async () => {
    await s.app.accounts.add(
      { kind: 'system', id: 'x' as never, name: 'system:test', role: 'administrator', source: 'test' },
      { username: 'rita', role: 'radiologist', department: 'radiology' },
    );
    const { token } = await s.app.auth.createToken(
      { kind: 'system', id: 'x' as never, name: 'system:test', role: 'administrator', source: 'test' },
      'rita',
    );
    expect(await call('GET', '/Users', undefined, token)).toMatchObject({
      status: 403,
      body: { status: '403' },
    });
    const [denied] = await s.app.auditStore.search({ actor: 'rita', outcome: 'denied', limit: 1 });
    expect(denied?.action).toBe('administer');
  });
});
