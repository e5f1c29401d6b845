// Explicit VR Little Endian ↔ Implicit VR Little Endian, streamed. The values are the same bytes in both: only
// element headers change (PS3.5 §7.1.2, §7.1.3).
// - To implicit: the DICOM default transfer syntax every application entity supports (PS3.5 §10.1); an object
//   stored in explicit VR goes so to a C-MOVE destination or C-GET requestor that accepts nothing else.
// - To explicit: DICOMweb does not use implicit VR (PS3.18 §8.7.3: "shall not be used with Web Services"; Explicit
//   VR Little Endian is the default, and every origin server converts to it); an object a modality sent by
//   C-STORE in implicit VR goes out of WADO in explicit VR.
import { CustosError } from '../domain/errors.js';
import { isUnknownVr, LONG_VRS } from './dataset.js';
import { FILE_IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from './implementation.js';
import { implicitVr } from './part10-parser.js';
import { tagToHex, TransferSyntax } from './tags.js';

const ITEM = 0xfffee000;
const ITEM_END = 0xfffee00d;
const SEQUENCE_END = 0xfffee0dd;
const UNDEFINED = 0xffffffff;
/** Values up to this size are copied whole; larger ones (pixel data) go through in the pieces they came in. */
const SMALL = 64 * 1024;

const IMPLICIT_NAME = 'Implicit VR Little Endian';
const EXPLICIT_NAME = 'Explicit VR Little Endian';
const unconvertible = (message: string, to: string) =>
  new CustosError({ code: 'dicom.cannot-convert', message: `cannot send as ${to}: ${message}` });

/** Reads a byte stream in exact amounts without holding more than one incoming piece beyond what is asked. */
class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  /** Bytes consumed so far. */
  pos = 0;
  constructor(
    source: AsyncIterable<Buffer>,
    private readonly to: string,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }
  /** True once `n` bytes are buffered; false at the end of the stream with fewer. */
  async fill(n: number): Promise<boolean> {
    while (this.buf.length < n) {
      const r = await this.it.next();
      if (r.done) return false;
      this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    }
    return true;
  }
  async take(n: number): Promise<Buffer> {
    if (!(await this.fill(n)))
      throw unconvertible(`the data set ends inside an element (at byte ${this.pos})`, this.to);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.pos += n;
    return out;
  }
  /** `n` bytes as they come, in pieces. */
  async *pass(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.buf.length === 0 && !(await this.fill(1)))
        throw unconvertible(`the data set ends inside a value (at byte ${this.pos})`, this.to);
      const piece = this.buf.subarray(0, Math.min(n, this.buf.length));
      this.buf = this.buf.subarray(piece.length);
      this.pos += piece.length;
      n -= piece.length;
      yield piece;
    }
  }
}

function header(tag: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt16LE(tag >>> 16, 0);
  b.writeUInt16LE(tag & 0xffff, 2);
  b.writeUInt32LE(length, 4);
  return b;
}

const tagOf = (h: Buffer) => ((h.readUInt16LE(0) << 16) | h.readUInt16LE(2)) >>> 0;

/**
 * What both conversions share: reading the data set element by element, items and delimiters passed on, and
 * every sequence and item of defined length turned into one of undefined length with its delimiter (element
 * headers differ in length between the two encodings, so the lengths around them would be wrong).
 */
class Walk {
  readonly r: Reader;
  /** Where each open container of defined length ends in the input, and what closes it in the output. */
  private readonly ends: { at: number; close: number }[] = [];
  /**
   * Whether Pixel Representation (0028,0103) is 1, for the data set and each open item (an item without its own
   * takes its enclosing data set's, as the parser reads it).
   */
  private readonly signedPixels: boolean[] = [false];
  constructor(
    source: AsyncIterable<Buffer>,
    readonly to: string,
  ) {
    this.r = new Reader(source, to);
  }
  /** At the data set's top level (not inside a sequence). */
  get top(): boolean {
    return this.ends.length === 0;
  }
  /** Pixel Representation is 1 in the current data set or item. */
  get signed(): boolean {
    return this.signedPixels.at(-1)!;
  }
  set signed(value: boolean) {
    this.signedPixels[this.signedPixels.length - 1] = value;
  }
  /** An item opens (`ITEM`) or closes (`ITEM_END`); delimiters that close a sequence leave the scope as it is. */
  private scope(tag: number): void {
    if (tag === ITEM) this.signedPixels.push(this.signed);
    else if (tag === ITEM_END && this.signedPixels.length > 1) this.signedPixels.pop();
  }
  /** Yields delimiters and items up to the next element, and returns its first 8 bytes (undefined: the end). */
  async *next(): AsyncGenerator<Buffer, Buffer | undefined> {
    const { r, ends, to } = this;
    for (;;) {
      while (ends.length && r.pos >= ends.at(-1)!.at) {
        if (r.pos > ends.at(-1)!.at)
          throw unconvertible(`an element runs past the end of its item (at byte ${r.pos})`, to);
        const close = ends.pop()!.close;
        this.scope(close);
        yield header(close, 0);
      }
      if (!(await r.fill(8))) {
        if (ends.length) throw unconvertible('the data set ends inside a sequence', to);
        if (await r.fill(1))
          throw unconvertible(`the data set ends inside an element (at byte ${r.pos})`, to);
        return undefined;
      }
      const h = await r.take(8);
      const tag = tagOf(h);
      if (tag !== ITEM && tag !== ITEM_END && tag !== SEQUENCE_END) return h;
      this.scope(tag);
      const length = h.readUInt32LE(4);
      if (tag === ITEM && length !== UNDEFINED) {
        yield header(ITEM, UNDEFINED);
        ends.push({ at: r.pos + length, close: ITEM_END });
      } else yield h;
    }
  }
  /** A sequence whose header went out with undefined length: one of defined `length` is closed where it ends. */
  sequence(length: number): void {
    if (length !== UNDEFINED) this.ends.push({ at: this.r.pos + length, close: SEQUENCE_END });
  }
  /** A value after its new header: whole when small, else in the pieces it comes in. */
  async *value(head: Buffer, length: number): AsyncGenerator<Buffer> {
    if (length <= SMALL) {
      yield Buffer.concat([head, await this.r.take(length)]);
      return;
    }
    yield head;
    yield* this.r.pass(length);
  }
  /** A value left out (a group length). */
  async skip(length: number): Promise<void> {
    for await (const piece of this.r.pass(length)) void piece;
  }
}

