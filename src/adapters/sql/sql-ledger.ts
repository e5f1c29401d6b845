import { sql, type Kysely, type Transaction } from 'kysely';
import { recordOf, type AuditRecord } from '../../domain/audit-record.js';
import { chainRecords, checkpointMessage, GENESIS_HASH } from '../../domain/ledger-chain.js';
import type {
  AuditEvent,
  AuditFilter,
  AuditLedger,
  AuditStore,
  LedgerRow,
  LedgerSigner,
  SignedCheckpoint,
} from '../../ports/audit-ledger.js';
import type { Clock } from '../../ports/clock.js';
import type { DatabaseSchema, IndexDb } from '../../ports/database.js';
import { ledgerTableRow } from './ledger-row.js';

type Db = Kysely<DatabaseSchema>;

interface Pending {
  event: AuditEvent;
  at: Date;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Rows per INSERT statement: 11 columns stay far below SQLite's bound-parameter limit. */
const INSERT_CHUNK = 400;
/** Records per group-commit transaction. */
const MAX_BATCH = 4000;
/** PostgreSQL advisory lock serialising appends across every Custos process sharing the database. */
const LEDGER_LOCK_KEY = 0x637573746f73; // 'custos'

/**
 * The hash-chained ledger in the index database. Appends are serialised under a write lock (SQLite's
 * BEGIN IMMEDIATE; a transaction-scoped advisory lock on PostgreSQL) so seq has no gaps and each record links
 * to the true previous one even with several processes. Reads' records are group-committed: whatever is
 * queued while one transaction commits goes into the next, and each caller resumes once its record is durable.
 */
export class SqlLedger implements AuditLedger, AuditStore {
  private queue: Pending[] = [];
  private flushing = false;

  /**
   * Batches commit on the server's own connection. On SQLite that connection syncs the WAL off the event loop
   * (sqlite-group-commit.ts); a second connection would make the server's drop its page cache after each commit.
   */
  constructor(
    private readonly index: IndexDb,
    private readonly clock: Clock,
    private readonly node: string,
  ) {}

  /** Drain what is queued. */
  async close(): Promise<void> {
    await this.drain();
  }

  append(event: AuditEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ event, at: this.clock.now(), resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        // Let everything queued in this tick join the first transaction.
        queueMicrotask(() => void this.flush());
      }
    });
  }

  async appendIn(trx: unknown, event: AuditEvent): Promise<void> {
    await this.write(trx as Transaction<DatabaseSchema>, [{ event, at: this.clock.now() }]);
  }

  /** Resolves once every record queued so far is durable. */
  async drain(): Promise<void> {
    while (this.flushing || this.queue.length) await new Promise((r) => setTimeout(r, 1));
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          await this.index.db.transaction().execute((trx) => this.write(trx, batch));
          for (const p of batch) p.resolve();
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /**
   * Takes the ledger's write lock in a caller's transaction that will append (appendIn) later: taken first, it
   * orders such transactions of several processes before they lock any row, where taken late each could hold rows
   * the other wants (PostgreSQL; on SQLite the transaction holds the one write lock already).
   */
  lockIn(trx: unknown): Promise<void> {
    return this.lock(trx as Db);
  }

  private async lock(trx: Db): Promise<void> {
    // SQLite: every transaction here begins IMMEDIATE and already holds the database's single write lock.
    if (this.index.dialect === 'postgres')
      await sql`select pg_advisory_xact_lock(${LEDGER_LOCK_KEY})`.execute(trx);
  }

  private async headIn(trx: Db): Promise<{ seq: number; hash: string }> {
    const row = await trx
      .selectFrom('audit_ledger')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? { seq: Number(row.seq), hash: row.hash } : { seq: 0, hash: GENESIS_HASH };
  }

  private async write(trx: Db, items: { event: AuditEvent; at: Date }[]): Promise<void> {
    await this.lock(trx);
    const head = await this.headIn(trx);
    const rows = chainRecords(
      head,
      items.map((i) => recordOf(i.event, i.at, this.node)),
    );
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await trx
        .insertInto('audit_ledger')
        .values(rows.slice(i, i + INSERT_CHUNK).map(ledgerTableRow))
        .execute();
    }
  }

  async head(): Promise<{ seq: number; hash: string }> {
    return this.headIn(this.index.db);
  }

  async search(f: AuditFilter): Promise<AuditRecord[]> {
    let q = this.index.db.selectFrom('audit_ledger').select(['record']);
    if (f.patientId !== undefined) q = q.where('patient_id', '=', f.patientId);
    if (f.studyUid !== undefined) q = q.where('study_uid', '=', f.studyUid);
    if (f.actor !== undefined) q = q.where('actor', '=', f.actor);
    if (f.action?.length) q = q.where('action', 'in', f.action);
    if (f.outcome !== undefined) q = q.where('outcome', '=', f.outcome);
    if (f.since !== undefined) q = q.where('ts', '>=', f.since);
    if (f.until !== undefined) q = q.where('ts', '<', f.until);
    if (f.beforeSeq !== undefined) q = q.where('seq', '<', f.beforeSeq);
    if (f.afterSeq !== undefined) q = q.where('seq', '>', f.afterSeq);
    const rows = await q
      .orderBy('seq', f.order ?? 'desc')
      .limit(f.limit)
      .execute();
    return rows.map((r) => JSON.parse(r.record) as AuditRecord);
  }

  async rowsAfter(afterSeq: number, limit: number): Promise<LedgerRow[]> {
    const rows = await this.index.db
      .selectFrom('audit_ledger')
      .selectAll()
      .where('seq', '>', afterSeq)
      .orderBy('seq', 'asc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      seq: Number(r.seq),
      prevHash: r.prev_hash,
      hash: r.hash,
      text: r.record,
      columns: {
        ts: r.ts,
        actor: r.actor,
        action: r.action,
        outcome: r.outcome,
        patientId: r.patient_id,
        studyUid: r.study_uid,
      },
    }));
  }

  async checkpoints(): Promise<SignedCheckpoint[]> {
    const rows = await this.index.db.selectFrom('audit_checkpoints').selectAll().orderBy('seq').execute();
    return rows.map((r) => ({
      seq: Number(r.seq),
      hash: r.hash,
      ts: r.ts,
      node: r.node,
      keyId: r.key_id,
      signature: r.signature,
    }));
  }

  async checkpoint(
    signer: LedgerSigner,
    node: string,
    now: Date,
    at: { seq: number; hash: string },
  ): Promise<SignedCheckpoint | undefined> {
    return this.index.db.transaction().execute(async (trx) => {
      await this.lock(trx);
      const row = await trx
        .selectFrom('audit_ledger')
        .select('hash')
        .where('seq', '=', at.seq)
        .executeTakeFirst();
      if (!row || row.hash !== at.hash) return undefined;
      const head = at;
      const last = await trx
        .selectFrom('audit_checkpoints')
        .select('seq')
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (last && Number(last.seq) >= head.seq) return undefined;
      const body = { seq: head.seq, hash: head.hash, ts: now.toISOString(), node, keyId: signer.keyId };
      const c: SignedCheckpoint = { ...body, signature: signer.sign(checkpointMessage(body)) };
      await trx
        .insertInto('audit_checkpoints')
        .values({ seq: c.seq, hash: c.hash, ts: c.ts, node: c.node, key_id: c.keyId, signature: c.signature })
        .execute();
      return c;
    });
  }
}
