import { deflateRawSync } from 'node:zlib';
import { CustosError } from '../domain/errors.js';
import { textEncoding } from './charset.js';
import { CHARSET_VRS, LONG_VRS, TEXT_VRS } from './dataset.js';
import { Tags, tagToHex } from './tags.js';
import { transferSyntaxEncoding } from './transfer-syntax.js';

export type WriteValue = string | string[] | number | number[] | bigint[] | Buffer | WriteElement[][];
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

const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1483.1';

interface Enc {
  explicit: boolean;
  little: boolean;
  undefinedSq: boolean;
  /** Encoder for SH, LO, ST, LT, UT, PN, UC under the Specific Character Set in force. */
  text: (s: string) => Buffer | undefined;
}

const bad = (message: string) => new CustosError({ code: 'dicom.write-failed', message, httpStatus: 500 });

/** PS3.5 §6.2: text padded to even length with a space, UI with NUL. Buffers are written as given. */
function textBytes(tag: number, vr: string, value: WriteValue, enc: Enc): Buffer {
  const s = Array.isArray(value) ? (value as (string | number)[]).map(String).join('\\') : String(value);
  const b = CHARSET_VRS.has(vr) ? enc.text(s) : Buffer.from(s, 'latin1');
  if (!b)
    throw bad(
      `value of ${tagToHex(tag)} (${vr}) cannot be encoded in the dataset's Specific Character Set: pass it as bytes`,
    );
  if (b.length % 2 === 0) return b;
  return Buffer.concat([b, Buffer.from(vr === 'UI' ? [0] : [0x20])]);
}

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

function header(tag: number, vr: string, length: number, enc: Enc): Buffer {
  const w16 = (b: Buffer, v: number, o: number) =>
    enc.little ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o);
  const w32 = (b: Buffer, v: number, o: number) =>
    enc.little ? b.writeUInt32LE(v >>> 0, o) : b.writeUInt32BE(v >>> 0, o);
  if (!enc.explicit) {
    const b = Buffer.alloc(8);
    w16(b, tag >>> 16, 0);
    w16(b, tag & 0xffff, 2);
    w32(b, length, 4);
    return b;
  }
  if (LONG_VRS.has(vr)) {
    const b = Buffer.alloc(12);
    w16(b, tag >>> 16, 0);
    w16(b, tag & 0xffff, 2);
    b.write(vr, 4, 'latin1');
    w32(b, length, 8);
    return b;
  }
  if (length > 0xffff) throw bad(`value of ${tag.toString(16)} (${vr}) is too long for a 16-bit length`);
  const b = Buffer.alloc(8);
  w16(b, tag >>> 16, 0);
  w16(b, tag & 0xffff, 2);
  b.write(vr, 4, 'latin1');
  w16(b, length, 6);
  return b;
}

function itemTag(tag: number, length: number, enc: Enc): Buffer {
  return header(tag, '', length, { ...enc, explicit: false });
}

/** Bytes per word of the binary VRs whose byte order follows the transfer syntax (PS3.5 §7.3). */
const WORD: Record<string, number> = { OW: 2, OF: 4, OL: 4, OD: 8, OV: 8 };

function encodeElements(elements: WriteElement[], parent: Enc): Buffer[] {
  const out: Buffer[] = [];
  // PS3.5 §7.5: a Specific Character Set inside an item applies to that item.
  const cs = elements.find((e) => e.tag === Tags.SpecificCharacterSet);
  const enc: Enc = cs
    ? {
        ...parent,
        text: textEncoding(
          Array.isArray(cs.value) ? (cs.value as string[]).map(String) : [String(cs.value as string)],
        ),
      }
    : parent;
  for (const el of [...elements].sort((a, b) => a.tag - b.tag)) {
    if (el.vr === 'SQ') {
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
    } else {
      value = numberBytes(el.vr, el.value, enc.little);
    }
    out.push(header(el.tag, el.vr, value.length, enc), value);
  }
  return out;
}

/**
 * Write a bare data set (no preamble, no file meta information) in a non-deflated transfer syntax: what a DIMSE
 * message carries (PS3.7 §6.3.1).
 */
export function writeDataset(elements: WriteElement[], transferSyntaxUid: string): Buffer {
  const encoding = transferSyntaxEncoding(transferSyntaxUid);
  if (!encoding || encoding.deflated) throw bad(`cannot write a bare data set in ${transferSyntaxUid}`);
  return Buffer.concat(
    encodeElements(elements, {
      explicit: encoding.explicit,
      little: encoding.little,
      undefinedSq: false,
      text: textEncoding(undefined),
    }),
  );
}

/** Write a DICOM Part 10 object (preamble, file meta information, dataset) in the given transfer syntax. */
export function writePart10(elements: WriteElement[], opts: WriteOptions): Buffer {
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
      value: opts.implementationClassUid ?? IMPLEMENTATION_CLASS_UID,
    },
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
  const parts = encodeElements(dsElements, enc);
  if (opts.encapsulatedPixelData) {
    const { fragments, basicOffsetTable = [] } = opts.encapsulatedPixelData;
    const bot = Buffer.alloc(basicOffsetTable.length * 4);
    basicOffsetTable.forEach((v, i) => bot.writeUInt32LE(v, i * 4));
    parts.push(header(Tags.PixelData, 'OB', 0xffffffff, enc), itemTag(Tags.Item, bot.length, enc), bot);
    for (const f of fragments) {
      const padded = f.length % 2 === 0 ? f : Buffer.concat([f, Buffer.alloc(1)]);
      parts.push(itemTag(Tags.Item, padded.length, enc), padded);
    }
    parts.push(itemTag(Tags.SequenceDelimitationItem, 0, enc));
  }
  let dataset = Buffer.concat(parts);
  if (encoding.deflated) dataset = deflateRawSync(dataset);
  const preamble = Buffer.alloc(128);
  return Buffer.concat([preamble, Buffer.from('DICM', 'latin1'), groupLength, metaBody, dataset]);
}
