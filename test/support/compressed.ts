// Compressed test objects made by real codecs: dcmtk (dcmcrle, dcmcjpls, dcmcjpeg), GDCM (gdcmconv --j2k) and
// OpenJPH's reference encoder (ojph_compress, HTJ2K; the codestream is encapsulated here) compress natively encoded
// objects written by the fixtures (CONVENTIONS.md: no binary fixtures of unknown origin).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rewriteHeaderAs } from '../../src/dicom/header-rewrite.js';
import { getString, parsePart10 } from '../../src/dicom/part10-parser.js';
import type { WriteElement } from '../../src/dicom/part10-writer.js';
import { dcmtk } from './dcmtk.js';
import { makeInstance } from './fixtures.js';

export const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';
export const ROWS = 48;
export const COLUMNS = 64;

export type Source = 'mono16' | 'mono12' | 'mono8' | 'rgb8';

/** Natively encoded pixels of each kind: gradients with some texture, so that every codec has work to do. */
export function sourceElements(kind: Source): { sopClassUid?: string; extra: WriteElement[] } {
  if (kind === 'mono16') return { extra: [] };
  if (kind === 'mono12') {
    const px = Buffer.alloc(ROWS * COLUMNS * 2);
    for (let i = 0; i < ROWS * COLUMNS; i++) px.writeUInt16LE((i * 37) % 4096, 2 * i);
    return {
      extra: [
        { tag: t(0x0028, 0x0101), vr: 'US', value: 12 },
        { tag: t(0x0028, 0x0102), vr: 'US', value: 11 },
        { tag: t(0x7fe0, 0x0010), vr: 'OW', value: px },
      ],
    };
  }
  const samples = kind === 'rgb8' ? 3 : 1;
  const px = Buffer.alloc(ROWS * COLUMNS * samples);
  for (let r = 0; r < ROWS; r++)
    for (let c = 0; c < COLUMNS; c++)
      for (let s = 0; s < samples; s++)
        px[(r * COLUMNS + c) * samples + s] = (r * 4 + c * 2 + s * 60 + ((r * c) % 7)) & 0xff;
  return {
    sopClassUid: SECONDARY_CAPTURE,
    extra: [
      { tag: t(0x0008, 0x0064), vr: 'CS', value: 'WSD' },
      { tag: t(0x0028, 0x0002), vr: 'US', value: samples },
      { tag: t(0x0028, 0x0004), vr: 'CS', value: samples === 3 ? 'RGB' : 'MONOCHROME2' },
      ...(samples === 3 ? [{ tag: t(0x0028, 0x0006), vr: 'US', value: 0 } as WriteElement] : []),
      { tag: t(0x0028, 0x0100), vr: 'US', value: 8 },
      { tag: t(0x0028, 0x0101), vr: 'US', value: 8 },
      { tag: t(0x0028, 0x0102), vr: 'US', value: 7 },
      { tag: t(0x7fe0, 0x0010), vr: 'OB', value: px },
    ],
  };
}

/** How each compressed variant is made: the tool and its arguments before the input and output files. */
export const CODECS = {
  rle: { tool: 'dcmcrle', args: [], ts: '1.2.840.10008.1.2.5' },
  jpegls: { tool: 'dcmcjpls', args: [], ts: '1.2.840.10008.1.2.4.80' },
  jpeglsByPlane: { tool: 'dcmcjpls', args: ['+in'], ts: '1.2.840.10008.1.2.4.80' },
  jpeglsBySample: { tool: 'dcmcjpls', args: ['+is'], ts: '1.2.840.10008.1.2.4.80' },
  jpegLossless: { tool: 'dcmcjpeg', args: ['+el'], ts: '1.2.840.10008.1.2.4.57' },
  jpegLosslessSv1: { tool: 'dcmcjpeg', args: ['+e1'], ts: '1.2.840.10008.1.2.4.70' },
  j2k: { tool: 'gdcmconv', args: ['--j2k'], ts: '1.2.840.10008.1.2.4.90' },
  jpegBaseline: { tool: 'dcmcjpeg', args: ['+eb'], ts: '1.2.840.10008.1.2.4.50' },
  jpegExtended: { tool: 'dcmcjpeg', args: ['+ee'], ts: '1.2.840.10008.1.2.4.51' },
  // Reversible; an RGB image with the reversible colour transform (ojph_compress's default), its header left RGB
  // as GDCM leaves it.
  htj2k: { tool: 'ojph_compress', args: ['-reversible', 'true'], ts: '1.2.840.10008.1.2.4.201' },
  // RGB without the colour transform: what @cornerstonejs/codec-openjph 2.4 decodes wrongly (decode-frame.ts).
  htj2kNoColourTransform: {
    tool: 'ojph_compress',
    args: ['-reversible', 'true', '-colour_trans', 'false'],
    ts: '1.2.840.10008.1.2.4.201',
  },
} as const;
export type Codec = keyof typeof CODECS;

