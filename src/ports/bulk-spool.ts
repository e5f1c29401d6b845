/**
 * Where the bulk data parts of one STOW-RS metadata-and-bulk-data request wait, encrypted at rest, until the
 * request's instances are assembled (they may come after the metadata, and in any order): one spool per request.
 */
export interface BulkSpools {
  /** A spool of the request's own; `close` removes whatever it holds. */
  open(): RequestSpool;
}

export interface RequestSpool {
  /**
   * Keeps the bytes of `body` under `name`, at most `maxBytes` of them: how many came (every byte counted, also past
   * the limit, whose bytes are read and dropped) and a reader of what was kept. Throws a CustosError (507, stow.spool-failed)
   * when they cannot be written, once `body` has been read to its end. The reader throws if the kept bytes changed since.
   */
  keep(name: string, body: AsyncIterable<Buffer>, maxBytes: number): Promise<SpooledBytes>;
  close(): Promise<void>;
}

export interface SpooledBytes {
  length: number;
  /** More than `maxBytes` came: nothing was kept, and `read` must not be called. */
  tooLarge: boolean;
  read(): AsyncIterable<Buffer>;
}
