// docs/accounts.md: account names are case-insensitive. Every lookup by name agrees: sign-in, a DIMSE User
// Identity, binding an AE, administering an account. Until 6 Dec 2026 each of them compared the name exactly.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const admin = systemPrincipal('test');

describe.each(backends())('account names in any letter case on %s', (backend) => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startTestServer(backend);
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('signs in with the name in another letter case, and records the account as it is named', async () => {
    const { password } = await s.app.accounts.add(admin, { username: 'rad1', role: 'radiologist' });
    const res = await fetch(`${s.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'RAD1', password }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { username: string }).username).toBe('rad1');
    const login = await s.app.index.db
      .selectFrom('audit_ledger')
      .select(['actor'])
      .where('action', '=', 'login')
      .where('outcome', '=', 'success')
      .orderBy('seq', 'desc')
      .executeTakeFirstOrThrow();
    expect(login.actor).toBe('rad1');
  });

  it('administers an account named in another letter case', async () => {
    await s.app.accounts.add(admin, { username: 'Tech.One', role: 'technologist' });
    const res = await fetch(`${s.url}/api/admin/users/TECH.ONE/tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'bridge' }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const tokens = await s.app.auth.listTokens('tech.one');
    expect(tokens.map((t) => t.name)).toEqual(['bridge']);
  });

  it('takes a DIMSE User Identity naming the account in another letter case', async () => {
    await s.app.aes.add(admin, { title: 'CASESCU', host: '127.0.0.1', port: 104 });
    const work = await mkdtemp(join(tmpdir(), 'custos-names-'));
    try {
      const f = join(work, 'one.dcm');
      await writeFile(f, makeInstance({ studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: uid(3) }));
      const r = await dcmtk('storescu', [
        '-aet',
        'CASESCU',
        '-aec',
        'CUSTOS',
        '--user',
        'ADMIN',
        '--password',
        s.token,
        '--pos-response',
        '127.0.0.1',
        String(s.dicomPort),
        f,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const associated = await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['actor', 'outcome'])
        .where('action', '=', 'dicom-associate')
        .orderBy('seq', 'desc')
        .executeTakeFirstOrThrow();
      expect(associated).toEqual({ actor: 'admin', outcome: 'success' });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
