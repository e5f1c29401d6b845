// WADO-RS Study, Series and Instance Bulkdata and Pixel Data (PS3.18 Table 10.3-2, §10.4.3.3.5, §10.4.3.3.6):
// every bulk value, or every instance's pixel data, of a study, series or instance in one multipart answer, each
// part under the URI metadata gave for it. Until 7 Dec 2026 these six resources were a 404.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMultipart } from '../src/transports/http/multipart-reader.js';
import { parseMediaType } from '../src/transports/http/content-type.js';
import { backends } from './support/backends.js';
import { compress, nativeObject, nativePixels } from './support/compressed.js';
import { makeInstance, pixelBytes, uid } from './support/fixtures.js';
import { collect } from './support/http.js';
import {
  ledgerHead,
  ledgerSince,
  postStow,
  startTestServer,
  type TestServer,
} from './support/test-server.js';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= require('xhr2');
const { api } = require('dicomweb-client') as {
  api: {
    DICOMwebClient: new (o: { url: string; headers: Record<string, string> }) => {
      retrieveBulkData(o: {
        BulkDataURI: string;
        mediaTypes?: { mediaType: string; transferSyntaxUID?: string }[];
      }): Promise<ArrayBuffer[]>;
    };
  };
};

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
const OCTETS = 'multipart/related; type="application/octet-stream"';
const JPEG_LS = '1.2.840.10008.1.2.4.80';

type Part = { headers: Record<string, string>; contentType: string | undefined; body: Buffer };

