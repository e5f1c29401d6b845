import { writePart10, type WriteElement } from '../../src/dicom/part10-writer.js';

/** Deterministic, generated test objects (CONVENTIONS.md: no binary fixtures of unknown origin). */
export interface FixtureSpec {
  patientId?: string;
  patientName?: string;
  birthDate?: string;
  sex?: string;
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sopClassUid?: string;
  modality?: string;
  studyDate?: string;
  studyTime?: string;
  accessionNumber?: string;
  referringPhysician?: string;
  studyDescription?: string;
  seriesNumber?: number;
  instanceNumber?: number;
  rows?: number;
  columns?: number;
  frames?: number;
  charset?: string;
  transferSyntaxUid?: string;
  /** Pixel data as these fragments (encapsulated) in place of the native pixel data. */
  encapsulatedPixelData?: { fragments: Buffer[]; basicOffsetTable?: number[] };
  /** Extra elements (override by tag). */
  extra?: WriteElement[];
  /** Omit these tags entirely (to build invalid objects). */
  omit?: number[];
}

export const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
export const MR_IMAGE = '1.2.840.10008.5.1.4.1.1.4';
export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const IMPLICIT_LE = '1.2.840.10008.1.2';

/** Pixel value at (frame, row, col): distinct per frame so frame retrieval can be checked byte for byte. */
/**
 * Yamada^Tarou=山田^太郎 as a PN value in ISO 2022 IR 87 (Specific Character Set `\ISO 2022 IR 87`): the
 * ideographic group in JIS X 0208 between ESC $ B and ESC ( B (PS3.5 Annex H). Not padded.
 */
export const YAMADA_ISO_2022_IR_87 = Buffer.concat([
  Buffer.from('Yamada^Tarou='),
  Buffer.from('1b24423b3345441b2842', 'hex'),
  Buffer.from('^'),
  Buffer.from('1b244242404f3a1b2842', 'hex'),
]);

/**
 * Procedure Code Sequence with one item that names its own Specific Character Set, ISO_IR 144, and a Code Meaning
 * in it (Рентген in ISO 8859-5): text Custos cannot write back in that item's set once it re-encodes.
 */
export const CYRILLIC_PROCEDURE_CODE: WriteElement = {
  tag: 0x00081032,
  vr: 'SQ',
  value: [
    [
      { tag: 0x00080005, vr: 'CS', value: 'ISO_IR 144' },
      { tag: 0x00080100, vr: 'SH', value: 'X1' },
      { tag: 0x00080102, vr: 'SH', value: 'L' },
      { tag: 0x00080104, vr: 'LO', value: Buffer.from('c0d5dde2d3d5dd20', 'hex') },
    ],
  ],
};

export const pixelValue = (frame: number, row: number, col: number) =>
  (frame * 1000 + row * 7 + col * 3) & 0xffff;

export function pixelBytes(rows: number, columns: number, frames: number): Buffer {
  const buf = Buffer.alloc(rows * columns * frames * 2);
  let o = 0;
  for (let f = 0; f < frames; f++)
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < columns; c++) {
        buf.writeUInt16LE(pixelValue(f, r, c), o);
        o += 2;
      }
  return buf;
}

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;

/**
 * The unconditional Type 1 and Type 2 attributes of the CT and MR image IODs beyond the common ones, so that
 * fixtures pass header validation (docs/validation.md) unless a test breaks them on purpose.
 */
function iodElements(sopClassUid: string, frameOfReferenceUid: string): WriteElement[] {
  const common: WriteElement[] = [
    { tag: t(0x0008, 0x0070), vr: 'LO', value: 'Custos Test' },
    { tag: t(0x0018, 0x0050), vr: 'DS', value: '1' },
    { tag: t(0x0020, 0x0032), vr: 'DS', value: ['0', '0', '0'] },
    { tag: t(0x0020, 0x0037), vr: 'DS', value: ['1', '0', '0', '0', '1', '0'] },
    { tag: t(0x0020, 0x0052), vr: 'UI', value: frameOfReferenceUid },
    { tag: t(0x0020, 0x1040), vr: 'LO', value: '' },
    { tag: t(0x0028, 0x0030), vr: 'DS', value: ['0.5', '0.5'] },
  ];
  if (sopClassUid === CT_IMAGE)
    return [
      ...common,
      { tag: t(0x0008, 0x0008), vr: 'CS', value: ['ORIGINAL', 'PRIMARY', 'AXIAL'] },
      { tag: t(0x0018, 0x0060), vr: 'DS', value: '120' },
      { tag: t(0x0020, 0x0012), vr: 'IS', value: '1' },
      { tag: t(0x0028, 0x1052), vr: 'DS', value: '0' },
      { tag: t(0x0028, 0x1053), vr: 'DS', value: '1' },
    ];
  if (sopClassUid === MR_IMAGE)
    return [
      ...common,
      { tag: t(0x0008, 0x0008), vr: 'CS', value: ['ORIGINAL', 'PRIMARY', 'M'] },
      { tag: t(0x0018, 0x0020), vr: 'CS', value: 'SE' },
      { tag: t(0x0018, 0x0021), vr: 'CS', value: 'NONE' },
      { tag: t(0x0018, 0x0022), vr: 'CS', value: '' },
      { tag: t(0x0018, 0x0023), vr: 'CS', value: '2D' },
      { tag: t(0x0018, 0x0081), vr: 'DS', value: '10' },
      { tag: t(0x0018, 0x0091), vr: 'IS', value: '1' },
    ];
  return common;
}

