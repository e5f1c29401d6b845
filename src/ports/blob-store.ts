import type { BlobId } from '../domain/ids.js';

/** What the index records about a stored blob. */
export interface StoredBlob {
  blobId: BlobId;
  /** Length of the original (plaintext) bytes. */
  size: number;
  /** SHA-256 of the original bytes, lowercase hex. */
  sha256: string;
}

/** What the index records of a blob, for a read to check the stored object against. */
export interface ExpectedBlob {
  /** The plaintext length: checked on every read, a range read too, before any byte is decrypted. */
  size?: number;
  /** The SHA-256 of the plaintext: checked when the whole blob is read. */
  sha256?: string;
}

/** A committed blob as the store lists it. */
export interface ListedBlob {
  blobId: BlobId;
  /** Bytes the blob takes in the store (ciphertext, headers and tags). */
  storedBytes: number;
  modifiedAt: Date;
}

/**
 * A blob being written. Bytes are encrypted as they arrive (never held whole in memory);
 * nothing is visible under the blob's id until commit() has fsynced and renamed it.
 */
export interface BlobWriter {
  write(chunk: Buffer): Promise<void>;
  /**
   * Durable after this resolves (temp file fsync, rename, directory fsync). `sealed`, when given, is called as
   * soon as every byte is hashed and the blob's id, size and digest are known, before the writes that make it
   * durable: a caller may prepare what refers to the blob meanwhile, but must not make that visible before
   * commit() resolved (the blob may yet fail to become durable).
   */
  commit(sealed?: (blob: StoredBlob) => void): Promise<StoredBlob>;
  /** Discard everything written; idempotent. */
  abort(): Promise<void>;
}

export interface BlobStore {
  /** Start writing a new blob encrypted under `dataKey` (the study's 32-byte data key). */
  create(dataKey: Buffer): Promise<BlobWriter>;
  /**
   * Read plaintext bytes [start, end) of a blob, decrypting only the chunks that cover the range.
   * Every chunk's GCM tag is checked (it binds the blob id, in objects written since 6 Dec 2026); the stored
   * length is checked against `expected.size` before anything is read, and when the whole blob is read the
   * digest against `expected.sha256`. A failure throws CustosError code 'blob.integrity' (never yields bad bytes
   * past the failing chunk).
   */
  read(
    blobId: BlobId,
    dataKey: Buffer,
    range?: { start: number; end: number },
    expected?: ExpectedBlob,
  ): AsyncIterable<Buffer>;
  exists(blobId: BlobId): Promise<boolean>;
  /**
   * The committed blobs whose ids start with `prefix` (lowercase hex, possibly empty), with their stored size
   * and when they were written, in no particular order: for reconciling the store with the index.
   */
  list(prefix: string): AsyncIterable<ListedBlob>;
  delete(blobId: BlobId): Promise<void>;
  /** Remove temp files left by a crash (called at start). Returns how many were removed. */
  sweepTemp(): Promise<number>;
}
