import { CustosError, DicomStatus } from '../domain/errors.js';
import { BINARY_VRS, KNOWN_VRS, type Dataset, type Element } from './dataset.js';
import type { WriteElement, WriteValue } from './part10-writer.js';
import { tagLabel } from './dictionary.js';
import { Tags, tagToHex } from './tags.js';

const PIXEL_TAGS = new Set<number>([Tags.PixelData, Tags.FloatPixelData, Tags.DoubleFloatPixelData]);

export interface DicomJsonElement {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}
export type DicomJsonDataset = Record<string, DicomJsonElement>;

/** Largest binary value emitted as InlineBinary unless a caller says otherwise: 1 KiB. */
export const INLINE_BINARY_MAX = 1024;

export interface ToJsonOptions {
  /**
   * Called for every value not held in memory (bulk and encapsulated) and for binary values above
   * `inlineBinaryMax`: return a URI to emit BulkDataURI, or undefined to leave the value out. `tagPath` names the
   * value: its tag, after the tag and item index (from 0) of each sequence it is nested in.
   */
  bulkDataUri?: (tagPath: number[], element: Element) => string | undefined;
  /** Largest binary value emitted as InlineBinary (default INLINE_BINARY_MAX, 1 KiB). */
  inlineBinaryMax?: number;
}

/** PS3.18 F.2.2: a PN value as its three component groups. */
export function personName(s: string): Record<string, string> {
  const [alphabetic = '', ideographic, phonetic] = s.split('=');
  const out: Record<string, string> = {};
  if (alphabetic) out.Alphabetic = alphabetic;
  if (ideographic) out.Ideographic = ideographic;
  if (phonetic) out.Phonetic = phonetic;
  return out;
}

/** PS3.5 Table 6.2-1: an Integer String is digits with an optional sign. */
const IS_GRAMMAR = /^[+-]?\d+$/;
/** PS3.5 Table 6.2-1: a Decimal String is a fixed point number, or a floating point one with an E or e exponent. */
const DS_GRAMMAR = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The exact value of a decimal numeral as significant digits and a power of ten ('-0.0150' and '-1.5e-2': '-15e-3'). */
function decimalValue(text: string): string {
  const [, sign = '', int = '', frac = '', exp = '0'] = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(
    text,
  )!;
  let digits = (int + frac).replace(/^0+/, '');
  let power = Number(exp) - frac.length;
  if (digits === '') return '0';
  const trailing = digits.length - digits.replace(/0+$/, '').length;
  digits = digits.slice(0, digits.length - trailing);
  power += trailing;
  return `${sign === '-' ? '-' : ''}${digits}e${power}`;
}

/**
 * An IS or DS value as a JSON number where that number is the value (PS3.18 F.2.3), else the string as stored (the
 * standard allows a string "to avoid losing precision of a decimal string"): what is not IS or DS by its grammar
 * ('0x10', which Number() reads as 16), an IS beyond 2^53, a DS with more significant digits than a double holds
 * ('3.14159265358979323' would go out as 3.141592653589793). A double stands for the DS when the shortest
 * decimal that reads back as it (how JSON prints it) has the value the text has.
 */
function numericString(vr: 'IS' | 'DS', v: string): number | string {
  if (!(vr === 'IS' ? IS_GRAMMAR : DS_GRAMMAR).test(v)) return v;
  const n = Number(v);
  if (vr === 'IS') return Number.isSafeInteger(n) ? n : v;
  return Number.isFinite(n) && decimalValue(String(n)) === decimalValue(v) ? n : v;
}

function textValues(vr: string, values: string[]): unknown[] {
  if (vr === 'PN') return values.map((v) => (v === '' ? null : personName(v)));
  if (vr === 'IS' || vr === 'DS') return values.map((v) => (v === '' ? null : numericString(vr, v)));
  return values.map((v) => (v === '' ? null : v));
}

/**
 * A binary number as JSON. FL and FD hold IEEE 754 NaN and infinities (PS3.5 Table 6.2-1), which a JSON number
 * cannot: JSON.stringify would write null, an empty value (PS3.18 F.2.5). They go as the strings "NaN",
 * "Infinity" and "-Infinity" (as JavaScript names them; Number() reads them back).
 */
const jsonNumber = (v: number): number | string =>
  Number.isFinite(v) ? v : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';

/**
 * DICOM JSON model (PS3.18 F.2) of a parsed dataset. Group length elements (gggg,0000) are left out, at every
 * level: retired in the data set (PS3.5 §7.2), a length of bytes that JSON does not have, and often stale (a
 * sender that edited the group without recomputing it); dcm2json and Orthanc leave them out too.
 */
