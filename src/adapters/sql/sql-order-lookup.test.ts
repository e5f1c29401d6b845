import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { insertOrder } from '../../../test/support/orders.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IndexDb } from '../../ports/database.js';
import { openIndexDb } from './open-index-db.js';
import { SqlOrderLookup } from './sql-order-lookup.js';

describe('SqlOrderLookup (SQLite)', () => {
  let dir: string;
  let index: IndexDb;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-orders-'));
    index = await openIndexDb({ kind: 'sqlite', path: join(dir, 'i.sqlite'), key: randomBytes(32) });
  });
  afterAll(async () => {
    await index.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers 'unknown' while no order is known, then matches accession numbers", async () => {
    const orders = new SqlOrderLookup(index);
    expect(await orders.checkAccession('ACC1')).toBe('unknown');
    await insertOrder(index.db, 'ACC1');
    expect(await orders.checkAccession('ACC1')).toBe('known');
    expect(await orders.checkAccession('ACC2')).toBe('not-found');
  });
});
