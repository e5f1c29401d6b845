// The decoders on frames made by real codecs (test/support/compressed.ts): a lossless codec must give back the
// original pixel data byte for byte, baseline JPEG what libjpeg (dcmtk's dcmdjpeg) decodes, give or take the
// rounding of another inverse DCT.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FrameGeometry } from '../../ports/frame-decoder.js';
import { dcmtk } from '../../../test/support/dcmtk.js';
import {
  CODECS,
  COLUMNS,
  compress,
  dcmdjpegPixels,
  maxSampleDifference,
  LOSSLESS,
  nativeObject,
  pixelDataOf,
  ROWS,
  type Source,
} from '../../../test/support/compressed.js';
import { uid } from '../../../test/support/fixtures.js';
import { decodeFrame } from './decode-frame.js';
import { decodeRle } from './rle.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-codecs-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const ids = () => ({ studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: uid(3) });

function geometry(kind: Source): FrameGeometry {
  const rgb = kind === 'rgb8';
  const bits = kind === 'mono16' ? 16 : kind === 'mono12' ? 12 : 8;
  return {
    rows: ROWS,
    columns: COLUMNS,
    samplesPerPixel: rgb ? 3 : 1,
    bitsAllocated: bits > 8 ? 16 : 8,
    bitsStored: bits,
    pixelRepresentation: 0,
    photometric: rgb ? 'RGB' : 'MONOCHROME2',
  };
}

describe('decodeFrame on frames made by dcmtk, GDCM and OpenJPH', () => {
  it.each(LOSSLESS)('%s %s gives back the original pixel data', async (codec, kind) => {
    const original = nativeObject(kind, ids());
    const { frame } = await compress(dir, codec, original);
    const decoded = await decodeFrame(CODECS[codec].ts, frame, geometry(kind));
    expect(decoded.pixels.equals(await pixelDataOf(original))).toBe(true);
    expect([decoded.rows, decoded.columns, decoded.samplesPerPixel]).toEqual([
      ROWS,
      COLUMNS,
      kind === 'rgb8' ? 3 : 1,
    ]);
  });

  it.each([['mono8'], ['rgb8']] as [Source][])('baseline JPEG %s decodes as libjpeg does', async (kind) => {
    const { bytes, frame } = await compress(dir, 'jpegBaseline', nativeObject(kind, ids()));
    const lossy = join(dir, `lossy-${kind}.dcm`);
    const plain = join(dir, `plain-${kind}.dcm`);
    await writeFile(lossy, bytes);
    // YBR_FULL_422 turned into RGB, colour by pixel: as Custos decodes it.
    const r = await dcmtk('dcmdjpeg', ['+cp', '+px', lossy, plain]);
    expect(r.code, r.stderr).toBe(0);
    const reference = await pixelDataOf(await readFile(plain));
    const g = { ...geometry(kind), photometric: kind === 'rgb8' ? 'YBR_FULL_422' : 'MONOCHROME2' };
    const decoded = await decodeFrame('1.2.840.10008.1.2.4.50', frame, g);
    expect(decoded.photometric).toBe(kind === 'rgb8' ? 'RGB' : 'MONOCHROME2');
    expect(decoded.pixels.length).toBe(reference.length);
    let worst = 0;
    let sum = 0;
    const samples = g.samplesPerPixel;
    const means = [0, 0, 0];
    for (let i = 0; i < reference.length; i++) {
      const d = decoded.pixels[i]! - reference[i]!;
      worst = Math.max(worst, Math.abs(d));
      sum += Math.abs(d);
      means[i % samples]! += d / (reference.length / samples);
    }
    if (kind === 'mono8') {
      expect(sum / reference.length).toBeLessThan(0.5);
      expect(worst).toBeLessThanOrEqual(2);
    } else {
      // The chroma planes are subsampled (4:2:2) and libjpeg interpolates them back where jpeg-js repeats each
      // value: the two differ at the texture's colour edges (about 2.5 levels on average here), not on the
      // whole. A colour transform left out or done twice would move each channel's mean by tens of levels.
      expect(sum / reference.length).toBeLessThan(4);
      for (const m of means) expect(Math.abs(m)).toBeLessThan(1);
    }
  });

  it('decodes 12-bit JPEG as libjpeg does; refuses a 12-bit process it does not decode by name', async () => {
    const { bytes, frame } = await compress(dir, 'jpegExtended', nativeObject('mono12', ids()));
    const reference = await dcmdjpegPixels(dir, bytes);
    const decoded = await decodeFrame('1.2.840.10008.1.2.4.51', frame, geometry('mono12'));
    expect([decoded.bitsAllocated, decoded.pixels.length]).toEqual([16, reference.length]);
    // libjpeg's integer inverse DCT against the exact one: a level of rounding at most.
    expect(maxSampleDifference(decoded.pixels, reference)).toBeLessThanOrEqual(1);
    // The same stream marked progressive (SOF2): named, not decoded.
    const sof = frame.indexOf(Buffer.from([0xff, 0xc1]));
    const progressive = Buffer.from(frame);
    progressive[sof + 1] = 0xc2;
    await expect(
      decodeFrame('1.2.840.10008.1.2.4.51', progressive, geometry('mono12')),
    ).rejects.toMatchObject({
      code: 'render.unsupported',
      httpStatus: 406,
      message: expect.stringContaining('SOF2'),
    });
    await expect(decodeFrame('1.2.840.10008.1.2.4.100', frame, geometry('mono12'))).rejects.toMatchObject({
      code: 'render.unsupported',
    });
  });

  it('refuses colour HTJ2K without the colour transform, which the WebAssembly OpenJPH decodes wrongly', async () => {
    // OpenJPH's own command line decoder reads it back exactly: the codestream is sound.
    const original = nativeObject('rgb8', ids());
    const { frame } = await compress(dir, 'htj2kNoColourTransform', original);
    const codestream = join(dir, 'no-mct.j2c');
    await writeFile(codestream, frame);
    const expanded = join(dir, 'no-mct.ppm');
    const r = await dcmtk('ojph_expand', ['-i', codestream, '-o', expanded]);
    expect(r.code, r.stderr).toBe(0);
    const ppm = await readFile(expanded);
    expect(ppm.subarray(ppm.length - ROWS * COLUMNS * 3).equals(await pixelDataOf(original))).toBe(true);
    await expect(decodeFrame(CODECS.htj2k.ts, frame, geometry('rgb8'))).rejects.toMatchObject({
      code: 'render.unsupported',
      httpStatus: 406,
      message: expect.stringContaining('without the reversible colour transform'),
    });
  });

  it('reports a frame that is not what its transfer syntax says with 422', async () => {
    const junk = Buffer.from('not a compressed frame at all, just some text of some length.......');
    for (const ts of [
      '1.2.840.10008.1.2.4.80',
      '1.2.840.10008.1.2.4.90',
      '1.2.840.10008.1.2.4.201',
      '1.2.840.10008.1.2.4.57',
      '1.2.840.10008.1.2.4.50',
    ])
      await expect(decodeFrame(ts, junk, geometry('mono8')), ts).rejects.toMatchObject({
        code: 'render.decode-failed',
        httpStatus: 422,
      });
  });
});

