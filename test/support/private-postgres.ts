// A PostgreSQL cluster of the test's own (Debian's server binaries, run as the postgres account), which the test
// may stop and start: the shared one on 127.0.0.1:5432 serves every other test and must stay up.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './dcmtk.js';

const run = promisify(execFile);

/** Debian installs each major version's server under /usr/lib/postgresql/<major>/bin; the newest is used. */
function serverBin(): string {
  const majors = readdirSync('/usr/lib/postgresql')
    .map(Number)
    .filter((n) => Number.isInteger(n))
    .sort((a, b) => b - a);
  if (!majors.length)
    throw new Error('no PostgreSQL server under /usr/lib/postgresql (Debian package postgresql)');
  return `/usr/lib/postgresql/${majors[0]}/bin`;
}

export interface PrivatePostgres {
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops it if running and removes its files. */
  remove(): Promise<void>;
  /** One SQL statement run by psql as the superuser; what it prints, unaligned, without headers. */
  psql(statement: string): Promise<string>;
}

export async function privatePostgres(): Promise<PrivatePostgres> {
  const bin = serverBin();
  const dir = await mkdtemp(join(tmpdir(), 'custos-pg-'));
  const { uid, gid } = await run('id', ['-u', 'postgres']).then(async (u) => ({
    uid: Number(u.stdout),
    gid: Number((await run('id', ['-g', 'postgres'])).stdout),
  }));
  await chown(dir, uid, gid);
  const asPostgres = (tool: string, args: string[]) =>
    run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]);
  await asPostgres('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const pgCtl = (...args: string[]) => asPostgres('pg_ctl', ['-D', join(dir, 'data'), '-w', ...args]);
  let running = false;
  const pg: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: async () => {
      await pgCtl('-o', options, '-l', join(dir, 'log'), 'start');
      running = true;
    },
    stop: async () => {
      await pgCtl('-m', 'fast', 'stop');
      running = false;
    },
    remove: async () => {
      if (running) await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
    psql: async (statement) =>
      (
        await run(join(bin, 'psql'), [
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-U',
          'postgres',
          '-tAc',
          statement,
        ])
      ).stdout.trim(),
  };
  await pg.start();
  return pg;
}
