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

/**
 * Group commit of independent write transactions: works submitted while a transaction runs go into the next one
 * together, each inside a savepoint of its own, so a work that fails is rolled back alone and the others commit.
 * One commit (and one sync of the log) then serves many writers, and pages they share (an index's last leaf,
 * the study row, the ledger's tail) are written once. Each caller's promise settles only after the commit that
 * holds its work, with its own result or error; if the commit fails, every work in it fails.
 *
 * A work must do all its writing through the `trx` it is given, and must not wait for anything that needs the
 * database's write lock (a separate transaction would wait for this one to end).
 */
export class TransactionBatcher {
  private queue: Queued[] = [];
  private running = false;

  constructor(private readonly db: Kysely<DatabaseSchema>) {}

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
        if (batch.length === 1) {
          const [only] = batch;
          await this.db.transaction().execute(only!.work).then(only!.resolve, only!.reject);
          continue;
        }
        let outcomes: Outcome[] = [];
        try {
          await this.db.transaction().execute(async (trx) => {
            outcomes = [];
            for (const item of batch) {
              await sql`savepoint batched_work`.execute(trx);
              try {
                const value = await item.work(trx);
                await sql`release savepoint batched_work`.execute(trx);
                outcomes.push({ ok: true, value });
              } catch (error) {
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
        } catch (err) {
          for (const item of batch) item.reject(err);
          continue;
        }
        batch.forEach((item, i) => {
          const o = outcomes[i]!;
          if (o.ok) item.resolve(o.value);
          else item.reject(o.error);
        });
      }
    } finally {
      this.running = false;
    }
  }
}
