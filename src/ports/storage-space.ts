/** Room left on the volumes the archive writes to (the blob volume; the SQLite index's, where it is another). */
export interface StorageSpace {
  /**
   * Throws the storage-full error (domain/storage-full.ts) when a volume has less free space than the reserve kept
   * back so that the index and the audit ledger can go on recording reads once new objects are refused, and the
   * storage-unwritable error when a volume refuses writes (read-only, failing).
   */
  ensureRoom(): Promise<void>;
  /** Each volume's free bytes as last measured, and the reserve (for the operator: /api/health). */
  report(): Promise<VolumeSpace[]>;
}

export interface VolumeSpace {
  /** What the volume holds, in words: "the blob volume", "the index's volume". */
  what: string;
  freeBytes: number;
  reserveBytes: number;
  /** Whether new objects are refused for want of room on this volume. */
  belowReserve: boolean;
  /** Whether the volume refused a small write (read-only, failing): nothing can be written to it. */
  refusesWrites: boolean;
}