export function datasetToJson(ds: Dataset, opts: ToJsonOptions = {}, path: number[] = []): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  const inlineMax = opts.inlineBinaryMax ?? INLINE_BINARY_MAX;
  for (const tag of [...ds.keys()].sort((a, b) => a - b)) {
    if ((tag & 0xffff) === 0) continue;
    const el = ds.get(tag)!;
    const key = tagToHex(tag);
    const here = [...path, tag];
    switch (el.kind) {
      case 'text': {
        const nonEmpty = !(el.values.length === 1 && el.values[0] === '');
        out[key] = nonEmpty ? { vr: el.vr, Value: textValues(el.vr, el.values) } : { vr: el.vr };
        break;
      }
      case 'numbers':
        out[key] = el.values.length ? { vr: el.vr, Value: el.values.map(jsonNumber) } : { vr: el.vr };
        break;
      case 'bigints':
        // JSON numbers lose precision beyond 2^53; PS3.18 allows strings for such values.
        out[key] = el.values.length
          ? {
              vr: el.vr,
              Value: el.values.map((v) =>
                v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)
                  ? Number(v)
                  : v.toString(),
              ),
            }
          : { vr: el.vr };
        break;
      case 'tags':
        out[key] = el.values.length ? { vr: 'AT', Value: el.values.map(tagToHex) } : { vr: 'AT' };
        break;
      case 'sequence':
        out[key] = el.items.length
          ? { vr: 'SQ', Value: el.items.map((item, i) => datasetToJson(item, opts, [...here, i])) }
          : { vr: 'SQ' };
        break;
      case 'bytes': {
        // Pixel data is offered as bulk data even when small: viewers fetch frames, not InlineBinary.
        const preferBulk = PIXEL_TAGS.has(tag) || el.data.length > inlineMax;
        if (el.data.length === 0) out[key] = { vr: el.vr };
        else if (!preferBulk || !opts.bulkDataUri)
          out[key] = { vr: el.vr, InlineBinary: el.data.toString('base64') };
        else {
          const uri = opts.bulkDataUri(here, el);
          out[key] = uri
            ? { vr: el.vr, BulkDataURI: uri }
            : { vr: el.vr, InlineBinary: el.data.toString('base64') };
        }
        break;
      }
      case 'bulk':
      case 'encapsulated': {
        const uri = opts.bulkDataUri?.(here, el);
        out[key] = uri ? { vr: el.vr, BulkDataURI: uri } : { vr: el.vr };
        break;
      }
    }
  }
  return out;
}

/** Why a DICOM JSON data set cannot be read (PS3.18 F.2): names the attribute, by its tag path. */
export class DicomJsonError extends CustosError {
  constructor(
    readonly where: string,
    message: string,
  ) {
    super({
      code: 'dicom.bad-json',
      message: `${where}: ${message}`,
      httpStatus: 400,
      dicomStatus: DicomStatus.CannotUnderstand,
    });
  }
}

const NUMBER_VRS = new Set(['US', 'SS', 'UL', 'SL', 'FL', 'FD']);
const BIG_VRS = new Set(['SV', 'UV']);
/** Deepest sequence nesting read from DICOM JSON: as deep as the Part 10 parser reads (its maxDepth default). */
export const MAX_JSON_DEPTH = 32;
/** PS3.18 F.2.3: an InlineBinary is base64 (RFC 4648 §4), padded. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * A DICOM JSON data set (PS3.18 F.2), as a STOW-RS client sends it, to elements for the Part 10 writer: the
 * inverse of `datasetToJson`. A `BulkDataURI` is handed to `bulk` with the tag path it stands at (as
 * `datasetToJson` gives it) and its answer is the value; an `InlineBinary` is its decoded bytes. Anything the
 * model does not allow (a key that is not a tag, an unknown VR, a value of the wrong type) throws a
 * DicomJsonError naming the attribute.
 */
