import { sql } from 'kysely';
import type { IndexDb } from '../../ports/database.js';
import type { AccessionCheck, OrderLookup } from '../../ports/order-lookup.js';

/**
 * Orders as the HL7 order feed stores them: a table `orders` with an `accession_number` column. The table is
 * created by the HL7 migration; until it exists, or while it is empty, every answer is 'unknown'.
 */
export class SqlOrderLookup implements OrderLookup {
  /** Tables appear only through migrations, which run before the process serves: a found table stays found. */
  private exists = false;

  constructor(private readonly index: IndexDb) {}

  private async tableExists(): Promise<boolean> {
    if (this.exists) return true;
    const q =
      this.index.dialect === 'postgres'
        ? sql<{ present: boolean }>`select to_regclass('orders') is not null as present`
        : sql<{
            present: number;
          }>`select count(*) > 0 as present from sqlite_master where type = 'table' and name = 'orders'`;
    const row = (await q.execute(this.index.db)).rows[0];
    this.exists = Boolean(row?.present);
    return this.exists;
  }

  async checkAccession(accessionNumber: string): Promise<AccessionCheck> {
    if (!(await this.tableExists())) return 'unknown';
    const any = await sql<{ one: number }>`select 1 as one from orders limit 1`.execute(this.index.db);
    if (any.rows.length === 0) return 'unknown';
    if (!accessionNumber) return 'not-found';
    const hit = await sql<{
      one: number;
    }>`select 1 as one from orders where accession_number = ${accessionNumber} limit 1`.execute(
      this.index.db,
    );
    return hit.rows.length > 0 ? 'known' : 'not-found';
  }
}
