import { createCipheriv, createDecipheriv } from 'node:crypto';

/**
 * Chunked AES-256-GCM object format (ARCHITECTURE.md invariant 4: a frame or byte range is read without
 * decrypting the whole object).
 *
 *   header (32 bytes): "CUSTOSB1" | u32 version | u32 chunkSize | 8-byte random nonce prefix | 8 reserved
 *   chunk i:           ciphertext (chunkSize bytes; the final chunk 0..chunkSize) | 16-byte GCM tag
 *
 * Nonce = prefix || u32 i. AAD = header || u32 i || u8 final. Binding the header, the index and the final flag
 * to every chunk makes truncation, reordering, splicing chunks between objects and header edits fail
 * authentication. The plaintext length follows from the file size.
 */
export const MAGIC = Buffer.from('CUSTOSB1', 'latin1');
export const HEADER_SIZE = 32;
export const TAG_SIZE = 16;
export const FORMAT_VERSION = 1;

export function makeHeader(chunkSize: number, noncePrefix: Buffer): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h.writeUInt32BE(FORMAT_VERSION, 8);
  h.writeUInt32BE(chunkSize, 12);
  noncePrefix.copy(h, 16, 0, 8);
  return h;
}

export interface ParsedHeader {
  chunkSize: number;
  noncePrefix: Buffer;
}

export function parseHeader(h: Buffer): ParsedHeader | undefined {
  if (h.length < HEADER_SIZE || !h.subarray(0, 8).equals(MAGIC) || h.readUInt32BE(8) !== FORMAT_VERSION)
    return undefined;
  const chunkSize = h.readUInt32BE(12);
  if (chunkSize < 1) return undefined;
  return { chunkSize, noncePrefix: h.subarray(16, 24) };
}

function nonce(prefix: Buffer, index: number): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0, 0, 8);
  n.writeUInt32BE(index, 8);
  return n;
}

function aad(header: Buffer, index: number, final: boolean): Buffer {
  const a = Buffer.alloc(HEADER_SIZE + 5);
  header.copy(a, 0, 0, HEADER_SIZE);
  a.writeUInt32BE(index, HEADER_SIZE);
  a[HEADER_SIZE + 4] = final ? 1 : 0;
  return a;
}

/** Encrypt one chunk given as pieces (no concatenation); returns ciphertext pieces followed by the tag. */
export function sealChunk(
  key: Buffer,
  header: Buffer,
  noncePrefix: Buffer,
  index: number,
  final: boolean,
  pieces: Buffer[],
): Buffer[] {
  const c = createCipheriv('aes-256-gcm', key, nonce(noncePrefix, index));
  c.setAAD(aad(header, index, final));
  const out = pieces.map((p) => c.update(p));
  const last = c.final();
  if (last.length) out.push(last);
  out.push(c.getAuthTag());
  return out;
}

/** Decrypt and authenticate one chunk; throws if the tag does not verify. */
export function openChunk(
  key: Buffer,
  header: Buffer,
  noncePrefix: Buffer,
  index: number,
  final: boolean,
  sealed: Buffer,
): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, nonce(noncePrefix, index));
  d.setAAD(aad(header, index, final));
  d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  const body = d.update(sealed.subarray(0, sealed.length - TAG_SIZE));
  d.final();
  return body;
}
