import type { Kysely } from 'kysely';
import type { MergeChain } from '../domain/merge-chain.js';
import type { AuditEvent, AuditLedger } from '../ports/audit-ledger.js';
import type { DatabaseSchema } from '../ports/database.js';

/** A patient of a merge loop, as the alert names it. */
export interface LoopPatient {
  pk: number;
  patientId: string;
  issuer: string;
}

/** A loop of merges (A into B, B into A) met in the index, made before cyclic merges were refused. */
export interface MergeLoop {
  patients: LoopPatient[];
  /** Where objects of the loop's patients are filed: the survivor of its newest merge (followMerges). */
  survivor: LoopPatient;
  /**
   * Which loop it is: its patients and its merges (patient_merges pks), each sorted. A loop a later merge settled
   * and that formed again of other merges is another loop, and is reported again.
   */
  key: string;
}

/** The loop a walk along the merges ended in (followMerges found `loop`), its patients named from the index. */
export async function describeLoop(db: Kysely<DatabaseSchema>, chain: MergeChain): Promise<MergeLoop> {
  const rows = await db
    .selectFrom('patients')
    .select(['pk', 'patient_id', 'issuer'])
    .where('pk', 'in', chain.cycle)
    .execute();
  const named = (pk: number) => {
    const row = rows.find((r) => r.pk === pk);
    return { pk, patientId: row?.patient_id ?? '', issuer: row?.issuer ?? '' };
  };
  const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y).join();
  return {
    patients: chain.cycle.map(named),
    survivor: named(chain.survivor),
    key: `patients ${sorted(chain.cycle)}; merges ${sorted(chain.cycleMerges)}`,
  };
}

/**
 * Record `alert` (a merge-loop alert) in `trx` unless this loop was reported before: one alert per loop, whichever
 * of the feed or ingest meets it first and however often it is met. The caller's transaction holds the ledger's
 * write lock (lockIn), so two meetings at once report it once. Returns whether the alert was recorded.
 */
export async function alertLoopOnce(
  trx: Kysely<DatabaseSchema>,
  ledger: AuditLedger,
  loop: MergeLoop,
  alert: AuditEvent,
  now: string,
): Promise<boolean> {
  const reported = await trx
    .selectFrom('merge_loop_alerts')
    .select('loop_key')
    .where('loop_key', '=', loop.key)
    .executeTakeFirst();
  if (reported) return false;
  await trx.insertInto('merge_loop_alerts').values({ loop_key: loop.key, alerted_at: now }).execute();
  await ledger.appendIn(trx, alert);
  return true;
}

/** alertLoopOnce in a transaction of its own, for a loop met outside one (ingest) or by a refused message. */
export async function alertLoopOnceAlone(
  db: Kysely<DatabaseSchema>,
  ledger: AuditLedger,
  loop: MergeLoop,
  alert: AuditEvent,
  now: string,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await ledger.lockIn(trx);
    return alertLoopOnce(trx, ledger, loop, alert, now);
  });
}
