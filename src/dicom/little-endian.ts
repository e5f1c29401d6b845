// Explicit VR Big Endian and Deflated Explicit VR Little Endian objects, streamed out in Explicit VR Little
// Endian. PS3.18 §8.7.3: big endian "shall not be used with Web Services"; §8.7.3.4 Note 2: every origin server
// can convert any Data Set it returns to Explicit VR Little Endian, the default. A new encoding of the same data
// set: the SHA-256 recorded at ingest is of the stored bytes, which are still read whole and verified.
import { Readable, pipeline } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import { CustosError } from '../domain/errors.js';
import { isUnknownVr, KNOWN_VRS, LONG_VRS } from './dataset.js';
import { fileMetaAs } from './implicit-vr.js';
import { tagToHex, TransferSyntax } from './tags.js';

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

const ITEM = 0xfffee000;
const ITEM_END = 0xfffee00d;
const SEQUENCE_END = 0xfffee0dd;
const UNDEFINED = 0xffffffff;

/** Bytes per number of the VRs whose values follow the transfer syntax's byte order (PS3.5 §7.3); AT is two US. */
const WORD: Record<string, number> = {
  AT: 2,
  OW: 2,
  SS: 2,
  US: 2,
  FL: 4,
  OF: 4,
  OL: 4,
  SL: 4,
  UL: 4,
  FD: 8,
  OD: 8,
  OV: 8,
  SV: 8,
  UV: 8,
};

function swapped(value: Buffer, word: number | undefined): Buffer {
  if (!word) return value;
  const out = Buffer.from(value);
  const whole = out.subarray(0, out.length - (out.length % word));
  if (word === 2) whole.swap16();
  else if (word === 4) whole.swap32();
  else whole.swap64();
  return out;
}

function littleHeader(tag: number, vr: string | undefined, length: number): Buffer {
  const long = vr === undefined || LONG_VRS.has(vr);
  const b = Buffer.alloc(vr === undefined ? 8 : long ? 12 : 8);
  b.writeUInt16LE(tag >>> 16, 0);
  b.writeUInt16LE(tag & 0xffff, 2);
  if (vr === undefined) b.writeUInt32LE(length >>> 0, 4);
  else if (long) {
    b.write(vr, 4, 'latin1');
    b.writeUInt32LE(length >>> 0, 8);
  } else {
    b.write(vr, 4, 'latin1');
    b.writeUInt16LE(length, 6);
  }
  return b;
}

/**
 * An Explicit VR Big Endian data set, whole in `b` (a header read within its bound), in Explicit VR Little
 * Endian: the same elements, VRs and value bytes, only the byte order of tags, lengths and binary numbers (US,
 * SS, UL, SL, FL, FD, SV, UV, AT, OW, OF, OL, OD, OV) turned. Text is copied byte for byte (a DS " 1.50" keeps
 * its space), a UN value too (its content is little endian already, PS3.5 §6.2.2: a standard attribute sent as
 * UN stays UN), and so is a UN of undefined length, implicit VR little endian inside. Sequences and items keep
 * their form; group length elements (gggg,0000), retired in the data set, are left out as in the other
 * conversions, the defined lengths around them made smaller. Until 6 Dec 2026 the header was parsed and written
 * anew from its values: DS and IS lost their leading spaces and a UN attribute came out as its dictionary VR.
 */
export function bigEndianDataSetToLittle(b: Buffer): Buffer {
  const at = { pos: 0 };
  const parts = elements(b, at, b.length, false);
  return Buffer.concat(parts);
}

const tagAt = (b: Buffer, o: number) => ((b.readUInt16BE(o) << 16) | b.readUInt16BE(o + 2)) >>> 0;

function need(b: Buffer, at: number, n: number): void {
  if (at + n > b.length)
    throw unconvertible(`the header ends inside an element (at byte ${at} of the data set)`);
}

/**
 * Elements from `at.pos` up to `end` (a defined length) or, when `delimited`, up to and including the item
 * delimiter that closes them; the delimiter is not part of what is returned.
 */
