// The backup procedure of docs/storage.md ("Backups"), followed while a server stores: the copy is restored into a
// new place, its ledger verifies and every instance acknowledged before the backup began is retrieved from it.
// Until 6 Dec 2026 the docs said to copy the SQLite index file, blobs/ and the keyfile: on a running server that
// loses what is still in index.sqlite-wal, and without keys/audit-signing.pem the copy is refused outright.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { backends, postgresUrl } from './support/backends.js';
import { captureIO } from './support/cli-io.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';

const child = fileURLToPath(new URL('./support/cli-child.ts', import.meta.url));
const run = promisify(execFile);

interface Stored {
  study: string;
  series: string;
  sop: string;
  bytes: Buffer;
}

/** `custos serve` in a process of its own, as an operator runs it; resolves once it listens. */
async function serveProcess(
  dataDir: string,
  env: Record<string, string>,
): Promise<{ proc: ChildProcess; url: string; exited: Promise<number | null>; log: () => string }> {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      child,
      'serve',
      '--data',
      dataDir,
      '--http-host',
      '127.0.0.1',
      '--http-port',
      '0',
      '--dicom-port',
      'off',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let log = '';
  proc.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`serve exited ${code}: ${log}`)));
  });
  return { proc, url, exited, log: () => log };
}

/** Stores one new instance after another until told to stop or the server goes; the acknowledged ones. */
function storeUntil(url: string, token: string, stop: { now: boolean }) {
  const acknowledged: Stored[] = [];
  const study = uid(1);
  const done = (async () => {
    for (let i = 0; !stop.now; i++) {
      const s: Stored = {
        study,
        series: uid(2),
        sop: uid(3),
        bytes: Buffer.alloc(0),
      };
      s.bytes = makeInstance({
        studyUid: s.study,
        seriesUid: s.series,
        sopInstanceUid: s.sop,
        instanceNumber: i + 1,
        rows: 64,
        columns: 64,
      });
      const { body, contentType } = stowBody([{ bytes: s.bytes }]);
      let status: number;
      try {
        const res = await fetch(`${url}/dicom-web/studies`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': contentType },
          body,
        });
        status = res.status;
        await res.arrayBuffer();
      } catch {
        return; // the server stopped
      }
      if (status === 200) acknowledged.push(s);
    }
  })();
  return { acknowledged, done };
}

async function untilAcknowledged(list: Stored[], n: number) {
  for (let i = 0; i < 600 && list.length < n; i++) await new Promise((r) => setTimeout(r, 50));
  expect(list.length).toBeGreaterThanOrEqual(n);
}

/** `custos audit verify` and a WADO-RS retrieve of each instance, on the restored copy. */
async function checkRestored(dataDir: string, env: Record<string, string>, token: string, stored: Stored[]) {
  const verify = captureIO(tmpdir());
  verify.env = env;
  expect(await main(['audit', 'verify', '--data', dataDir], verify), verify.stderr).toBe(0);
  expect(verify.stdout).toMatch(/^ledger OK: /);
  const fixity = captureIO(tmpdir());
  fixity.env = env;
  expect(await main(['fixity', 'run', '--no-progress', '--data', dataDir], fixity), fixity.stderr).toBe(0);
  const server = await serveProcess(dataDir, env);
  try {
    for (const s of stored) {
      const res = await fetch(
        `${server.url}/dicom-web/studies/${s.study}/series/${s.series}/instances/${s.sop}`,
        {
          headers: {
            Authorization: `Bearer ${token}`,
            Accept: 'multipart/related; type="application/dicom"',
          },
        },
      );
      expect(res.status, s.sop).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).includes(s.bytes), s.sop).toBe(true);
    }
  } finally {
    server.proc.kill('SIGTERM');
    await server.exited;
  }
}

async function createToken(dataDir: string, env: Record<string, string>): Promise<string> {
  const o = captureIO(tmpdir());
  o.env = env;
  expect(await main(['token', 'create', '--user', 'admin', '--data', dataDir], o), o.stderr).toBe(0);
  return o.stdout.trim();
}