/** Each lossless codec with the kinds of pixel data it is tested on. */
export const LOSSLESS: [Codec, Source][] = [
  ['rle', 'mono16'],
  ['rle', 'mono8'],
  ['rle', 'rgb8'],
  ['jpegls', 'mono16'],
  ['jpegls', 'mono8'],
  ['jpegls', 'rgb8'],
  ['jpeglsByPlane', 'rgb8'],
  ['jpeglsBySample', 'rgb8'],
  ['jpegLossless', 'mono16'],
  ['jpegLossless', 'mono8'],
  ['jpegLosslessSv1', 'mono16'],
  ['jpegLosslessSv1', 'rgb8'],
  ['j2k', 'mono16'],
  ['j2k', 'mono8'],
  ['j2k', 'rgb8'],
  ['htj2k', 'mono16'],
  ['htj2k', 'mono8'],
  ['htj2k', 'rgb8'],
];

/** A natively encoded object of `kind` (ROWS × COLUMNS), as the fixtures write it. */
export function nativeObject(
  kind: Source,
  ids: { studyUid: string; seriesUid: string; sopInstanceUid: string },
) {
  const { sopClassUid, extra } = sourceElements(kind);
  return makeInstance({
    ...ids,
    rows: ROWS,
    columns: COLUMNS,
    ...(sopClassUid ? { sopClassUid } : {}),
    extra,
  });
}

/**
 * `original` compressed by `codec`'s tool in `dir`: the file's bytes, its SOP Instance UID (lossy JPEG gets a new
 * one from dcmcjpeg) and the encoded frame (its fragments concatenated). Throws when the tool fails.
 */
export async function compress(
  dir: string,
  codec: Codec,
  original: Buffer,
): Promise<{ bytes: Buffer; sopInstanceUid: string; frame: Buffer }> {
  const name = `${codec}-${Math.random().toString(36).slice(2)}`;
  const input = join(dir, `${name}-in.dcm`);
  const output = join(dir, `${name}-out.dcm`);
  await writeFile(input, original);
  const { tool, args, ts } = CODECS[codec];
  const bytes =
    tool === 'ojph_compress'
      ? await htj2kObject(dir, name, original, [...args], ts)
      : await (async () => {
          const r = await dcmtk(tool, [...args, input, output]);
          if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
          return readFile(output);
        })();
  const parsed = await parsePart10(bytes);
  if (parsed.transferSyntaxUid !== ts)
    throw new Error(`${tool} wrote ${parsed.transferSyntaxUid}, not ${ts}`);
  const frame = Buffer.concat(
    parsed.pixelData!.fragments!.map((f) => bytes.subarray(f.offset, f.offset + f.length)),
  );
  return { bytes, sopInstanceUid: getString(parsed.dataset, t(0x0008, 0x0018))!, frame };
}

/**
 * A single-frame native object as HTJ2K: its pixels written as PGM (grey) or PPM (RGB), big endian above 8 bits,
 * compressed by ojph_compress, and the codestream encapsulated (an empty Basic Offset Table, one fragment) after
 * the original's header, whose file meta information names `ts`.
 */
