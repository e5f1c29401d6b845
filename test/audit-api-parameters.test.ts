import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { asUserId } from '../src/domain/ids.js';
import { backends } from './support/backends.js';
import { ledgerSince, ledgerHead, startTestServer, type TestServer } from './support/test-server.js';

describe.each(backends())('audit API parameters on %s', (backend) => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startTestServer(backend);
    for (const patientId of ['PAT-A', 'PAT-B'])
      await s.app.ledger.append({
        principal: {
          kind: 'user',
          id: asUserId('snoop'),
          name: 'snoop',
          role: 'radiologist',
          source: '10.9.8.7',
          via: 'token:9',
        },
        action: 'view-pixels',
        outcome: 'success',
        policy: 'test-policy',
        patientId,
        studyUid: `1.2.826.0.1.${patientId === 'PAT-A' ? 1 : 2}`,
      });
  });
  afterAll(async () => {
    await s?.stop();
  });
  afterEach(() => expect(s.unexpected).toEqual([]));

  it('refuses a repeated parameter with a 400 naming it, rather than silently using only its first value', async () => {
    const auth = { Authorization: `Bearer ${s.token}` };
    // Each patient alone has a record, so an answer with only PAT-A's would hide PAT-B's access.
    const b = (await (await fetch(`${s.url}/api/audit/records?patient=PAT-B`, { headers: auth })).json()) as {
      records: AuditRecord[];
    };
    expect(b.records.map((r) => r.patientId)).toEqual(['PAT-B']);

    for (const [path, param] of [
      ['/api/audit/records?patient=PAT-A&patient=PAT-B', 'patient'],
      ['/api/audit/records?user=snoop&user=other', 'user'],
      ['/api/audit/records?action=view-pixels&action=query', 'action'],
      ['/api/audit/records?since=2026-01-01&since=2020-01-01', 'since'],
      ['/api/audit/disclosures?patient=PAT-A&patient=PAT-B', 'patient'],
      ['/api/audit/export?format=jsonl&patient=PAT-A&patient=PAT-B', 'patient'],
      ['/api/audit/export?format=csv&format=jsonl', 'format'],
    ] as const) {
      const before = await ledgerHead(s);
      const res = await fetch(`${s.url}${path}`, { headers: auth });
      expect(res.status, path).toBe(400);
      expect(res.headers.get('content-type'), path).toMatch(/problem\+json/);
      const problem = (await res.json()) as { code: string; parameter: string; detail: string };
      expect(problem, path).toMatchObject({ code: 'audit.bad-filter', parameter: param });
      expect(problem.detail, path).toMatch(new RegExp(`^${param}: may be given once`));
      // Nothing was read, so no read of the ledger is recorded as if it had answered.
      expect(
        (await ledgerSince(s, before)).filter((r) => r.action === 'read-audit' && r.outcome === 'success'),
      ).toEqual([]);
    }
    const action = await fetch(`${s.url}/api/audit/records?action=view-pixels&action=query`, {
      headers: auth,
    });
    expect(((await action.json()) as { detail: string }).detail).toMatch(/join several actions with a comma/);
  });
});
