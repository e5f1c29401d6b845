// The 12-bit JPEG decoder on streams from real encoders: dcmtk's dcmcjpeg (12-bit extended, IJG) against dcmtk's
// dcmdjpeg as the reference, and restart intervals added by libjpeg-turbo's jpegtran (on an 8-bit grey stream: it
// rewrites 8-bit streams only, and the decoder takes both precisions through the same code).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dcmtk } from '../../../test/support/dcmtk.js';
import {
  compress,
  dcmdjpegPixels,
  maxSampleDifference,
  nativeObject,
  t,
} from '../../../test/support/compressed.js';
import { makeInstance, uid } from '../../../test/support/fixtures.js';
import { decodeJpeg12, Jpeg12Error } from './jpeg12.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-jpeg12-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const ids = () => ({ studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: uid(3) });

describe('decodeJpeg12', () => {
  it('decodes dcmcjpeg 12-bit streams as dcmdjpeg does, partial blocks at the edges included', async () => {
    // 75 × 100: neither side a multiple of 8. A ramp over the whole 12-bit range with some texture.
    const rows = 100;
    const columns = 75;
    const px = Buffer.alloc(rows * columns * 2);
    for (let i = 0; i < rows * columns; i++)
      px.writeUInt16LE(((i % columns) * 50 + Math.floor(i / columns) * 3 + ((i * 37) % 61)) & 0xfff, 2 * i);
    const original = makeInstance({
      ...ids(),
      rows,
      columns,
      extra: [
        { tag: t(0x0028, 0x0101), vr: 'US', value: 12 },
        { tag: t(0x0028, 0x0102), vr: 'US', value: 11 },
        { tag: t(0x7fe0, 0x0010), vr: 'OW', value: px },
      ],
    });
    for (const source of [original, nativeObject('mono12', ids())]) {
      const { bytes, frame } = await compress(dir, 'jpegExtended', source);
      const ref = await dcmdjpegPixels(dir, bytes);
      const d = decodeJpeg12(frame);
      expect(d.precision).toBe(12);
      expect(d.pixels.length).toBe(ref.length);
      expect(maxSampleDifference(d.pixels, ref)).toBeLessThanOrEqual(1);
    }
  });

  it('reads restart intervals (jpegtran -restart), each interval starting its DC prediction afresh', async () => {
    const { bytes, frame } = await compress(dir, 'jpegBaseline', nativeObject('mono8', ids()));
    const ref = await dcmdjpegPixels(dir, bytes);
    const plain = join(dir, 'plain.jpg');
    await writeFile(plain, frame);
    const without = decodeJpeg12(frame);
    expect(without.precision).toBe(8);
    expect(maxSampleDifference(without.pixels, ref, 1)).toBeLessThanOrEqual(1);
    for (const every of ['1B', '3B', '1']) {
      const r = await dcmtk('jpegtran', ['-restart', every, '-outfile', join(dir, `r${every}.jpg`), plain]);
      expect(r.code, r.stderr).toBe(0);
      const restarted = await readFile(join(dir, `r${every}.jpg`));
      expect(restarted.includes(Buffer.from([0xff, 0xdd])), 'a DRI segment').toBe(true);
      expect(restarted.includes(Buffer.from([0xff, 0xd0])), 'an RST0 marker').toBe(true);
      expect(decodeJpeg12(restarted).pixels.equals(without.pixels), every).toBe(true);
    }
  });

  it('names what it does not decode, and what is broken', async () => {
    const { frame } = await compress(dir, 'jpegExtended', nativeObject('mono12', ids()));
    const kind = (data: Uint8Array) => {
      try {
        decodeJpeg12(data);
        return 'decoded';
      } catch (err) {
        return err instanceof Jpeg12Error ? `${err.kind}: ${err.message}` : `other: ${String(err)}`;
      }
    };
    const sof = frame.indexOf(Buffer.from([0xff, 0xc1]));
    const arithmetic = Buffer.from(frame);
    arithmetic[sof + 1] = 0xc9;
    expect(kind(arithmetic)).toMatch(/^unsupported: JPEG process SOF9/);
    expect(kind(frame.subarray(0, frame.length - 200))).toMatch(
      /^malformed: the scan ends before its last block/,
    );
    expect(kind(frame.subarray(0, sof))).toMatch(/^malformed/);
    expect(kind(Buffer.from('not a JPEG at all'))).toMatch(/^malformed: no start of image/);
    // A frame header claiming 65535 × 65535 pixels where 48 × 64 were expected: refused before 8 GB are asked for.
    const huge = Buffer.from(frame);
    huge.writeUInt16BE(0xffff, sof + 5);
    huge.writeUInt16BE(0xffff, sof + 7);
    try {
      decodeJpeg12(huge, { rows: 48, columns: 64 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(Jpeg12Error);
      expect((err as Error).message).toBe(
        'the frame header says 65535 × 65535 pixels where the DICOM header says 64 × 48',
      );
    }
  });

  it('survives 3,000 corrupted streams: each decodes or is refused with a Jpeg12Error (a hang would fail the test by its timeout)', async () => {
    const { frame } = await compress(dir, 'jpegExtended', nativeObject('mono12', ids()));
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const outcomes = { decoded: 0, refused: 0 };
    for (let n = 0; n < 3000; n++) {
      const mutated = Buffer.from(frame);
      const edits = 1 + Math.floor(rand() * 8);
      for (let e = 0; e < edits; e++) mutated[Math.floor(rand() * mutated.length)] = Math.floor(rand() * 256);
      const cut = rand() < 0.2 ? Math.floor(rand() * mutated.length) : mutated.length;
      try {
        decodeJpeg12(mutated.subarray(0, cut), { rows: 48, columns: 64 });
        outcomes.decoded++;
      } catch (err) {
        expect(err).toBeInstanceOf(Jpeg12Error);
        outcomes.refused++;
      }
    }
    expect(outcomes.decoded + outcomes.refused).toBe(3000);
    expect(outcomes.refused).toBeGreaterThan(100);
  });
});
