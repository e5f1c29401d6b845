// Two processes storing into one study at once (`serve --workers`, an import beside the server, C-STORE in the
// primary and STOW-RS in a worker): every instance is stored. Until 6 Dec 2026 on PostgreSQL one process's batch
// locked a series row and then the study's while the other's locked them the other way round, and the deadlock's
// victim failed (0x0110, "deadlock detected"). Here `custos import` in a process of its own stores into the study
// while the test server does.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { DatabaseSchema } from '../src/ports/database.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { TransactionBatcher } from '../src/services/transaction-batcher.js';
import { backends, postgresUrl } from './support/backends.js';
import { makeInstance, uid, type FixtureSpec } from './support/fixtures.js';
import { startWorkersServe, type WorkersServe } from './support/serve-workers.js';
import { postStow, shareIndexWithCli, startTestServer, type TestServer } from './support/test-server.js';

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
    // A directory of its own, removed afterwards: until 7 Dec 2026 the tree was left in /tmp after every run.
    const tree = await mkdtemp(join(tmpdir(), 'custos-import-src-'));
    onTestFinished(() => rm(tree, { recursive: true, force: true }));
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

// Two Custos processes on one PostgreSQL database (`serve --workers`, nodes behind a load balancer, an import beside
// the server) receive one SOP Instance UID with different contents at the same moment, a STOW-RS to each. One
// object is kept (archived or quarantined, as validation decides) and the other fails as a conflict (0x0111, 409).
// Until 7 Dec 2026 the ingest turns (instance-turns.ts) were the only thing making such objects take turns, and they
// hold within one process: both objects could be quarantined as two entries, or one archived and the other
// quarantined beside it. Here the test holds the audit ledger's lock (every ingest transaction takes it) until both
// processes wait for it, so that both have made their checks before either commits, then lets them go.
/** src/adapters/sql/sql-ledger.ts: LEDGER_LOCK_KEY. */
const LEDGER_LOCK_KEY = 0x637573746f73;
const MODALITY = 0x00080060;
const DUPLICATE_SOP_INSTANCE = 0x0111;

type Item = Record<string, { vr: string; Value?: unknown[] }>;

/** One answer kept the object, the other is a conflict naming the UID. */
function oneKeptOneConflict(r: {
  sopInstanceUid: string;
  answers: { status: number; json: Record<string, { Value: Item[] }> }[];
}) {
  const statuses = r.answers.map((a) => a.status).sort();
  const refused = r.answers.find((a) => a.status === 409);
  expect(
    statuses.filter((st) => st === 409),
    JSON.stringify(r.answers),
  ).toHaveLength(1);
  const item = refused!.json['00081198']!.Value[0]!;
  expect(item['00081155']!.Value).toEqual([r.sopInstanceUid]);
  expect(item['00081197']!.Value).toEqual([DUPLICATE_SOP_INSTANCE]);
}

/** A STOW-RS of one object to `base` (the test server or another process on its index), with its answer read. */
const stowTo = (s: TestServer, base: string, bytes: Buffer) =>
  postStow(s, [bytes], { Accept: 'application/dicom+json' }, base).then(async (res) => ({
    status: res.status,
    json: (await res.json()) as Record<string, { Value: Item[] }>,
  }));

/** The archived instance and the quarantine entries still held under a UID. */
async function keptUnder(s: TestServer, sopInstanceUid: string) {
  const db = s.app.index.db;
  const archived = await db
    .selectFrom('instances')
    .select('blob_id')
    .where('sop_instance_uid', '=', sopInstanceUid)
    .execute();
  const held = await db
    .selectFrom('quarantine')
    .select('id')
    .where('sop_instance_uid', '=', sopInstanceUid)
    .where('status', '=', 'quarantined')
    .execute();
  return { archived, held };
}

/** Stops a server process started by startWorkersServe, if it still runs. */
async function stopServe(other: WorkersServe | undefined) {
  if (!other || other.proc.exitCode !== null) return;
  const exited = new Promise((r) => other.proc.once('exit', r));
  other.proc.kill('SIGTERM');
  await exited;
}

