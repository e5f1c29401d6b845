import { createHash, createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import type { AuditRecord } from './audit-record.js';
import { canonicalJson } from './canonical-json.js';

/** The hash the first record links to. */
export const GENESIS_HASH = '0'.repeat(64);

/** hash(n) = SHA-256(hash(n-1) as hex ‖ canonical JSON of record n). */
export function linkHash(prevHash: string, canonicalRecord: string): string {
  return createHash('sha256').update(prevHash, 'latin1').update(canonicalRecord, 'utf8').digest('hex');
}

export interface ChainRow {
  seq: number;
  prevHash: string;
  hash: string;
  text: string;
  columns: {
    ts: string;
    actor: string;
    action: string;
    outcome: string;
    patientId: string;
    studyUid: string;
  };
}

/** The columns a record is searched by, derived from it (and checked against it by verification). */
export function searchColumns(r: AuditRecord): ChainRow['columns'] {
  return {
    ts: r.ts,
    actor: r.actor.name,
    action: r.action,
    outcome: r.outcome,
    patientId: r.patientId ?? '',
    studyUid: r.studyUid ?? '',
  };
}

/** Chain a batch of records after `head`: each gets its canonical text, link and hash. */
export function chainRecords(
  head: { seq: number; hash: string },
  records: Omit<AuditRecord, 'seq'>[],
): ChainRow[] {
  let prev = head.hash;
  let seq = head.seq;
  return records.map((r) => {
    seq += 1;
    const record = { ...r, seq } as AuditRecord;
    const text = canonicalJson(record);
    const hash = linkHash(prev, text);
    const row = { seq, prevHash: prev, hash, text, columns: searchColumns(record) };
    prev = hash;
    return row;
  });
}

export interface CheckpointBody {
  seq: number;
  hash: string;
  ts: string;
  node: string;
  keyId: string;
}

export interface Checkpoint extends CheckpointBody {
  signature: string;
}

/** Key identifier: SHA-256 of the public key's SPKI DER, hex, first 16 bytes. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 32);
}

export function checkpointMessage(c: CheckpointBody): Buffer {
  return Buffer.from(
    canonicalJson({
      seq: c.seq,
      hash: c.hash,
      ts: c.ts,
      node: c.node,
      keyId: c.keyId,
      type: 'custos-audit-checkpoint',
    }),
    'utf8',
  );
}

export function checkpointSignatureValid(c: Checkpoint, publicKey: KeyObject): boolean {
  try {
    return verifySignature(null, checkpointMessage(c), publicKey, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}

export function publicKeyFromPem(pem: string): KeyObject {
  return createPublicKey(pem);
}

export type Tamper = 'changed' | 'removed' | 'inserted' | 'reordered' | 'checkpoint';

export interface VerifyProblem {
  /** The first sequence number where the ledger departs from what was recorded. */
  seq: number;
  kind: Tamper;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  records: number;
  head: { seq: number; hash: string };
  checkpoints: { database: number; external: number; verifiedAgainstChain: number };
  problem?: VerifyProblem;
  /** Things that are not tampering but deserve attention (e.g. a checkpoint missing from the external sink). */
  warnings: string[];
}

/**
 * Recomputes the chain row by row and names the first place it breaks. Rows must be fed in seq order.
 *
 * What each kind of edit looks like from here:
 * - a field changed in place: the row's content no longer hashes to its stored hash (or, if the stored hash
 *   was recomputed too, the next row's link points at the old hash) → `changed` at that seq;
 * - a row deleted: a gap in seq → `removed` at the first missing seq; the tail truncated: a signed checkpoint
 *   beyond the last row → `removed` after the last row;
 * - a row inserted (later rows renumbered to make room): the row after it links to the row before it →
 *   `inserted` at the new row's seq;
 * - two rows swapped: a row holds a record whose own seq is another → `reordered`;
 * - the whole chain rewritten consistently: only a signed checkpoint (kept outside the database too) can tell
 *   → `changed` at the first seq after the last checkpoint that still matches.
 */
export class ChainVerifier {
  private expected = 1;
  private prevHash = GENESIS_HASH;
  private prevPrevHash: string | undefined;
  private lastGoodCheckpointSeq = 0;
  private problem: VerifyProblem | undefined;
  private readonly warnings: string[] = [];
  private readonly bySeq = new Map<number, { checkpoint: Checkpoint; origin: string }[]>();
  private checkedAgainstChain = 0;
  private dbCount = 0;
  private extCount = 0;

