// Deny by default, and audited (ARCHITECTURE.md invariant 2): a caller whose role may not use an admin route is
// refused with 403 and a `denied` record whatever it sent, an empty or malformed body or bad parameters included.
// Until 6 Dec 2026 several routes checked the body first and answered 400, recording nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const admin = systemPrincipal('test');

/** [method, path, body (raw JSON text, or undefined for none)]: requests a non-administrator must not get past. */
const REQUESTS: [string, string, string | undefined][] = [
  ['POST', '/api/admin/aes', '{}'],
  ['POST', '/api/admin/aes', 'not json'],
  [
    'POST',
    '/api/admin/aes',
    '{"title":"X","host":"h","port":1,"certificate":"-----BEGIN CERTIFICATE-----\\nx"}',
  ],
  ['POST', '/api/admin/users', '{}'],
  ['PATCH', '/api/admin/users/someone', '{"nonsense":1}'],
  ['POST', '/api/admin/users/someone/tokens', '{}'],
  ['DELETE', '/api/admin/users/someone/tokens/not-a-number', undefined],
  ['POST', '/api/quarantine/1/reject', '{}'],
  ['POST', '/api/quarantine/1/corrections', '[]'],
  ['GET', '/api/quarantine?status=bogus', undefined],
  ['POST', '/api/break-glass/1/review', '{}'],
  ['GET', '/api/break-glass?bogus=1', undefined],
  ['GET', '/api/audit/records?since=yesterday', undefined],
  ['GET', '/api/audit/disclosures', undefined],
  ['GET', '/api/audit/verify?x=1', undefined],
  ['GET', '/api/audit/export?format=pdf', undefined],
  ['GET', '/fhir/r4/AuditEvent?bogus=1', undefined],
  ['GET', '/fhir/r4/AuditEvent/abc', undefined],
  ['GET', '/api/quality/kpis?bogus=1', undefined],
  ['GET', '/api/kpis/activity?bogus=1', undefined],
  ['POST', '/scim/v2/Users', '[]'],
  ['GET', '/scim/v2/Users?startIndex=abc', undefined],
];

describe.each(backends())('admin routes decide before they read the request, on %s', (backend) => {
  let s: TestServer;
  let student: string;

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.app.accounts.add(admin, { username: 'nosy-student', role: 'student' });
    student = (await s.app.auth.createToken(admin, 'nosy-student')).token;
  });

  afterAll(async () => {
    await s?.stop();
  });

  it.each(REQUESTS)(
    'refuses %s %s with 403 and records the denial, whatever the body',
    async (method, path, body) => {
      const before = await s.app.index.db
        .selectFrom('audit_ledger')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .executeTakeFirstOrThrow();
      const res = await fetch(`${s.url}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${student}`,
          ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body } : {}),
      });
      const text = await res.text();
      expect(res.status, text).toBe(403);
      const denied = await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['actor', 'outcome', 'record'])
        .where('seq', '>', Number(before.seq ?? 0))
        .execute();
      expect(denied).toHaveLength(1);
      expect(denied[0]).toMatchObject({ actor: 'nosy-student', outcome: 'denied' });
    },
  );

  it('still tells an administrator what is wrong with the request', async () => {
    const res = await fetch(`${s.url}/api/admin/aes`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('ae.bad-request');
  });
});
