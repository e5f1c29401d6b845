import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteHandle } from './sqlite-handle.js';
import { SqliteCheckpointer } from './sqlite-checkpointer.js';

/** How many descriptors this process (its threads share them) holds open on `path`. */
async function openOn(path: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    if ((await readlink(`/proc/self/fd/${fd}`).catch(() => '')) === path) n++;
  }
  return n;
}

const until = async (what: () => Promise<boolean>, ms = 20_000): Promise<boolean> => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20)))
    if (await what()) return true;
  return false;
};

describe('the SQLite index checkpoint thread', () => {
  let dir: string;
  let path: string;
  const key = randomBytes(32);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-checkpointer-'));
    path = join(dir, 'index.sqlite');
    const raw = openSqliteHandle(path, key);
    raw.exec('create table t (id integer primary key)');
    raw.close();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts no thread for an index closed before its delay (a short CLI command)', async () => {
    const checkpointer = SqliteCheckpointer.start({ path, key }, 60_000);
    // Long enough for a thread started at once to have opened the index (until 8 Dec 2026 it did).
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await openOn(path)).toBe(0);
    expect(checkpointer.running).toBe(false);
    await checkpointer.close();
    expect(checkpointer.running).toBe(false);
    expect(await openOn(path)).toBe(0);
  });

  it('starts its thread after the delay, which opens the index, and close() stops it', async () => {
    const checkpointer = SqliteCheckpointer.start({ path, key }, 0);
    expect(await until(async () => (await openOn(path)) > 0)).toBe(true);
    expect(checkpointer.running).toBe(true);
    await checkpointer.close();
    expect(checkpointer.running).toBe(false);
    expect(await openOn(path)).toBe(0);
  });
});
