import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openIndexDb } from './open-index-db.js';
import { sqliteLimitLiterals } from './sqlite-limit-literals.js';

interface Schema {
  t: { id: number; v: string };
}

describe('sqliteLimitLiterals (LIMIT and OFFSET written into the SQL text)', () => {
  const open: Kysely<Schema>[] = [];
  afterEach(async () => {
    for (const db of open.splice(0)) await db.destroy();
  });

  async function connect(plugins = [sqliteLimitLiterals]) {
    const db = new Kysely<Schema>({
      dialect: new SqliteDialect({ database: new Database(':memory:') }),
      plugins,
    });
    open.push(db);
    await sql`create table t (id integer primary key, v text not null)`.execute(db);
    await db
      .insertInto('t')
      .values(Array.from({ length: 10 }, (_, i) => ({ id: i + 1, v: `v${i + 1}` })))
      .execute();
    return db;
  }

  it('puts integer values into the text, so one text is one reusable statement', async () => {
    const db = await connect();
    const q = db.selectFrom('t').select('id').where('v', '!=', 'x').orderBy('id').limit(3).offset(2);
    const compiled = q.compile();
    expect(compiled.sql).toBe('select "id" from "t" where "v" != ? order by "id" limit 3 offset 2');
    expect(compiled.parameters).toEqual(['x']);
    expect(await q.execute()).toEqual([{ id: 3 }, { id: 4 }, { id: 5 }]);
    expect(db.selectFrom('t').select('id').limit(1).compile().sql).toBe('select "id" from "t" limit 1');
  });

  it('leaves anything but a non-negative safe integer a parameter, for SQLite to judge', async () => {
    const db = await connect();
    const fractional = db.selectFrom('t').select('id').limit(2.5).compile();
    expect(fractional.sql).toBe('select "id" from "t" limit ?');
    expect(fractional.parameters).toEqual([2.5]);
    const negative = db.selectFrom('t').select('id').offset(-1).compile();
    expect(negative.sql).toBe('select "id" from "t" offset ?');
    const expression = db
      .selectFrom('t')
      .select('id')
      .limit(sql<number>`1 + 1`)
      .compile();
    expect(expression.sql).toBe('select "id" from "t" limit 1 + 1');
  });

  it('does not touch writes, and a query without limit stays as it was', async () => {
    const db = await connect();
    const plain = db.selectFrom('t').select('id').where('id', '=', 1);
    expect(plain.compile().sql).toBe('select "id" from "t" where "id" = ?');
    const update = db.updateTable('t').set({ v: 'w' }).where('id', '=', 1).compile();
    expect(update.sql).toBe('update "t" set "v" = ? where "id" = ?');
  });

  it('(without it, Kysely binds the limit: the text the plugin changes)', async () => {
    const db = await connect([]);
    expect(db.selectFrom('t').select('id').limit(1).compile().sql).toBe('select "id" from "t" limit ?');
  });

  it('is what the SQLite index runs its queries with', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custos-limit-literals-'));
    const index = await openIndexDb({
      kind: 'sqlite',
      path: join(dir, 'index.sqlite'),
      key: randomBytes(32),
    });
    try {
      const q = index.db.selectFrom('audit_ledger').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1);
      expect(q.compile().sql).toMatch(/ limit 1$/);
      expect(await q.execute()).toEqual([]);
    } finally {
      await index.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
