import { mkdtemp, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { Kysely, sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImmediateSqliteDialect } from './open-index-db.js';
import { GroupCommitSqlite } from './sqlite-group-commit.js';

interface Schema {
  t: { id: number; v: string };
}

/** A connection whose WAL syncs the test releases by hand, to see who waits for them. */
class HeldSyncs extends GroupCommitSqlite {
  holding = false;
  held: (() => void)[] = [];
  override durable(): Promise<void> {
    if (!this.holding) return super.durable();
    return new Promise((resolve) => this.held.push(resolve));
  }
}

/** A connection on a disk whose fdatasync fails once `failing` is set. */
class FailingSyncs extends GroupCommitSqlite {
  failing = false;
  protected override datasync(wal: FileHandle): Promise<void> {
    if (!this.failing) return super.datasync(wal);
    return Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
  }
}

describe('GroupCommitSqlite (the server connection to the SQLite index)', () => {
  let dir: string;
  let path: string;
  const open: Kysely<Schema>[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-group-commit-'));
    path = join(dir, 'index.sqlite');
  });
  afterEach(async () => {
    for (const db of open.splice(0)) await db.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  async function connect(Cls: typeof GroupCommitSqlite = GroupCommitSqlite) {
    const raw = new Database(path);
    raw.pragma('journal_mode = WAL');
    const conn = new Cls(raw, path);
    const db = new Kysely<Schema>({ dialect: new ImmediateSqliteDialect(conn) });
    open.push(db);
    await sql`create table t (id integer primary key, v text not null)`.execute(db);
    return { conn, db };
  }

  it('runs commits with synchronous = NORMAL and syncs the WAL itself', async () => {
    const { conn, db } = await connect();
    expect(conn.raw.pragma('synchronous', { simple: true })).toBe(1);
    const before = conn.syncs;
    await db.insertInto('t').values({ id: 1, v: 'a' }).execute();
    expect(conn.syncs).toBe(before + 1);
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('t').values({ id: 2, v: 'b' }).execute();
      await trx.updateTable('t').set({ v: 'c' }).where('id', '=', 1).execute();
    });
    // One sync for the whole transaction, none for reads.
    expect(conn.syncs).toBe(before + 2);
    expect(await db.selectFrom('t').selectAll().orderBy('id').execute()).toEqual([
      { id: 1, v: 'c' },
      { id: 2, v: 'b' },
    ]);
    expect(conn.syncs).toBe(before + 2);
  });

  it('answers a write only once its commit is durable, and lets other work run meanwhile', async () => {
    const { conn, db } = await connect(HeldSyncs as typeof GroupCommitSqlite);
    const held = conn as HeldSyncs;
    held.holding = true;
    let done = false;
    const write = db
      .transaction()
      .execute((trx) => trx.insertInto('t').values({ id: 1, v: 'a' }).execute())
      .then(() => (done = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(held.held).toHaveLength(1);
    expect(done).toBe(false);
    // The connection was handed on: a read runs (and sees the commit) while the sync is outstanding.
    expect(await db.selectFrom('t').select('v').execute()).toEqual([{ v: 'a' }]);
    expect(done).toBe(false);
    held.held[0]!();
    await write;
    expect(done).toBe(true);
  });

  it('lets commits made while a sync runs share the next one', async () => {
    const { conn, db } = await connect();
    const before = conn.syncs;
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        db.transaction().execute((trx) =>
          trx
            .insertInto('t')
            .values({ id: i, v: `v${i}` })
            .execute(),
        ),
      ),
    );
    const used = conn.syncs - before;
    expect(used).toBeGreaterThanOrEqual(1);
    expect(used).toBeLessThan(10);
    expect((await db.selectFrom('t').select('id').execute()).length).toBe(40);
  });

  it('does not sync after a read, and fails a write whose sync fails', async () => {
    const { conn, db } = await connect(FailingSyncs);
    const before = conn.syncs;
    await db.selectFrom('t').selectAll().execute();
    expect(conn.syncs).toBe(before);
    // The disk fails the WAL's fdatasync: the write's caller hears of it, as the archive's error for a failing
    // volume with the disk's own error as its cause.
    (conn as FailingSyncs).failing = true;
    const err = await db
      .insertInto('t')
      .values({ id: 9, v: 'x' })
      .execute()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'storage.unwritable', cause: { code: 'EIO' } });
  });

  it('reuses prepared statements, and gives a statement still iterating a fresh one', async () => {
    const { conn, db } = await connect();
    await db
      .insertInto('t')
      .values([1, 2, 3].map((id) => ({ id, v: `v${id}` })))
      .execute();
    const text = 'select id from t order by id';
    const first = conn.prepare(text);
    expect(conn.prepare(text)).toBe(first);
    const it = (first as unknown as { iterate: () => IterableIterator<unknown> }).iterate();
    it.next();
    const during = conn.prepare(text);
    expect(during).not.toBe(first);
    expect(during.all([])).toHaveLength(3);
    it.return?.();
    expect(conn.prepare(text)).toBe(first);
  });
});
