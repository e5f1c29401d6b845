// Explicit VR Big Endian and Deflated Explicit VR Little Endian objects, streamed out in Explicit VR Little
// Endian. PS3.18 §8.7.3: big endian "shall not be used with Web Services"; §8.7.3.4 Note 2: every origin server
// can convert any Data Set it returns to Explicit VR Little Endian, the default. A new encoding of the same data
// set: the SHA-256 recorded at ingest is of the stored bytes, which are still read whole and verified.
import { Readable, pipeline } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import { CustosError } from '../domain/errors.js';
import { rewriteHeaderAs } from './header-rewrite.js';
import { fileMetaAs } from './implicit-vr.js';
import { TransferSyntax } from './tags.js';

const EXPLICIT_VR_LITTLE_ENDIAN = TransferSyntax.ExplicitVRLittleEndian;

const unconvertible = (message: string) =>
  new CustosError({
    code: 'dicom.cannot-convert',
    message: `cannot send as Explicit VR Little Endian: ${message}`,
  });

/** Reads a byte stream in exact amounts. */
class Taker {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }
  /** Up to `n` bytes (fewer only at the end of the stream), failing once more than `limit` would be held. */
  async take(n: number, limit = Number.POSITIVE_INFINITY, what = ''): Promise<Buffer> {
    const chunks: Buffer[] = this.buf.length ? [this.buf] : [];
    let held = this.buf.length;
    while (held < n) {
      const r = await this.it.next();
      if (r.done) break;
      held += r.value.length;
      if (held > limit && n > limit) throw unconvertible(`${what} is larger than ${limit} bytes`);
      chunks.push(r.value);
    }
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    this.buf = all.subarray(Math.min(n, all.length));
    return all.subarray(0, Math.min(n, all.length));
  }
  /** `n` bytes as they come, in pieces. */
  async *pass(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.buf.length === 0) {
        const r = await this.it.next();
        if (r.done) throw unconvertible(`the object ends ${n} bytes before the end of its pixel data`);
        this.buf = r.value;
      }
      const piece = this.buf.subarray(0, Math.min(n, this.buf.length));
      this.buf = this.buf.subarray(piece.length);
      n -= piece.length;
      yield piece;
    }
  }
  /** The rest, read and dropped: the blob store verifies the SHA-256 of the whole object only at its end. */
  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    for (let r = await this.it.next(); !r.done; r = await this.it.next()) void r.value;
  }
}

/**
 * The word size in which native pixel data of an Explicit VR Big Endian object is stored swapped: 2 for OW (4 or
 * 8 when Bits Allocated says so), 0 (nothing to swap) for OB.
 */
export function bigEndianWordSize(pixelVr: string | undefined, bitsAllocated: number): number {
  if (pixelVr === 'OB') return 0;
  return bitsAllocated === 32 || bitsAllocated === 64 ? bitsAllocated / 8 : 2;
}

/** A byte stream with each `word`-byte word reversed (big to little endian); a trailing partial word as is. */
export async function* swapWords(source: AsyncIterable<Buffer>, word: number): AsyncGenerator<Buffer> {
  let carry = Buffer.alloc(0);
  for await (const chunk of source) {
    const data = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    const whole = data.length - (data.length % word);
    carry = Buffer.from(data.subarray(whole));
    if (whole === 0) continue;
    const out = Buffer.from(data.subarray(0, whole));
    if (word === 2) out.swap16();
    else if (word === 4) out.swap32();
    else out.swap64();
    yield out;
  }
  if (carry.length) yield carry;
}

/** Where the native pixel data element of a big endian object sits in the bytes served, and how to swap it. */
export interface BigEndianPixels {
  /** Offset of the element's header (12 bytes: tag, VR, reserved, 32-bit length). */
  start: number;
  tag: number;
  vr: string;
  length: number;
  /** bigEndianWordSize(). */
  word: number;
}

/**
 * An Explicit VR Big Endian Part 10 object in Explicit VR Little Endian: the header (every element before the
 * native pixel data, at most `maxHeaderBytes`; the whole object when `pixels` is undefined) parsed and written
 * anew, every binary value in little endian, with a file meta information naming the new transfer syntax; then
 * the pixel data, streamed, each word swapped. Elements after the pixel data (trailing padding, a digital
 * signature the new bytes would no longer match) are left out, as for a decompressed object.
 */
export async function* littleEndianFromBigEndian(
  source: AsyncIterable<Buffer>,
  pixels: BigEndianPixels | undefined,
  maxHeaderBytes: number,
): AsyncGenerator<Buffer> {
  const r = new Taker(source);
  const end = pixels ? pixels.start : Number.POSITIVE_INFINITY;
  const prefix = await r.take(
    end,
    maxHeaderBytes,
    pixels ? 'the header before the pixel data' : 'the object',
  );
  if (pixels && prefix.length < end) throw unconvertible('the object ends before its pixel data');
  const header = await rewriteHeaderAs(prefix, EXPLICIT_VR_LITTLE_ENDIAN, () => undefined);
  yield header.bytes;
  if (pixels) {
    const stored = await r.take(12);
    if (stored.length < 12) throw unconvertible('the object ends inside its pixel data element');
    const element = Buffer.alloc(12);
    element.writeUInt16LE(pixels.tag >>> 16, 0);
    element.writeUInt16LE(pixels.tag & 0xffff, 2);
    element.write(pixels.vr, 4, 'latin1');
    element.writeUInt32LE(pixels.length, 8);
    yield element;
    const value = r.pass(pixels.length);
    yield* pixels.word ? swapWords(value, pixels.word) : value;
  }
  await r.drain();
}

/**
 * A Deflated Explicit VR Little Endian Part 10 object (PS3.5 A.5) in Explicit VR Little Endian: its preamble and
 * file meta information (never deflated) naming the new transfer syntax, then the data set inflated as it is read.
 */
export async function* inflatedPart10(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  const { meta, rest } = await fileMetaAs(it, EXPLICIT_VR_LITTLE_ENDIAN, 'Explicit VR Little Endian');
  yield meta;
  yield* inflateRaw(
    (async function* () {
      if (rest.length) yield rest;
      for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
    })(),
  );
}

/**
 * Raw deflate (RFC 1951) undone as the bytes come, with back-pressure; an error of the source ends the output
 * with that error. Stopping early stops reading the source.
 */
export async function* inflateRaw(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const inflate = createInflateRaw();
  pipeline(Readable.from(source), inflate, () => undefined);
  yield* inflate as AsyncIterable<Buffer>;
}