describe.each(backends())('WADO-RS study, series and instance bulkdata and pixeldata on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  const study = uid(1);
  const native = { studyUid: study, seriesUid: uid(2), sopInstanceUid: uid(3) };
  const jls = { studyUid: study, seriesUid: uid(4), sopInstanceUid: uid(5) };
  // A private OB value over 1 KiB (a Siemens CSA header's shape): a BulkDataURI of its own besides the pixel data.
  const csa = Buffer.alloc(2000, 0x5a);
  let jlsFrame: Buffer;
  const inst = (u: typeof native) =>
    `${s.dicomweb}/studies/${u.studyUid}/series/${u.seriesUid}/instances/${u.sopInstanceUid}`;

  beforeAll(async () => {
    s = await startTestServer(backend);
    dir = await mkdtemp(join(tmpdir(), 'custos-bulksets-'));
    const compressed = await compress(dir, 'jpegls', nativeObject('mono16', jls));
    jlsFrame = compressed.frame;
    const res = await postStow(s, [
      makeInstance({
        ...native,
        rows: 6,
        columns: 6,
        frames: 2,
        extra: [
          { tag: t(0x0029, 0x0010), vr: 'LO', value: 'SIEMENS CSA HEADER' },
          { tag: t(0x0029, 0x1010), vr: 'OB', value: csa },
        ],
      }),
      compressed.bytes,
    ]);
    expect(res.status, await res.clone().text()).toBe(200);
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** GET with curl, as a script would: status, headers and the body's bytes. */
  const curl = async (url: string, accept: string, ...more: string[]) => {
    const head = join(dir, 'head.txt');
    const { stdout } = await run(
      'curl',
      ['-sS', '-D', head, '-H', `Authorization: Bearer ${s.token}`, '-H', `Accept: ${accept}`, ...more, url],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
    );
    const lines = (await readFile(head, 'latin1')).trim().split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    return { status: Number(lines[0]!.split(' ')[1]), headers, body: stdout };
  };
  const parts = async (r: { headers: Record<string, string>; body: Buffer }): Promise<Part[]> => {
    const boundary = parseMediaType(r.headers['content-type'] ?? '').params.boundary!;
    const out: Part[] = [];
    for await (const p of readMultipart(
      (async function* () {
        yield r.body;
      })(),
      boundary,
    ))
      out.push({ headers: p.headers, contentType: p.contentType, body: await collect(p.body) });
    return out;
  };
  const byLocation = (ps: Part[]) => Object.fromEntries(ps.map((p) => [p.headers['content-location']!, p]));

  it('serves every BulkDataURI value of the study, each part under the URI study metadata gave for it', async () => {
    const meta = await curl(`${s.dicomweb}/studies/${study}/metadata`, 'application/dicom+json');
    const uris = (JSON.parse(meta.body.toString()) as Record<string, { BulkDataURI?: string }>[])
      .flatMap((m) => Object.values(m).map((e) => e.BulkDataURI))
      .filter((u): u is string => u !== undefined)
      .sort();
    expect(uris).toEqual(
      [
        `${inst(native)}/bulkdata/00291010`,
        `${inst(native)}/bulkdata/7FE00010`,
        `${inst(jls)}/bulkdata/7FE00010`,
      ].sort(),
    );
    const r = await curl(`${s.dicomweb}/studies/${study}/bulkdata`, OCTETS);
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.headers['content-type']).toMatch(
      /^multipart\/related; type="application\/octet-stream"; boundary=/,
    );
    const got = byLocation(await parts(r));
    // Compressed pixel data goes as its BulkDataURI sends it: one part per frame, named by its frame resource,
    // decoded (application/octet-stream's default transfer syntax is Explicit VR Little Endian).
    expect(Object.keys(got).sort()).toEqual(
      [
        `${inst(native)}/bulkdata/00291010`,
        `${inst(native)}/bulkdata/7FE00010`,
        `${inst(jls)}/frames/1`,
      ].sort(),
    );
    expect(got[`${inst(native)}/bulkdata/00291010`]!.body.equals(csa)).toBe(true);
    expect(got[`${inst(native)}/bulkdata/7FE00010`]!.body.equals(pixelBytes(6, 6, 2))).toBe(true);
    expect(got[`${inst(jls)}/frames/1`]!.body.equals(await nativePixels('mono16'))).toBe(true);
    expect(got[`${inst(jls)}/frames/1`]!.contentType).toBe(
      'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1',
    );

    // The series and the instance: only theirs.
    const series = byLocation(
      await parts(await curl(`${s.dicomweb}/studies/${study}/series/${native.seriesUid}/bulkdata`, OCTETS)),
    );
    expect(Object.keys(series).sort()).toEqual(
      [`${inst(native)}/bulkdata/00291010`, `${inst(native)}/bulkdata/7FE00010`].sort(),
    );
    const instance = await curl(`${inst(native)}/bulkdata`, OCTETS);
    expect(instance.status).toBe(200);
    // Every part as stored: the whole body's length is known, as for a study retrieved as stored.
    expect(Number(instance.headers['content-length'])).toBe(instance.body.length);
    expect(Object.keys(byLocation(await parts(instance))).sort()).toEqual(Object.keys(series).sort());
  });

  it('serves each instance pixel data, and nothing else, at the study, series and instance', async () => {
    const before = await ledgerHead(s);
    const r = await curl(`${s.dicomweb}/studies/${study}/pixeldata`, OCTETS);
    expect(r.status, r.body.toString()).toBe(200);
    const got = byLocation(await parts(r));
    expect(Object.keys(got).sort()).toEqual(
      [`${inst(native)}/bulkdata/7FE00010`, `${inst(jls)}/frames/1`].sort(),
    );
    expect(got[`${inst(native)}/bulkdata/7FE00010`]!.body.equals(pixelBytes(6, 6, 2))).toBe(true);
    expect(got[`${inst(jls)}/frames/1`]!.body.equals(await nativePixels('mono16'))).toBe(true);
    // One decision and one record for the study, naming both instances, as for the study itself.
    const records = (await ledgerSince(s, before)).filter((x) => x.action === 'view-pixels');
    expect(records.map((x) => [x.outcome, x.objects?.what, x.objects?.count])).toEqual([
      ['success', 'wado-rs pixeldata', 2],
    ]);

    // transfer-syntax=* asks for the compressed frame as stored.
    const stored = byLocation(
      await parts(await curl(`${s.dicomweb}/studies/${study}/pixeldata`, `${OCTETS}; transfer-syntax=*`)),
    );
    expect(stored[`${inst(jls)}/frames/1`]!.body.equals(jlsFrame)).toBe(true);
    expect(stored[`${inst(jls)}/frames/1`]!.contentType).toBe(
      `application/octet-stream; transfer-syntax=${JPEG_LS}`,
    );

    // The JPEG-LS series in its own media type; the native instance's pixel data alone, and a Range of it.
    const series = await curl(
      `${s.dicomweb}/studies/${study}/series/${jls.seriesUid}/pixeldata`,
      'multipart/related; type="image/jls"',
    );
    expect(series.status).toBe(200);
    const [frame] = await parts(series);
    expect(frame!.contentType).toBe(`image/jls; transfer-syntax=${JPEG_LS}`);
    expect(frame!.headers['content-location']).toBe(`${inst(jls)}/frames/1`);
    expect(frame!.body.equals(jlsFrame)).toBe(true);
    const alone = await curl(`${inst(native)}/pixeldata`, 'application/octet-stream');
    expect(alone.status).toBe(200);
    expect(alone.body.equals(pixelBytes(6, 6, 2))).toBe(true);
    const some = await curl(
      `${inst(native)}/pixeldata`,
      'application/octet-stream',
      '-H',
      'Range: bytes=4-9',
    );
    expect(some.status).toBe(206);
    expect(some.body.equals(pixelBytes(6, 6, 2).subarray(4, 10))).toBe(true);
  });

  it('answers 406 for an Accept no value can go in, and records the access as unserved', async () => {
    const before = await ledgerHead(s);
    for (const [url, accept] of [
      // The native pixel data cannot be image/jls.
      [`${s.dicomweb}/studies/${study}/pixeldata`, 'multipart/related; type="image/jls"'],
      // Several values cannot go as one single part body.
      [`${s.dicomweb}/studies/${study}/bulkdata`, 'application/octet-stream'],
      [`${inst(native)}/bulkdata`, 'application/dicom+json'],
    ] as const) {
      const r = await curl(url, accept);
      expect(r.status, `${url} ${accept}`).toBe(406);
      expect(r.headers['content-type']).toBe('application/problem+json');
    }
    const records = (await ledgerSince(s, before)).filter((x) => x.action === 'view-pixels');
    expect(records.filter((x) => x.outcome === 'failure').length).toBe(3);
  });

  it('gives dicomweb-client the pixel data of a study through retrieveBulkData', async () => {
    const client = new api.DICOMwebClient({
      url: s.dicomweb,
      headers: { Authorization: `Bearer ${s.token}` },
    });
    const pixels = (
      await client.retrieveBulkData({ BulkDataURI: `${s.dicomweb}/studies/${study}/pixeldata` })
    )
      .map((b) => Buffer.from(b).toString('hex'))
      .sort();
    expect(pixels).toEqual(
      [pixelBytes(6, 6, 2), await nativePixels('mono16')].map((b) => b.toString('hex')).sort(),
    );
    // transfer-syntax=* (dicomweb-client 0.11 fails to build an Accept of image/jls for bulk data itself).
    const stored = await client.retrieveBulkData({
      BulkDataURI: `${s.dicomweb}/studies/${study}/series/${jls.seriesUid}/pixeldata`,
      mediaTypes: [{ mediaType: 'application/octet-stream', transferSyntaxUID: '*' }],
    });
    expect(stored.map((b) => Buffer.from(b).equals(jlsFrame))).toEqual([true]);
  });
});
