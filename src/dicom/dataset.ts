/** The parsed form of a DICOM dataset. Values are decoded; large binary values are references, not bytes. */
export type Element =
  | { vr: string; kind: 'text'; values: string[] }
  | { vr: string; kind: 'numbers'; values: number[] }
  | { vr: string; kind: 'bigints'; values: bigint[] }
  | { vr: 'AT'; kind: 'tags'; values: number[] }
  /** A binary value held in memory; `offset`, where a parser knows it, as for `bulk`. */
  | { vr: string; kind: 'bytes'; data: Buffer; offset?: number }
  /** A value not held in memory: `offset` is its absolute byte position in the Part 10 stream. */
  | { vr: string; kind: 'bulk'; offset: number; length: number }
  | { vr: 'SQ'; kind: 'sequence'; items: Dataset[] }
  | {
      vr: string;
      kind: 'encapsulated';
      /** Offset of the pixel data element's value (the first item tag). */
      offset: number;
      basicOffsetTable: number[];
      /** Absolute offsets and lengths of each fragment's bytes (excluding the item headers). */
      fragments: Fragment[];
    };

export type Dataset = Map<number, Element>;

/** VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length (PS3.5 §7.1.2). */
export const LONG_VRS = new Set([
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'SQ',
  'UC',
  'UR',
  'UT',
  'UN',
  'SV',
  'UV',
]);
export const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
export const TEXT_VRS = new Set([
  'AE',
  'AS',
  'CS',
  'DA',
  'DS',
  'DT',
  'IS',
  'LO',
  'LT',
  'PN',
  'SH',
  'ST',
  'TM',
  'UC',
  'UI',
  'UR',
  'UT',
]);
/** Text VRs whose bytes follow the Specific Character Set; the others are plain ASCII (PS3.5 §6.1.2.3). */
export const CHARSET_VRS = new Set(['SH', 'LO', 'ST', 'LT', 'UT', 'PN', 'UC']);
/** Single-valued text: a backslash is data, not a value separator. */
export const UNSPLIT_VRS = new Set(['LT', 'ST', 'UT', 'UR']);
export const KNOWN_VRS = new Set([...LONG_VRS, ...TEXT_VRS, 'AT', 'FL', 'FD', 'SL', 'SS', 'UL', 'US']);

/**
 * A VR in an explicit VR header that this archive does not know but a later edition of the standard may define.
 * PS3.5 §6.2: every new VR has the long header form (reserved bytes, 32-bit length, as OB and UN), so a reader
 * that does not know one reads it as UN, as dcmtk and Orthanc do. Only two upper-case letters count: every VR is
 * spelled so, while corrupt data or implicit VR bytes mistaken for explicit ones (a length where the VR is) seldom
 * are, and reading those on with a 32-bit length taken from the value would fail far from the fault, or not at all.
 */
export function isUnknownVr(vr: string): boolean {
  return /^[A-Z]{2}$/.test(vr) && !KNOWN_VRS.has(vr);
}

export function getStrings(ds: Dataset, t: number): string[] | undefined {
  const e = ds.get(t);
  if (!e) return undefined;
  if (e.kind === 'text') return e.values;
  if (e.kind === 'numbers' || e.kind === 'bigints') return e.values.map(String);
  return undefined;
}

/** First value of a text (or numeric) element, already trimmed of padding. */
export function getString(ds: Dataset, t: number): string | undefined {
  return getStrings(ds, t)?.[0];
}

export function getNumbers(ds: Dataset, t: number): number[] | undefined {
  const e = ds.get(t);
  if (!e) return undefined;
  if (e.kind === 'numbers') return e.values;
  if (e.kind === 'text') return e.values.map((v) => Number(v)).filter((n) => Number.isFinite(n));
  if (e.kind === 'bigints') return e.values.map(Number);
  return undefined;
}

export function getNumber(ds: Dataset, t: number): number | undefined {
  return getNumbers(ds, t)?.[0];
}

/** One fragment of encapsulated pixel data: where its bytes are, and whether they open a JPEG or JPEG 2000 codestream. */
export interface Fragment {
  offset: number;
  length: number;
  /** Starts with a JPEG SOI (FFD8) or JPEG 2000 SOC (FF4F) marker: the first fragment of a frame. */
  opens?: boolean;
}