describe('decodeRle', () => {
  const g = { ...geometry('mono8'), rows: 2, columns: 5 };
  const frame = (...segments: number[][]) => {
    const header = Buffer.alloc(64);
    header.writeUInt32LE(segments.length, 0);
    let at = 64;
    segments.forEach((s, i) => {
      header.writeUInt32LE(at, 4 + 4 * i);
      at += s.length;
    });
    return Buffer.concat([header, ...segments.map((s) => Buffer.from(s))]);
  };

  it('reads literal runs, replicate runs and the -128 no-op, stopping at the frame size', () => {
    // 3 literals, a no-op, 4 × 9, then 3 × 7 of which only 3 pixels fit (PS3.5 G.3.1: padding may follow).
    const out = decodeRle(frame([2, 1, 2, 3, 128, 253, 9, 254, 7]), g);
    expect([...out.pixels]).toEqual([1, 2, 3, 9, 9, 9, 9, 7, 7, 7]);
  });

  it('puts the most significant byte segment first, samples interleaved', () => {
    const out = decodeRle(frame([0, 0x12], [0, 0x34]), { ...geometry('mono16'), rows: 1, columns: 1 });
    expect(out.pixels.readUInt16LE(0)).toBe(0x1234);
    const rgb = decodeRle(frame([255, 1], [255, 2], [255, 3]), { ...geometry('rgb8'), rows: 1, columns: 2 });
    expect([...rgb.pixels]).toEqual([1, 2, 3, 1, 2, 3]);
  });

  it('names what is wrong with a bad frame', () => {
    expect(() => decodeRle(Buffer.alloc(10), g)).toThrow(/shorter than the 64-byte header/);
    expect(() => decodeRle(frame([9], [9]), g)).toThrow(/2 segments, where 1 sample\(s\) of 8 bits need 1/);
    expect(() => decodeRle(frame([4, 1, 2]), g)).toThrow(/ends inside a literal run/);
    expect(() => decodeRle(frame([255]), g)).toThrow(/ends inside a replicate run/);
    expect(() => decodeRle(frame([253, 1]), g)).toThrow(/holds 4 of 10 bytes/);
  });
});