/**
 * The data set (no file meta information) of an Explicit VR Little Endian object, encoded as Implicit VR Little
 * Endian (Walk: sequences and items of undefined length). Group length elements (gggg,0000), retired in the data
 * set and wrong after the change, are left out. A UN value of undefined length holds implicit VR already and is
 * copied. Any other value of undefined length (encapsulated pixel data, which a native object never has) or a
 * data set cut short fails the stream with `dicom.cannot-convert`.
 */
export async function* toImplicitVrLittleEndian(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const w = new Walk(source, IMPLICIT_NAME);
  const r = w.r;
  /**
   * Inside a UN value of undefined length, whose content is already in Implicit VR Little Endian (PS3.5 §6.2.2):
   * the elements of undefined length (items, sequences) not yet closed by their delimiters. Copied as they are.
   */
  let raw = 0;
  for (;;) {
    if (raw > 0) {
      const h = await r.take(8);
      const tag = tagOf(h);
      const length = h.readUInt32LE(4);
      yield h;
      if (tag === ITEM_END || tag === SEQUENCE_END) raw--;
      else if (length === UNDEFINED) raw++;
      else yield* r.pass(length);
      continue;
    }
    const h = yield* w.next();
    if (!h) return;
    const tag = tagOf(h);
    // A VR this archive does not know is UN with the long header, as the parser reads it (PS3.5 §6.2).
    const written = h.toString('latin1', 4, 6);
    const vr = isUnknownVr(written) ? 'UN' : written;
    const length = LONG_VRS.has(vr) ? (await r.take(4)).readUInt32LE(0) : h.readUInt16LE(6);
    if (vr === 'SQ') {
      yield header(tag, UNDEFINED);
      w.sequence(length);
    } else if (length === UNDEFINED) {
      if (vr !== 'UN') throw unconvertible(`(${tagToHex(tag)}) ${vr} has undefined length`, w.to);
      yield header(tag, UNDEFINED);
      raw = 1;
    } else if ((tag & 0xffff) === 0) await w.skip(length);
    else yield* w.value(header(tag, length), length);
  }
}

function explicitHeader(tag: number, vr: string, length: number): Buffer {
  const long = LONG_VRS.has(vr);
  const b = Buffer.allocUnsafe(long ? 12 : 8);
  b.writeUInt16LE(tag >>> 16, 0);
  b.writeUInt16LE(tag & 0xffff, 2);
  b.write(vr, 4, 'latin1');
  if (long) {
    b.writeUInt16LE(0, 6);
    b.writeUInt32LE(length, 8);
  } else b.writeUInt16LE(length, 6);
  return b;
}

/**
 * The data set (no file meta information) of an Implicit VR Little Endian object, encoded as Explicit VR Little
 * Endian (Walk: sequences and items of undefined length). Each VR comes from the data dictionary as when the
 * object is parsed (private creators LO, other private and unknown elements UN, pixel data OW or OB by Bits
 * Allocated, US or SS by Pixel Representation); a value too long for its VR's 16-bit length goes as UN (PS3.18
 * §8.7.3.4 note 3). An element of undefined length is a sequence (PS3.5 §7.5.1), known or private. Group lengths
 * are left out; a private value of defined length stays as it is, as UN (a private sequence so encoded keeps its
 * implicit VR content, PS3.5 §6.2.2).
 */
