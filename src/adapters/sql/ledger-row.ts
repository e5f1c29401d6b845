import type { ChainRow } from '../../domain/ledger-chain.js';

/** A chained record as the audit_ledger table stores it. */
export function ledgerTableRow(r: ChainRow) {
  return {
    seq: r.seq,
    ts: r.columns.ts,
    actor: r.columns.actor,
    action: r.columns.action,
    outcome: r.columns.outcome,
    patient_id: r.columns.patientId,
    study_uid: r.columns.studyUid,
    record: r.text,
    prev_hash: r.prevHash,
    hash: r.hash,
  };
}
