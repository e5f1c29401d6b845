import { createInflateRaw, type InflateRaw } from 'node:zlib';
import type { Fragment } from './dataset.js';
import { CustosError, DicomStatus } from '../domain/errors.js';
import { textDecoding, type TextDecoding } from './charset.js';
import {
  CHARSET_VRS,
  KNOWN_VRS,
  LONG_VRS,
  TEXT_VRS,
  UNSPLIT_VRS,
  getNumber,
  getString,
  isUnknownVr,
  type Dataset,
  type Element,
} from './dataset.js';
import { lookupTag, tagLabel } from './dictionary.js';
import { Tags, TransferSyntax } from './tags.js';
import { transferSyntaxEncoding } from './transfer-syntax.js';

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
  /** Absolute offsets of each fragment's bytes (after its item header) and their lengths. */
  fragments?: Fragment[];
  deflated: boolean;
}

export interface ParsedPart10 {
  fileMeta: Dataset;
  dataset: Dataset;
  transferSyntaxUid: string;
  /** Total bytes of the stored object. */
  byteLength: number;
  /**
   * Where the dataset starts after the file meta group. For a deflated object, offsets in the dataset count
   * from here in the inflated stream: offset = datasetStart + position in the inflated bytes.
   */
  datasetStart: number;
  deflated: boolean;
  pixelData?: PixelDataInfo;
  warnings: string[];
}

const UNDEFINED = 0xffffffff;
const PIXEL_TAGS = new Set<number>([Tags.PixelData, Tags.FloatPixelData, Tags.DoubleFloatPixelData]);
/** Inflated bytes held ahead of the parser before the inflater is paused (deflate expands up to ~1000x). */
const INFLATE_HIGH_WATER = 1024 * 1024;

const fail = (code: string, message: string, offset?: number) =>
  new CustosError({
    code: `dicom.${code}`,
    message: offset === undefined ? message : `${message} (at byte ${offset})`,
    httpStatus: 400,
    dicomStatus: DicomStatus.CannotUnderstand,
    ...(offset === undefined ? {} : { detail: { offset } }),
  });

/** Whether `length` bytes from `start` run past `limit`, the end of the enclosing item or sequence (if any). */
const past = (start: number, length: number, limit: number | undefined) =>
  limit !== undefined && start + length > limit;

const label = tagLabel;

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
    if (n === 0) return Buffer.alloc(0);
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
  /**
   * Pixel Representation (0028,0103) is 1 in this data set or item (an item without its own takes its enclosing
   * data set's): the implicit VR of the "US or SS" attributes is then SS.
   */
  signedPixels: boolean;
}

interface Parsed {
  tag: number;
  element: Element;
  valueOffset: number;
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
  private bytes = 0;

  constructor(opts: ParserOptions = {}) {
    this.opts = {
      maxInlineValueBytes: opts.maxInlineValueBytes ?? 256 * 1024,
      maxHeaderBytes: opts.maxHeaderBytes ?? 64 * 1024 * 1024,
      allowNoPreamble: opts.allowNoPreamble ?? false,
      maxDepth: opts.maxDepth ?? 32,
    };
    this.result = this.run().then(
      (r) => {
        this.finish();
        return r;
      },
      (err: unknown) => {
        // Anything but a CustosError here is a parser defect; it still ends as a dicom.* error for the caller.
        this.error =
          err instanceof CustosError
            ? err
            : fail('parser-fault', `the object cannot be parsed: ${(err as Error)?.message ?? String(err)}`);
        this.finish();
        throw this.error;
      },
    );
    this.result.catch(() => undefined);
  }

  /** Bytes written so far. */
  get bytesSeen(): number {
    return this.bytes;
  }

  /** Feed the next bytes. Resolves once the parser has consumed what it can (bounded memory). */
  async write(chunk: Buffer): Promise<void> {
    if (this.error) throw this.error;
    this.bytes += chunk.length;
    // Bytes after the end of the dataset (e.g. past a deflate stream's end) are counted, not parsed.
    if (this.finished) return;
    if (this.inflater) {
      // The write callback comes once zlib has taken the chunk; a failed inflater may never call back, so its
      // end is awaited as well.
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
        if (!this.inflater.writableEnded) this.inflater.end();
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

  private finish() {
    this.finished = true;
    // Whatever zlib still holds after the dataset ended is trailing data.
    this.inflater?.destroy();
    this.signalIdle();
  }

  private pump(): Promise<void> {
    if (this.finished) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.idle = resolve;
      this.wake();
    });
  }

