import { createCipheriv, createDecipheriv } from 'node:crypto';

/**
 * Chunked AES-256-GCM object format, "CUSTOSB1" versions 1 and 2 (ARCHITECTURE.md invariant 4: a frame or byte
 * range is read without decrypting the whole object). Version 2 is written; both are read.
 *
 *   header (32 bytes)  "CUSTOSB1" | u32 version | u32 chunkSize | 8-byte random nonce prefix | u64 plaintext length
 *   chunk i            ciphertext of min(chunkSize, rest) plaintext bytes | 16-byte GCM tag
 *
 * All integers are big-endian. Every object has at least one chunk: an empty object is one empty final chunk, and
 * an object whose length is a multiple of chunkSize ends with a full final chunk (no trailing empty chunk), so the
 * chunk count and the file size follow from the plaintext length alone (see `expectedFileSize`).
 *
 * Nonce of chunk i = prefix || u32 i. The prefix is 64 random bits per object; the data key is per study, so a
 * nonce repeats only if two objects of one study draw the same prefix (about n²/2^65 for n objects).
 *
 * AAD of chunk i, version 2 = header[0..24) || object id (16 bytes) || u32 i || u8 final || u64 (final ? plaintext
 * length : 0); version 1 has no object id. Binding the fixed header, the index and the final flag to every chunk
 * makes header edits, reordering, truncation at a chunk boundary and splicing chunks between objects (different
 * prefix, so different nonce and AAD) fail authentication. Binding the object id (the blob id the index names it
 * by) makes a whole file put in place of another one of the same study (same data key) fail at its first chunk,
 * on a range read too: in version 1 every chunk but the final one of such a file still authenticated, and only
 * a whole-object read (its SHA-256) found it. The length is written into the header at commit, after the chunks,
 * so only the final chunk can bind it; a reader also checks it against the file size (and the index's) before
 * decrypting anything, which catches truncation on range reads that never touch the final chunk.
 */
export const MAGIC = Buffer.from('CUSTOSB1', 'latin1');
/** The version written. */
export const FORMAT_VERSION = 2;
/** Version 1 (until 6 Dec 2026): no object id in the AAD. Still read. */
export const FORMAT_VERSION_1 = 1;
/** Bytes of an object id (a blob id is 32 hex digits). */
export const OBJECT_ID_SIZE = 16;
export const HEADER_SIZE = 32;
export const TAG_SIZE = 16;
/** Upper bound on chunkSize, so that a reader never allocates more than this for one chunk of a hostile file. */
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
/** Chunk indexes are u32 in the nonce. */
export const MAX_CHUNKS = 2 ** 32;

const FIXED_HEADER = 24;
const AAD_V1_SIZE = FIXED_HEADER + 4 + 1 + 8;

export function isValidChunkSize(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 1 && n <= MAX_CHUNK_SIZE;
}

/**
 * The header as written before the length is known (length field zero); `setHeaderLength` completes it. `version`
 * other than FORMAT_VERSION only to make objects of the earlier format (tests of the reader).
 */
export function makeHeader(chunkSize: number, noncePrefix: Buffer, version = FORMAT_VERSION): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h.writeUInt32BE(version, 8);
  h.writeUInt32BE(chunkSize, 12);
  noncePrefix.copy(h, 16, 0, 8);
  return h;
}

export function setHeaderLength(header: Buffer, plaintextLength: number): void {
  header.writeBigUInt64BE(BigInt(plaintextLength), 24);
}

export interface ParsedHeader {
  version: number;
  chunkSize: number;
  noncePrefix: Buffer;
  plaintextLength: number;
}

/** Undefined when the header is not a version 1 or 2 header this reader can trust to size its buffers. */
export function parseHeader(h: Buffer): ParsedHeader | undefined {
  if (h.length < HEADER_SIZE || !h.subarray(0, 8).equals(MAGIC)) return undefined;
  const version = h.readUInt32BE(8);
  if (version !== FORMAT_VERSION && version !== FORMAT_VERSION_1) return undefined;
  const chunkSize = h.readUInt32BE(12);
  const length = h.readBigUInt64BE(24);
  if (!isValidChunkSize(chunkSize) || length > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { version, chunkSize, noncePrefix: h.subarray(16, 24), plaintextLength: Number(length) };
}

export function chunkCount(plaintextLength: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(plaintextLength / chunkSize));
}

export function expectedFileSize(plaintextLength: number, chunkSize: number): number {
  return HEADER_SIZE + plaintextLength + chunkCount(plaintextLength, chunkSize) * TAG_SIZE;
}

function nonce(prefix: Buffer, index: number): Buffer {
  const n = Buffer.allocUnsafe(12);
  prefix.copy(n, 0, 0, 8);
  n.writeUInt32BE(index, 8);
  return n;
}

/** The object id as the AAD binds it: the blob id's 16 bytes. */
export function objectIdOf(blobId: string): Buffer {
  const id = Buffer.from(blobId, 'hex');
  if (id.length !== OBJECT_ID_SIZE || id.toString('hex') !== blobId.toLowerCase())
    throw new RangeError(`'${blobId}' is not an object id of ${OBJECT_ID_SIZE} bytes in hex`);
  return id;
}

/** The header's version decides whether the object id is bound (version 2) or not (version 1). */
function aad(header: Buffer, objectId: Buffer, index: number, finalLength: number | undefined): Buffer {
  const withId = header.readUInt32BE(8) !== FORMAT_VERSION_1;
  const at = withId ? FIXED_HEADER + OBJECT_ID_SIZE : FIXED_HEADER;
  const a = Buffer.alloc(AAD_V1_SIZE + (withId ? OBJECT_ID_SIZE : 0));
  header.copy(a, 0, 0, FIXED_HEADER);
  if (withId) {
    if (objectId.length !== OBJECT_ID_SIZE) throw new RangeError(`an object id is ${OBJECT_ID_SIZE} bytes`);
    objectId.copy(a, FIXED_HEADER);
  }
  a.writeUInt32BE(index, at);
  if (finalLength !== undefined) {
    a[at + 4] = 1;
    a.writeBigUInt64BE(BigInt(finalLength), at + 5);
  }
  return a;
}

/**
 * Encrypt one chunk of the object `objectId` (objectIdOf). `finalLength` is the object's plaintext length when
 * this is the final chunk, undefined otherwise. Returns [ciphertext, tag] as separate buffers so that the caller
 * can gather-write them.
 */
export function sealChunk(
  key: Buffer,
  header: Buffer,
  objectId: Buffer,
  index: number,
  finalLength: number | undefined,
  plaintext: Buffer,
): [Buffer, Buffer] {
  const c = createCipheriv('aes-256-gcm', key, nonce(header.subarray(16, 24), index));
  c.setAAD(aad(header, objectId, index, finalLength));
  const body = c.update(plaintext);
  // GCM is a stream mode: final() emits nothing, it only computes the tag.
  c.final();
  return [body, c.getAuthTag()];
}

/**
 * Decrypt and authenticate one sealed chunk (ciphertext || tag) of the object `objectId` (not bound by a version 1
 * header); throws if the tag does not verify.
 */
export function openChunk(
  key: Buffer,
  header: Buffer,
  objectId: Buffer,
  index: number,
  finalLength: number | undefined,
  sealed: Buffer,
): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, nonce(header.subarray(16, 24), index), {
    authTagLength: TAG_SIZE,
  });
  d.setAAD(aad(header, objectId, index, finalLength));
  d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  const body = d.update(sealed.subarray(0, sealed.length - TAG_SIZE));
  d.final();
  return body;
}
