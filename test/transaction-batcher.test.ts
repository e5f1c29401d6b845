import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropPostgresSchema, openIndexDb } from '../src/adapters/sql/open-index-db.js';
import type { IndexDb } from '../src/ports/database.js';
import { TransactionBatcher } from '../src/services/transaction-batcher.js';
import { backends, postgresUrl } from './support/backends.js';
import { insertPatient } from './support/orders.js';

const storedPatients = async (index: IndexDb, prefix: string) =>
  (
    await index.db
      .selectFrom('patients')
      .select('patient_id')
      .where('patient_id', 'like', `${prefix}%`)
      .orderBy('patient_id')
      .execute()
  ).map((r) => r.patient_id);

describe.each(backends())('TransactionBatcher on %s', (backend) => {
  let dir: string;
  let index: IndexDb;
  const schema = `batcher_${randomBytes(6).toString('hex')}`;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-batcher-'));
    index =
      backend === 'sqlite'
        ? await openIndexDb({ kind: 'sqlite', path: join(dir, 'i.sqlite'), key: randomBytes(32) })
        : await openIndexDb({ kind: 'postgres', url: postgresUrl!, schema });
  });
  afterAll(async () => {
    await index.close();
    if (backend === 'postgres') await dropPostgresSchema(postgresUrl!, schema);
    await rm(dir, { recursive: true, force: true });
  });

  const stored = (prefix: string) => storedPatients(index, prefix);

  it('commits works submitted together in one transaction, each with its own result', async () => {
    const batcher = new TransactionBatcher(index.db);
    const seen: unknown[] = [];
    const work = (i: number) =>
      batcher.run(async (trx) => {
        seen.push(trx);
        await insertPatient(trx, `GROUP-${String(i).padStart(2, '0')}`);
        return i * 10;
      });
    // Submitted in one tick: one transaction.
    const first = Array.from({ length: 4 }, (_, i) => work(i));
    // Submitted while that one runs: they wait for it, then share the next one.
    await new Promise((r) => setImmediate(r));
    const later = Array.from({ length: 8 }, (_, i) => work(4 + i));
    const results = await Promise.all([...first, ...later]);
    expect(results).toEqual(Array.from({ length: 12 }, (_, i) => i * 10));
    expect(seen.slice(0, 4).every((t) => t === seen[0])).toBe(true);
    expect(seen.slice(4).every((t) => t === seen[4])).toBe(true);
    expect(seen[4]).not.toBe(seen[0]);
    expect(await stored('GROUP-')).toHaveLength(12);
  });

  it('rolls back a failing work alone, also after an SQL error, and commits the others', async () => {
    const batcher = new TransactionBatcher(index.db);
    const outcomes = await Promise.allSettled([
      batcher.run((trx) => insertPatient(trx, 'ALONE-A')),
      batcher.run(async (trx) => {
        await insertPatient(trx, 'ALONE-B');
        throw new Error('work B gives up after writing');
      }),
      batcher.run((trx) => insertPatient(trx, 'ALONE-C')),
      // The same patient again: a unique-constraint violation (PostgreSQL aborts the transaction on it).
      batcher.run((trx) => insertPatient(trx, 'ALONE-C')),
      batcher.run((trx) => insertPatient(trx, 'ALONE-D')),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({
      message: 'work B gives up after writing',
    });
    expect(await stored('ALONE-')).toEqual(['ALONE-A', 'ALONE-C', 'ALONE-D']);
  });

  it('rolls back a lone failing work', async () => {
    const batcher = new TransactionBatcher(index.db);
    await expect(
      batcher.run(async (trx) => {
        await insertPatient(trx, 'LONE-A');
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(await stored('LONE-')).toEqual([]);
  });
});

// A commit that fails after every work succeeded: SQLite checks a deferred foreign key at COMMIT (PostgreSQL's
// foreign keys here are not deferrable, so there is no such commit to provoke on it).
describe('TransactionBatcher on sqlite, a failing commit', () => {
  let dir: string;
  let index: IndexDb;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-batcher-'));
    index = await openIndexDb({ kind: 'sqlite', path: join(dir, 'i.sqlite'), key: randomBytes(32) });
  });
  afterAll(async () => {
    await index.close();
    await rm(dir, { recursive: true, force: true });
  });
  const stored = (prefix: string) => storedPatients(index, prefix);

  it('fails every work of a batch whose commit fails', async () => {
    const batcher = new TransactionBatcher(index.db);
    const outcomes = await Promise.allSettled([
      batcher.run((trx) => insertPatient(trx, 'COMMIT-A')),
      batcher.run((trx) => insertPatient(trx, 'COMMIT-B')),
      batcher.run(async (trx) => {
        // A study of a patient that does not exist, with the foreign key checked only at COMMIT.
        await sql`pragma defer_foreign_keys = on`.execute(trx);
        await trx
          .insertInto('studies')
          .values({
            study_uid: '1.2.3.999',
            patient_pk: 999_999,
            study_date: '',
            study_time: '',
            accession_number: '',
            referring_physician_name: '',
            referring_physician_norm: '',
            study_description: '',
            study_id: '',
            modalities: '',
            attrs_json: '{}',
            num_series: 0,
            num_instances: 0,
            total_bytes: 0,
            referring_physician_ids: '',
            owner: null,
            department: null,
            classification: 'normal',
            retention_until: null,
            status: 'active',
            created_at: '',
            updated_at: '',
          })
          .execute();
      }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect((outcomes[0] as PromiseRejectedResult).reason).toMatchObject({
      message: expect.stringMatching(/FOREIGN KEY/i),
    });
    expect(await stored('COMMIT-')).toEqual([]);
  });
});