describe('backup and restore as docs/storage.md says', () => {
  let cwd: string;
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'custos-backup-'));
  });
  afterAll(() => rm(cwd, { recursive: true, force: true }));

  it('SQLite: stop the server while it stores, copy the data directory, restore it elsewhere: the ledger verifies and every acknowledged instance is there', async () => {
    const data = join(cwd, 'sqlite-data');
    const server = await serveProcess(data, {});
    const token = await createToken(data, {});
    const stop = { now: false };
    const storing = storeUntil(server.url, token, stop);
    await untilAcknowledged(storing.acknowledged, 20);
    // The procedure: stop the server (SIGTERM, as systemctl stop does), copy the whole data directory.
    server.proc.kill('SIGTERM');
    expect(await server.exited, server.log()).toBe(0);
    stop.now = true;
    await storing.done;
    const backup = join(cwd, 'sqlite-backup');
    await cp(data, backup, { recursive: true, preserveTimestamps: true });
    expect((await readdir(backup)).sort()).toEqual(
      expect.arrayContaining(['archive-id', 'audit', 'blobs', 'index.sqlite', 'keys']),
    );
    expect((await readdir(join(backup, 'keys'))).sort()).toEqual(
      expect.arrayContaining(['audit-signing.pem', 'kek.json']),
    );

    // What the docs said until 6 Dec 2026 (index, blobs, keyfile) is refused: the signing key is missing.
    const partial = join(cwd, 'sqlite-partial');
    await cp(join(backup, 'index.sqlite'), join(partial, 'index.sqlite'));
    await cp(join(backup, 'blobs'), join(partial, 'blobs'), { recursive: true });
    await cp(join(backup, 'keys', 'kek.json'), join(partial, 'keys', 'kek.json'), {
      preserveTimestamps: true,
    });
    const refused = captureIO(tmpdir());
    expect(await main(['audit', 'verify', '--data', partial], refused)).not.toBe(0);
    expect(refused.stderr).toMatch(/audit signing key .* is missing/);

    const restored = join(cwd, 'sqlite-restored');
    await cp(backup, restored, { recursive: true, preserveTimestamps: true });
    await checkRestored(restored, {}, token, storing.acknowledged);
  }, 120_000);

  // On PostgreSQL when the suite has one (CUSTOS_TEST_DATABASE_URL), as every backend-dependent test here.
  if (backends().includes('postgres'))
    it('PostgreSQL: files first, then pg_dump, then blobs/, while the server stores; restored into a new database, the ledger verifies and every instance acknowledged before the backup is there', async () => {
      const schema = `backup_${process.pid}_${Date.now() % 100000}`;
      const restoredDb = `custos_restored_${process.pid}_${Date.now() % 100000}`;
      const env = { CUSTOS_DATABASE_URL: postgresUrl!, CUSTOS_DATABASE_SCHEMA: schema };
      const data = join(cwd, 'pg-data');
      const server = await serveProcess(data, env);
      const restoredUrl = new URL(postgresUrl!);
      restoredUrl.pathname = `/${restoredDb}`;
      try {
        const token = await createToken(data, env);
        const stop = { now: false };
        const storing = storeUntil(server.url, token, stop);
        await untilAcknowledged(storing.acknowledged, 10);
        // The procedure, online: 1. the files beside the index (before the dump, so that no checkpoint in the copy
        // signs a ledger record the dump lacks); 2. pg_dump; 3. blobs/ (after the dump, so that every object the
        // dump indexes is in the copy).
        const beforeBackup = storing.acknowledged.slice();
        const backup = join(cwd, 'pg-backup');
        for (const f of ['archive-id', 'keys', 'audit'])
          await cp(join(data, f), join(backup, f), { recursive: true, preserveTimestamps: true });
        await run('pg_dump', [
          '--format=custom',
          '--schema',
          schema,
          '--file',
          join(backup, 'index.pgdump'),
          postgresUrl!,
        ]);
        // Objects acknowledged after the dump ended are in the blobs' copy but not in its index.
        const dumped = storing.acknowledged.length;
        await untilAcknowledged(storing.acknowledged, dumped + 2);
        await cp(join(data, 'blobs'), join(backup, 'blobs'), { recursive: true, preserveTimestamps: true });
        await untilAcknowledged(storing.acknowledged, beforeBackup.length + 5);
        stop.now = true;
        await storing.done;

        // Restore: a new database, the dump into it, the files into a new data directory.
        await run('psql', [postgresUrl!, '-qc', `create database ${restoredDb}`]);
        await run('pg_restore', ['--no-owner', '--dbname', restoredUrl.href, join(backup, 'index.pgdump')]);
        const restored = join(cwd, 'pg-restored');
        await cp(backup, restored, { recursive: true, preserveTimestamps: true });
        await rm(join(restored, 'index.pgdump'));
        const restoredEnv = { CUSTOS_DATABASE_URL: restoredUrl.href, CUSTOS_DATABASE_SCHEMA: schema };
        const orphans = captureIO(tmpdir());
        orphans.env = restoredEnv;
        expect(await main(['fixity', 'orphans', '--min-age-hours', '0', '--data', restored], orphans)).toBe(
          1,
        );
        expect(orphans.stdout, orphans.stderr).toMatch(/orphan/);
        await checkRestored(restored, restoredEnv, token, beforeBackup);
      } finally {
        server.proc.kill('SIGTERM');
        await server.exited;
        await run('psql', [postgresUrl!, '-qc', `drop schema if exists ${schema} cascade`]);
        await run('psql', [postgresUrl!, '-qc', `drop database if exists ${restoredDb}`]);
      }
    }, 120_000);
});
