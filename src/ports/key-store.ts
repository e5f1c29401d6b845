/**
 * Key-encryption key (KEK) operations. The KEK never leaves the adapter; callers only
 * ever see data keys (DEKs) in plaintext transiently and persist them wrapped.
 */
export interface KeyStore {
  /** Identifier of the KEK version that wrap() uses now (rotation later). */
  readonly kekId: string;
  /** Wrap a 32-byte data key; the result is safe to store in the index. */
  wrapKey(dataKey: Buffer, context: string): Promise<Buffer>;
  /** Unwrap a data key wrapped by wrapKey with the same context; throws CustosError on tamper. */
  unwrapKey(wrapped: Buffer, context: string): Promise<Buffer>;
  /** Derive a stable secret for a named purpose (e.g. the SQLite page-encryption key). */
  deriveSecret(purpose: string, length: number): Promise<Buffer>;
}