export function jsonToWriteElements(
  json: unknown,
  bulk: (uri: string, tagPath: number[], vr: string) => WriteValue,
  path: number[] = [],
): WriteElement[] {
  const where = (tag?: number) => tagPathLabel([...path, ...(tag === undefined ? [] : [tag])]) || 'data set';
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new DicomJsonError(where(), 'a data set must be a JSON object');
  if (path.length / 2 >= MAX_JSON_DEPTH)
    throw new DicomJsonError(where(), `sequences are nested deeper than ${MAX_JSON_DEPTH} levels`);
  const out: WriteElement[] = [];
  for (const [key, raw] of Object.entries(json as Record<string, unknown>)) {
    if (!/^[0-9A-Fa-f]{8}$/.test(key))
      throw new DicomJsonError(where(), `'${key.slice(0, 40)}' is not a tag (eight hexadecimal digits)`);
    const tag = Number.parseInt(key, 16) >>> 0;
    const at = where(tag);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new DicomJsonError(at, 'an attribute must be a JSON object with a "vr"');
    const el = raw as Partial<DicomJsonElement>;
    const vr = el.vr;
    if (typeof vr !== 'string' || !KNOWN_VRS.has(vr))
      throw new DicomJsonError(at, `"vr" ${JSON.stringify(vr)?.slice(0, 20) ?? 'missing'} is not a VR`);
    const forms = [el.Value, el.BulkDataURI, el.InlineBinary].filter((v) => v !== undefined).length;
    if (forms > 1) throw new DicomJsonError(at, 'has more than one of Value, BulkDataURI and InlineBinary');
    if (el.BulkDataURI !== undefined) {
      if (typeof el.BulkDataURI !== 'string') throw new DicomJsonError(at, 'BulkDataURI must be a string');
      out.push({ tag, vr, value: bulk(el.BulkDataURI, [...path, tag], vr) });
      continue;
    }
    if (el.InlineBinary !== undefined) {
      if (typeof el.InlineBinary !== 'string' || !BASE64.test(el.InlineBinary))
        throw new DicomJsonError(at, 'InlineBinary must be base64');
      out.push({ tag, vr, value: Buffer.from(el.InlineBinary, 'base64') });
      continue;
    }
    if (el.Value !== undefined && !Array.isArray(el.Value))
      throw new DicomJsonError(at, 'Value must be an array');
    const values = el.Value ?? [];
    if (vr === 'SQ') {
      out.push({
        tag,
        vr,
        value: values.map((item, i) => jsonToWriteElements(item, bulk, [...path, tag, i])),
      });
    } else if (BINARY_VRS.has(vr)) {
      if (values.length) throw new DicomJsonError(at, `a ${vr} value goes in InlineBinary or BulkDataURI`);
      out.push({ tag, vr, value: Buffer.alloc(0) });
    } else if (NUMBER_VRS.has(vr)) {
      const numbers = values.map((v) => (typeof v === 'string' ? Number(v) : v));
      if (!numbers.every((n) => typeof n === 'number' && (vr === 'FL' || vr === 'FD' || Number.isInteger(n))))
        throw new DicomJsonError(at, `a ${vr} value must be a number`);
      out.push({ tag, vr, value: numbers as number[] });
    } else if (BIG_VRS.has(vr)) {
      try {
        out.push({ tag, vr, value: values.map((v) => BigInt(v as string | number)) });
      } catch {
        throw new DicomJsonError(at, `a ${vr} value must be an integer`);
      }
    } else if (vr === 'AT') {
      if (!values.every((v) => typeof v === 'string' && /^[0-9A-Fa-f]{8}$/.test(v)))
        throw new DicomJsonError(at, 'an AT value must be a tag of eight hexadecimal digits');
      out.push({ tag, vr, value: (values as string[]).map((v) => Number.parseInt(v, 16) >>> 0) });
    } else if (vr === 'PN') {
      out.push({
        tag,
        vr,
        value: values.map((v) => {
          if (v === null) return '';
          // Not the model's form (F.2.2), but what some senders write: the name in PS3.5 form.
          if (typeof v === 'string') return v;
          if (typeof v !== 'object' || Array.isArray(v))
            throw new DicomJsonError(
              at,
              'a PN value must be an object with Alphabetic, Ideographic, Phonetic',
            );
          const pn = v as Record<string, unknown>;
          const groups = [pn.Alphabetic, pn.Ideographic, pn.Phonetic].map((g) =>
            typeof g === 'string' ? g : '',
          );
          while (groups.length > 1 && groups[groups.length - 1] === '') groups.pop();
          return groups.join('=');
        }),
      });
    } else {
      const texts = values.map((v) =>
        v === null
          ? ''
          : typeof v === 'string' || (typeof v === 'number' && (vr === 'IS' || vr === 'DS'))
            ? String(v)
            : undefined,
      );
      if (texts.some((t) => t === undefined)) throw new DicomJsonError(at, `a ${vr} value must be a string`);
      out.push({ tag, vr, value: texts.length ? (texts as string[]) : '' });
    }
  }
  return out;
}

/** A tag path (tag, item index, tag, …) for messages: '(0088,0200) IconImageSequence[0] (7FE0,0010) PixelData'. */
export function tagPathLabel(path: number[]): string {
  return path.map((t, i) => (i % 2 === 1 ? `[${t}] ` : tagLabel(t))).join('');
}
