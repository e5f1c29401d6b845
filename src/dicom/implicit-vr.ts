// Explicit VR Little Endian data set → Implicit VR Little Endian, streamed. Implicit VR Little Endian is the
// DICOM default transfer syntax that every application entity supports (PS3.5 §10.1); an archive that stored an
// object in Explicit VR Little Endian sends it so to a C-MOVE destination or C-GET requestor that accepts nothing
// else. The values are the same bytes in both: only element headers change (PS3.5 §7.1.2, §7.1.3).
import { CustosError } from '../domain/errors.js';
import { LONG_VRS } from './dataset.js';
import { tagToHex } from './tags.js';

const ITEM = 0xfffee000;
const ITEM_END = 0xfffee00d;
const SEQUENCE_END = 0xfffee0dd;
const UNDEFINED = 0xffffffff;
/** Values up to this size are copied whole; larger ones (pixel data) go through in the pieces they came in. */
const SMALL = 64 * 1024;

const unconvertible = (message: string) =>
  new CustosError({
    code: 'dicom.cannot-convert',
    message: `cannot send as Implicit VR Little Endian: ${message}`,
  });

/** Reads a byte stream in exact amounts without holding more than one incoming piece beyond what is asked. */
class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  /** Bytes consumed so far. */
  pos = 0;
  constructor(source: AsyncIterable<Buffer>) {
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
      throw unconvertible(`the data set ends inside an element (at byte ${this.pos})`);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.pos += n;
    return out;
  }
  /** `n` bytes as they come, in pieces. */
  async *pass(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.buf.length === 0 && !(await this.fill(1)))
        throw unconvertible(`the data set ends inside a value (at byte ${this.pos})`);
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

/**
 * The data set (no file meta information) of an Explicit VR Little Endian object, encoded as Implicit VR Little
 * Endian. Sequences and items of defined length become undefined length with their delimiters, because element
 * headers of the long form are 4 bytes shorter in implicit VR and would change the lengths around them; group
 * length elements (gggg,0000), retired in the data set and wrong after that change, are left out. A UN value of
 * undefined length holds implicit VR already and is copied. Any other value of undefined length (encapsulated
 * pixel data, which a native object never has) or a data set cut short fails the stream with
 * `dicom.cannot-convert`.
 */
export async function* toImplicitVrLittleEndian(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const r = new Reader(source);
  /** Where each open container of defined length ends in the input, and what closes it in the output. */
  const ends: { at: number; close: number }[] = [];
  /**
   * Inside a UN value of undefined length, whose content is already in Implicit VR Little Endian (PS3.5 §6.2.2):
   * the elements of undefined length (items, sequences) not yet closed by their delimiters. Copied as they are.
   */
  let raw = 0;
  for (;;) {
    if (raw > 0) {
      const h = await r.take(8);
      const tag = ((h.readUInt16LE(0) << 16) | h.readUInt16LE(2)) >>> 0;
      const length = h.readUInt32LE(4);
      yield h;
      if (tag === ITEM_END || tag === SEQUENCE_END) raw--;
      else if (length === UNDEFINED) raw++;
      else yield* r.pass(length);
      continue;
    }
    while (ends.length && r.pos >= ends.at(-1)!.at) {
      if (r.pos > ends.at(-1)!.at)
        throw unconvertible(`an element runs past the end of its item (at byte ${r.pos})`);
      yield header(ends.pop()!.close, 0);
    }
    if (!(await r.fill(8))) {
      if (ends.length) throw unconvertible('the data set ends inside a sequence');
      if (await r.fill(1)) throw unconvertible(`the data set ends inside an element (at byte ${r.pos})`);
      return;
    }
    const h = await r.take(8);
    const tag = ((h.readUInt16LE(0) << 16) | h.readUInt16LE(2)) >>> 0;
    if (tag === ITEM || tag === ITEM_END || tag === SEQUENCE_END) {
      const length = h.readUInt32LE(4);
      if (tag === ITEM && length !== UNDEFINED) {
        yield header(ITEM, UNDEFINED);
        ends.push({ at: r.pos + length, close: ITEM_END });
      } else yield h;
      continue;
    }
    const vr = h.toString('latin1', 4, 6);
    let length: number;
    if (LONG_VRS.has(vr)) length = (await r.take(4)).readUInt32LE(0);
    else length = h.readUInt16LE(6);
    if (vr === 'SQ') {
      yield header(tag, UNDEFINED);
      if (length !== UNDEFINED) ends.push({ at: r.pos + length, close: SEQUENCE_END });
      continue;
    }
    if (length === UNDEFINED) {
      if (vr !== 'UN') throw unconvertible(`(${tagToHex(tag)}) ${vr} has undefined length`);
      yield header(tag, UNDEFINED);
      raw = 1;
      continue;
    }
    if ((tag & 0xffff) === 0) {
      for await (const piece of r.pass(length)) void piece; // a group length: dropped
      continue;
    }
    if (length <= SMALL) {
      yield Buffer.concat([header(tag, length), await r.take(length)]);
      continue;
    }
    yield header(tag, length);
    yield* r.pass(length);
  }
}
