import Database from 'better-sqlite3-multiple-ciphers';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import type { DatabaseSchema } from '../ports/database.js';
import { PreparedQuery } from './prepared-query.js';

describe('PreparedQuery (built and compiled once, run with new arguments)', () => {
  const open: Kysely<DatabaseSchema>[] = [];
  afterEach(async () => {
    for (const db of open.splice(0)) await db.destroy();
  });

  async function connect() {
    const db = new Kysely<DatabaseSchema>({
      dialect: new SqliteDialect({ database: new Database(':memory:') }),
    });
    open.push(db);
    await sql`create table series (series_uid text primary key, study_uid text not null, modality text not null, num_instances integer not null)`.execute(
      db,
    );
    return db;
  }

  const insert = new PreparedQuery((db, p: { uid: string; study: string; modality: string }) =>
    db
      .insertInto('series')
      .values({ series_uid: p.uid, study_uid: p.study, modality: p.modality, num_instances: 0 } as never)
      .onConflict((oc) => oc.column('series_uid').doNothing())
      .returning('series_uid'),
  );
  const count = new PreparedQuery((db, p: { uid: string; add: number }) =>
    db
      .updateTable('series')
      .set((eb) => ({ num_instances: eb('num_instances', '+', p.add) }))
      .where('series_uid', '=', p.uid),
  );
  const byStudy = new PreparedQuery((db, p: { study: string }) =>
    db
      .selectFrom('series')
      .select(['series_uid', 'num_instances'])
      .where('study_uid', '=', p.study)
      .where('modality', '!=', 'SR')
      .orderBy('series_uid'),
  );

  it('runs one compiled text with each run’s arguments in their places, values fixed at build time kept', async () => {
    const db = await connect();
    let builds = 0;
    const counted = new PreparedQuery((d, p: { study: string }) => {
      builds++;
      return d.selectFrom('series').select('series_uid').where('study_uid', '=', p.study);
    });
    expect(await insert.first(db, 'sqlite', { uid: 's1', study: 'A', modality: 'CT' })).toEqual({
      series_uid: 's1',
    });
    expect(await insert.first(db, 'sqlite', { uid: 's2', study: 'A', modality: 'SR' })).toEqual({
      series_uid: 's2',
    });
    expect(await insert.first(db, 'sqlite', { uid: 's3', study: 'B', modality: 'MR' })).toEqual({
      series_uid: 's3',
    });
    // A conflict inserts nothing and returns no row, like the builder would.
    expect(await insert.first(db, 'sqlite', { uid: 's1', study: 'B', modality: 'MR' })).toBeUndefined();
    await count.execute(db, 'sqlite', { uid: 's1', add: 2 });
    await count.execute(db, 'sqlite', { uid: 's3', add: 5 });
    expect(await byStudy.rows(db, 'sqlite', { study: 'A' })).toEqual([
      { series_uid: 's1', num_instances: 2 },
    ]);
    expect(await byStudy.rows(db, 'sqlite', { study: 'B' })).toEqual([
      { series_uid: 's3', num_instances: 5 },
    ]);
    expect(await counted.rows(db, 'sqlite', { study: 'A' })).toHaveLength(2);
    expect(await counted.rows(db, 'sqlite', { study: 'B' })).toHaveLength(1);
    expect(await counted.rows(db, 'sqlite', { study: 'C' })).toEqual([]);
    expect(builds).toBe(1);
  });

  it('runs inside a transaction, whose rollback takes its writes back', async () => {
    const db = await connect();
    await db
      .transaction()
      .execute(async (trx) => {
        await insert.execute(trx, 'sqlite', { uid: 'x', study: 'T', modality: 'CT' });
        expect(await byStudy.rows(trx, 'sqlite', { study: 'T' })).toHaveLength(1);
        throw new Error('roll back');
      })
      .catch(() => undefined);
    expect(await byStudy.rows(db, 'sqlite', { study: 'T' })).toEqual([]);
  });

  it('refuses a build that writes an argument into the SQL text instead of binding it', async () => {
    const db = await connect();
    const misused = new PreparedQuery((d, p: { column: string }) =>
      d.selectFrom('series').select(p.column as 'series_uid'),
    );
    await expect(misused.rows(db, 'sqlite', { column: 'series_uid' })).rejects.toThrow(
      /written into the SQL text, not bound/,
    );
  });

  it('refuses a run that lacks an argument instead of binding nothing', async () => {
    const db = await connect();
    await expect(
      insert.execute(db, 'sqlite', { uid: 'y', study: 'A' } as unknown as {
        uid: string;
        study: string;
        modality: string;
      }),
    ).rejects.toThrow(/no value for argument 'modality'/);
    expect(await byStudy.rows(db, 'sqlite', { study: 'A' })).toEqual([]);
  });
});