function elements(b: Buffer, at: { pos: number }, end: number, delimited: boolean): Buffer[] {
  const out: Buffer[] = [];
  while (at.pos < end) {
    need(b, at.pos, 8);
    const tag = tagAt(b, at.pos);
    if (tag === ITEM_END && delimited) {
      at.pos += 8;
      return out;
    }
    if (tag >>> 16 === 0xfffe)
      throw unconvertible(`unexpected (${tagToHex(tag)}) at byte ${at.pos} of the data set`);
    let vr = b.toString('latin1', at.pos + 4, at.pos + 6);
    if (isUnknownVr(vr)) vr = 'UN';
    else if (!KNOWN_VRS.has(vr))
      throw unconvertible(`(${tagToHex(tag)}) has an invalid VR ${JSON.stringify(vr)}`);
    const long = LONG_VRS.has(vr);
    if (long) need(b, at.pos, 12);
    const length = long ? b.readUInt32BE(at.pos + 8) : b.readUInt16BE(at.pos + 6);
    const written = b.toString('latin1', at.pos + 4, at.pos + 6);
    at.pos += long ? 12 : 8;
    if (vr === 'SQ') {
      const items = sequence(b, at, length);
      const content = Buffer.concat(items);
      out.push(littleHeader(tag, 'SQ', length === UNDEFINED ? UNDEFINED : content.length), content);
      if (length === UNDEFINED) out.push(littleHeader(SEQUENCE_END, undefined, 0));
      continue;
    }
    if (length === UNDEFINED) {
      if (vr !== 'UN') throw unconvertible(`(${tagToHex(tag)}) ${vr} has undefined length`);
      const start = at.pos;
      at.pos = implicitSequenceEnd(b, start);
      out.push(littleHeader(tag, written, UNDEFINED), b.subarray(start, at.pos));
      continue;
    }
    need(b, at.pos, length);
    const value = b.subarray(at.pos, at.pos + length);
    at.pos += length;
    if ((tag & 0xffff) === 0) continue;
    out.push(littleHeader(tag, written, length), swapped(value, WORD[vr]));
  }
  if (delimited) throw unconvertible('the header ends inside an item');
  return out;
}

/** The items of a sequence whose value starts at `at.pos`, `length` long or, when undefined, delimited. */
function sequence(b: Buffer, at: { pos: number }, length: number): Buffer[] {
  const out: Buffer[] = [];
  const end = length === UNDEFINED ? b.length : at.pos + length;
  while (at.pos < end) {
    need(b, at.pos, 8);
    const tag = tagAt(b, at.pos);
    const itemLength = b.readUInt32BE(at.pos + 4);
    at.pos += 8;
    if (tag === SEQUENCE_END && length === UNDEFINED) return out;
    if (tag !== ITEM) throw unconvertible(`(${tagToHex(tag)}) where an item belongs, at byte ${at.pos - 8}`);
    const content = Buffer.concat(
      elements(b, at, itemLength === UNDEFINED ? b.length : at.pos + itemLength, itemLength === UNDEFINED),
    );
    out.push(littleHeader(ITEM, undefined, itemLength === UNDEFINED ? UNDEFINED : content.length), content);
    if (itemLength === UNDEFINED) out.push(littleHeader(ITEM_END, undefined, 0));
  }
  if (length === UNDEFINED) throw unconvertible('the header ends inside a sequence');
  if (at.pos !== end) throw unconvertible(`an item runs past the end of its sequence (at byte ${at.pos})`);
  return out;
}

/**
 * Where the content of a UN value of undefined length that starts at `start` ends, after the sequence delimiter
 * that closes it: its content is implicit VR little endian (PS3.5 §6.2.2), items and nested sequences of
 * defined or undefined length.
 */
function implicitSequenceEnd(b: Buffer, start: number): number {
  let at = start;
  let open = 1;
  while (open > 0) {
    need(b, at, 8);
    const tag = ((b.readUInt16LE(at) << 16) | b.readUInt16LE(at + 2)) >>> 0;
    const length = b.readUInt32LE(at + 4);
    at += 8;
    if (tag === ITEM_END || tag === SEQUENCE_END) open--;
    else if (length === UNDEFINED) open++;
    else at += length;
  }
  return at;
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
 * native pixel data, at most `maxHeaderBytes`; the whole object when `pixels` is undefined) in little endian
 * (bigEndianDataSetToLittle: the same values, only their byte order changed), after a file meta information
 * naming the new transfer syntax and Custos (fileMetaAs); then the pixel data, streamed, each word swapped.
 * Elements after the pixel data (trailing padding, a digital signature the new bytes would no longer match) are
 * left out, as for a decompressed object.
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
  const { meta, rest } = await fileMetaAs(
    (async function* () {
      yield prefix;
    })(),
    EXPLICIT_VR_LITTLE_ENDIAN,
    'Explicit VR Little Endian',
  );
  yield meta;
  yield bigEndianDataSetToLittle(rest);
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