// PostgreSQL: the test holds the advisory lock the turns are taken at, and sees who waits for it (pg_locks), so
// each race is decided in the order the test chose. SQLite's write lock shows no waiters: its races are below.
describe.each(backends().filter((b) => b === 'postgres'))(
  'one SOP Instance UID stored through two processes at once on %s',
  (backend) => {
    // A database of the test's own: advisory locks are per database, and other tests' servers take the ledger's
    // lock in the shared one.
    const database = `custos_two_processes_${randomBytes(4).toString('hex')}`;
    const url = new URL(postgresUrl!);
    url.pathname = `/${database}`;
    let admin: pg.Client;
    let s: TestServer;
    let other: WorkersServe | undefined;
    let otherUrl: string;

    beforeAll(async () => {
      admin = new pg.Client({ connectionString: postgresUrl });
      await admin.connect();
      await admin.query(`create database ${database}`);
      const db = { url: url.href, schema: 'custos' };
      s = await startTestServer(backend, { configure: (c) => ({ ...c, database: db }) });
      await writeFile(join(s.dataDir, 'custos.json'), JSON.stringify({ database: db }));
      // One process besides the test's, as before: `serve --workers 1` serves in the process it starts.
      other = await startWorkersServe(s.dataDir, ['--workers', '1', '--dicom-port', 'off']);
      if (!other.url) throw new Error(`the second server did not start: ${other.err()}`);
      otherUrl = other.url;
    }, 60_000);

    afterAll(async () => {
      await stopServe(other);
      expect(s.unexpected).toEqual([]);
      await s?.stop();
      await admin.query(`drop database if exists ${database} with (force)`);
      await admin.end();
    });

    const stow = (base: string, bytes: Buffer) => stowTo(s, base, bytes);

    /**
     * Starts each work in turn while this test holds the ledger's lock, the next once the one before waits for it,
     * and lets go once all wait: they then take the lock in that order.
     */
    async function whileLedgerHeld<T>(works: (() => Promise<T>)[]): Promise<T[]> {
      const holder = new pg.Client({ connectionString: url.href });
      await holder.connect();
      try {
        await holder.query('begin');
        await holder.query('select pg_advisory_xact_lock($1)', [LEDGER_LOCK_KEY]);
        const started: Promise<T>[] = [];
        for (const work of works) {
          const done = work();
          done.catch(() => undefined);
          started.push(done);
          for (;;) {
            const { rows } = await holder.query<{ n: string }>(
              `select count(*) as n from pg_locks
                where locktype = 'advisory' and not granted
                  and database = (select oid from pg_database where datname = current_database())`,
            );
            if (Number(rows[0]!.n) >= started.length) break;
            await new Promise((r) => setTimeout(r, 20));
          }
        }
        await holder.query('commit');
        return await Promise.all(started);
      } finally {
        await holder.end();
      }
    }

    async function race(first: Partial<FixtureSpec>, second: Partial<FixtureSpec>) {
      const ids = { studyUid: uid(1), seriesUid: uid(2), patientId: 'TWO-PROC' };
      // The study's data key exists before the race, as for every object but a study's first.
      const earlier = await stow(s.url, makeInstance({ ...ids, sopInstanceUid: uid(3) }));
      expect(earlier.status).toBe(200);
      const sopInstanceUid = uid(3);
      const answers = await whileLedgerHeld([
        () => stow(s.url, makeInstance({ ...ids, sopInstanceUid, ...first })),
        () => stow(otherUrl, makeInstance({ ...ids, sopInstanceUid, studyDescription: 'OTHER', ...second })),
      ]);
      return { sopInstanceUid, answers, ...(await keptUnder(s, sopInstanceUid)) };
    }

    it('quarantines one of two defective objects and refuses the other, not two entries', async () => {
      const r = await race({ omit: [MODALITY] }, { omit: [MODALITY] });
      expect(r.held).toHaveLength(1);
      expect(r.archived).toHaveLength(0);
      oneKeptOneConflict(r);
    }, 60_000);

    it('keeps one of a valid and a defective object, never one archived and the other quarantined', async () => {
      const r = await race({}, { omit: [MODALITY] });
      expect(r.archived.length + r.held.length).toBe(1);
      oneKeptOneConflict(r);
    }, 60_000);

    it('keeps one of a defective and a valid object, whichever process commits first', async () => {
      const r = await race({ omit: [MODALITY] }, {});
      expect(r.archived.length + r.held.length).toBe(1);
      oneKeptOneConflict(r);
    }, 60_000);

    let steward: string | undefined;
    const stewardToken = async () => {
      if (!steward) {
        const operator = systemPrincipal('test');
        await s.app.accounts.add(operator, { username: 'steward', role: 'data-steward' });
        steward = (await s.app.auth.createToken(operator, 'steward')).token;
      }
      return steward;
    };
    const post = async (base: string, path: string, body: unknown) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${await stewardToken()}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (res) => ({ status: res.status, body: await res.text() }));

    // Two stewards, each on a node of their own, one releasing the entry and the other rejecting it. Until 7 Dec
    // 2026 the reject read and locked the entry before it waited for the ledger's lock, which the release held
    // while it waited for the entry: PostgreSQL ended the reject as a deadlock's victim, a 500 for its steward.
    it('lets a release and a reject of one quarantine entry in two processes take turns', async () => {
      const ids = { studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: uid(3), patientId: 'TWO-PROC' };
      expect((await stow(s.url, makeInstance({ ...ids, omit: [MODALITY] }))).status).toBe(202);
      const db = s.app.index.db;
      const entry = await db
        .selectFrom('quarantine')
        .select('id')
        .where('sop_instance_uid', '=', ids.sopInstanceUid)
        .executeTakeFirstOrThrow();
      expect((await post(s.url, `/api/quarantine/${entry.id}/corrections`, { Modality: 'CT' })).status).toBe(
        200,
      );
      const [released, rejected] = await whileLedgerHeld([
        () => post(s.url, `/api/quarantine/${entry.id}/release`, {}),
        () => post(otherUrl, `/api/quarantine/${entry.id}/reject`, { reason: 'wrong patient' }),
      ]);
      expect(released!.status, released!.body).toBe(200);
      expect(rejected!.status, rejected!.body).toBe(409);
      expect(JSON.parse(rejected!.body)).toMatchObject({ code: 'quarantine.not-pending' });
      const after = await db
        .selectFrom('quarantine')
        .select(['status', 'reason'])
        .where('id', '=', entry.id)
        .executeTakeFirstOrThrow();
      expect(after).toEqual({ status: 'released', reason: null });
      const archived = await db
        .selectFrom('instances')
        .select('sop_instance_uid')
        .where('sop_instance_uid', '=', ids.sopInstanceUid)
        .execute();
      expect(archived).toHaveLength(1);
    }, 60_000);
  },
);

