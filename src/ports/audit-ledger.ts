import type { Principal } from '../domain/principal.js';
import type { AuditEventFields, AuditRecord, AuditOutcome } from '../domain/audit-record.js';
import type { ChainRow, Checkpoint } from '../domain/ledger-chain.js';

/** What a service reports; the ledger adds sequence, time, node and chain. */
export interface AuditEvent extends AuditEventFields {
  principal: Principal;
}

/**
 * Append-only, hash-chained audit ledger. `append` resolves only once the record is durable (group commit: one
 * transaction carries every record queued meanwhile), so a read's record exists before its data leaves the
 * process. `appendIn` writes in a caller's transaction so a mutation and its record commit together.
 */
export interface AuditLedger {
  append(event: AuditEvent): Promise<void>;
  appendIn(trx: unknown, event: AuditEvent): Promise<void>;
  /**
   * Take the ledger's write lock in a caller's transaction that will `appendIn` later, before it reads or locks
   * anything else: such transactions then run one after another, each seeing what the previous one committed.
   */
  lockIn(trx: unknown): Promise<void>;
}

/** Filters for reading the ledger; every field narrows (AND). Times are ISO 8601 UTC, `until` exclusive. */
export interface AuditFilter {
  patientId?: string;
  studyUid?: string;
  actor?: string;
  action?: string[];
  outcome?: AuditOutcome;
  since?: string;
  until?: string;
  /** Records with seq below this (for paging newest-first) or above it (oldest-first). */
  beforeSeq?: number;
  afterSeq?: number;
  order?: 'asc' | 'desc';
  limit: number;
}

/** A stored chain row, as verification and export read it back. */
export type LedgerRow = ChainRow;

/** A signed checkpoint: the chain's head at `seq`, signed with the ledger key. */
export type SignedCheckpoint = Checkpoint;

/** Reading side of the ledger: search, ordered scans for verification and export, checkpoints. */
export interface AuditStore {
  search(filter: AuditFilter): Promise<AuditRecord[]>;
  /** Rows with seq > afterSeq in seq order, at most `limit`. */
  rowsAfter(afterSeq: number, limit: number): Promise<LedgerRow[]>;
  checkpoints(): Promise<SignedCheckpoint[]>;
  head(): Promise<{ seq: number; hash: string }>;
  /**
   * Sign the chain at `at` (a point the caller has just verified) and store the checkpoint, unless a newer
   * checkpoint already covers it or the row at `at.seq` no longer has that hash.
   */
  checkpoint(
    signer: LedgerSigner,
    node: string,
    now: Date,
    at: { seq: number; hash: string },
  ): Promise<SignedCheckpoint | undefined>;
}

/** Signs ledger checkpoints (Ed25519, a key of its own: never the key-encryption key). */
export interface LedgerSigner {
  readonly keyId: string;
  readonly publicKeyPem: string;
  /** Base64 signature over the message. */
  sign(message: Buffer): string;
}

/** Somewhere outside the database that checkpoints are also appended to, so a rewrite of the database shows. */
export interface CheckpointSink {
  /** Human-readable location, for messages. */
  readonly location: string;
  append(checkpoint: SignedCheckpoint): Promise<void>;
  readAll(): Promise<SignedCheckpoint[]>;
}