async function htj2kObject(dir: string, name: string, original: Buffer, args: string[], ts: string) {
  const parsed = await parsePart10(original, { maxInlineValueBytes: 0 });
  const num = (tag: number) => {
    const el = parsed.dataset.get(tag);
    return el?.kind === 'numbers' ? el.values[0]! : undefined;
  };
  const rows = num(t(0x0028, 0x0010))!;
  const columns = num(t(0x0028, 0x0011))!;
  const samples = num(t(0x0028, 0x0002)) ?? 1;
  const bitsAllocated = num(t(0x0028, 0x0100))!;
  const bitsStored = num(t(0x0028, 0x0101)) ?? bitsAllocated;
  const px = parsed.pixelData!;
  const pixels = Buffer.from(original.subarray(px.offset, px.offset + px.length));
  if (bitsAllocated === 16) pixels.swap16();
  const image = join(dir, `${name}.${samples === 3 ? 'ppm' : 'pgm'}`);
  const header = `${samples === 3 ? 'P6' : 'P5'}\n${columns} ${rows}\n${2 ** bitsStored - 1}\n`;
  await writeFile(image, Buffer.concat([Buffer.from(header, 'latin1'), pixels]));
  const codestream = join(dir, `${name}.j2c`);
  const r = await dcmtk('ojph_compress', ['-i', image, '-o', codestream, ...args]);
  if (r.code !== 0) throw new Error(`ojph_compress failed: ${r.stderr}${r.stdout}`);
  const encoded = await readFile(codestream);
  const fragment = encoded.length % 2 ? Buffer.concat([encoded, Buffer.alloc(1)]) : encoded;
  const item = (value: Buffer) => {
    const h = Buffer.alloc(8);
    h.writeUInt16LE(0xfffe, 0);
    h.writeUInt16LE(0xe000, 2);
    h.writeUInt32LE(value.length, 4);
    return Buffer.concat([h, value]);
  };
  const element = Buffer.alloc(12);
  element.writeUInt16LE(0x7fe0, 0);
  element.writeUInt16LE(0x0010, 2);
  element.write('OB', 4, 'latin1');
  element.writeUInt32LE(0xffffffff, 8);
  const end = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
  const head = await rewriteHeaderAs(original.subarray(0, px.offset - 12), ts, () => undefined);
  return Buffer.concat([head.bytes, element, item(Buffer.alloc(0)), item(fragment), end]);
}

/**
 * What dcmtk's dcmdjpeg (IJG's libjpeg) decodes a stored JPEG object to, worked in `dir`: its pixel data, the
 * reference for a lossy JPEG decoder. Throws when dcmdjpeg fails.
 */
export async function dcmdjpegPixels(dir: string, bytes: Buffer): Promise<Buffer> {
  const input = join(dir, `dcmdjpeg-${Math.random().toString(36).slice(2)}.dcm`);
  await writeFile(input, bytes);
  const r = await dcmtk('dcmdjpeg', [input, `${input}.plain`]);
  if (r.code !== 0) throw new Error(`dcmdjpeg failed: ${r.stderr}${r.stdout}`);
  return pixelDataOf(await readFile(`${input}.plain`));
}

/**
 * The largest difference between the 16-bit little endian samples `ours` and the samples `ref`, of `refBytes`
 * bytes each (8-bit references for 8-bit streams decoded to 16-bit samples).
 */
export function maxSampleDifference(ours: Buffer, ref: Buffer, refBytes: 1 | 2 = 2): number {
  let worst = 0;
  for (let i = 0; i < ours.length / 2; i++)
    worst = Math.max(
      worst,
      Math.abs(ours.readUInt16LE(2 * i) - (refBytes === 2 ? ref.readUInt16LE(2 * i) : ref[i]!)),
    );
  return worst;
}

/** The pixel data value of a natively encoded object. */
export async function pixelDataOf(bytes: Buffer): Promise<Buffer> {
  const px = (await parsePart10(bytes, { maxInlineValueBytes: 0 })).pixelData!;
  return bytes.subarray(px.offset, px.offset + px.length);
}

/** The native pixel data of `kind`, as nativeObject writes it. */
export function nativePixels(kind: Source): Promise<Buffer> {
  return pixelDataOf(
    nativeObject(kind, { studyUid: '2.25.1', seriesUid: '2.25.2', sopInstanceUid: '2.25.3' }),
  );
}
