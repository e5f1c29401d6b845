// PostgreSQL restarts (maintenance, a failover): Custos stays up, answers what it cannot do meanwhile with a
// status that says "try again" (503 + Retry-After, an association refused as transient), and carries on by itself
// once the database is back, with nothing lost and a ledger that verifies. Until 5 Dec 2026 the restart's
// "terminating connection due to administrator command" on an idle pooled connection ended the server.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { storescuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { privatePostgres, type PrivatePostgres } from './support/private-postgres.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

type Json = Record<string, { vr: string; Value?: unknown[] }>;

describe('the PostgreSQL index restarting under a running server', () => {
  let pg: PrivatePostgres;
  let s: TestServer;
  let work: string;
  const study = uid(1);
  const series = uid(2);
  const sops = [uid(3), uid(4), uid(5)];
  const late = uid(6);
  const instance = (sop: string) => makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: sop });

  const stow = async (parts: Buffer[]) => {
    const res = await postStow(s, parts);
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
  };
  const instancesInStudy = async () => {
    const res = await fetch(`${s.dicomweb}/studies?StudyInstanceUID=${study}&includefield=00201208`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    const body = await res.text();
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body };
  };

  beforeAll(async () => {
    pg = await privatePostgres();
    s = await startTestServer('sqlite', { configure: (c) => ({ ...c, database: { url: pg.url } }) });
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'PGSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    work = await mkdtemp(join(tmpdir(), 'custos-outage-'));
    expect((await stow(sops.map(instance))).status).toBe(200);
    await pg.stop();
  }, 120_000);
  afterAll(async () => {
    const unexpected = await stopThenCleanUp(
      s,
      async () => pg?.remove(),
      () => rm(work, { recursive: true, force: true }),
    );
    expect(unexpected).toEqual([]);
  });

  it('answers a query 503 problem+json index.unavailable with Retry-After, and stays up', async () => {
    const r = await instancesInStudy();
    expect(r.status).toBe(503);
    expect(r.retryAfter).toBe('5');
    expect(JSON.parse(r.body)).toMatchObject({ code: 'index.unavailable', status: 503 });
    // The operator's log says why, once for all the pool's connections the restart closed and all the failed
    // requests and probes since.
    expect(s.notices).toEqual([
      expect.stringMatching(
        /^the PostgreSQL index cannot be reached \(57P01: terminating connection due to administrator command\); requests that need it are answered 503/,
      ),
    ]);
  });

  it('says on /api/health that the index does not answer, with 200 since the process itself is fine', async () => {
    const health = await fetch(`${s.url}/api/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', storage: 'ok', index: 'unavailable' });
    expect(s.notices).toHaveLength(1);
  });

  it('answers STOW-RS 503 without storing anything', async () => {
    const r = await stow([instance(late)]);
    expect(r.status).toBe(503);
    expect(r.retryAfter).toBe('5');
    expect(JSON.parse(r.body)).toMatchObject({ code: 'index.unavailable' });
  });

  it('refuses a DIMSE association as transient (local limit exceeded), which the modality retries', async () => {
    const f = join(work, 'late.dcm');
    await writeFile(f, instance(late));
    const r = await storescuTo(s.dicomPort, 'PGSCU', [f]);
    expect(r.stderr).toMatch(
      /Association Rejected[\s\S]*Result: Rejected Transient[\s\S]*Reason: Local Limit Exceeded/,
    );
  });

  it('says once in the log, and on /api/health, that the index answers again, without a request asking', async () => {
    await pg.start();
    // Probed every 2 s while away: no request is needed to find it back.
    const deadline = Date.now() + 15_000;
    while (s.notices.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(s.notices.slice(1)).toEqual([
      expect.stringMatching(/^the PostgreSQL index answers again \(it could not be reached for \d+ s\)$/),
    ]);
    const health = await fetch(`${s.url}/api/health`);
    expect(await health.json()).toEqual({ status: 'ok', storage: 'ok', index: 'ok' });
  });

  it('carries on once PostgreSQL is back: what was stored is there, new objects are stored, the ledger verifies', async () => {
    const r = await instancesInStudy();
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as Json[])[0]!['00201208']!.Value).toEqual([sops.length]);
    const f = join(work, 'late.dcm');
    const stored = await storescuTo(s.dicomPort, 'PGSCU', [f]);
    expect(stored.stderr).toMatch(/Store Response \(Success\)/);
    const after = await instancesInStudy();
    expect((JSON.parse(after.body) as Json[])[0]!['00201208']!.Value).toEqual([sops.length + 1]);
    expect((await s.app.audit.verify(systemPrincipal('test'))).ok).toBe(true);
  });
});

describe('PostgreSQL closing the connections of requests in flight', () => {
  let pg: PrivatePostgres;
  let s: TestServer;
  beforeAll(async () => {
    pg = await privatePostgres();
    s = await startTestServer('sqlite', { configure: (c) => ({ ...c, database: { url: pg.url } }) });
  }, 120_000);
  afterAll(async () => {
    const unexpected = await stopThenCleanUp(s, async () => pg?.remove());
    expect(unexpected).toEqual([]);
  });

  it('answers them 503 or in full, stays up, and serves the next ones', async () => {
    const study = uid(7);
    const query = () =>
      fetch(`${s.dicomweb}/studies?StudyInstanceUID=${study}&includefield=00201208`, {
        headers: { Authorization: `Bearer ${s.token}` },
      });
    const statuses: number[] = [];
    let stop = false;
    // Queries and stores on four connections of the pool at once, until the backends have been terminated.
    const load = async (worker: number) => {
      for (let i = 0; !stop; i++) {
        const res =
          i % 2
            ? await query()
            : await postStow(s, [
                makeInstance({
                  studyUid: study,
                  seriesUid: `${study}.${worker}`,
                  sopInstanceUid: uid(100 + worker),
                }),
              ]);
        await res.arrayBuffer();
        statuses.push(res.status);
      }
    };
    const loads = [0, 1, 2, 3].map(load);
    await new Promise((r) => setTimeout(r, 500));
    const terminated = await pg.psql(
      "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = 'postgres' and pid <> pg_backend_pid()",
    );
    expect(Number(terminated)).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(loads);
    expect(statuses.length).toBeGreaterThan(8);
    expect(statuses.filter((x) => x !== 200 && x !== 409 && x !== 503)).toEqual([]);
    // The server is up, and the connections the pool opens afterwards serve.
    const after = await query();
    expect(after.status).toBe(200);
    expect(
      (
        await postStow(s, [
          makeInstance({ studyUid: study, seriesUid: `${study}.9`, sopInstanceUid: uid(9) }),
        ])
      ).status,
    ).toBe(200);
    expect((await s.app.audit.verify(systemPrincipal('test'))).ok).toBe(true);
  });
});