export async function* toExplicitVrLittleEndian(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const w = new Walk(source, EXPLICIT_NAME);
  let bitsAllocated = 16;
  for (;;) {
    const h = yield* w.next();
    if (!h) return;
    const tag = tagOf(h);
    const length = h.readUInt32LE(4);
    let vr = implicitVr(tag, w.signed);
    if (length === UNDEFINED || vr === 'SQ') {
      if (tag === 0x7fe00010) throw unconvertible('(7FE00010) pixel data has undefined length', w.to);
      yield explicitHeader(tag, 'SQ', UNDEFINED);
      w.sequence(length);
      continue;
    }
    if ((tag & 0xffff) === 0) {
      await w.skip(length);
      continue;
    }
    if (tag === 0x7fe00010) vr = bitsAllocated > 8 ? 'OW' : 'OB';
    if (!LONG_VRS.has(vr) && length > 0xfffe) vr = 'UN';
    if (length === 2 && ((w.top && tag === 0x00280100) || tag === 0x00280103)) {
      const value = await w.r.take(2);
      if (tag === 0x00280100) bitsAllocated = value.readUInt16LE(0);
      else w.signed = value.readUInt16LE(0) === 1;
      yield Buffer.concat([explicitHeader(tag, vr, 2), value]);
      continue;
    }
    yield* w.value(explicitHeader(tag, vr, length), length);
  }
}

/**
 * A Part 10 object in Implicit VR Little Endian (preamble, file meta information, data set), streamed out in
 * Explicit VR Little Endian: the header's Transfer Syntax UID says so (and its group length is recomputed), the
 * data set goes through toExplicitVrLittleEndian.
 */
export async function* explicitPart10(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  const { meta, rest } = await fileMetaAs(it, TransferSyntax.ExplicitVRLittleEndian, EXPLICIT_NAME);
  yield meta;
  yield* toExplicitVrLittleEndian(
    (async function* () {
      if (rest.length) yield rest;
      for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
    })(),
  );
}

/** A file meta element in explicit VR little endian, its text padded to even length (UI with NUL, SH with space). */
function metaElement(tag: number, vr: 'UI' | 'SH', text: string): Buffer {
  const value = Buffer.from(text.length % 2 ? `${text}${vr === 'UI' ? '\0' : ' '}` : text, 'latin1');
  return Buffer.concat([explicitHeader(tag, vr, value.length), value]);
}

/**
 * The preamble and file meta information of a Part 10 object read from `it`, written anew (the one place every
 * conversion writes it: implicit to explicit VR, inflated, big endian to little endian): naming
 * `transferSyntaxUid`, and Custos as the implementation that wrote the new encoding (PS3.10 §7.1: Implementation
 * Class UID and Version Name; until 6 Dec 2026 the implicit VR and deflated conversions kept the sender's), its
 * group length recomputed. Returns it and the bytes read beyond it (the data set's first).
 */
export async function fileMetaAs(
  it: AsyncIterator<Buffer>,
  transferSyntaxUid: string,
  to: string,
): Promise<{ meta: Buffer; rest: Buffer }> {
  // The preamble and header are read here; what comes after them goes on to the data set's converter.
  let head = Buffer.alloc(0);
  const more = async () => {
    const n = await it.next();
    if (n.done) throw unconvertible('the object ends inside its file meta information', to);
    head = Buffer.concat([head, n.value]);
  };
  while (head.length < 132 + 12) await more();
  if (head.toString('latin1', 128, 132) !== 'DICM') throw unconvertible('no Part 10 preamble', to);
  const elements: { tag: number; bytes: Buffer }[] = [
    { tag: 0x00020010, bytes: metaElement(0x00020010, 'UI', transferSyntaxUid) },
    { tag: 0x00020012, bytes: metaElement(0x00020012, 'UI', FILE_IMPLEMENTATION_CLASS_UID) },
    { tag: 0x00020013, bytes: metaElement(0x00020013, 'SH', IMPLEMENTATION_VERSION_NAME) },
  ];
  const rewritten = new Set([0x00020000, ...elements.map((e) => e.tag)]);
  let at = 132;
  for (;;) {
    while (head.length < at + 8) await more();
    if (head.readUInt16LE(at) !== 0x0002) break;
    const tag = ((0x0002 << 16) | head.readUInt16LE(at + 2)) >>> 0;
    const vr = head.toString('latin1', at + 4, at + 6);
    const long = LONG_VRS.has(vr);
    if (long) while (head.length < at + 12) await more();
    const length = long ? head.readUInt32LE(at + 8) : head.readUInt16LE(at + 6);
    const size = (long ? 12 : 8) + length;
    while (head.length < at + size) await more();
    if (!rewritten.has(tag)) elements.push({ tag, bytes: head.subarray(at, at + size) });
    at += size;
  }
  const meta = Buffer.concat(elements.sort((a, b) => a.tag - b.tag).map((e) => e.bytes));
  const groupLength = explicitHeader(0x00020000, 'UL', 4);
  const value = Buffer.alloc(4);
  value.writeUInt32LE(meta.length);
  return { meta: Buffer.concat([head.subarray(0, 132), groupLength, value, meta]), rest: head.subarray(at) };
}
