// JSON request bodies of the admin API and SCIM: what a body must say it is, and what a body that is no JSON gets.
// Plain fetch() as a client (or a cross-site page's form) sends it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { exchange } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';

type Json = Record<string, unknown>;

describe.each(backends())('JSON request bodies on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend);
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
  });

  const post = (path: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
    fetch(`${s.url}${path}`, { method: 'POST', headers, body });
  const auth = () => ({ Authorization: `Bearer ${s.token}` });
  const tokenNames = async () =>
    ((await (await fetch(`${s.url}/api/auth/tokens`, { headers: auth() })).json()) as { name: string }[]).map(
      (t) => t.name,
    );

  it('answers a JSON body sent as text/plain, with no Content-Type or in another charset with 415 naming application/json, and acts on none', async () => {
    const made = await fetch(`${s.url}/api/admin/users`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'formvictim', role: 'radiologist' }),
    });
    expect(made.status).toBe(201);
    const { password } = (await made.json()) as { password: string };
    // What a cross-site HTML form (enctype="text/plain") sends without a CORS preflight: until 7 Dec 2026 it was read
    // as JSON, and the login succeeded with a session cookie.
    const login = await post('/api/auth/login', JSON.stringify({ username: 'formvictim', password }), {
      'Content-Type': 'text/plain',
    });
    expect(login.status).toBe(415);
    expect(login.headers.get('content-type')).toBe('application/problem+json');
    // RFC 9110 §15.5.16: what would have been accepted (until 7 Dec 2026 in the text alone).
    expect(login.headers.get('accept-post')).toBe('application/json');
    expect(login.headers.get('set-cookie')).toBeNull();
    expect(await login.json()).toMatchObject({
      code: 'http.unsupported-media-type',
      detail:
        "Content-Type 'text/plain' is not JSON here: send the JSON body as application/json (RFC 9110 §15.5.16)",
      header: 'Content-Type',
      accepted: ['application/json'],
    });
    // No Content-Type at all (fetch sends none for bytes), and JSON in a charset that is not UTF-8.
    const untyped = await post('/api/auth/tokens', new TextEncoder().encode('{"name":"untyped"}'), auth());
    expect(untyped.status).toBe(415);
    expect(await untyped.json()).toMatchObject({
      code: 'http.unsupported-media-type',
      detail: 'the request has no Content-Type: send the JSON body as application/json (RFC 9110 §15.5.16)',
    });
    const latin1 = await post('/api/auth/tokens', '{"name":"latin1"}', {
      ...auth(),
      'Content-Type': 'application/json; charset=iso-8859-1',
    });
    expect(latin1.status).toBe(415);
    expect(((await latin1.json()) as Json).detail).toBe(
      "charset 'iso-8859-1' is not UTF-8 (RFC 8259 §8.1): send the JSON body as application/json (RFC 9110 §15.5.16)",
    );
    // A charset given twice names neither for sure (RFC 6838 §4.3); until 7 Dec 2026 the first counted.
    const twice = await post('/api/auth/tokens', '{"name":"twice"}', {
      ...auth(),
      'Content-Type': 'application/json; charset=utf-8; charset=iso-8859-1',
    });
    expect(twice.status).toBe(400);
    expect(await twice.json()).toMatchObject({
      code: 'http.bad-content-type',
      detail: expect.stringContaining("the parameter 'charset' is given more than once"),
    });
    expect(await tokenNames()).not.toContain('untyped');
    expect(await tokenNames()).not.toContain('latin1');
    expect(await tokenNames()).not.toContain('twice');
    // application/json, with or without charset=utf-8 (any case), is read; so the login is the same one.
    for (const type of ['application/json', 'Application/JSON; charset=UTF-8'])
      expect(
        (
          await post('/api/auth/tokens', JSON.stringify({ name: `typed ${type}` }), {
            ...auth(),
            'Content-Type': type,
          })
        ).status,
      ).toBe(201);
    const typedLogin = await post('/api/auth/login', JSON.stringify({ username: 'formvictim', password }), {
      'Content-Type': 'application/json',
    });
    expect(typedLogin.status).toBe(200);
  });

  it('answers a SCIM body that is not application/scim+json or application/json with a 415 SCIM error, and creates nobody', async () => {
    const user = (userName: string) =>
      JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName, active: true });
    const plain = await post('/scim/v2/Users', user('plain.scim'), {
      ...auth(),
      'Content-Type': 'text/plain',
    });
    expect(plain.status).toBe(415);
    expect(await plain.json()).toMatchObject({
      status: '415',
      detail:
        "Content-Type 'text/plain' is not JSON here: send the JSON body as application/scim+json or application/json (RFC 9110 §15.5.16)",
    });
    const listed = await fetch(
      `${s.url}/scim/v2/Users?filter=${encodeURIComponent('userName eq "plain.scim"')}`,
      {
        headers: auth(),
      },
    );
    expect(((await listed.json()) as { totalResults: number }).totalResults).toBe(0);
    for (const [name, type] of [
      ['scim.typed', 'application/scim+json'],
      ['json.typed', 'application/json'],
    ] as const)
      expect((await post('/scim/v2/Users', user(name), { ...auth(), 'Content-Type': type })).status).toBe(
        201,
      );
  });

  it('answers a body that is not JSON with 400 naming the line and column of the fault, never quoting the body', async () => {
    // Until 7 Dec 2026 only 'the request body is not valid JSON'.
    const login = await post(
      '/api/auth/login',
      '{\n  "username": "admin",\n  "password": "correct-horse-battery"\n  "totp": "123456"\n}',
      { 'Content-Type': 'application/json' },
    );
    expect(login.status).toBe(400);
    const text = await login.text();
    expect(JSON.parse(text)).toMatchObject({
      code: 'http.bad-json',
      detail: "the request body is not valid JSON: expected ',' or '}' at line 4, column 3 (RFC 8259)",
      line: 4,
      column: 3,
    });
    expect(text).not.toContain('correct-horse');
    const scim = await post('/scim/v2/Users', '{"userName": "cut', {
      ...auth(),
      'Content-Type': 'application/scim+json',
    });
    expect(scim.status).toBe(400);
    const scimProblem = (await scim.json()) as Json;
    // RFC 7644 §3.12: invalidSyntax, as for a body of the wrong shape (until 7 Dec 2026 no scimType).
    expect(scimProblem.scimType).toBe('invalidSyntax');
    expect(scimProblem.detail).toBe(
      "the request body is not valid JSON: expected '\"' closing the string before the end of the body at line 1, column 18 (RFC 8259)",
    );
  });

  it('answers a JSON body with a content coding with 415 naming it, and acts on none', async () => {
    // Until 7 Dec 2026 the coding was ignored: a gzip body was a 400 'not UTF-8', and a plain one labelled gzip read.
    const { gzipSync } = await import('node:zlib');
    const gzip = await post('/api/auth/tokens', gzipSync(JSON.stringify({ name: 'gzipped' })), {
      ...auth(),
      'Content-Type': 'application/json',
      'Content-Encoding': 'gzip',
    });
    expect(gzip.status).toBe(415);
    // RFC 9110 §15.5.16: the codings that would have been accepted (until 7 Dec 2026 none named).
    expect(gzip.headers.get('accept-encoding')).toBe('identity');
    expect(await gzip.json()).toMatchObject({
      code: 'http.unsupported-content-encoding',
      detail:
        "Content-Encoding 'gzip' is not supported: send the JSON body without a content coding (RFC 9110 §8.4)",
      header: 'Content-Encoding',
    });
    const labelled = await post('/api/auth/tokens', JSON.stringify({ name: 'labelled br' }), {
      ...auth(),
      'Content-Type': 'application/json',
      'Content-Encoding': 'br',
    });
    expect(labelled.status).toBe(415);
    expect(await tokenNames()).not.toContain('labelled br');
    const identity = await post('/api/auth/tokens', JSON.stringify({ name: 'identity' }), {
      ...auth(),
      'Content-Type': 'application/json',
      'Content-Encoding': 'identity',
    });
    expect(identity.status).toBe(201);
  });

  it('answers a JSON body declared over the limit with 413 at once, never asking for it with 100 Continue', async () => {
    // Until 7 Dec 2026 the client was sent 100 Continue, then the 413 only once 16 KiB had come.
    const r = await exchange(
      Number(new URL(s.url).port),
      `POST /api/auth/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n',
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
    expect(r.text).not.toContain('100 Continue');
    expect(r.text).toContain('"code":"http.body-too-large"');
    expect(r.text).toContain('"limit":16384');
    expect(r.closed).toBe(true);
  });
});
