import type { IndexDb } from '../../ports/database.js';
import type { AccessionCheck, OrderLookup } from '../../ports/order-lookup.js';

/**
 * Orders as the HL7 order feed stores them (migration 0006-hl7). While no order has arrived every answer is
 * 'unknown': an archive without an order feed does not check accession numbers.
 */
export class SqlOrderLookup implements OrderLookup {
  constructor(private readonly index: IndexDb) {}

  async checkAccession(accessionNumber: string): Promise<AccessionCheck> {
    const any = await this.index.db.selectFrom('orders').select('pk').limit(1).executeTakeFirst();
    if (!any) return 'unknown';
    if (!accessionNumber) return 'not-found';
    const hit = await this.index.db
      .selectFrom('orders')
      .select('pk')
      .where('accession_number', '=', accessionNumber)
      .limit(1)
      .executeTakeFirst();
    return hit ? 'known' : 'not-found';
  }
}
