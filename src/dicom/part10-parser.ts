import { createInflateRaw, type InflateRaw } from 'node:zlib';
import { CustosError, DicomStatus } from '../domain/errors.js';
import { textDecoding, type TextDecoding } from './charset.js';
import {
  BINARY_VRS,
  CHARSET_VRS,
  KNOWN_VRS,
  LONG_VRS,
  TEXT_VRS,
  UNSPLIT_VRS,
  getNumber,
  getString,
  type Dataset,
  type Element,
} from './dataset.js';
import { lookupTag } from './dictionary.js';
import { Tags, TransferSyntax, tagToHex } from './tags.js';

export interface ParserOptions {
  /** Binary values larger than this are recorded as bulk references and not buffered (default 256 KiB). */
  maxInlineValueBytes?: number;
  /** Most bytes of inline values held for one object before it is refused (default 64 MiB). */
  maxHeaderBytes?: number;
  /** Accept a dataset without the 128-byte preamble and DICM prefix (default false). */
  allowNoPreamble?: boolean;
  /** Deepest sequence nesting accepted (default 32). */
  maxDepth?: number;
}

export interface PixelDataInfo {
  tag: number;
  vr: string;
  /** Absolute offset of the value (for deflated objects: in the inflated dataset stream). */
  offset: number;
  /** Value length; -1 for encapsulated (undefined length). */
  length: number;
  encapsulated: boolean;
  basicOffsetTable?: number[];
  fragments?: { offset: number; length: number }[];
  deflated: boolean;
}

export interface ParsedPart10 {
  fileMeta: Dataset;
  dataset: Dataset;
  transferSyntaxUid: string;
  /** Total bytes of the stored object. */
  byteLength: number;
  /** Where the dataset starts after the file meta group. */
  datasetStart: number;
  deflated: boolean;
  pixelData?: PixelDataInfo;
  warnings: string[];
}

const UNDEFINED = 0xffffffff;
const PIXEL_TAGS = new Set<number>([Tags.PixelData, Tags.FloatPixelData, Tags.DoubleFloatPixelData]);

const fail = (code: string, message: string, offset?: number) =>
  new CustosError({
    code: `dicom.${code}`,
    message: offset === undefined ? message : `${message} (at byte ${offset})`,
    httpStatus: 400,
    dicomStatus: DicomStatus.CannotUnderstand,
    ...(offset === undefined ? {} : { detail: { offset } }),
  });

