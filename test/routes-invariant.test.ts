// ARCHITECTURE.md invariant 1: no route returns data without a principal. Enumerates every route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRouter } from '../src/transports/server/routes.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const PUBLIC = new Set([
  'GET /api/health',
  'POST /api/auth/login',
  'GET /api/openapi.json',
  'GET /fhir/r4/metadata',
]);

describe('every route', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('sqlite');
  });
  afterAll(async () => {
    await s.stop();
  });

  it('is authenticated unless it is on the short public list, which carries no data', () => {
    const routes = buildRouter(s.app).routes();
    expect(routes.length).toBeGreaterThan(15);
    const publicRoutes = routes.filter((r) => r.auth === 'public').map((r) => `${r.method} ${r.path}`);
    expect(new Set(publicRoutes)).toEqual(PUBLIC);
  });

  it('answers 401 problem+json to each authenticated route called without a token, and audits nothing as success', async () => {
    const routes = buildRouter(s.app)
      .routes()
      .filter((r) => r.auth === 'bearer');
    for (const r of routes) {
      const path = r.path
        .replace(/:frames/, '1')
        .replace(/:tagpath/, '7FE00010')
        .replace(/:\w+/g, '1.2.3');
      const res = await fetch(`${s.url}${path}`, {
        method: r.method,
        ...(r.method === 'POST'
          ? { body: 'x', headers: { 'Content-Type': 'multipart/related; boundary=x' } }
          : {}),
      });
      expect(res.status, `${r.method} ${r.path}`).toBe(401);
      // FHIR clients read an OperationOutcome; everything else answers problem+json.
      expect(res.headers.get('content-type'), `${r.method} ${r.path}`).toMatch(
        r.path.startsWith('/fhir/') ? /^application\/fhir\+json/ : /^application\/problem\+json/,
      );
    }
    const successes = await s.app.index.db
      .selectFrom('audit_ledger')
      .select('action')
      .where('outcome', '=', 'success')
      // Setup records written before any request: the first account, its token, the default policy set, the
      // configuration in force.
      .where('action', 'not in', ['account-create', 'token-create', 'policy-apply', 'config-change'])
      .execute();
    expect(successes).toEqual([]);
  });

  it('refuses a login with a wrong password and records the failure', async () => {
    const res = await fetch(`${s.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'wrong' }),
    });
    expect(res.status).toBe(401);
    const rows = await s.app.index.db
      .selectFrom('audit_ledger')
      .select(['action', 'outcome'])
      .where('action', '=', 'login')
      .execute();
    expect(rows).toEqual([{ action: 'login', outcome: 'failure' }]);
  });
});
