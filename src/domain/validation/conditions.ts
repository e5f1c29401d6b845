import type { Dataset, Element } from '../../dicom/dataset.js';
import { lookupTag, tagForKeyword } from '../../dicom/dictionary.js';

/**
 * Conditions of Type 1C/2C attributes and of conditional (C) modules that can be decided from the dataset alone
 * (docs/validation.md lists which are evaluated). Pure.
 */
export type Condition =
  /** Any of these attributes is present. */
  | { kind: 'present'; any: string[] }
  /** None of these attributes is present. */
  | { kind: 'absent'; all: string[] }
  /** The attribute has one of these values (value `index`, 0-based, or any value); AT values by keyword. */
  | { kind: 'value'; keyword: string; index?: number; in: string[] }
  /** The attribute's first value, as a number, is greater than `than`. */
  | { kind: 'greater'; keyword: string; than: number }
  /** Some text value of a VR that Specific Character Set applies to holds a character outside ASCII. */
  | { kind: 'non-default-repertoire' }
  /** Native pixel data holds more than one frame of Rows × Columns × SamplesPerPixel × BitsAllocated. */
  | { kind: 'multi-frame-pixel-data' }
  | { kind: 'all'; of: Condition[] };

const tagOf = (keyword: string): number => {
  const t = tagForKeyword(keyword);
  if (t === undefined) throw new Error(`condition names unknown keyword ${keyword}`);
  return t;
};

function valuesOf(el: Element | undefined): string[] {
  if (!el) return [];
  switch (el.kind) {
    case 'text':
      return el.values.map((v) => v.trim());
    case 'numbers':
      return el.values.map(String);
    case 'bigints':
      return el.values.map(String);
    case 'tags':
      return el.values.map((t) => lookupTag(t)?.keyword ?? t.toString(16).padStart(8, '0'));
    default:
      return [];
  }
}

function firstNumber(ds: Dataset, keyword: string): number | undefined {
  const v = valuesOf(ds.get(tagOf(keyword)))[0];
  const n = v === undefined || v === '' ? NaN : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** VRs whose values Specific Character Set (0008,0005) governs (PS3.5 §6.1.2.3). */
const CHARSET_VRS = new Set(['SH', 'LO', 'ST', 'LT', 'PN', 'UC', 'UT']);

function hasNonAscii(ds: Dataset): boolean {
  for (const el of ds.values()) {
    if (el.kind === 'sequence') {
      if (el.items.some(hasNonAscii)) return true;
    } else if (el.kind === 'text' && CHARSET_VRS.has(el.vr)) {
      // eslint-disable-next-line no-control-regex
      if (el.values.some((v) => /[^\x00-\x7f]/.test(v))) return true;
    }
  }
  return false;
}

function pixelDataLength(ds: Dataset): number | undefined {
  const el = ds.get(tagOf('PixelData'));
  if (!el) return undefined;
  if (el.kind === 'bytes') return el.data.length;
  if (el.kind === 'bulk') return el.length;
  return undefined; // encapsulated: frames are fragments, not lengths
}

/**
 * The native pixel data's length and one frame's size as the Image Pixel module describes it (PS3.5 §8.1.1, PS3.3
 * C.7.6.3): Rows × Columns × Samples per Pixel × Bits Allocated / 8 bytes (YBR_FULL_422 holds two samples per
 * pixel). Undefined when the pixel data is encapsulated or absent, or the description lacks a value.
 */
function nativeFrame(ds: Dataset): { holds: number; frameBits: number } | undefined {
  const holds = pixelDataLength(ds);
  const rows = firstNumber(ds, 'Rows');
  const cols = firstNumber(ds, 'Columns');
  const bits = firstNumber(ds, 'BitsAllocated');
  if (holds === undefined || !rows || !cols || !bits) return undefined;
  const photometric = valuesOf(ds.get(tagOf('PhotometricInterpretation')))[0]
    ?.trim()
    .toUpperCase();
  const samples = photometric === 'YBR_FULL_422' ? 2 : (firstNumber(ds, 'SamplesPerPixel') ?? 1);
  return { holds, frameBits: rows * cols * samples * bits };
}

/**
 * Native pixel data shorter than its frame size times Number of Frames (see nativeFrame). Undefined when it is as
 * long as that, or nativeFrame cannot tell (a missing Type 1 attribute is reported as such).
 */
export function shortPixelData(
  ds: Dataset,
): { holds: number; needs: number; frames: number; frameBytes: number } | undefined {
  const native = nativeFrame(ds);
  if (!native) return undefined;
  const frames = Math.max(1, firstNumber(ds, 'NumberOfFrames') ?? 1);
  const needs = Math.ceil((native.frameBits * frames) / 8);
  if (native.holds >= needs) return undefined;
  return { holds: native.holds, needs, frames, frameBytes: native.frameBits / 8 };
}

export function evaluate(ds: Dataset, c: Condition): boolean {
  switch (c.kind) {
    case 'present':
      return c.any.some((k) => ds.has(tagOf(k)));
    case 'absent':
      return c.all.every((k) => !ds.has(tagOf(k)));
    case 'value': {
      const vs = valuesOf(ds.get(tagOf(c.keyword)));
      const pick = c.index === undefined ? vs : vs[c.index] === undefined ? [] : [vs[c.index]!];
      return pick.some((v) => c.in.includes(v.toUpperCase()) || c.in.includes(v));
    }
    case 'greater': {
      const n = firstNumber(ds, c.keyword);
      return n !== undefined && n > c.than;
    }
    case 'non-default-repertoire':
      return hasNonAscii(ds);
    case 'multi-frame-pixel-data': {
      const native = nativeFrame(ds);
      if (!native) return false;
      const frame = Math.ceil(native.frameBits / 8);
      // One frame padded to even length is still one frame.
      return native.holds > frame + (frame % 2);
    }
    case 'all':
      return c.of.every((x) => evaluate(ds, x));
  }
}

/** 'PascalCase' keyword from an attribute name as PS3.3 writes it ('Number of Frames' -> 'NumberOfFrames'). */
function keywordFromName(name: string): string | undefined {
  const kw = name
    .replace(/\(.*?\)/g, ' ')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
  return tagForKeyword(kw) !== undefined ? kw : undefined;
}

const TAG_RE = /\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)/g;
const keywordOfTag = (g: string, e: string) => lookupTag(Number.parseInt(`${g}${e}`, 16) >>> 0)?.keyword;

