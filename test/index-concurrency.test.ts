// Two processes storing into one study at once (`serve --workers`, an import beside the server, C-STORE in the
// primary and STOW-RS in a worker): every instance is stored. Until 6 Dec 2026 on PostgreSQL one process's batch
// locked a series row and then the study's while the other's locked them the other way round, and the deadlock's
// victim failed (0x0110, "deadlock detected"). Here `custos import` in a process of its own stores into the study
// while the test server does.
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseSchema } from '../src/ports/database.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { TransactionBatcher } from '../src/services/transaction-batcher.js';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { shareIndexWithCli, startTestServer, type TestServer } from './support/test-server.js';

const child = fileURLToPath(new URL('./support/cli-child.ts', import.meta.url));

async function* once(bytes: Buffer) {
  yield bytes;
}

describe.each(backends())('stores into one study from two processes at once on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend);
    await shareIndexWithCli(s);
  });
  afterAll(() => s?.stop());

  it('stores every instance, with the study and series counts right', async () => {
    const study = uid(1);
    const series = Array.from({ length: 4 }, () => uid(2));
    const instance = (n: number) =>
      makeInstance({
        studyUid: study,
        seriesUid: series[n % series.length]!,
        seriesNumber: (n % series.length) + 1,
        sopInstanceUid: uid(3),
        instanceNumber: n + 1,
        patientId: 'CONC-1',
      });
    const IMPORTED = 200;
    const tree = join(s.dataDir, '..', `${s.dataDir.split('/').at(-1)}-src`);
    await mkdir(tree);
    for (let n = 0; n < IMPORTED; n++)
      await writeFile(join(tree, `${String(n).padStart(4, '0')}.dcm`), instance(n));

    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', child, 'import', tree, '--data', s.dataDir, '--no-progress'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    let running = true;
    void exited.then(() => (running = false));

    // Meanwhile this process stores into every series of the study, twelve at a time, until the import is done.
    const principal = systemPrincipal('test');
    const failures: string[] = [];
    let stored = 0;
    for (let n = IMPORTED; running; n += 12) {
      const round = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          s.app.ingest.ingest(principal, once(instance(n + i)), { channel: 'import' }),
        ),
      );
      for (const r of round)
        if (r.status === 'rejected') failures.push(String(r.reason));
        else stored++;
    }
    expect(await exited, stderr).toBe(0);
    expect(failures).toEqual([]);
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toMatchObject({ stored: IMPORTED, failed: 0 });
    expect(stored).toBeGreaterThan(0);

    const res = await fetch(
      `${s.dicomweb}/studies?StudyInstanceUID=${study}&includefield=NumberOfStudyRelatedInstances,NumberOfStudyRelatedSeries`,
      { headers: { Authorization: `Bearer ${s.token}` } },
    );
    const [row] = (await res.json()) as Record<string, { Value: number[] }>[];
    expect(row?.['00201208']?.Value).toEqual([IMPORTED + stored]);
    expect(row?.['00201206']?.Value).toEqual([series.length]);
  }, 120_000);
});

// The batcher's own remedy for a deadlock it did not avoid: the victim's batch is rolled back and run again.
describe.each(backends().filter((b) => b === 'postgres'))(
  'a deadlock between two batches on %s',
  (backend) => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startTestServer(backend);
      const db = s.app.index.db;
      await sql`create table deadlock_probe (id integer primary key, n integer not null)`.execute(db);
      await sql`insert into deadlock_probe values (1, 0), (2, 0)`.execute(db);
    });
    afterAll(() => s?.stop());

    it('runs the victim again, so both works take effect once', async () => {
      const db = s.app.index.db;
      const bump = (trx: Kysely<DatabaseSchema>, id: number) =>
        sql`update deadlock_probe set n = n + 1 where id = ${id}`.execute(trx);
      const pause = () => new Promise((r) => setTimeout(r, 200));
      // Each locks one row, waits until the other has locked the other row, then wants it.
      const one = new TransactionBatcher(db).run(async (trx) => {
        await bump(trx, 1);
        await pause();
        await bump(trx, 2);
      });
      const two = new TransactionBatcher(db).run(async (trx) => {
        await bump(trx, 2);
        await pause();
        await bump(trx, 1);
      });
      await expect(Promise.all([one, two])).resolves.toBeDefined();
      const rows = await sql<{ id: number; n: number }>`select id, n from deadlock_probe order by id`.execute(
        db,
      );
      expect(rows.rows).toEqual([
        { id: 1, n: 2 },
        { id: 2, n: 2 },
      ]);
    });
  },
);
