import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3-multiple-ciphers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteHandle } from './sqlite-handle.js';

/** Files this process holds open that SQLite made for temporary data (named etilqs_…, unlinked at once). */
async function sqliteTempFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.includes('etilqs_')) out.push(target);
  }
  return out;
}

/**
 * What a group commit does (transaction-batcher.ts): inside one transaction, a savepoint per writer, whose writes
 * change pages that existed before it. Returns the temporary files open while the savepoint still is.
 */
async function rewriteInSavepoint(raw: Database.Database): Promise<string[]> {
  raw.exec('create table if not exists t (id integer primary key, v text not null)');
  const insert = raw.prepare('insert into t (v) values (?)');
  raw.transaction(() => {
    for (let i = 0; i < 2000; i++) insert.run('x'.repeat(500));
  })();
  raw.exec('begin immediate');
  try {
    raw.exec('savepoint batched_work');
    // ~1 MB of existing pages changed: far past the 64 KiB SQLite keeps in memory before it spills to a file.
    raw.prepare("update t set v = 'y' || substr(v, 2)").run();
    const open = await sqliteTempFiles();
    raw.exec('release savepoint batched_work');
    raw.exec('commit');
    return open;
  } catch (err) {
    raw.exec('rollback');
    throw err;
  }
}

describe('openSqliteHandle', () => {
  let dir: string;
  const handles: Database.Database[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-sqlite-handle-'));
  });
  afterEach(async () => {
    for (const h of handles.splice(0)) h.close();
    await rm(dir, { recursive: true, force: true });
  });

  function open(name: string): Database.Database {
    const h = openSqliteHandle(join(dir, name), randomBytes(32));
    handles.push(h);
    return h;
  }

  it('keeps a savepoint’s statement journal in memory: no temporary file per group commit', async () => {
    const raw = open('index.sqlite');
    expect(raw.pragma('temp_store', { simple: true })).toBe(2); // MEMORY
    expect(await rewriteInSavepoint(raw)).toEqual([]);
    expect(raw.prepare('select count(*) as n from t where v like ?').get('y%')).toEqual({ n: 2000 });
  });

  it('(the check above sees the temporary file SQLite would otherwise write)', async () => {
    const raw = open('control.sqlite');
    raw.pragma('temp_store = FILE');
    const files = await rewriteInSavepoint(raw);
    expect(files.length).toBeGreaterThan(0);
  });
});