/** Bytes received but not yet parsed, as a list of chunks; `position` counts bytes consumed since the start. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0;
  buffered = 0;
  position = 0;
  ended = false;

  push(b: Buffer) {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.buffered += b.length;
  }

  /** The next n bytes (n <= buffered), copied only when they span chunks. */
  peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let i = 0;
    let off = this.head;
    while (filled < n) {
      const c = this.chunks[i++]!;
      const k = Math.min(n - filled, c.length - off);
      c.copy(out, filled, off, off + k);
      filled += k;
      off = 0;
    }
    return out;
  }

  take(n: number): Buffer {
    const b = this.peek(n);
    this.drop(n);
    return b;
  }

  drop(n: number) {
    this.buffered -= n;
    this.position += n;
    while (n > 0) {
      const c = this.chunks[0]!;
      const avail = c.length - this.head;
      if (avail > n) {
        this.head += n;
        return;
      }
      n -= avail;
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** Everything buffered (used when switching to the deflated stream). */
  drain(): Buffer[] {
    const out = this.chunks.map((c, i) => (i === 0 ? c.subarray(this.head) : c));
    this.position += this.buffered;
    this.chunks = [];
    this.head = 0;
    this.buffered = 0;
    return out;
  }
}

interface Ctx {
  q: ByteQueue;
  explicit: boolean;
  little: boolean;
  text: TextDecoding;
}

/**
 * Streaming DICOM Part 10 parser (PS3.10 §7, PS3.5 §7). Push bytes with write(); the parser keeps only what it
 * has not parsed yet, skips pixel data and large binary values without buffering them, and records where they
 * are. end() returns the header, or throws a CustosError whose code starts with `dicom.`.
 */
export class Part10Parser {
  private readonly raw = new ByteQueue();
  private data: ByteQueue = this.raw;
  private inflater: InflateRaw | undefined;
  private inflaterDone: Promise<void> | undefined;
  private waiter: (() => void) | undefined;
  private idle: (() => void) | undefined;
  private finished = false;
  private error: CustosError | undefined;
  private readonly result: Promise<ParsedPart10>;
  private readonly opts: Required<ParserOptions>;
  private headerBytes = 0;
  private lastTopTag = -1;
  private readonly main: Dataset = new Map();
  private readonly warnings: string[] = [];
  bytesSeen = 0;

  constructor(opts: ParserOptions = {}) {
    this.opts = {
      maxInlineValueBytes: opts.maxInlineValueBytes ?? 256 * 1024,
      maxHeaderBytes: opts.maxHeaderBytes ?? 64 * 1024 * 1024,
      allowNoPreamble: opts.allowNoPreamble ?? false,
      maxDepth: opts.maxDepth ?? 32,
    };
    this.result = this.run().then(
      (r) => {
        this.finished = true;
        this.signalIdle();
        return r;
      },
      (err: unknown) => {
        this.finished = true;
        this.error =
          err instanceof CustosError
            ? err
            : fail('malformed', `the object cannot be parsed: ${(err as Error)?.message ?? String(err)}`);
        this.inflater?.destroy();
        this.signalIdle();
        throw this.error;
      },
    );
    this.result.catch(() => undefined);
  }

  /** Feed the next bytes. Resolves once the parser has consumed what it can (bounded memory). */
  async write(chunk: Buffer): Promise<void> {
    if (this.error) throw this.error;
    this.bytesSeen += chunk.length;
    if (this.finished) return;
    if (this.inflater) {
      // A failed inflater may never call back: its error ends the wait as well.
      await Promise.race([
        new Promise<void>((resolve) => this.inflater!.write(chunk, () => resolve())),
        this.inflaterDone,
      ]);
      if (this.error) throw this.error;
    } else {
      this.raw.push(chunk);
    }
    await this.pump();
    if (this.error) throw this.error;
  }

  async end(): Promise<ParsedPart10> {
    if (!this.error && !this.finished) {
      if (this.inflater) {
        this.inflater.end();
        await this.inflaterDone;
      }
      this.data.ended = true;
      this.raw.ended = true;
      await this.pump();
    }
    return this.result;
  }

  /** A top-level text value parsed so far. */
  peekString(tag: number): string | undefined {
    return getString(this.main, tag);
  }

  /** True once the parser is past `tag` in the main dataset, so an absent tag is known to be absent. */
  passed(tag: number): boolean {
    return this.finished || this.lastTopTag > tag;
  }

  private pump(): Promise<void> {
    if (this.finished) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.idle = resolve;
      const w = this.waiter;
      this.waiter = undefined;
      if (w) w();
    });
  }

  private signalIdle() {
    const f = this.idle;
    this.idle = undefined;
    f?.();
  }

  private async need(q: ByteQueue, n: number, what: string): Promise<void> {
    while (q.buffered < n) {
      if (q.ended) throw fail('truncated', `the object ends inside ${what}`, q.position + q.buffered);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        this.signalIdle();
      });
    }
  }

  /** Wait until n bytes are buffered or the stream ended. */
  private async fill(q: ByteQueue, n: number): Promise<void> {
    while (q.buffered < n && !q.ended) {
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        this.signalIdle();
      });
    }
  }

  /** Wait until a byte is buffered or the stream ended; false at the end. */
  private async more(q: ByteQueue): Promise<boolean> {
    while (q.buffered === 0) {
      if (q.ended) return false;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        this.signalIdle();
      });
    }
    return true;
  }

  private async discard(q: ByteQueue, n: number, what: string): Promise<void> {
    while (n > 0) {
      if (q.buffered === 0) await this.need(q, 1, what);
      const k = Math.min(n, q.buffered);
      q.drop(k);
      n -= k;
    }
  }

  private async run(): Promise<ParsedPart10> {
    const q = this.raw;
    // PS3.10 §7.1: 128-byte preamble, then "DICM".
    let hasPreamble = true;
    await this.fill(q, 132);
    const magic = q.buffered >= 132 ? q.peek(132).subarray(128, 132).toString('latin1') : '';
    if (magic !== 'DICM') {
      if (!this.opts.allowNoPreamble || q.buffered < 8) {
        throw fail(
          'bad-preamble',
          `not a DICOM Part 10 object: expected "DICM" after a 128-byte preamble, found ${JSON.stringify(magic || '(too short)')}`,
          128,
        );
      }
      hasPreamble = false;
    } else {
      q.drop(132);
    }

    const meta: Dataset = new Map();
    const metaCtx: Ctx = { q, explicit: true, little: true, text: textDecoding(undefined) };
    let tsUid: string;
    if (hasPreamble || q.peek(2).readUInt16LE(0) === 0x0002) {
      while (await this.more(q)) {
        await this.need(q, 2, 'an element tag');
        if (q.peek(2).readUInt16LE(0) !== 0x0002) break;
        await this.element(metaCtx, meta, undefined, 0, false);
      }
      const ts = getString(meta, Tags.TransferSyntaxUID);
      if (!ts)
        throw fail(
          'missing-transfer-syntax',
          'the file meta information has no Transfer Syntax UID (0002,0010)',
          q.position,
        );
      tsUid = ts;
    } else {
      tsUid = TransferSyntax.ImplicitVRLittleEndian;
      this.warnings.push('no preamble or file meta information: read as implicit VR little endian');
    }
    if (!/^[0-9.]{1,64}$/.test(tsUid))
      throw fail('unsupported-transfer-syntax', `Transfer Syntax UID '${tsUid}' is not a UID`);

    const datasetStart = q.position;
    const deflated = tsUid === TransferSyntax.DeflatedExplicitVRLittleEndian;
    if (deflated) this.startInflating();
    const ctx: Ctx = {
      q: this.data,
      explicit: tsUid !== TransferSyntax.ImplicitVRLittleEndian,
      little: tsUid !== TransferSyntax.ExplicitVRBigEndian,
      text: textDecoding(undefined),
    };
    let pixelData: PixelDataInfo | undefined;
    while (await this.more(ctx.q)) {
      const el = await this.element(ctx, this.main, undefined, 0, true);
      if (el && PIXEL_TAGS.has(el.tag) && !pixelData) {
        const e = el.element;
        if (e.kind === 'encapsulated') {
          pixelData = {
            tag: el.tag,
            vr: e.vr,
            offset: e.offset,
            length: -1,
            encapsulated: true,
            basicOffsetTable: e.basicOffsetTable,
            fragments: e.fragments,
            deflated,
          };
        } else if (e.kind === 'bulk') {
          pixelData = {
            tag: el.tag,
            vr: e.vr,
            offset: e.offset,
            length: e.length,
            encapsulated: false,
            deflated,
          };
        } else if (e.kind === 'bytes') {
          pixelData = {
            tag: el.tag,
            vr: e.vr,
            offset: el.valueOffset,
            length: e.data.length,
            encapsulated: false,
            deflated,
          };
        }
      }
    }
    if (deflated && this.raw.buffered > 0)
      this.warnings.push('bytes after the end of the deflated dataset were ignored');
    return {
      fileMeta: meta,
      dataset: this.main,
      transferSyntaxUid: tsUid,
      byteLength: this.bytesSeen,
      datasetStart,
      deflated,
      ...(pixelData ? { pixelData } : {}),
      warnings: this.warnings,
    };
  }

  private startInflating() {
    const inflated = new ByteQueue();
    const inflater = createInflateRaw();
    this.inflater = inflater;
    this.data = inflated;
    inflater.on('data', (d: Buffer) => {
      inflated.push(d);
      const w = this.waiter;
      this.waiter = undefined;
      w?.();
    });
    this.inflaterDone = new Promise<void>((resolve) => {
      inflater.on('end', () => resolve());
      inflater.on('close', () => resolve());
      inflater.on('error', (err) => {
        this.error ??= fail('bad-deflate', `the deflated dataset cannot be inflated: ${err.message}`);
        inflated.ended = true;
        const w = this.waiter;
        this.waiter = undefined;
        w?.();
        resolve();
      });
    });
    for (const c of this.raw.drain()) inflater.write(c);
  }

  private u16(ctx: Ctx, b: Buffer, o: number) {
    return ctx.little ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }
  private u32(ctx: Ctx, b: Buffer, o: number) {
    return ctx.little ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }

  /**
   * Parse one element into `ds`. Returns undefined when an item delimiter ended the enclosing item.
   * `end` bounds a defined-length enclosing item.
   */
  private async element(
    ctx: Ctx,
    ds: Dataset,
    end: number | undefined,
    depth: number,
    top: boolean,
  ): Promise<{ tag: number; element: Element; valueOffset: number } | undefined> {
    const { q } = ctx;
    const start = q.position;
    await this.need(q, 8, 'an element header');
    let head = q.peek(8);
    const group = this.u16(ctx, head, 0);
    const elem = this.u16(ctx, head, 2);
    const tag = ((group << 16) | elem) >>> 0;
    if (group === 0xfffe) {
      if (tag === Tags.ItemDelimitationItem) {
        q.drop(8);
        return undefined;
      }
      throw fail('bad-structure', `unexpected ${tagToHex(tag)} inside a dataset`, start);
    }
    let vr: string;
    let length: number;
    let headerLen: number;
    if (ctx.explicit) {
      vr = head.toString('latin1', 4, 6);
      if (!KNOWN_VRS.has(vr))
        throw fail(
          'bad-vr',
          `element (${tagToHex(tag).slice(0, 4)},${tagToHex(tag).slice(4)}) has an invalid VR ${JSON.stringify(vr)}`,
          start + 4,
        );
      if (LONG_VRS.has(vr)) {
        await this.need(q, 12, 'an element header');
        head = q.peek(12);
        length = this.u32(ctx, head, 8);
        headerLen = 12;
      } else {
        length = this.u16(ctx, head, 6);
        headerLen = 8;
      }
    } else {
      length = this.u32(ctx, head, 4);
      headerLen = 8;
      vr = implicitVr(tag);
      // PS3.5 §8.2: implicit VR pixel data is OW unless 8 bits are allocated.
      if (tag === Tags.PixelData) vr = (getNumber(this.main, Tags.BitsAllocated) ?? 16) > 8 ? 'OW' : 'OB';
    }
    const valueOffset = start + headerLen;
    if (top) {
      if (tag <= this.lastTopTag) this.warnings.push(`element ${tagToHex(tag)} is out of ascending order`);
      this.lastTopTag = Math.max(this.lastTopTag, tag);
    }
    if (length !== UNDEFINED && end !== undefined && valueOffset + length > end) {
      throw fail(
        'bad-length',
        `element ${tagToHex(tag)} declares ${length} bytes, more than its enclosing item holds`,
        start,
      );
    }
    q.drop(headerLen);

    let element: Element;
    if (length === UNDEFINED) {
      if (PIXEL_TAGS.has(tag) && depth === 0 && vr !== 'SQ') {
        element = await this.encapsulated(ctx, vr, valueOffset);
      } else if (vr === 'SQ' || vr === 'UN') {
        // PS3.5 §6.2.2: UN with undefined length holds an implicit VR little endian sequence.
        const itemCtx: Ctx = vr === 'UN' ? { ...ctx, explicit: false, little: true } : ctx;
        element = { vr: 'SQ', kind: 'sequence', items: await this.items(itemCtx, undefined, depth + 1) };
      } else {
        throw fail(
          'bad-length',
          `element ${tagToHex(tag)} (${vr}) has an undefined length, which only sequences and pixel data may have`,
          start,
        );
      }
    } else if (vr === 'SQ') {
      element = { vr: 'SQ', kind: 'sequence', items: await this.items(ctx, valueOffset + length, depth + 1) };
    } else if (
      (PIXEL_TAGS.has(tag) && depth === 0) ||
      ((BINARY_VRS.has(vr) || vr === 'UT') && length > this.opts.maxInlineValueBytes)
    ) {
      await this.discard(q, length, `the value of ${tagToHex(tag)}`);
      element = { vr, kind: 'bulk', offset: valueOffset, length };
    } else {
      this.headerBytes += length;
      if (this.headerBytes > this.opts.maxHeaderBytes) {
        throw new CustosError({
          code: 'dicom.header-too-large',
          message: `the header exceeds ${this.opts.maxHeaderBytes} bytes of values (at element ${tagToHex(tag)})`,
          httpStatus: 413,
          dicomStatus: DicomStatus.OutOfResources,
        });
      }
      await this.need(q, length, `the value of ${tagToHex(tag)}`);
      element = this.decode(ctx, tag, vr, q.take(length), start);
      if (tag === Tags.SpecificCharacterSet && element.kind === 'text') {
        ctx.text = textDecoding(element.values);
        if (ctx.text.warning && !this.warnings.includes(ctx.text.warning))
          this.warnings.push(ctx.text.warning);
      }
    }
    ds.set(tag, element);
    return { tag, element, valueOffset };
  }

  private async items(ctx: Ctx, end: number | undefined, depth: number): Promise<Dataset[]> {
    if (depth > this.opts.maxDepth)
      throw fail('too-deep', `sequences are nested more than ${this.opts.maxDepth} deep`, ctx.q.position);
    const { q } = ctx;
    const items: Dataset[] = [];
    for (;;) {
      if (end !== undefined && q.position >= end) {
        if (q.position > end)
          throw fail('bad-length', 'a sequence item runs past the end of its sequence', q.position);
        return items;
      }
      const start = q.position;
      await this.need(q, 8, 'a sequence item');
      const h = q.peek(8);
      const tag = ((this.u16(ctx, h, 0) << 16) | this.u16(ctx, h, 2)) >>> 0;
      const length = this.u32(ctx, h, 4);
      if (tag === Tags.SequenceDelimitationItem) {
        q.drop(8);
        if (end !== undefined) this.warnings.push('sequence delimiter inside a defined-length sequence');
        return items;
      }
      if (tag !== Tags.Item)
        throw fail('bad-structure', `expected a sequence item, found ${tagToHex(tag)}`, start);
      if (length !== UNDEFINED && end !== undefined && start + 8 + length > end) {
        throw fail(
          'bad-length',
          `a sequence item declares ${length} bytes, more than its sequence holds`,
          start,
        );
      }
      q.drop(8);
      const item: Dataset = new Map();
      const itemCtx: Ctx = { ...ctx };
      if (length === UNDEFINED) {
        while ((await this.element(itemCtx, item, end, depth, false)) !== undefined) {
          /* until the item delimiter */
        }
      } else {
        const itemEnd = start + 8 + length;
        while (q.position < itemEnd) {
          if ((await this.element(itemCtx, item, itemEnd, depth, false)) === undefined) {
            this.warnings.push('item delimiter inside a defined-length item');
          }
        }
      }
      items.push(item);
    }
  }

  private async encapsulated(ctx: Ctx, vr: string, offset: number): Promise<Element> {
    const { q } = ctx;
    const fragments: { offset: number; length: number }[] = [];
    let basicOffsetTable: number[] | undefined;
    for (;;) {
      const start = q.position;
      await this.need(q, 8, 'encapsulated pixel data');
      const h = q.take(8);
      const tag = ((h.readUInt16LE(0) << 16) | h.readUInt16LE(2)) >>> 0;
      const length = h.readUInt32LE(4);
      if (tag === Tags.SequenceDelimitationItem) break;
      if (tag !== Tags.Item)
        throw fail('bad-structure', `expected a pixel data fragment item, found ${tagToHex(tag)}`, start);
      if (length === UNDEFINED)
        throw fail('bad-length', 'a pixel data fragment has an undefined length', start);
      if (basicOffsetTable === undefined) {
        // PS3.5 A.4: the first item is the Basic Offset Table (possibly empty).
        if (length % 4 !== 0)
          throw fail('bad-length', `the Basic Offset Table length ${length} is not a multiple of 4`, start);
        if (length > this.opts.maxInlineValueBytes * 16)
          throw fail('bad-length', `the Basic Offset Table of ${length} bytes is implausibly large`, start);
        await this.need(q, length, 'the Basic Offset Table');
        const b = q.take(length);
        basicOffsetTable = [];
        for (let i = 0; i < length; i += 4) basicOffsetTable.push(b.readUInt32LE(i));
        continue;
      }
      fragments.push({ offset: q.position, length });
      await this.discard(q, length, 'a pixel data fragment');
    }
    return { vr, kind: 'encapsulated', offset, basicOffsetTable: basicOffsetTable ?? [], fragments };
  }

  private decode(ctx: Ctx, tag: number, vr: string, b: Buffer, at: number): Element {
    if (TEXT_VRS.has(vr)) {
      let s = CHARSET_VRS.has(vr) ? ctx.text.decode(b) : b.toString('latin1');
      s = s.replace(/[\0 ]+$/, '');
      const values = UNSPLIT_VRS.has(vr) ? [s] : s.split('\\');
      return {
        vr,
        kind: 'text',
        values: UNSPLIT_VRS.has(vr) || vr === 'PN' ? values : values.map((v) => v.trim()),
      };
    }
    const size =
      vr === 'US' || vr === 'SS'
        ? 2
        : vr === 'UL' || vr === 'SL' || vr === 'FL' || vr === 'AT'
          ? 4
          : vr === 'FD' || vr === 'SV' || vr === 'UV'
            ? 8
            : 0;
    if (size === 0) return { vr, kind: 'bytes', data: Buffer.from(b) };
    if (b.length % size !== 0) {
      throw fail(
        'bad-length',
        `element ${tagToHex(tag)} (${vr}) has length ${b.length}, not a multiple of ${size}`,
        at,
      );
    }
    const n = b.length / size;
    const le = ctx.little;
    if (vr === 'AT') {
      const values: number[] = [];
      for (let i = 0; i < n; i++) {
        const g = le ? b.readUInt16LE(i * 4) : b.readUInt16BE(i * 4);
        const e = le ? b.readUInt16LE(i * 4 + 2) : b.readUInt16BE(i * 4 + 2);
        values.push(((g << 16) | e) >>> 0);
      }
      return { vr: 'AT', kind: 'tags', values };
    }
    if (vr === 'SV' || vr === 'UV') {
      const values: bigint[] = [];
      for (let i = 0; i < n; i++) {
        const o = i * 8;
        values.push(
          vr === 'SV'
            ? le
              ? b.readBigInt64LE(o)
              : b.readBigInt64BE(o)
            : le
              ? b.readBigUInt64LE(o)
              : b.readBigUInt64BE(o),
        );
      }
      return { vr, kind: 'bigints', values };
    }
    const values: number[] = [];
    for (let i = 0; i < n; i++) {
      const o = i * size;
      switch (vr) {
        case 'US':
          values.push(le ? b.readUInt16LE(o) : b.readUInt16BE(o));
          break;
        case 'SS':
          values.push(le ? b.readInt16LE(o) : b.readInt16BE(o));
          break;
        case 'UL':
          values.push(le ? b.readUInt32LE(o) : b.readUInt32BE(o));
          break;
        case 'SL':
          values.push(le ? b.readInt32LE(o) : b.readInt32BE(o));
          break;
        case 'FL':
          values.push(le ? b.readFloatLE(o) : b.readFloatBE(o));
          break;
        default:
          values.push(le ? b.readDoubleLE(o) : b.readDoubleBE(o));
      }
    }
    return { vr, kind: 'numbers', values };
  }
}

/** VR of an element in an implicit VR dataset (PS3.5 §7.1.3): from the dictionary; private creators are LO. */
function implicitVr(tag: number): string {
  const group = tag >>> 16;
  const elem = tag & 0xffff;
  if (group % 2 === 1 && elem >= 0x10 && elem <= 0xff) return 'LO';
  if (group % 2 === 1 && elem === 0) return 'UL';
  if (group % 2 === 1) return 'UN';
  const vr = lookupTag(tag)?.vr;
  return vr && KNOWN_VRS.has(vr) ? vr : 'UN';
}

/** Parse a whole object from a buffer or a byte stream. */
export async function parsePart10(
  input: Buffer | AsyncIterable<Buffer>,
  opts?: ParserOptions,
): Promise<ParsedPart10> {
  const parser = new Part10Parser(opts);
  if (Buffer.isBuffer(input)) {
    await parser.write(input);
  } else {
    for await (const chunk of input) await parser.write(chunk);
  }
  return parser.end();
}

export { getString } from './dataset.js';
