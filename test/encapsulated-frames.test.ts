// Frames of encapsulated pixel data that span several fragments (PS3.5 A.4), where the Basic Offset Table is
// empty: found through the Extended Offset Table (7FE0,0001), or, without one, at the fragments that open a JPEG
// or JPEG 2000 codestream, as dcmtk and pydicom read them. Until 5 Dec 2026 both were a 501.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WriteElement } from '../src/dicom/part10-writer.js';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { backends } from './support/backends.js';
import { dcmtk } from './support/dcmtk.js';
import { makeInstance, pixelBytes, stowBody, uid } from './support/fixtures.js';
import { multipartParts } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
const JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';

describe.each(backends())('frames of several fragments without a Basic Offset Table on %s', (backend) => {
  let s: TestServer;
  let work: string;
  const auth = () => ({ Authorization: `Bearer ${s.token}` });
  const study = uid(1);
  const series = uid(2);

  const stow = async (bytes: Buffer) => {
    const { body, contentType } = stowBody([{ bytes }]);
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    expect(res.status, await res.clone().text()).toBe(200);
  };
  const frame = async (sop: string, n: number, accept: string) => {
    const res = await fetch(`${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}/frames/${n}`, {
      headers: { ...auth(), Accept: accept },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    work = await mkdtemp(join(tmpdir(), 'custos-fragments-'));
  });
  afterAll(async () => {
    await s.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("serves each frame of dcmcjpeg's output with fragments of 1 KB and an empty offset table", async () => {
    const sop = uid(3);
    const [rows, columns, frames] = [256, 256, 3];
    await writeFile(
      join(work, 'native.dcm'),
      makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: sop, rows, columns, frames }),
    );
    const r = await dcmtk('dcmcjpeg', ['-ot', '+fs', '1', join(work, 'native.dcm'), join(work, 'jpeg.dcm')]);
    expect(r.code, r.stderr).toBe(0);
    const compressed = await readFile(join(work, 'jpeg.dcm'));
    const parsed = await parsePart10(compressed);
    expect(parsed.transferSyntaxUid).toBe(JPEG_LOSSLESS_SV1);
    expect(parsed.pixelData!.basicOffsetTable).toEqual([]);
    expect(parsed.pixelData!.fragments!.length).toBeGreaterThan(2 * frames);
    await stow(compressed);
    // Each frame decoded (application/octet-stream's default syntax) is the original's, byte for byte.
    const original = pixelBytes(rows, columns, frames);
    const size = rows * columns * 2;
    for (let n = 1; n <= frames; n++)
      expect(
        (await frame(sop, n, 'application/octet-stream')).equals(original.subarray((n - 1) * size, n * size)),
        `frame ${n}`,
      ).toBe(true);
  });

  /** An object whose frames are made of fragments that open no codestream Custos recognises. */
  const crafted = (sop: string, withEot: boolean) => {
    const frameFragments = [
      [Buffer.from('frame one, part A.'), Buffer.from('frame one, part B..')],
      [Buffer.from('frame two alone...')],
      [Buffer.from('frame three, A'), Buffer.from('frame three, B'), Buffer.from('frame three, C')],
    ];
    const fragments = frameFragments
      .flat()
      .map((f) => (f.length % 2 ? Buffer.concat([f, Buffer.from(' ')]) : f));
    // Offsets of each frame's first fragment item, from the first fragment's item tag (8-byte item headers).
    const offsets: number[] = [];
    let at = 0;
    let k = 0;
    for (const group of frameFragments) {
      offsets.push(at);
      for (let i = 0; i < group.length; i++) at += 8 + fragments[k++]!.length;
    }
    const lengths = frameFragments.map((group, i) =>
      group.reduce((sum, _, j) => sum + fragments[frameFragments.slice(0, i).flat().length + j]!.length, 0),
    );
    const ov = (values: number[]) => {
      const b = Buffer.alloc(8 * values.length);
      values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 8 * i));
      return b;
    };
    const eot: WriteElement[] = withEot
      ? [
          { tag: t(0x7fe0, 0x0001), vr: 'OV', value: ov(offsets) },
          { tag: t(0x7fe0, 0x0002), vr: 'OV', value: ov(lengths) },
        ]
      : [];
    const bytes = makeInstance({
      studyUid: study,
      seriesUid: series,
      sopInstanceUid: sop,
      frames: 3,
      extra: eot,
      transferSyntaxUid: JPEG_LOSSLESS_SV1,
      encapsulatedPixelData: { fragments, basicOffsetTable: [] },
    });
    const expected = frameFragments.map((_, i) =>
      Buffer.concat(
        fragments.slice(
          frameFragments.slice(0, i).flat().length,
          frameFragments.slice(0, i + 1).flat().length,
        ),
      ),
    );
    return { bytes, expected };
  };

  it('serves each frame as stored through the Extended Offset Table', async () => {
    const sop = uid(4);
    const { bytes, expected } = crafted(sop, true);
    await stow(bytes);
    for (let n = 1; n <= 3; n++)
      expect(
        (await frame(sop, n, 'application/octet-stream; transfer-syntax=*')).equals(expected[n - 1]!),
        `frame ${n}`,
      ).toBe(true);
    const parts = await multipartParts(
      await fetch(`${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}/frames/3,1`, {
        headers: {
          ...auth(),
          Accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*',
        },
      }),
    );
    expect(parts.map((p) => p.body)).toEqual([expected[2], expected[0]]);
  });

  it('says why where neither an offset table nor the fragments tell where frames begin (501)', async () => {
    const sop = uid(5);
    await stow(crafted(sop, false).bytes);
    const res = await fetch(`${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}/frames/2`, {
      headers: { ...auth(), Accept: 'application/octet-stream; transfer-syntax=*' },
    });
    expect(res.status).toBe(501);
    expect(await res.json()).toMatchObject({
      code: 'wado.frame-boundaries-unknown',
      detail: expect.stringContaining('3 frames in 6 fragments, no Basic or Extended Offset Table'),
    });
  });

  it('serves the pixel data of a video as one value holding the whole stream (PS3.18 §8.7.3.3 Note 5)', async () => {
    // An MPEG-4 AVC object of 30 frames whose stream is cut into two fragments. Custos does not decode video, so
    // deterministic bytes opening with an ISO BMFF 'ftyp' box stand for the stream. Until 7 Dec 2026 the pixel
    // data's BulkDataURI was cut into 30 values like an image's and answered 501 (frame boundaries unknown).
    const sop = uid(6);
    const MP4 = '1.2.840.10008.1.2.4.102';
    const stream = Buffer.alloc(6000);
    for (let i = 0; i < stream.length; i++) stream[i] = (i * 31 + (i >> 8)) & 0xff;
    Buffer.from('\0\0\0\x18ftypmp42', 'latin1').copy(stream);
    const bytes = makeInstance({
      studyUid: study,
      seriesUid: series,
      sopInstanceUid: sop,
      rows: 16,
      columns: 16,
      frames: 30,
      transferSyntaxUid: MP4,
      extra: [
        { tag: t(0x0028, 0x0002), vr: 'US', value: 3 },
        { tag: t(0x0028, 0x0004), vr: 'CS', value: 'YBR_PARTIAL_420' },
        { tag: t(0x0028, 0x0006), vr: 'US', value: 0 },
        { tag: t(0x0028, 0x0100), vr: 'US', value: 8 },
        { tag: t(0x0028, 0x0101), vr: 'US', value: 8 },
        { tag: t(0x0028, 0x0102), vr: 'US', value: 7 },
      ],
      encapsulatedPixelData: { fragments: [stream.subarray(0, 4000), stream.subarray(4000)] },
    });
    await stow(bytes);
    const instance = `${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}`;
    const [meta] = (await (
      await fetch(`${instance}/metadata`, { headers: { ...auth(), Accept: 'application/dicom+json' } })
    ).json()) as Record<string, { BulkDataURI?: string }>[];
    const uri = meta!['7FE00010']!.BulkDataURI!;
    expect(uri).toBe(`${instance}/bulkdata/7FE00010`);
    // By default in multipart/related: one part, the whole stream, labelled with its media type and syntax.
    const multi = await fetch(uri, { headers: auth() });
    expect(multi.status, await multi.clone().text()).toBe(200);
    expect(multi.headers.get('content-type')).toMatch(/^multipart\/related; type="video\/mp4"; boundary=/);
    const parts = await multipartParts(multi);
    expect(parts).toHaveLength(1);
    expect(parts[0]!.headers['content-type']).toBe(`video/mp4; transfer-syntax=${MP4}`);
    expect(parts[0]!.body.equals(stream)).toBe(true);
    // Alone, as a video element's source is fetched, and a Range of it (a player seeking).
    const single = await fetch(uri, { headers: { ...auth(), Accept: 'video/mp4' } });
    expect(single.status).toBe(200);
    expect(single.headers.get('content-type')).toBe(`video/mp4; transfer-syntax=${MP4}`);
    expect(single.headers.get('content-length')).toBe(String(stream.length));
    expect(Buffer.from(await single.arrayBuffer()).equals(stream)).toBe(true);
    const seek = await fetch(uri, { headers: { ...auth(), Accept: 'video/mp4', Range: 'bytes=3990-4009' } });
    expect(seek.status).toBe(206);
    expect(seek.headers.get('content-range')).toBe(`bytes 3990-4009/${stream.length}`);
    expect(Buffer.from(await seek.arrayBuffer()).equals(stream.subarray(3990, 4010))).toBe(true);
  });
});
