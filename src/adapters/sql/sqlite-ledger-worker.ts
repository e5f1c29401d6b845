// The ledger's SQLite writer thread: commits group-committed batches on a connection of its own, so the
// synchronous COMMIT (and its fsync) never stalls the server's event loop. Messages: { id, items } → { id } or
// { id, error }.
import { statSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { recordOf, type AuditEventFields } from '../../domain/audit-record.js';
import { chainRecords, GENESIS_HASH } from '../../domain/ledger-chain.js';
import { ledgerTableRow } from './ledger-row.js';
import { openSqliteHandle } from './sqlite-handle.js';

export interface LedgerWorkerData {
  path: string;
  key: Uint8Array;
  node: string;
}
export interface LedgerBatch {
  id: number;
  items: { event: AuditEventFields; at: number }[];
}
export interface LedgerBatchResult {
  id: number;
  error?: string;
}

const data = workerData as LedgerWorkerData;
const db = openSqliteHandle(data.path, Buffer.from(data.key));

/**
 * WAL checkpoints run here rather than in the server's connection (open-index-db.ts raises its automatic
 * checkpoint to a safety net): copying the WAL into the database file and its two syncs take milliseconds, which
 * on the event loop stalled every request. A PASSIVE checkpoint blocks no reader or writer of other connections.
 * The WAL is truncated back to WAL_TRUNCATE_BYTES when it restarts, so its size says how much awaits copying.
 */
const WAL_TRUNCATE_BYTES = 4 * 1024 * 1024;
const CHECKPOINT_BYTES = 2 * WAL_TRUNCATE_BYTES;
const CHECKPOINT_EVERY_MS = 500;
db.pragma(`journal_size_limit = ${WAL_TRUNCATE_BYTES}`);
const walPath = `${data.path}-wal`;
const checkpoint = () => {
  let size = 0;
  try {
    size = statSync(walPath).size;
  } catch {
    return;
  }
  if (size < CHECKPOINT_BYTES) return;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or failing now: the next round tries again, and the server's own safety-net checkpoint remains.
  }
};
const checkpoints = setInterval(checkpoint, CHECKPOINT_EVERY_MS);

const head = db.prepare('select seq, hash from audit_ledger order by seq desc limit 1');
const insert = db.prepare(
  `insert into audit_ledger (seq, ts, actor, action, outcome, patient_id, study_uid, record, prev_hash, hash)
   values (@seq, @ts, @actor, @action, @outcome, @patient_id, @study_uid, @record, @prev_hash, @hash)`,
);
// BEGIN IMMEDIATE: the head is read under the write lock, so every process's records chain onto the true last one.
const commit = db.transaction((items: LedgerBatch['items']) => {
  const last = (head.get() as { seq: number; hash: string } | undefined) ?? { seq: 0, hash: GENESIS_HASH };
  const rows = chainRecords(
    last,
    items.map((i) => recordOf(i.event, new Date(i.at), data.node)),
  );
  for (const r of rows) insert.run(ledgerTableRow(r));
});

parentPort!.on('message', (batch: LedgerBatch | 'close') => {
  if (batch === 'close') {
    clearInterval(checkpoints);
    db.close();
    parentPort!.close();
    return;
  }
  try {
    commit.immediate(batch.items);
    parentPort!.postMessage({ id: batch.id } satisfies LedgerBatchResult);
  } catch (err) {
    parentPort!.postMessage({ id: batch.id, error: (err as Error).message } satisfies LedgerBatchResult);
  }
});
