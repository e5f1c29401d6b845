import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { startTestServer, type TestServer } from './support/test-server.js';

/** A stand-in identity provider: discovery document and JWKS over real HTTP, as Keycloak or Entra serve them. */
async function startIdp(): Promise<{
  issuer: string;
  jwk: JWK;
  key: CryptoKey;
  other: CryptoKey;
  close(): Promise<void>;
}> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const other = (await generateKeyPair('RS256')).privateKey;
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  let issuer = '';
  const server: Server = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? { issuer, jwks_uri: `${issuer}/jwks` }
        : req.url === '/jwks'
          ? { keys: [jwk] }
          : undefined;
    res.writeHead(body ? 200 : 404, { 'Content-Type': 'application/json' }).end(JSON.stringify(body ?? {}));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { issuer, jwk, key: privateKey, other, close: () => new Promise((r) => server.close(() => r())) };
}

describe.each(backends())('OIDC bearer tokens on %s', (backend) => {
  let s: TestServer;
  let idp: Awaited<ReturnType<typeof startIdp>>;
  const now = () => Math.floor(Date.now() / 1000);
  const token = (
    claims: Record<string, unknown> = {},
    opts: { key?: CryptoKey; kid?: string; alg?: string } = {},
  ) =>
    new SignJWT({
      preferred_username: 'dr.who',
      roles: ['custos-admins'],
      department: 'radiology',
      ...claims,
    })
      .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: opts.kid ?? 'k1' })
      .setIssuer((claims.iss as string) ?? idp.issuer)
      .setAudience((claims.aud as string) ?? 'custos')
      .setSubject('subject-42')
      .setIssuedAt()
      .setExpirationTime((claims.exp as number) ?? now() + 300)
      .sign(opts.key ?? idp.key);
  const qido = (t: string) => fetch(`${s.dicomweb}/studies`, { headers: { Authorization: `Bearer ${t}` } });

  beforeAll(async () => {
    idp = await startIdp();
    s = await startTestServer(backend, {
      configure: (c) => ({
        ...c,
        oidc: {
          issuer: idp.issuer,
          audience: 'custos',
          algorithms: ['RS256', 'ES256'],
          usernameClaim: 'preferred_username',
          roleClaim: 'roles',
          departmentClaim: 'department',
          roleMap: { 'custos-admins': 'administrator' },
          clockToleranceSeconds: 5,
        },
      }),
    });
  });
  afterAll(async () => {
    await s?.stop();
    await idp?.close();
  });

  it('accepts a token signed by a key in the issuer JWKS and records who used it', async () => {
    const res = await qido(await token());
    expect(res.status).toBe(200);
    const [rec] = await s.app.auditStore.search({ action: ['query'], actor: 'dr.who', limit: 1 });
    expect(rec?.actor).toMatchObject({
      name: 'dr.who',
      role: 'administrator',
      via: 'oidc',
      id: 'oidc:subject-42',
    });
  });

  it.each([
    ['expired', () => token({ exp: now() - 60 }), /expired/],
    ['not yet valid', () => token({ nbf: now() + 600 }), /nbf/],
    ['for another audience', () => token({ aud: 'someone-else' }), /aud/],
    ['from another issuer', () => token({ iss: 'https://evil.example' }), /iss/],
    ['signed by a key the issuer does not publish', () => token({}, { key: idp.other }), /signature/],
    ['with a key id the JWKS lacks', () => token({}, { kid: 'nope' }), /no key/],
  ])('refuses a token %s, with 401 problem+json, and records the attempt', async (_name, make, why) => {
    const res = await qido(await make());
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    expect((await res.json()) as { detail: string }).toMatchObject({ detail: expect.stringMatching(why) });
    const [rec] = await s.app.auditStore.search({ action: ['token-use'], outcome: 'failure', limit: 1 });
    expect(rec?.actor.via).toBe('oidc');
  });

  it('refuses a token whose claims were changed after signing, and records the attempt', async () => {
    const [header, payload, signature] = (await token()).split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, preferred_username: 'mallory' })).toString(
      'base64url',
    );
    const res = await qido(`${header}.${forged}.${signature}`);
    expect(res.status).toBe(401);
    expect((await res.json()) as { detail: string }).toMatchObject({
      detail: expect.stringMatching(/signature/),
    });
    const [rec] = await s.app.auditStore.search({ action: ['token-use'], outcome: 'failure', limit: 1 });
    expect(rec?.actor.via).toBe('oidc');
  });

  it("refuses alg 'none' and an HMAC signed with the issuer's public key", async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const claims = {
      iss: idp.issuer,
      aud: 'custos',
      sub: 'x',
      exp: now() + 300,
      preferred_username: 'mallory',
      roles: ['custos-admins'],
    };
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    expect((await qido(none)).status).toBe(401);
    const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: 'k1' })}.${b64(claims)}`;
    const mac = createHmac('sha256', JSON.stringify(idp.jwk)).update(input).digest('base64url');
    const confused = await qido(`${input}.${mac}`);
    expect(confused.status).toBe(401);
    expect(await confused.json()).toMatchObject({ detail: expect.stringMatching(/algorithm/) });
  });

  it('refuses the token of an account that was deactivated locally (deprovisioned)', async () => {
    await s.app.index.db
      .insertInto('users')
      .values({
        username: 'dr.gone',
        display_name: 'Dr Gone',
        role: 'radiologist',
        password_hash: null,
        active: 0,
        created_at: new Date().toISOString(),
      })
      .execute();
    const res = await qido(await token({ preferred_username: 'dr.gone' }));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ detail: expect.stringMatching(/deactivated/) });
  });

  it('authenticates a token whose role does not map, and the policy then denies it', async () => {
    const res = await qido(await token({ roles: ['visitor'] }));
    expect(res.status).toBe(403);
  });
});