export function makeInstance(spec: FixtureSpec): Buffer {
  const rows = spec.rows ?? 8;
  const columns = spec.columns ?? 8;
  const frames = spec.frames ?? 1;
  const els: WriteElement[] = [
    { tag: t(0x0008, 0x0005), vr: 'CS', value: spec.charset ?? 'ISO_IR 192' },
    { tag: t(0x0008, 0x0016), vr: 'UI', value: spec.sopClassUid ?? CT_IMAGE },
    { tag: t(0x0008, 0x0018), vr: 'UI', value: spec.sopInstanceUid },
    { tag: t(0x0008, 0x0020), vr: 'DA', value: spec.studyDate ?? '20240115' },
    { tag: t(0x0008, 0x0030), vr: 'TM', value: spec.studyTime ?? '101500' },
    { tag: t(0x0008, 0x0050), vr: 'SH', value: spec.accessionNumber ?? 'ACC0001' },
    { tag: t(0x0008, 0x0060), vr: 'CS', value: spec.modality ?? 'CT' },
    { tag: t(0x0008, 0x0090), vr: 'PN', value: spec.referringPhysician ?? 'House^Gregory' },
    { tag: t(0x0008, 0x1030), vr: 'LO', value: spec.studyDescription ?? 'CT HEAD' },
    { tag: t(0x0010, 0x0010), vr: 'PN', value: spec.patientName ?? 'Doe^Jane' },
    { tag: t(0x0010, 0x0020), vr: 'LO', value: spec.patientId ?? 'PID-1' },
    { tag: t(0x0010, 0x0030), vr: 'DA', value: spec.birthDate ?? '19700101' },
    { tag: t(0x0010, 0x0040), vr: 'CS', value: spec.sex ?? 'F' },
    { tag: t(0x0020, 0x000d), vr: 'UI', value: spec.studyUid },
    { tag: t(0x0020, 0x000e), vr: 'UI', value: spec.seriesUid },
    { tag: t(0x0020, 0x0010), vr: 'SH', value: 'S1' },
    { tag: t(0x0020, 0x0011), vr: 'IS', value: String(spec.seriesNumber ?? 1) },
    { tag: t(0x0020, 0x0013), vr: 'IS', value: String(spec.instanceNumber ?? 1) },
    { tag: t(0x0028, 0x0002), vr: 'US', value: 1 },
    { tag: t(0x0028, 0x0004), vr: 'CS', value: 'MONOCHROME2' },
    ...(frames > 1 ? [{ tag: t(0x0028, 0x0008), vr: 'IS', value: String(frames) }] : []),
    { tag: t(0x0028, 0x0010), vr: 'US', value: rows },
    { tag: t(0x0028, 0x0011), vr: 'US', value: columns },
    { tag: t(0x0028, 0x0100), vr: 'US', value: 16 },
    { tag: t(0x0028, 0x0101), vr: 'US', value: 16 },
    { tag: t(0x0028, 0x0102), vr: 'US', value: 15 },
    { tag: t(0x0028, 0x0103), vr: 'US', value: 0 },
    { tag: t(0x7fe0, 0x0010), vr: 'OW', value: pixelBytes(rows, columns, frames) },
    ...iodElements(spec.sopClassUid ?? CT_IMAGE, `${spec.studyUid}.1`),
  ];
  const extra = new Map((spec.extra ?? []).map((e) => [e.tag, e]));
  const omit = new Set(spec.omit ?? []);
  const merged = els.filter((e) => !extra.has(e.tag) && !omit.has(e.tag)).concat([...extra.values()]);
  return writePart10(
    spec.encapsulatedPixelData ? merged.filter((e) => e.tag !== t(0x7fe0, 0x0010)) : merged,
    {
      transferSyntaxUid: spec.transferSyntaxUid ?? EXPLICIT_LE,
      ...(spec.encapsulatedPixelData ? { encapsulatedPixelData: spec.encapsulatedPixelData } : {}),
    },
  );
}

let counter = 0;
/** A fresh UID under a test root. */
export const uid = (label = 1) => `2.25.${process.pid}${Date.now() % 100000}${label}${++counter}`;

/** Body and Content-Type for a STOW-RS request. */
export function stowBody(
  parts: { bytes: Buffer; contentType?: string }[],
  boundary = 'custos-test-boundary-7d3f',
): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Type: ${p.contentType ?? 'application/dicom'}\r\n\r\n`),
    );
    chunks.push(p.bytes);
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return {
    body: Buffer.concat(chunks),
    contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`,
  };
}
