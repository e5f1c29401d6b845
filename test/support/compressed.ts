// Compressed test objects made by real codecs: dcmtk (dcmcrle, dcmcjpls, dcmcjpeg) and GDCM (gdcmconv --j2k)
// compress natively encoded objects written by the fixtures (CONVENTIONS.md: no binary fixtures of unknown origin).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
  const r = await dcmtk(tool, [...args, input, output]);
  if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
  const bytes = await readFile(output);
  const parsed = await parsePart10(bytes);
  if (parsed.transferSyntaxUid !== ts)
    throw new Error(`${tool} wrote ${parsed.transferSyntaxUid}, not ${ts}`);
  const frame = Buffer.concat(
    parsed.pixelData!.fragments!.map((f) => bytes.subarray(f.offset, f.offset + f.length)),
  );
  return { bytes, sopInstanceUid: getString(parsed.dataset, t(0x0008, 0x0018))!, frame };
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
