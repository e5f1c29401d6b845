/**
 * The bytes as a Uint8Array that can be transferred to another thread: the buffer's own memory when it owns all of
 * it (taken over: the caller's Buffer is left empty), else a copy (a slice of a larger buffer, of Buffer's pool).
 */
export function transferable(b: Uint8Array): Uint8Array<ArrayBuffer> {
  const buffer = b.buffer;
  if (b.byteOffset === 0 && b.byteLength === buffer.byteLength && buffer instanceof ArrayBuffer)
    return new Uint8Array(buffer, 0, b.byteLength);
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return copy;
}