// The same on SQLite, where several processes share one data directory (`serve --workers 2`, an import beside the
// server): of two objects under one SOP Instance UID arriving at two processes at once one is kept, and the same
// object twice is a duplicate. Until 7 Dec 2026 an object's archive transaction on SQLite looked only for an archived
// instance: a valid object whose process looked at the quarantine just before another process quarantined a
// defective one under its UID was archived beside it (with 20 pairs each way of STOW-RS sent to `serve --workers 2`
// at once, up to 7 of the 40). Here each pair goes to two `serve` processes of their own while the test holds
// SQLite's write lock, until both objects are in the blob store and their transactions wait for it; once let go,
// they take it in whichever order SQLite's busy waits fall, so both orders are met over the pairs (the old code kept
// both objects of 7 to 12 of the 24 valid and defective pairs, in four runs).
describe.each(backends().filter((b) => b === 'sqlite'))(
  'one SOP Instance UID stored through two processes at once on %s',
  (backend) => {
    let s: TestServer;
    const others: WorkersServe[] = [];
    const PAIRS = 24;

    beforeAll(async () => {
      s = await startTestServer(backend);
      for (let i = 0; i < 2; i++) {
        const other = await startWorkersServe(s.dataDir, ['--workers', '1', '--dicom-port', 'off']);
        others.push(other);
        if (!other.url) throw new Error(`a second server did not start: ${other.err()}`);
      }
    }, 60_000);

    afterAll(async () => {
      for (const other of others) await stopServe(other);
      expect(s.unexpected).toEqual([]);
      await s?.stop();
    });

    const blobs = async () =>
      (await readdir(join(s.dataDir, 'blobs', 'objects'), { recursive: true, withFileTypes: true })).filter(
        (d) => d.isFile(),
      ).length;

    /**
     * Runs `work` while the test server's connection holds SQLite's write lock (its transaction begins IMMEDIATE),
     * letting go once `objects` more blobs are stored: by then each writer has looked at the index and waits for the
     * lock, or is about to. The writers are other processes: this one's connection would wait on its own thread.
     */
    async function whileWriteLockHeld<T>(objects: number, work: () => Promise<T>): Promise<T> {
      const before = await blobs();
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let held!: () => void;
      const holding = new Promise<void>((r) => (held = r));
      const transaction = s.app.index.db.transaction().execute(async () => {
        held();
        await released;
      });
      await holding;
      let done: Promise<T>;
      try {
        done = work();
        done.catch(() => undefined);
        for (let i = 0; i < 200 && (await blobs()) < before + objects; i++)
          await new Promise((r) => setTimeout(r, 20));
      } finally {
        release();
        await transaction;
      }
      return done;
    }

    const stow = (base: string, bytes: Buffer) => stowTo(s, base, bytes);

    const ids = { studyUid: uid(1), seriesUid: uid(2), patientId: 'TWO-PROC' };
    const object = (sopInstanceUid: string, spec: Partial<FixtureSpec>) =>
      makeInstance({ ...ids, sopInstanceUid, ...spec });

    type End = Awaited<ReturnType<typeof storePairs>>[number];
    const keptBoth = (e: End) => e.archived + e.held !== 1;
    const briefly = (e: End) => ({
      sopInstanceUid: e.sopInstanceUid,
      archived: e.archived,
      held: e.held,
      statuses: e.answers.map((a) => a.status),
    });

    /** Stores each pair through the two processes at once, a pair at a time; how each ended and was answered. */
    async function storePairs(pairs: { sopInstanceUid: string; first: Buffer; second: Buffer }[]) {
      // The study's data key exists before the races, as for every object but a study's first.
      expect((await stow(others[0]!.url!, object(uid(3), {}))).status).toBe(200);
      const ends = [];
      for (const { sopInstanceUid, first, second } of pairs) {
        const answers = await whileWriteLockHeld(2, () =>
          Promise.all([stow(others[0]!.url!, first), stow(others[1]!.url!, second)]),
        );
        const { archived, held } = await keptUnder(s, sopInstanceUid);
        ends.push({ sopInstanceUid, answers, archived: archived.length, held: held.length });
      }
      return ends;
    }

    it('keeps one of a valid and a defective object, never one archived and the other quarantined', async () => {
      const ends = await storePairs(
        Array.from({ length: PAIRS }, (_, i) => {
          const sopInstanceUid = uid(3);
          const valid = object(sopInstanceUid, {});
          const defective = object(sopInstanceUid, { studyDescription: 'OTHER', omit: [MODALITY] });
          return {
            sopInstanceUid,
            ...(i % 2 ? { first: valid, second: defective } : { first: defective, second: valid }),
          };
        }),
      );
      expect(ends.filter(keptBoth).map(briefly), 'UIDs with both objects kept').toEqual([]);
      for (const e of ends) oneKeptOneConflict(e);
    }, 120_000);

    it('keeps one of two different objects both valid or both defective', async () => {
      const ends = await storePairs(
        Array.from({ length: 4 }, (_, i) => {
          const sopInstanceUid = uid(3);
          const spec = i % 2 ? {} : { omit: [MODALITY] };
          return {
            sopInstanceUid,
            first: object(sopInstanceUid, spec),
            second: object(sopInstanceUid, { ...spec, studyDescription: 'OTHER' }),
          };
        }),
      );
      expect(ends.filter(keptBoth).map(briefly), 'UIDs with both objects kept').toEqual([]);
      for (const e of ends) oneKeptOneConflict(e);
    }, 120_000);

    it('keeps one copy of the same object sent to both processes at once, answering both alike', async () => {
      const ends = await storePairs(
        Array.from({ length: 4 }, (_, i) => {
          const sopInstanceUid = uid(3);
          const bytes = object(sopInstanceUid, i % 2 ? {} : { omit: [MODALITY] });
          return { sopInstanceUid, first: bytes, second: bytes };
        }),
      );
      expect(ends.map((e) => [e.archived, e.held, e.answers.map((a) => a.status)])).toEqual(
        Array.from({ length: 4 }, (_, i) => (i % 2 ? [1, 0, [200, 200]] : [0, 1, [202, 202]])),
      );
    }, 120_000);
  },
);
