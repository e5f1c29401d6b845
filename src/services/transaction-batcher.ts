import { sql, type Kysely, type Transaction } from 'kysely';
import type { DatabaseSchema } from '../ports/database.js';

export type TransactionWork<T> = (trx: Transaction<DatabaseSchema>) => Promise<T>;

interface Queued {
  work: TransactionWork<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Works per transaction: bounds how long one batch holds the write lock while others wait. */
const MAX_BATCH = 64;

/** Times a batch is run again after PostgreSQL chose its transaction as a deadlock's or serialisation's victim. */
const MAX_RETRIES = 4;

/**
 * PostgreSQL's deadlock_detected (40P01) and serialization_failure (40001) (PostgreSQL Appendix A): the transaction
 * was rolled back so that another could go on, and running it again is the documented remedy.
 */
export function isTransientConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === '40P01' || code === '40001';
}

export interface TransactionBatcherOptions {
  /**
   * Run first in every transaction, before any work: the place to take a lock every work will take anyway (the
   * audit ledger's), so that transactions of several processes queue there instead of each locking some rows
   * and then waiting for the other's.
   */
  begin?: (trx: Transaction<DatabaseSchema>) => Promise<void>;
}

/**
 * Group commit of independent write transactions: works submitted while a transaction runs go into the next one
 * together, each inside a savepoint of its own, so a work that fails is rolled back alone and the others commit.
 * One commit (and one sync of the log) then serves many writers, and pages they share (an index's last leaf,
 * the study row, the ledger's tail) are written once. Each caller's promise settles only after the commit that
 * holds its work, with its own result or error; if the commit fails, every work in it fails.
 *
 * A work must do all its writing through the `trx` it is given, and must not wait for anything that needs the
 * database's write lock (a separate transaction would wait for this one to end). A work may run more than once:
 * when PostgreSQL ends the transaction as a deadlock's victim (another process's transaction held rows this one
 * wanted, and the other way round), the whole batch is rolled back and run again, up to MAX_RETRIES times; until 6
 * Dec 2026 such a work failed (a store 0x0110, "deadlock detected"). Its effects outside the database must
 * therefore be idempotent.
 */
export class TransactionBatcher {
  private queue: Queued[] = [];
  private running = false;

  constructor(
    private readonly db: Kysely<DatabaseSchema>,
    private readonly opts: TransactionBatcherOptions = {},
  ) {}

  run<T>(work: TransactionWork<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) {
        this.running = true;
        // Let the works submitted in this tick join the first transaction.
        queueMicrotask(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        for (let attempt = 0; ; attempt++) {
          try {
            const outcomes = await this.runBatch(batch);
            batch.forEach((item, i) => {
              const o = outcomes[i]!;
              if (o.ok) item.resolve(o.value);
              else item.reject(o.error);
            });
          } catch (err) {
            if (isTransientConflict(err) && attempt < MAX_RETRIES) {
              // Another transaction goes on meanwhile; a short, varied pause keeps the two from meeting again.
              await new Promise((r) => setTimeout(r, 2 + Math.random() * 8 * (attempt + 1)));
              continue;
            }
            for (const item of batch) item.reject(err);
          }
          break;
        }
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * One transaction for the batch; each work's outcome, or a throw that fails them all (the commit failed, the
   * database ended the transaction, or a work was a deadlock's victim, which the caller runs again).
   */
  private async runBatch(batch: Queued[]): Promise<Outcome[]> {
    const begin = this.opts.begin;
    if (batch.length === 1) {
      const value = await this.db.transaction().execute(async (trx) => {
        if (begin) await begin(trx);
        return batch[0]!.work(trx);
      });
      return [{ ok: true, value }];
    }
    let outcomes: Outcome[] = [];
    await this.db.transaction().execute(async (trx) => {
      outcomes = [];
      if (begin) await begin(trx);
      for (const item of batch) {
        await sql`savepoint batched_work`.execute(trx);
        try {
          const value = await item.work(trx);
          await sql`release savepoint batched_work`.execute(trx);
          outcomes.push({ ok: true, value });
        } catch (error) {
          // A deadlock's victim: the locks the batch's earlier works hold are what the other transaction waits
          // for, so only rolling the whole batch back lets it go on.
          if (isTransientConflict(error)) throw error;
          try {
            await sql`rollback to savepoint batched_work`.execute(trx);
            await sql`release savepoint batched_work`.execute(trx);
          } catch {
            // The database ended the whole transaction itself (SQLite does on a full disk): every work in it
            // fails, with this work's error, which says why, rather than "no such savepoint".
            throw error;
          }
          outcomes.push({ ok: false, error });
        }
      }
    });
    return outcomes;
  }
}
