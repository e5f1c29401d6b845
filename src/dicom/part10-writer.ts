import { deflateRawSync } from 'node:zlib';
import { CustosError } from '../domain/errors.js';
import { textEncoding } from './charset.js';
import { CHARSET_VRS, LONG_VRS, TEXT_VRS } from './dataset.js';
import { FILE_IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from './implementation.js';
import { Tags, tagToHex } from './tags.js';
import { transferSyntaxEncoding } from './transfer-syntax.js';

export type WriteValue =
  string | string[] | number | number[] | bigint[] | Buffer | WriteElement[][] | ExternalValue;

/**
 * A binary value whose bytes are not in memory (a spooled STOW-RS bulk data part): written by `part10Pieces` as its
 * header and this placeholder, whose bytes the caller streams in its place. Given as it goes on the wire (little
 * endian), and only at the top level of the data set.
 */
export interface ExternalValue {
  external: true;
  length: number;
  read: () => AsyncIterable<Buffer>;
}

export const isExternal = (v: unknown): v is ExternalValue =>
  typeof v === 'object' && v !== null && (v as Partial<ExternalValue>).external === true;

/** Bytes of a data set written with external values: the buffers as they are, each external value's bytes in its place. */
export type Part10Piece = Buffer | ExternalValue;
export interface WriteElement {
  tag: number;
  vr: string;
  /** WriteElement[][] is a sequence: one array of elements per item. */
  value: WriteValue;
}

export interface WriteOptions {
  transferSyntaxUid: string;
  implementationClassUid?: string;
  /** Encapsulated pixel data for compressed transfer syntaxes (written with undefined length). */
  encapsulatedPixelData?: { fragments: Buffer[]; basicOffsetTable?: number[] };
  /** Write sequences and items with undefined length and delimiters (default: defined lengths). */
  undefinedLengthSequences?: boolean;
}

interface Enc {
  explicit: boolean;
  little: boolean;
  undefinedSq: boolean;
  /** Encoder for SH, LO, ST, LT, UT, PN, UC under the Specific Character Set in force. */
  text: (s: string) => Buffer | undefined;
  /** Whether the single-byte sets other than ISO_IR 100 are written too (textEncoding's `singleByteSets`). */
  singleByteSets?: boolean;
}

const bad = (message: string) => new CustosError({ code: 'dicom.write-failed', message, httpStatus: 500 });

/** PS3.5 §6.2: text padded to even length with a space, UI with NUL. Buffers are written as given. */
function textBytes(tag: number, vr: string, value: WriteValue, enc: Enc): Buffer {
  const s = Array.isArray(value) ? (value as (string | number)[]).map(String).join('\\') : String(value);
  if (!CHARSET_VRS.has(vr)) {
    // One allocation with room for the padding byte (latin1: one byte per code unit).
    const b = Buffer.allocUnsafe(s.length + (s.length % 2));
    b.write(s, 0, 'latin1');
    if (s.length % 2) b[s.length] = vr === 'UI' ? 0 : 0x20;
    return b;
  }
  const b = enc.text(s);
  if (!b)
    throw new CustosError({
      code: 'dicom.not-encodable',
      message: `value of ${tagToHex(tag)} (${vr}) cannot be encoded in the dataset's Specific Character Set: pass it as bytes`,
      httpStatus: 500,
    });
  if (b.length % 2 === 0) return b;
  return Buffer.concat([b, PAD_SPACE]);
}

const PAD_SPACE = Buffer.from([0x20]);

function numberBytes(vr: string, value: WriteValue, little: boolean): Buffer {
  const values = (Array.isArray(value) ? value : [value]) as (number | bigint)[];
  const size = vr === 'US' || vr === 'SS' ? 2 : vr === 'FD' || vr === 'SV' || vr === 'UV' ? 8 : 4;
  const b = Buffer.alloc(values.length * size);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  values.forEach((v, i) => {
    const o = i * size;
    const n = Number(v);
    if (vr === 'US') dv.setUint16(o, n, little);
    else if (vr === 'SS') dv.setInt16(o, n, little);
    else if (vr === 'UL') dv.setUint32(o, n, little);
    else if (vr === 'SL') dv.setInt32(o, n, little);
    else if (vr === 'FL') dv.setFloat32(o, n, little);
    else if (vr === 'FD') dv.setFloat64(o, n, little);
    else if (vr === 'SV') dv.setBigInt64(o, BigInt(v), little);
    else if (vr === 'UV') dv.setBigUint64(o, BigInt(v), little);
    else if (vr === 'AT') {
      dv.setUint16(o, n >>> 16, little);
      dv.setUint16(o + 2, n & 0xffff, little);
    }
  });
  return b;
}

/** Bytes of an element header (PS3.5 §7.1): 8, or 12 for explicit VR with a 32-bit length. */
const headerSize = (vr: string, enc: Enc) => (enc.explicit && LONG_VRS.has(vr) ? 12 : 8);

/** Write an element header into `b` at `o`; returns the offset after it. */
function putHeader(b: Buffer, o: number, tag: number, vr: string, length: number, enc: Enc): number {
  const group = tag >>> 16;
  const element = tag & 0xffff;
  if (enc.little) {
    b.writeUInt16LE(group, o);
    b.writeUInt16LE(element, o + 2);
  } else {
    b.writeUInt16BE(group, o);
    b.writeUInt16BE(element, o + 2);
  }
  if (!enc.explicit) {
    if (enc.little) b.writeUInt32LE(length >>> 0, o + 4);
    else b.writeUInt32BE(length >>> 0, o + 4);
    return o + 8;
  }
  b[o + 4] = vr.charCodeAt(0);
  b[o + 5] = vr.charCodeAt(1);
  if (LONG_VRS.has(vr)) {
    b[o + 6] = 0;
    b[o + 7] = 0;
    if (enc.little) b.writeUInt32LE(length >>> 0, o + 8);
    else b.writeUInt32BE(length >>> 0, o + 8);
    return o + 12;
  }
  if (length > 0xffff) throw bad(`value of ${tag.toString(16)} (${vr}) is too long for a 16-bit length`);
  if (enc.little) b.writeUInt16LE(length, o + 6);
  else b.writeUInt16BE(length, o + 6);
  return o + 8;
}

function header(tag: number, vr: string, length: number, enc: Enc): Buffer {
  const b = Buffer.allocUnsafe(headerSize(vr, enc));
  putHeader(b, 0, tag, vr, length, enc);
  return b;
}

function itemTag(tag: number, length: number, enc: Enc): Buffer {
  return header(tag, '', length, { ...enc, explicit: false });
}

/** Bytes per word of the binary VRs whose byte order follows the transfer syntax (PS3.5 §7.3). */
const WORD: Record<string, number> = { OW: 2, OF: 4, OL: 4, OD: 8, OV: 8 };

function encodeElements(elements: WriteElement[], parent: Enc): Buffer[];
function encodeElements(elements: WriteElement[], parent: Enc, externals: true): Part10Piece[];
function encodeElements(elements: WriteElement[], parent: Enc, externals = false): Part10Piece[] {
  const out: Part10Piece[] = [];
  // PS3.5 §7.5: a Specific Character Set inside an item applies to that item.
  const cs = elements.find((e) => e.tag === Tags.SpecificCharacterSet);
  const enc: Enc = cs
    ? {
        ...parent,
        text: textEncoding(
          Array.isArray(cs.value) ? (cs.value as string[]).map(String) : [String(cs.value as string)],
          { singleByteSets: parent.singleByteSets ?? false },
        ),
      }
    : parent;
  // Consecutive elements other than sequences are written into one buffer, headers in place (a data set of short
  // values, like a C-FIND answer, is then one allocation and one copy per value).
  let run: { el: WriteElement; value: Buffer }[] = [];
  let runBytes = 0;
  const flush = () => {
    if (run.length === 0) return;
    const b = Buffer.allocUnsafe(runBytes);
    let o = 0;
    for (const { el, value } of run) {
      o = putHeader(b, o, el.tag, el.vr, value.length, enc);
      o += value.copy(b, o);
    }
    out.push(b);
    run = [];
    runBytes = 0;
  };
  for (const el of [...elements].sort((a, b) => a.tag - b.tag)) {
    if (el.vr === 'SQ') {
      flush();
      const items = el.value as WriteElement[][];
      const body: Buffer[] = [];
      for (const item of items) {
        const content = Buffer.concat(encodeElements(item, enc));
        if (enc.undefinedSq)
          body.push(itemTag(Tags.Item, 0xffffffff, enc), content, itemTag(Tags.ItemDelimitationItem, 0, enc));
        else body.push(itemTag(Tags.Item, content.length, enc), content);
      }
      const content = Buffer.concat(body);
      if (enc.undefinedSq)
        out.push(
          header(el.tag, 'SQ', 0xffffffff, enc),
          content,
          itemTag(Tags.SequenceDelimitationItem, 0, enc),
        );
      else out.push(header(el.tag, 'SQ', content.length, enc), content);
      continue;
    }
    if (isExternal(el.value)) {
      const { length } = el.value;
      if (!externals)
        throw bad(`value of ${tagToHex(el.tag)} (${el.vr}) is not in memory: it cannot be written here`);
      if (!enc.little && WORD[el.vr])
        throw bad(`value of ${tagToHex(el.tag)} (${el.vr}) cannot be streamed into a big endian data set`);
      if (enc.explicit && !LONG_VRS.has(el.vr) && length > 0xfffe)
        throw bad(`value of ${tagToHex(el.tag)} (${el.vr}) is too long for a 16-bit length`);
      flush();
      out.push(header(el.tag, el.vr, length + (length % 2), enc), el.value);
      if (length % 2) out.push(Buffer.of(TEXT_VRS.has(el.vr) && el.vr !== 'UI' ? 0x20 : 0));
      continue;
    }
    let value: Buffer;
    if (Buffer.isBuffer(el.value)) {
      const pad = TEXT_VRS.has(el.vr) && el.vr !== 'UI' ? 0x20 : 0;
      value = el.value.length % 2 === 0 ? el.value : Buffer.concat([el.value, Buffer.of(pad)]);
      const word = WORD[el.vr];
      // Binary values are given little endian; big endian objects hold their words swapped.
      if (!enc.little && word) {
        if (value.length % word !== 0)
          throw bad(`value of ${tagToHex(el.tag)} (${el.vr}) is not a whole number of ${word}-byte words`);
        value = Buffer.from(value);
        if (word === 2) value.swap16();
        else if (word === 4) value.swap32();
        else value.swap64();
      }
    } else if (TEXT_VRS.has(el.vr)) {
      value = textBytes(el.tag, el.vr, el.value, enc);
    } else if (el.value === '' || (Array.isArray(el.value) && el.value.length === 0)) {
      // No value (a C-FIND return key the object lacks): zero length, never a 0 made up from the empty string.
      value = Buffer.alloc(0);
    } else {
      value = numberBytes(el.vr, el.value, enc.little);
    }
    let vr = el.vr;
    if (enc.explicit && !LONG_VRS.has(vr) && value.length > 0xffff) {
      // PS3.5 §6.2.2 (CP-1066): a value longer than its VR's 16-bit length field holds goes as UN, with a 32-bit
      // length, its bytes as in Implicit VR Little Endian: the same bytes for text, and for binary values in a little
      // endian syntax. (A stored Implicit VR object may hold such a value.) Until 7 Dec 2026 it failed the whole
      // data set, and with it a whole C-FIND that matched one such object.
      if (!enc.little && !TEXT_VRS.has(vr))
        throw bad(`value of ${tagToHex(el.tag)} (${vr}) is too long for a 16-bit length`);
      vr = 'UN';
    }
    // Large values (pixel data, long text) are not copied: they follow the run as they are.
    if (value.length > 4096) {
      flush();
      out.push(header(el.tag, vr, value.length, enc), value);
      continue;
    }
    run.push({ el: vr === el.vr ? el : { ...el, vr }, value });
    runBytes += headerSize(vr, enc) + value.length;
  }
  flush();
  return out;
}

const UTF8_CHARACTER_SET: WriteElement = { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 192' };

/**
 * The elements as a data set whose text is all written in UTF-8: Specific Character Set ISO_IR 192 at the top level
 * and in every sequence item that names its own (PS3.5 §7.5: an item's own set holds inside that item). Text is held
 * decoded; an item left saying ISO_IR 144, say, could not be written back (textEncoding writes only ASCII for it).
 */
export function inUtf8(elements: WriteElement[]): WriteElement[] {
  return inCharacterSet(elements, 'ISO_IR 192');
}

/**
 * The elements as a data set whose text is all written in one character set, `term` (a single Defined Term, or ''
 * for the default repertoire, which has no Specific Character Set element): at the top level and in every sequence
 * item that names its own. The writer refuses (`dicom.not-encodable`) a value that set cannot hold.
 */
export function inCharacterSet(elements: WriteElement[], term: string): WriteElement[] {
  const element: WriteElement | undefined =
    term === ''
      ? undefined
      : term === 'ISO_IR 192'
        ? UTF8_CHARACTER_SET
        : { ...UTF8_CHARACTER_SET, value: term };
  const items = (list: WriteElement[]): WriteElement[] =>
    list.flatMap((e) =>
      e.tag === Tags.SpecificCharacterSet
        ? element
          ? [element]
          : []
        : e.vr === 'SQ' && Array.isArray(e.value)
          ? [{ ...e, value: (e.value as WriteElement[][]).map(items) }]
          : [e],
    );
  const out = items(elements);
  return !element || out.some((e) => e.tag === Tags.SpecificCharacterSet) ? out : [element, ...out];
}

/**
 * Write a bare data set (no preamble, no file meta information) in a non-deflated transfer syntax: what a DIMSE
 * message carries (PS3.7 §6.3.1).
 */
export function writeDataset(
  elements: WriteElement[],
  transferSyntaxUid: string,
  opts: { undefinedLengthSequences?: boolean; singleByteSets?: boolean } = {},
): Buffer {
  const encoding = transferSyntaxEncoding(transferSyntaxUid);
  if (!encoding || encoding.deflated) throw bad(`cannot write a bare data set in ${transferSyntaxUid}`);
  const parts = encodeElements(elements, {
    explicit: encoding.explicit,
    little: encoding.little,
    undefinedSq: opts.undefinedLengthSequences ?? false,
    text: textEncoding(undefined),
    singleByteSets: opts.singleByteSets ?? false,
  });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * A deflated data set padded to an even length with one trailing 00H, as PS3.5 A.5 asks (an inflater stops at the
 * end of the deflate stream and does not read it). Until 7 Dec 2026 Custos wrote odd-length ones, and sent them so
 * in C-MOVE and C-GET, where dcmtk aborted the association (`DIMSE: Odd Fragment Length`).
 */
function evenDeflated(deflated: Buffer): Buffer {
  return deflated.length % 2 === 0 ? deflated : Buffer.concat([deflated, Buffer.alloc(1)]);
}

/** Write a DICOM Part 10 object (preamble, file meta information, dataset) in the given transfer syntax. */
export function writePart10(elements: WriteElement[], opts: WriteOptions): Buffer {
  const pieces = part10Pieces(elements, opts, false);
  const encoding = transferSyntaxEncoding(opts.transferSyntaxUid)!;
  const [head, ...rest] = pieces as Buffer[];
  const dataset = Buffer.concat(rest);
  return Buffer.concat([head!, encoding.deflated ? evenDeflated(deflateRawSync(dataset)) : dataset]);
}

/**
 * A DICOM Part 10 object as pieces: the preamble and file meta information first, then the data set, with each
 * external value (and external fragment of encapsulated pixel data) in its place, for a caller that streams them
 * (STOW-RS metadata and bulk data: the bulk data stays on disk). Deflated transfer syntaxes need the whole data
 * set in memory and are refused here when there are external values.
 */
export function part10Pieces(
  elements: WriteElement[],
  opts: Omit<WriteOptions, 'encapsulatedPixelData'> & {
    encapsulatedPixelData?: { fragments: (Buffer | ExternalValue)[]; basicOffsetTable?: number[] };
  },
  externals = true,
): Part10Piece[] {
  const str = (t: number) => {
    const e = elements.find((x) => x.tag === t);
    return e ? String(Array.isArray(e.value) ? e.value[0] : e.value) : '';
  };
  const ts = opts.transferSyntaxUid;
  const encoding = transferSyntaxEncoding(ts);
  if (!encoding) throw bad(`cannot write transfer syntax ${ts}`);
  const defaultText = textEncoding(undefined);
  const le: Enc = { explicit: true, little: true, undefinedSq: false, text: defaultText };
  const metaElements: WriteElement[] = [
    { tag: Tags.FileMetaInformationVersion, vr: 'OB', value: Buffer.from([0, 1]) },
    { tag: Tags.MediaStorageSOPClassUID, vr: 'UI', value: str(Tags.SOPClassUID) },
    { tag: Tags.MediaStorageSOPInstanceUID, vr: 'UI', value: str(Tags.SOPInstanceUID) },
    { tag: Tags.TransferSyntaxUID, vr: 'UI', value: opts.transferSyntaxUid },
    {
      tag: Tags.ImplementationClassUID,
      vr: 'UI',
      value: opts.implementationClassUid ?? FILE_IMPLEMENTATION_CLASS_UID,
    },
    { tag: Tags.ImplementationVersionName, vr: 'SH', value: IMPLEMENTATION_VERSION_NAME },
  ];
  const metaBody = Buffer.concat(encodeElements(metaElements, le));
  const groupLength = Buffer.concat([
    header(Tags.FileMetaInformationGroupLength, 'UL', 4, le),
    numberBytes('UL', metaBody.length, true),
  ]);

  const enc: Enc = {
    explicit: encoding.explicit,
    little: encoding.little,
    undefinedSq: opts.undefinedLengthSequences ?? false,
    text: defaultText,
  };
  const dsElements = elements.filter(
    (e) => e.tag >>> 16 !== 0x0002 && !(opts.encapsulatedPixelData && e.tag === Tags.PixelData),
  );
  const parts: Part10Piece[] = externals
    ? encodeElements(dsElements, enc, true)
    : encodeElements(dsElements, enc);
  if (opts.encapsulatedPixelData) {
    const { fragments, basicOffsetTable = [] } = opts.encapsulatedPixelData;
    const bot = Buffer.alloc(basicOffsetTable.length * 4);
    basicOffsetTable.forEach((v, i) => bot.writeUInt32LE(v, i * 4));
    parts.push(header(Tags.PixelData, 'OB', 0xffffffff, enc), itemTag(Tags.Item, bot.length, enc), bot);
    for (const f of fragments) {
      if (isExternal(f)) {
        if (!externals) throw bad('an external fragment cannot be written here');
        parts.push(itemTag(Tags.Item, f.length + (f.length % 2), enc), f);
        if (f.length % 2) parts.push(Buffer.alloc(1));
        continue;
      }
      const padded = f.length % 2 === 0 ? f : Buffer.concat([f, Buffer.alloc(1)]);
      parts.push(itemTag(Tags.Item, padded.length, enc), padded);
    }
    parts.push(itemTag(Tags.SequenceDelimitationItem, 0, enc));
  }
  if (encoding.deflated && parts.some(isExternal))
    throw bad(`cannot stream values not in memory into the deflated transfer syntax ${ts}`);
  const preamble = Buffer.alloc(128);
  return [Buffer.concat([preamble, Buffer.from('DICM', 'latin1'), groupLength, metaBody]), ...parts];
}
