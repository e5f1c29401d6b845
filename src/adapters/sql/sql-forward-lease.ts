import type { Kysely } from 'kysely';
import type { ForwardLease } from '../../ports/audit-sink.js';
import type { IndexDb } from '../../ports/database.js';

/** Migration 0005-audit-forward. Kept out of the shared schema type: only this adapter touches it. */
interface AuditForwardTable {
  name: string;
  cursor: number;
  lease_owner: string;
  lease_until: string;
  updated_at: string;
}

/**
 * The forwarder's cursor and lease in one row per destination. Taking the lease is a short write transaction:
 * on PostgreSQL the row is locked with FOR UPDATE SKIP LOCKED (a forwarder that finds it locked simply is not
 * the one forwarding now); on SQLite the transaction starts with BEGIN IMMEDIATE (the index adapter's driver),
 * which serialises writers across processes.
 */
export class SqlForwardLease implements ForwardLease {
  private readonly db: Kysely<{ audit_forward: AuditForwardTable }>;

  constructor(
    private readonly index: IndexDb,
    private readonly name = 'syslog',
  ) {
    this.db = index.db.withTables<{ audit_forward: AuditForwardTable }>() as unknown as Kysely<{
      audit_forward: AuditForwardTable;
    }>;
  }

  async acquire(owner: string, now: string, until: string): Promise<{ cursor: number } | undefined> {
    await this.db
      .insertInto('audit_forward')
      .values({ name: this.name, cursor: 0, lease_owner: '', lease_until: '', updated_at: now })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    return this.db.transaction().execute(async (trx) => {
      let q = trx.selectFrom('audit_forward').selectAll().where('name', '=', this.name);
      if (this.index.dialect === 'postgres') q = q.forUpdate().skipLocked();
      const row = await q.executeTakeFirst();
      if (!row) return undefined; // PostgreSQL: another forwarder holds the row lock right now
      if (row.lease_owner !== owner && row.lease_owner !== '' && row.lease_until > now) return undefined;
      await trx
        .updateTable('audit_forward')
        .set({ lease_owner: owner, lease_until: until, updated_at: now })
        .where('name', '=', this.name)
        .execute();
      return { cursor: Number(row.cursor) };
    });
  }

  async commit(owner: string, cursor: number, until: string): Promise<boolean> {
    const res = await this.db
      .updateTable('audit_forward')
      .set({ cursor, lease_until: until })
      .where('name', '=', this.name)
      .where('lease_owner', '=', owner)
      .where('cursor', '<=', cursor)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async release(owner: string): Promise<void> {
    await this.db
      .updateTable('audit_forward')
      .set({ lease_owner: '', lease_until: '' })
      .where('name', '=', this.name)
      .where('lease_owner', '=', owner)
      .execute();
  }
}