/**
 * Parse a conditional statement of ciod_to_modules.json (PS3.3 Annex A, e.g. "Required if Photometric
 * Interpretation (0028,0004) has a value of PALETTE COLOR") into a condition, or undefined when it is not
 * mechanical ("Required if contrast media was used in this image").
 */
export function parseConditionText(text: string): Condition | undefined {
  const first = text.split('\n')[0]!.trim();
  const m0 = /^Required if (.+?)(?:\.\s.*|\.)?$/.exec(first);
  if (!m0) return undefined;
  const body = m0[1]!
    .replace(/\s+May be present otherwise$/i, '')
    .replace(/[.,]?\s*may be present otherwise$/i, '');
  // "A (gggg,eeee) or B (gggg,eeee) are present" / "A (gggg,eeee) is present"
  const present = /^(.+?) (?:are|is) present$/.exec(body);
  if (present) {
    const any = [...present[1]!.matchAll(TAG_RE)].map((m) => keywordOfTag(m[1]!, m[2]!));
    return any.length && any.every(Boolean) ? { kind: 'present', any: any as string[] } : undefined;
  }
  // "Name (gggg,eeee) [Value n] is|=|equals|has a value of V1, V2 or V3"
  const value =
    /^(.+?) \(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)(?: Value (\d+))? (?:is|=|equals|has a value of) (.+)$/.exec(
      body,
    );
  if (value) {
    const keyword = keywordOfTag(value[2]!, value[3]!);
    if (!keyword) return undefined;
    const raw = value[5]!
      .split(/,\s+(?:or\s+)?|\s+or\s+/)
      .map((v) => v.trim())
      .filter(Boolean);
    const values: string[] = [];
    for (const v of raw) {
      const tagged = [...v.matchAll(TAG_RE)];
      if (tagged.length) {
        const kw = keywordOfTag(tagged[0]![1]!, tagged[0]![2]!);
        if (!kw) return undefined;
        values.push(kw);
      } else if (/^[A-Z0-9 _]+$/.test(v)) values.push(v);
      else return undefined;
    }
    return {
      kind: 'value',
      keyword,
      ...(value[4] ? { index: Number(value[4]) - 1 } : {}),
      in: values,
    };
  }
  // "Number of Frames is greater than 1"
  const greater = /^(.+?) is greater than (\d+)$/.exec(body);
  if (greater) {
    const keyword = keywordFromName(greater[1]!);
    return keyword ? { kind: 'greater', keyword, than: Number(greater[2]) } : undefined;
  }
  return undefined;
}

/** Human-readable form of a condition, for messages and docs. */
export function describeCondition(c: Condition): string {
  switch (c.kind) {
    case 'present':
      return `${c.any.join(' or ')} present`;
    case 'absent':
      return `${c.all.join(' and ')} absent`;
    case 'value':
      return `${c.keyword}${c.index !== undefined ? ` value ${c.index + 1}` : ''} is ${c.in.join(' or ')}`;
    case 'greater':
      return `${c.keyword} > ${c.than}`;
    case 'non-default-repertoire':
      return 'text outside the default character repertoire is used';
    case 'multi-frame-pixel-data':
      return 'the pixel data holds more than one frame';
    case 'all':
      return c.of.map(describeCondition).join(' and ');
  }
}