  private wake() {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private signalIdle() {
    const f = this.idle;
    this.idle = undefined;
    f?.();
  }

  /** Park the parser until more bytes arrive (or the input ends). */
  private wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiter = resolve;
      if (this.inflater?.isPaused()) this.inflater.resume();
      this.signalIdle();
    });
  }

  private async need(q: ByteQueue, n: number, what: string): Promise<void> {
    while (q.buffered < n) {
      if (q.ended)
        throw this.error ?? fail('truncated', `the object ends inside ${what}`, q.position + q.buffered);
      await this.wait();
    }
  }

  /** Wait until n bytes are buffered or the stream ended. */
  private async fill(q: ByteQueue, n: number): Promise<void> {
    while (q.buffered < n && !q.ended) await this.wait();
  }

  /** Wait until a byte is buffered or the stream ended; false at the end. */
  private async more(q: ByteQueue): Promise<boolean> {
    while (q.buffered === 0) {
      if (q.ended) return false;
      await this.wait();
    }
    return true;
  }

  /** Skip n bytes; `what` names them in the error if the object ends first. */
  private async discard(q: ByteQueue, n: number, what: () => string): Promise<void> {
    while (n > 0) {
      if (q.buffered === 0) await this.need(q, 1, what());
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
          `not a DICOM Part 10 object: expected "DICM" after a 128-byte preamble, found ${
            magic ? JSON.stringify(magic) : `only ${q.buffered} bytes`
          }`,
          128,
        );
      }
      hasPreamble = false;
    } else {
      q.drop(132);
    }

    const meta: Dataset = new Map();
    const metaCtx: Ctx = {
      q,
      explicit: true,
      little: true,
      text: textDecoding(undefined),
      signedPixels: false,
    };
    let tsUid: string;
    if (hasPreamble || q.peek(2).readUInt16LE(0) === 0x0002) {
      // PS3.10 §7.1: the file meta information is explicit VR little endian whatever the transfer syntax.
      let metaEnd: number | undefined;
      // A second copy of the header inside the data set (a sender that wrote its file's meta group over the
      // network): the first occurrence of each element is the header, the repeats are set aside and reported.
      const repeated: Dataset = new Map();
      while (await this.more(q)) {
        if (q.buffered < 4) await this.need(q, 4, 'the file meta information');
        const head = q.peek(4);
        if (head.readUInt16LE(0) !== 0x0002) break;
        const tag = ((0x0002 << 16) | head.readUInt16LE(2)) >>> 0;
        // Past the length the group length gave, a group 0002 element is in the data set, in the data set's
        // encoding: Orthanc 1.10 starts an IMAGE-level C-FIND identifier with an empty (0002,0003), in implicit VR
        // on an implicit VR context. Read as the header's explicit VR it failed the whole identifier.
        let ctx = metaCtx;
        if (metaEnd !== undefined && q.position >= metaEnd) {
          const enc = transferSyntaxEncoding(getString(meta, Tags.TransferSyntaxUID) ?? '');
          if (!enc || enc.deflated || !enc.little) break; // read (or refused) with the data set
          if (!enc.explicit) {
            if (q.buffered < 6) await this.need(q, 6, 'an element');
            // A sender's own explicit VR copy of its header stays readable as such (a VR where the length is).
            if (!KNOWN_VRS.has(q.peek(6).toString('latin1', 4, 6))) ctx = { ...metaCtx, explicit: false };
          }
        }
        const el = await this.element(
          ctx,
          meta.has(tag) || ctx !== metaCtx ? repeated : meta,
          undefined,
          0,
          false,
        );
        if (
          !repeated.has(tag) &&
          el?.tag === Tags.FileMetaInformationGroupLength &&
          el.element.kind === 'numbers'
        )
          metaEnd = q.position + (el.element.values[0] ?? 0);
      }
      if (repeated.size)
        this.warnings.push(
          `file meta elements repeated in the data set: ${[...repeated.keys()].map((t) => label(t).split(' ')[0]).join(', ')} ` +
            '(group 0002 belongs in the file meta header only, PS3.10 section 7.1); the first of each was used',
        );
      else if (metaEnd !== undefined && metaEnd !== q.position)
        this.warnings.push(
          `File Meta Information Group Length says the group ends at byte ${metaEnd}, it ends at ${q.position}`,
        );
      const ts = getString(meta, Tags.TransferSyntaxUID);
      if (!ts)
        throw fail(
          'missing-transfer-syntax',
          'the file meta information has no Transfer Syntax UID (0002,0010)',
          q.position,
        );
      tsUid = ts;
    } else {
      // A bare dataset: explicit VR when bytes 4-5 spell a VR (PS3.5 §7.1.2), else implicit VR little endian.
      const head = q.peek(Math.min(q.buffered, 8));
      const explicit = head.length >= 6 && KNOWN_VRS.has(head.toString('latin1', 4, 6));
      tsUid = explicit ? TransferSyntax.ExplicitVRLittleEndian : TransferSyntax.ImplicitVRLittleEndian;
      this.warnings.push(
        `no preamble or file meta information: read as ${explicit ? 'explicit' : 'implicit'} VR little endian`,
      );
    }
    const encoding = transferSyntaxEncoding(tsUid);
    if (!encoding)
      throw fail(
        'unsupported-transfer-syntax',
        `Transfer Syntax UID (0002,0010) '${tsUid}' is not a transfer syntax this archive can read`,
        q.position,
      );

    const datasetStart = q.position;
    const deflated = encoding.deflated;
    if (deflated) this.startInflating(datasetStart);
    const ctx: Ctx = {
      q: this.data,
      explicit: encoding.explicit,
      little: encoding.little,
      text: textDecoding(undefined),
      signedPixels: false,
    };
    let pixelData: PixelDataInfo | undefined;
    while (await this.more(ctx.q)) {
      const el = await this.element(ctx, this.main, undefined, 0, true);
      if (!el) throw fail('bad-structure', 'an item delimiter outside any item', ctx.q.position - 8);
      if (PIXEL_TAGS.has(el.tag) && !pixelData) pixelData = pixelInfo(el, deflated);
    }
    // A failed inflater ends the inflated stream early: that is its error, not a short dataset.
    if (this.error) throw this.error;
    return {
      fileMeta: meta,
      dataset: this.main,
      transferSyntaxUid: tsUid,
      byteLength: this.bytes,
      datasetStart,
      deflated,
      ...(pixelData ? { pixelData } : {}),
      warnings: this.warnings,
    };
  }

  /**
   * PS3.5 A.5: the dataset after the file meta information is one raw deflate stream. Inflated bytes are
   * numbered from `datasetStart` so offsets read like those of the inflated object. The inflater is paused while
   * more than INFLATE_HIGH_WATER bytes wait, so a small input that inflates hugely cannot fill memory.
   */
  private startInflating(datasetStart: number) {
    const inflated = new ByteQueue();
    inflated.position = datasetStart;
    const inflater = createInflateRaw();
    this.inflater = inflater;
    this.data = inflated;
    inflater.on('data', (d: Buffer) => {
      if (this.finished) return;
      inflated.push(d);
      if (inflated.buffered >= INFLATE_HIGH_WATER) inflater.pause();
      this.wake();
    });
    this.inflaterDone = new Promise<void>((resolve) => {
      const ended = () => {
        inflated.ended = true;
        this.wake();
        resolve();
      };
      inflater.on('end', ended);
      inflater.on('close', ended);
      inflater.on('error', (err) => {
        this.error ??= fail('bad-deflate', `the deflated dataset cannot be inflated: ${err.message}`);
        ended();
      });
    });
    for (const c of this.raw.drain()) inflater.write(c);
    // end() may have come before the file meta group was through: the input is already complete.
    if (this.raw.ended) inflater.end();
  }

  private u16(ctx: Ctx, b: Buffer, o: number) {
    return ctx.little ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }
  private u32(ctx: Ctx, b: Buffer, o: number) {
    return ctx.little ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }

  /**
   * The error for `what`, declared at `start` with `length` bytes, running past `limit` (where the enclosing
   * item or sequence ends). Call sites test `past()` first, so that no message is built for a well-formed value.
   */
  private beyond(what: string, start: number, length: number, limit: number | undefined) {
    return fail(
      'bad-length',
      `${what} declares ${length} bytes, more than its enclosing item or sequence holds (it ends at byte ${limit})`,
      start,
    );
  }

  /**
   * Parse one element into `ds`. Returns undefined when an item delimiter ended the enclosing item.
   * `limit` is where the innermost enclosing defined-length item or sequence ends.
   */
  private async element(
    ctx: Ctx,
    ds: Dataset,
    limit: number | undefined,
    depth: number,
    top: boolean,
  ): Promise<Parsed | undefined> {
    const { q } = ctx;
    const start = q.position;
    if (past(start, 8, limit)) throw this.beyond('an element header', start, 8, limit);
    if (q.buffered < 8) await this.need(q, 8, 'an element header');
    let head = q.peek(8);
    const group = this.u16(ctx, head, 0);
    const elem = this.u16(ctx, head, 2);
    const tag = ((group << 16) | elem) >>> 0;
    if (group === 0xfffe) {
      if (tag === Tags.ItemDelimitationItem && depth > 0) {
        q.drop(8);
        return undefined;
      }
      throw fail('bad-structure', `unexpected ${label(tag)} inside a dataset`, start);
    }
    let vr: string;
    let length: number;
    let headerLen: number;
    /** The header itself says UN (not a VR this archive does not know, read as UN). */
    let declaredUn = false;
    if (ctx.explicit) {
      vr = head.toString('latin1', 4, 6);
      declaredUn = vr === 'UN';
      if (isUnknownVr(vr)) {
        this.warnOnce(
          `element ${label(tag)} has the VR ${JSON.stringify(vr)}, which this archive does not know: read as UN (PS3.5 section 6.2)`,
        );
        vr = 'UN';
      } else if (!KNOWN_VRS.has(vr))
        throw fail('bad-vr', `element ${label(tag)} has an invalid VR ${JSON.stringify(vr)}`, start + 4);
      if (LONG_VRS.has(vr)) {
        if (past(start, 12, limit)) throw this.beyond(`element ${label(tag)}`, start, 12, limit);
        if (q.buffered < 12) await this.need(q, 12, `the header of ${label(tag)}`);
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
      vr = implicitVr(tag, ctx.signedPixels);
      // PS3.5 §8.2: implicit VR pixel data is OW unless 8 bits are allocated.
      if (tag === Tags.PixelData) vr = (getNumber(this.main, Tags.BitsAllocated) ?? 16) > 8 ? 'OW' : 'OB';
    }
    const valueOffset = start + headerLen;
    if (top) {
      if (tag <= this.lastTopTag) this.warnings.push(`element ${label(tag)} is out of ascending order`);
      this.lastTopTag = Math.max(this.lastTopTag, tag);
    }
    if (length !== UNDEFINED) {
      if (past(valueOffset, length, limit))
        throw this.beyond(`element ${label(tag)}`, valueOffset, length, limit);
      if (length % 2 === 1)
        this.warnOnce(`element ${label(tag)} has an odd length ${length} (PS3.5 section 7.1.1)`);
    }
    q.drop(headerLen);

    let element: Element;
    if (length === UNDEFINED) {
      if (PIXEL_TAGS.has(tag) && vr !== 'SQ') {
        element = await this.encapsulated(ctx, tag, vr, valueOffset, limit);
      } else if (vr === 'SQ' || vr === 'UN' || !ctx.explicit) {
        // PS3.5 §6.2.2: UN with undefined length holds an implicit VR little endian sequence; in an implicit VR
        // dataset only a sequence can have an undefined length (PS3.5 §7.5.1).
        const itemCtx: Ctx = vr === 'UN' ? { ...ctx, explicit: false, little: true } : ctx;
        element = {
          vr: 'SQ',
          kind: 'sequence',
          items: await this.items(itemCtx, tag, undefined, limit, depth + 1),
        };
      } else {
        throw fail(
          'bad-length',
          `element ${label(tag)} (${vr}) has an undefined length, which only sequences and pixel data may have`,
          start,
        );
      }
    } else if (vr === 'SQ') {
      const end = valueOffset + length;
      element = { vr: 'SQ', kind: 'sequence', items: await this.items(ctx, tag, end, end, depth + 1) };
    } else if (
      (PIXEL_TAGS.has(tag) && depth === 0) ||
      (LONG_VRS.has(vr) && length > this.opts.maxInlineValueBytes)
    ) {
      await this.discard(q, length, () => `the value of ${label(tag)}`);
      element = { vr, kind: 'bulk', offset: valueOffset, length };
    } else {
      this.count(length, tag);
      if (q.buffered < length) await this.need(q, length, `the value of ${label(tag)}`);
      // PS3.5 §6.2.2: a UN value is implicit VR little endian, which a receiver that knows the attribute may decode
      // (a router that does not know BodyPartExamined sends it as UN). The stored bytes stay as they are.
      const known = declaredUn ? vrOfUnknownValue(tag, length) : undefined;
      element = known
        ? this.decode({ ...ctx, little: true }, tag, known, q.take(length), valueOffset)
        : this.decode(ctx, tag, vr, q.take(length), valueOffset);
      if (tag === Tags.SpecificCharacterSet && element.kind === 'text') {
        ctx.text = textDecoding(element.values);
        if (ctx.text.warning) this.warnOnce(ctx.text.warning);
      }
      if (tag === Tags.PixelRepresentation && element.kind === 'numbers')
        ctx.signedPixels = element.values[0] === 1;
    }
    ds.set(tag, element);
    return { tag, element, valueOffset };
  }

  private warnOnce(w: string) {
    if (!this.warnings.includes(w) && this.warnings.length < 100) this.warnings.push(w);
  }

  /** Account for bytes about to be held in memory; refuse once the header limit is passed. */
  private count(length: number, tag: number) {
    this.headerBytes += length;
    if (this.headerBytes > this.opts.maxHeaderBytes) {
      throw new CustosError({
        code: 'dicom.header-too-large',
        message: `the header exceeds ${this.opts.maxHeaderBytes} bytes of values (at element ${label(tag)})`,
        httpStatus: 413,
        dicomStatus: DicomStatus.OutOfResources,
      });
    }
  }

  /** Items of a sequence; `end` is where a defined-length sequence ends, `limit` the enclosing bound. */
  private async items(
    ctx: Ctx,
    seqTag: number,
    end: number | undefined,
    limit: number | undefined,
    depth: number,
  ): Promise<Dataset[]> {
    if (depth > this.opts.maxDepth)
      throw fail('too-deep', `sequences are nested more than ${this.opts.maxDepth} deep`, ctx.q.position);
    const { q } = ctx;
    const items: Dataset[] = [];
    for (;;) {
      if (end !== undefined && q.position >= end) return items;
      const start = q.position;
      if (past(start, 8, limit)) throw this.beyond(`an item of ${label(seqTag)}`, start, 8, limit);
      if (q.buffered < 8) await this.need(q, 8, `an item of ${label(seqTag)}`);
      const h = q.peek(8);
      const tag = ((this.u16(ctx, h, 0) << 16) | this.u16(ctx, h, 2)) >>> 0;
      const length = this.u32(ctx, h, 4);
      if (tag === Tags.SequenceDelimitationItem) {
        q.drop(8);
        if (end !== undefined) this.warnOnce(`sequence delimiter inside the defined-length ${label(seqTag)}`);
        return items;
      }
      if (tag !== Tags.Item)
        throw fail('bad-structure', `expected an item of ${label(seqTag)}, found ${label(tag)}`, start);
      if (length !== UNDEFINED) {
        if (past(start + 8, length, limit))
          throw this.beyond(`an item of ${label(seqTag)}`, start + 8, length, limit);
      }
      q.drop(8);
      const item: Dataset = new Map();
      // PS3.5 §7.5: an item may carry its own Specific Character Set, which holds inside that item only; so does
      // its own Pixel Representation (an icon image's, say).
      const itemCtx: Ctx = { ...ctx };
      if (length === UNDEFINED) {
        while ((await this.element(itemCtx, item, limit, depth, false)) !== undefined) {
          /* until the item delimiter */
        }
      } else {
        const itemEnd = start + 8 + length;
        while (q.position < itemEnd) {
          if ((await this.element(itemCtx, item, itemEnd, depth, false)) === undefined)
            this.warnOnce(`item delimiter inside a defined-length item of ${label(seqTag)}`);
        }
      }
      items.push(item);
    }
  }

  /** PS3.5 A.4: encapsulated pixel data, a Basic Offset Table item then one item per fragment. */
  private async encapsulated(
    ctx: Ctx,
    tag: number,
    vr: string,
    offset: number,
    limit: number | undefined,
  ): Promise<Element> {
    const { q } = ctx;
    const fragments: Fragment[] = [];
    let basicOffsetTable: number[] | undefined;
    for (;;) {
      const start = q.position;
      if (past(start, 8, limit)) throw this.beyond(`a fragment of ${label(tag)}`, start, 8, limit);
      if (q.buffered < 8) await this.need(q, 8, `the encapsulated ${label(tag)}`);
      const h = q.take(8);
      const itemTag = ((this.u16(ctx, h, 0) << 16) | this.u16(ctx, h, 2)) >>> 0;
      const length = this.u32(ctx, h, 4);
      if (itemTag === Tags.SequenceDelimitationItem) break;
      if (itemTag !== Tags.Item)
        throw fail(
          'bad-structure',
          `expected a fragment item of ${label(tag)}, found ${label(itemTag)}`,
          start,
        );
      if (length === UNDEFINED)
        throw fail('bad-length', `a fragment of ${label(tag)} has an undefined length`, start);
      if (past(start + 8, length, limit))
        throw this.beyond(`a fragment of ${label(tag)}`, start + 8, length, limit);
      if (basicOffsetTable === undefined) {
        // The first item is the Basic Offset Table (possibly empty): one 32-bit offset per frame.
        if (length % 4 !== 0)
          throw fail(
            'bad-length',
            `the Basic Offset Table of ${label(tag)} has length ${length}, not a multiple of 4`,
            start,
          );
        this.count(length, tag);
        if (q.buffered < length) await this.need(q, length, `the Basic Offset Table of ${label(tag)}`);
        const b = q.take(length);
        basicOffsetTable = [];
        for (let i = 0; i < length; i += 4) basicOffsetTable.push(this.u32(ctx, b, i));
        continue;
      }
      // Whether it opens a JPEG (SOI, FFD8: also JPEG-LS) or JPEG 2000 (SOC, FF4F) codestream: where there is no
      // offset table, a frame of several fragments starts at one that does (PS3.5 A.4; as dcmtk and pydicom read).
      let opens = false;
      if (length >= 2) {
        if (q.buffered < 2) await this.need(q, 2, `a fragment of ${label(tag)}`);
        const head = q.peek(2);
        opens = head[0] === 0xff && (head[1] === 0xd8 || head[1] === 0x4f);
      }
      fragments.push(opens ? { offset: q.position, length, opens } : { offset: q.position, length });
      await this.discard(q, length, () => `a fragment of ${label(tag)}`);
    }
    return { vr, kind: 'encapsulated', offset, basicOffsetTable: basicOffsetTable ?? [], fragments };
  }

  private decode(ctx: Ctx, tag: number, vr: string, b: Buffer, at: number): Element {
    if (TEXT_VRS.has(vr)) {
      // Bytes the character set does not define are read as U+FFFD or '?' and reported, naming the attribute; the
      // stored bytes stay as received.
      let s = CHARSET_VRS.has(vr)
        ? ctx.text.decode(
            b,
            (problem) => this.warnOnce(`${label(tag)}: ${problem}`),
            vr === 'PN' ? 'person-name' : UNSPLIT_VRS.has(vr) ? 'none' : 'values',
          )
        : b.toString('latin1');
      s = s.replace(/[\0 ]+$/, '');
      const values = UNSPLIT_VRS.has(vr) ? [s] : s.split('\\');
      return {
        vr,
        kind: 'text',
        // PS3.5 §6.2: trailing spaces never count; leading ones do in PN and UC.
        values: UNSPLIT_VRS.has(vr)
          ? values
          : vr === 'PN' || vr === 'UC'
            ? values.map((v) => v.trimEnd())
            : values.map((v) => v.trim()),
      };
    }
    const size = numberSize(vr);
    if (size === 0) {
      // Small binary values are held in little endian whatever the transfer syntax, so their JSON form
      // (InlineBinary) does not depend on how the object was encoded.
      const data = Buffer.from(b);
      const word = vr === 'OW' ? 2 : vr === 'OF' || vr === 'OL' ? 4 : vr === 'OD' || vr === 'OV' ? 8 : 1;
      if (!ctx.little && word > 1) {
        if (data.length % word !== 0)
          throw fail(
            'bad-length',
            `element ${label(tag)} (${vr}) has length ${data.length}, not a multiple of ${word}`,
            at,
          );
        if (word === 2) data.swap16();
        else if (word === 4) data.swap32();
        else data.swap64();
      }
      return { vr, kind: 'bytes', data, offset: at };
    }
    if (b.length % size !== 0) {
      throw fail(
        'bad-length',
        `element ${label(tag)} (${vr}) has length ${b.length}, not a multiple of ${size}`,
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

/** Bytes of one value of a binary number VR (AT included); 0 for the others. */
function numberSize(vr: string): number {
  if (vr === 'US' || vr === 'SS') return 2;
  if (vr === 'UL' || vr === 'SL' || vr === 'FL' || vr === 'AT') return 4;
  if (vr === 'FD' || vr === 'SV' || vr === 'UV') return 8;
  return 0;
}

/**
 * The VR to decode a standard attribute's UN value of `length` bytes as (PS3.5 §6.2.2): the dictionary's, where it
 * names one VR, not UN or SQ, that the value fits (whole binary numbers; a 16-bit length for a short-header VR).
 * Otherwise undefined, and the value stays UN: private attributes, "US or SS" and "OB or OW" ones, sequences.
 */
function vrOfUnknownValue(tag: number, length: number): string | undefined {
  if ((tag >>> 16) % 2 === 1) return undefined;
  const entry = lookupTag(tag);
  if (!entry || entry.ambiguous || !KNOWN_VRS.has(entry.vr) || entry.vr === 'UN' || entry.vr === 'SQ')
    return undefined;
  const size = numberSize(entry.vr);
  if (size && length % size !== 0) return undefined;
  if (!LONG_VRS.has(entry.vr) && length > 0xffff) return undefined;
  return entry.vr;
}

function pixelInfo(el: Parsed, deflated: boolean): PixelDataInfo | undefined {
  const e = el.element;
  if (e.kind === 'encapsulated')
    return {
      tag: el.tag,
      vr: e.vr,
      offset: e.offset,
      length: -1,
      encapsulated: true,
      basicOffsetTable: e.basicOffsetTable,
      fragments: e.fragments,
      deflated,
    };
  if (e.kind === 'bulk')
    return { tag: el.tag, vr: e.vr, offset: e.offset, length: e.length, encapsulated: false, deflated };
  if (e.kind === 'bytes')
    return {
      tag: el.tag,
      vr: e.vr,
      offset: el.valueOffset,
      length: e.data.length,
      encapsulated: false,
      deflated,
    };
  return undefined;
}

/**
 * The "US or SS" attributes whose VR follows Pixel Representation (0028,0103): SS when it is 1 (PS3.6 Table 6-1,
 * PS3.5 §7.1.3). The dictionary lists them as US.
 */
const SIGNED_WITH_PIXELS = new Set([
  0x00280104, 0x00280105, 0x00280106, 0x00280107, 0x00280108, 0x00280109, 0x00280110, 0x00280111, 0x00280120,
  0x00280121, 0x00409211, 0x00409216,
]);

/**
 * VR of an element in an implicit VR dataset (PS3.5 §7.1.3): from the dictionary; private creators are LO; the
 * "US or SS" pixel value attributes SS when `signedPixels` (the data set's Pixel Representation is 1); Overlay
 * Data (60xx,3000) and Waveform Data (5400,1010) OW, which PS3.5 A.1 gives them in Implicit VR Little Endian
 * (the dictionary's first VR, OB, made them OB until 6 Dec 2026; dcmtk and Orthanc read OW). Pixel Data is the
 * caller's: OB or OW by Bits Allocated. The other "OB or OW" attributes keep the dictionary's first, OB: A.1
 * names no VR for them (Channel Minimum/Maximum Value, Waveform Padding Value, retired Curve and Audio Data).
 */
export function implicitVr(tag: number, signedPixels = false): string {
  const group = tag >>> 16;
  const elem = tag & 0xffff;
  if (elem === 0) return 'UL';
  if (group % 2 === 1 && elem >= 0x10 && elem <= 0xff) return 'LO';
  if (group % 2 === 1) return 'UN';
  if (signedPixels && SIGNED_WITH_PIXELS.has(tag)) return 'SS';
  if ((group >= 0x6000 && group <= 0x601e && elem === 0x3000) || tag === 0x54001010) return 'OW';
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

export { getNumber, getNumbers, getString, getStrings } from './dataset.js';
export type { Dataset, Element } from './dataset.js';
