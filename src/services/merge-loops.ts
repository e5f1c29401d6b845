import type { Kysely } from 'kysely';
import { followMerges, MERGE_EVENTS, type MergeChain, type MergeStep } from '../domain/merge-chain.js';
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

/** A patient's latest merge (A40/A34) as the walk along merges reads it (followMerges), read in `db`. */
export function mergedIntoIn(db: Kysely<DatabaseSchema>) {
  return async (pk: number): Promise<MergeStep | undefined> => {
    const next = await db
      .selectFrom('patient_merges')
      .select(['pk', 'surviving_patient_pk'])
      .where('prior_patient_pk', '=', pk)
      .where('event', 'in', MERGE_EVENTS)
      .orderBy('pk', 'desc')
      .executeTakeFirst();
    return next && { survivor: next.surviving_patient_pk, order: next.pk };
  };
}

/** The patients a loop key (MergeLoop.key) names. */
function loopKeyPatients(key: string): number[] {
  const listed = /^patients ([\d,]*);/.exec(key)?.[1] ?? '';
  return listed.split(',').filter(Boolean).map(Number);
}

/** The patients `pks`, named from the index as the alerts name them. */
async function namePatients(db: Kysely<DatabaseSchema>, pks: number[]) {
  const rows = pks.length
    ? await db.selectFrom('patients').select(['pk', 'patient_id', 'issuer']).where('pk', 'in', pks).execute()
    : [];
  return (pk: number): LoopPatient => {
    const row = rows.find((r) => r.pk === pk);
    return { pk, patientId: row?.patient_id ?? '', issuer: row?.issuer ?? '' };
  };
}

/** The loop a walk along the merges ended in (followMerges found `loop`), its patients named from the index. */
export async function describeLoop(db: Kysely<DatabaseSchema>, chain: MergeChain): Promise<MergeLoop> {
  const named = await namePatients(db, [...chain.cycle, chain.survivor]);
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

/** A reported loop that the merges no longer make: who was in it, and where their objects are filed now. */
export interface SettledLoop {
  key: string;
  patients: LoopPatient[];
  /** Where the walk from the loop's first patient now ends (followMerges): its objects are filed there. */
  filedUnder: LoopPatient;
}

/**
 * The reported loops (merge_loop_alerts) that the merges in `trx` no longer make, each removed from the table so
 * that the loop, should it form again, is reported again; the caller records that each was settled (in the same
 * transaction, which holds the ledger's write lock). A loop is settled when the walk from one of its patients no
 * longer comes round through the same merges: a later merge moved one of its patients out of it. Until 7 Dec 2026
 * a reported loop stayed in the table for good.
 */
export async function takeSettledLoops(trx: Kysely<DatabaseSchema>): Promise<SettledLoop[]> {
  const reported = await trx.selectFrom('merge_loop_alerts').select('loop_key').orderBy('loop_key').execute();
  const settled: SettledLoop[] = [];
  for (const { loop_key } of reported) {
    const patients = loopKeyPatients(loop_key);
    if (patients.length === 0) continue;
    const chain = await followMerges(patients[0]!, mergedIntoIn(trx));
    if (chain.loop && (await describeLoop(trx, chain)).key === loop_key) continue;
    await trx.deleteFrom('merge_loop_alerts').where('loop_key', '=', loop_key).execute();
    const named = await namePatients(trx, [...patients, chain.survivor]);
    settled.push({ key: loop_key, patients: patients.map(named), filedUnder: named(chain.survivor) });
  }
  return settled;
}