  constructor(
    private readonly publicKey: KeyObject,
    database: Checkpoint[],
    external: Checkpoint[],
    /** Verify only what follows a point already proven (a checkpoint): its seq and hash. */
    start: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH },
  ) {
    this.expected = start.seq + 1;
    this.prevHash = start.hash;
    this.lastGoodCheckpointSeq = start.seq;
    const keyId = keyIdOf(publicKey);
    const add = (c: Checkpoint, origin: string) => {
      if (c.keyId !== keyId || !checkpointSignatureValid(c, publicKey)) {
        this.fail({
          seq: c.seq,
          kind: 'checkpoint',
          message: `the ${origin} checkpoint at seq ${c.seq} does not carry a valid signature of the ledger signing key`,
        });
        return;
      }
      const list = this.bySeq.get(c.seq) ?? [];
      list.push({ checkpoint: c, origin });
      this.bySeq.set(c.seq, list);
    };
    for (const c of external) add(c, 'external');
    for (const c of database) add(c, 'database');
    this.dbCount = database.length;
    this.extCount = external.length;
    const inDb = new Set(database.map((c) => `${c.seq}:${c.hash}`));
    for (const c of external) {
      if (!inDb.has(`${c.seq}:${c.hash}`))
        this.warnings.push(`external checkpoint at seq ${c.seq} is not in the database's checkpoint table`);
    }
    if (database.length > 0 && external.length === 0) {
      // The external file is written from the first checkpoint on, so an empty or missing one while the database
      // holds checkpoints means it was deleted, emptied or replaced: the one witness a consistent rewrite of the
      // database (checkpoints included) cannot forge is gone, which is itself a finding, not a warning.
      const first = Math.min(...database.map((c) => c.seq));
      this.fail({
        seq: first,
        kind: 'checkpoint',
        message: `the external checkpoint file holds none of the database's ${database.length} checkpoint(s) (the first at seq ${first}): it was deleted, emptied or replaced`,
      });
    }
    const inExt = new Set(external.map((c) => `${c.seq}:${c.hash}`));
    for (const c of database) {
      if (!inExt.has(`${c.seq}:${c.hash}`))
        this.warnings.push(`database checkpoint at seq ${c.seq} never reached the external sink`);
    }
  }

  get failed(): boolean {
    return this.problem !== undefined;
  }

  private fail(p: VerifyProblem) {
    if (!this.problem || p.seq < this.problem.seq) this.problem = p;
  }

  /** Feed the next row. Returns false once a problem is found (the caller may stop reading). */
  push(row: ChainRow): boolean {
    if (this.problem) return false;
    if (row.seq > this.expected) {
      this.fail({
        seq: this.expected,
        kind: 'removed',
        message:
          row.seq - 1 === this.expected
            ? `record ${this.expected} is missing`
            : `records ${this.expected}..${row.seq - 1} are missing`,
      });
      return false;
    }
    let record: AuditRecord;
    try {
      record = JSON.parse(row.text) as AuditRecord;
    } catch {
      this.fail({ seq: row.seq, kind: 'changed', message: `record ${row.seq} is not valid JSON any more` });
      return false;
    }
    if (record.seq !== row.seq) {
      const kind: Tamper = typeof record.seq === 'number' && record.seq > row.seq ? 'reordered' : 'inserted';
      if (kind === 'inserted' && row.prevHash === this.prevPrevHash) {
        this.fail({
          seq: row.seq - 1,
          kind: 'inserted',
          message: `record ${row.seq - 1} was inserted: the record now at ${row.seq} was recorded as ${record.seq} and links past it`,
        });
      } else {
        this.fail({
          seq: row.seq,
          kind,
          message:
            kind === 'reordered'
              ? `position ${row.seq} holds the record of seq ${record.seq}: records were reordered`
              : `position ${row.seq} holds the record of seq ${record.seq}: a record was inserted before it`,
        });
      }
      return false;
    }
    if (row.prevHash !== this.prevHash) {
      if (row.prevHash === this.prevPrevHash) {
        this.fail({
          seq: row.seq - 1,
          kind: 'inserted',
          message: `record ${row.seq - 1} was inserted: record ${row.seq} links to the record before it`,
        });
      } else {
        this.fail({
          seq: row.seq - 1,
          kind: 'changed',
          message: `record ${row.seq - 1} was changed: record ${row.seq} links to a different hash than its content has now (or record ${row.seq} was forged with a wrong link)`,
        });
      }
      return false;
    }
    const hash = linkHash(this.prevHash, row.text);
    if (hash !== row.hash) {
      this.fail({
        seq: row.seq,
        kind: 'changed',
        message: `record ${row.seq} was changed: its content does not match its hash`,
      });
      return false;
    }
    const cols = searchColumns(record);
    for (const k of Object.keys(cols) as (keyof typeof cols)[]) {
      if (cols[k] !== row.columns[k]) {
        this.fail({
          seq: row.seq,
          kind: 'changed',
          message: `record ${row.seq} was changed: its ${k} column says '${row.columns[k]}' but the record says '${cols[k]}'`,
        });
        return false;
      }
    }
    for (const { checkpoint, origin } of this.bySeq.get(row.seq) ?? []) {
      if (checkpoint.hash !== hash) {
        this.fail({
          seq: this.lastGoodCheckpointSeq + 1,
          kind: 'changed',
          message: `the chain at seq ${row.seq} does not match the ${origin} signed checkpoint of ${checkpoint.ts}: records ${this.lastGoodCheckpointSeq + 1}..${row.seq} were rewritten`,
        });
        return false;
      }
      this.checkedAgainstChain += 1;
    }
    if (this.bySeq.has(row.seq)) this.lastGoodCheckpointSeq = row.seq;
    this.prevPrevHash = this.prevHash;
    this.prevHash = hash;
    this.expected = row.seq + 1;
    return true;
  }

  /** Call after the last row. */
  finish(): VerifyReport {
    const last = this.expected - 1;
    if (!this.problem) {
      const beyond = [...this.bySeq.entries()].filter(([seq]) => seq > last).sort((a, b) => a[0] - b[0]);
      const first = beyond[0];
      if (first) {
        const c = first[1][0]!;
        this.fail({
          seq: last + 1,
          kind: 'removed',
          message: `records ${last + 1}..${first[0]} are missing: the ${c.origin} checkpoint of ${c.checkpoint.ts} signed the chain up to seq ${first[0]} but the ledger ends at ${last}`,
        });
      }
    }
    return {
      ok: !this.problem,
      records: last,
      head: { seq: last, hash: this.prevHash },
      checkpoints: {
        database: this.dbCount,
        external: this.extCount,
        verifiedAgainstChain: this.checkedAgainstChain,
      },
      ...(this.problem ? { problem: this.problem } : {}),
      warnings: this.warnings,
    };
  }
}
