import type { Dataset, Element } from './dataset.js';
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
