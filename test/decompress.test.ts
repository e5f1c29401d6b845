// Objects stored compressed, served decompressed to Explicit VR Little Endian to whoever asks for that syntax by
// name (WADO-RS, WADO-URI) or accepts nothing compressed (a C-MOVE destination, a C-GET requestor): until 5 Dec
// 2026 these got a 406 or a failed sub-operation. The compressed objects are made by dcmtk and GDCM from natively
// encoded ones the test writes; a lossless codec's object must come back with exactly its original's pixels, and
// every other attribute as stored.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetToJson } from '../src/dicom/dicom-json.js';
import { getString, parsePart10 } from '../src/dicom/part10-parser.js';
import { Tags } from '../src/dicom/tags.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk, freePort, spawnDcmtk, stopChild } from './support/dcmtk.js';
import {
  COLUMNS,
  compress,
  dcmdjpegPixels,
  LOSSLESS,
  maxSampleDifference,
  nativeObject,
  nativePixels,
  pixelDataOf,
  ROWS,
  t,
  type Codec,
} from './support/compressed.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { multipartParts } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';

/** The parts of a multipart answer of Part 10 objects, by SOP Instance UID. */
async function partsBySop<P extends { body: Buffer }>(parts: P[]): Promise<Map<string, P>> {
  const bySop = new Map<string, P>();
  for (const part of parts)
    bySop.set(getString((await parsePart10(part.body)).dataset, Tags.SOPInstanceUID)!, part);
  return bySop;
}

const EXPLICIT = '1.2.840.10008.1.2.1';
const IMPLICIT = '1.2.840.10008.1.2';
const AS_EXPLICIT = `application/dicom; transfer-syntax=${EXPLICIT}`;
/** The stored syntax of the lossy objects. */
const CODEC_TS: Record<string, string> = {
  'jpegBaseline/rgb8': '1.2.840.10008.1.2.4.50',
  jpeg12: '1.2.840.10008.1.2.4.51',
};
const admin = systemPrincipal('test');
const run = promisify(execFile);

/** The pixel data as stored: its fragments (encapsulated) or its value (native). */
async function encodedFrames(bytes: Buffer): Promise<Buffer> {
  const px = (await parsePart10(bytes, { maxInlineValueBytes: 0 })).pixelData!;
  return px.encapsulated
    ? Buffer.concat(px.fragments!.map((f) => bytes.subarray(f.offset, f.offset + f.length)))
    : bytes.subarray(px.offset, px.offset + px.length);
}

/** The data set as DICOM JSON without what decompression rewrites (pixel data, photometric, planar config). */
async function headerJson(bytes: Buffer) {
  const p = await parsePart10(bytes);
  const json = datasetToJson(p.dataset) as Record<string, unknown>;
  for (const tag of ['7FE00010', '00280004', '00280006']) delete json[tag];
  return json;
}

describe.each(backends())('compressed objects served decompressed on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  const study = uid(1);
  const series = uid(2);
  /** An object this test cannot decode: an RLE frame with a bad header. */
  const badSeries = uid(3);
  /** A study whose first object's second frame does not decode, then a good object. */
  const laterStudy = uid(5);
  const laterSeries = uid(6);
  /** SOP Instance UID of each compressed variant (`codec/source`), each native original (`source`) and others. */
  const sops = new Map<string, string>();
  /** The bytes as stored, by SOP Instance UID. */
  const stored = new Map<string, Buffer>();
  const auth = () => ({ Authorization: `Bearer ${s.token}` });
  const instanceUrl = (sop: string, seriesUid = series) =>
    `${s.dicomweb}/studies/${study}/series/${seriesUid}/instances/${sop}`;

  async function add(key: string, codec: Codec, original: Buffer) {
    const out = await compress(dir, codec, original);
    sops.set(key, out.sopInstanceUid);
    stored.set(out.sopInstanceUid, out.bytes);
    return out.bytes;
  }

  beforeAll(async () => {
    s = await startTestServer(backend);
    dir = await mkdtemp(join(tmpdir(), 'custos-decompress-'));
    const ids = (seriesUid = series) => ({ studyUid: study, seriesUid, sopInstanceUid: uid(4) });
    for (const kind of ['mono16', 'mono8', 'rgb8'] as const) {
      const bytes = nativeObject(kind, ids());
      const sop = getString((await parsePart10(bytes)).dataset, Tags.SOPInstanceUID)!;
      sops.set(kind, sop);
      stored.set(sop, bytes);
    }
    for (const [codec, kind] of LOSSLESS) await add(`${codec}/${kind}`, codec, nativeObject(kind, ids()));
    await add('jpegBaseline/rgb8', 'jpegBaseline', nativeObject('rgb8', ids()));
    // Three frames of 16-bit grey, by RLE (one fragment a frame) and JPEG 2000.
    const multi = makeInstance({ ...ids(), rows: ROWS, columns: COLUMNS, frames: 3 });
    sops.set('multi', getString((await parsePart10(multi)).dataset, Tags.SOPInstanceUID)!);
    stored.set(sops.get('multi')!, multi);
    await add('rle/multi', 'rle', makeInstance({ ...ids(), rows: ROWS, columns: COLUMNS, frames: 3 }));
    await add('j2k/multi', 'j2k', makeInstance({ ...ids(), rows: ROWS, columns: COLUMNS, frames: 3 }));
    const broken = await add('broken', 'rle', nativeObject('mono16', ids(badSeries)));
    const fragment = (await parsePart10(broken)).pixelData!.fragments![0]!;
    broken.writeUInt32LE(5, fragment.offset); // five RLE segments where 16-bit grey has two
    await add('jpeg12', 'jpegExtended', nativeObject('mono12', ids()));
    const later = (instanceNumber: number) =>
      makeInstance({
        studyUid: laterStudy,
        seriesUid: laterSeries,
        sopInstanceUid: uid(7),
        rows: ROWS,
        columns: COLUMNS,
        frames: 3,
        instanceNumber,
      });
    const badLater = await add('badLater', 'rle', later(1));
    const frag2 = (await parsePart10(badLater)).pixelData!.fragments![1]!;
    badLater.writeUInt32LE(5, frag2.offset);
    await add('goodLater', 'rle', later(2));
    const { body, contentType } = stowBody([...stored.values()].map((bytes) => ({ bytes })));
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    // dcmcjpeg's lossy objects are stored with a validation warning (202); none is refused or held back.
    expect([200, 202]).toContain(res.status);
    const refs = ((await res.json()) as Record<string, { Value?: Record<string, unknown>[] }>)['00081199'];
    expect(refs?.Value?.filter((item) => item['00081190'])).toHaveLength(stored.size);
  });
  afterAll(async () => {
    await s?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The objects of the main series (all but the bad series' and the later study's). */
  const inMainSeries = () =>
    [...stored.keys()].filter((sop) => !['broken', 'badLater', 'goodLater'].some((k) => sops.get(k) === sop));
  const getExplicit = (sop: string, seriesUid = series) =>
    fetch(instanceUrl(sop, seriesUid), { headers: { ...auth(), Accept: AS_EXPLICIT } });

  /** Checks a decompressed object against its stored original and the native pixels it must hold. */
  async function expectDecompressed(body: Buffer, sop: string, pixels: Buffer, photometric: string) {
    const p = await parsePart10(body);
    expect(p.transferSyntaxUid).toBe(EXPLICIT);
    expect(p.pixelData?.encapsulated ?? false).toBe(false);
    expect(getString(p.dataset, Tags.SOPInstanceUID)).toBe(sop);
    expect(getString(p.dataset, Tags.PhotometricInterpretation)).toBe(photometric);
    expect((await pixelDataOf(body)).equals(pixels)).toBe(true);
    // Every other attribute as stored.
    expect(await headerJson(body)).toEqual(await headerJson(stored.get(sop)!));
    // dcmtk reads it as the Explicit VR Little Endian object it says it is.
    const file = join(dir, `${sop}.dcm`);
    await writeFile(file, body);
    const dump = await dcmtk('dcmdump', ['-q', '+P', '0002,0010', '+P', '7fe0,0010', file]);
    expect(dump.code, dump.stderr).toBe(0);
    expect(dump.stdout).toMatch(/=LittleEndianExplicit/);
    expect(dump.stdout).toMatch(new RegExp(`(OW|OB) .*# +${pixels.length + (pixels.length % 2)},`));
  }

  it.each(LOSSLESS)(
    'WADO-RS serves %s %s in Explicit VR Little Endian with its original pixels',
    async (codec, kind) => {
      const sop = sops.get(`${codec}/${kind}`)!;
      const res = await getExplicit(sop);
      const body = Buffer.from(await res.arrayBuffer());
      expect(res.status, body.toString()).toBe(200);
      expect(res.headers.get('content-type')).toBe(AS_EXPLICIT);
      expect(Number(res.headers.get('content-length'))).toBe(body.length);
      await expectDecompressed(body, sop, await nativePixels(kind), kind === 'rgb8' ? 'RGB' : 'MONOCHROME2');
      if (kind === 'rgb8')
        expect((await parsePart10(body)).dataset.get(Tags.PlanarConfiguration)).toMatchObject({
          values: [0],
        });
      // Asked for as stored (or anything), it still comes as stored, byte for byte.
      const asStored = await fetch(instanceUrl(sop), {
        headers: { ...auth(), Accept: 'application/dicom; transfer-syntax=*' },
      });
      expect(Buffer.from(await asStored.arrayBuffer()).equals(stored.get(sop)!)).toBe(true);
    },
  );

  it('decompresses a multi-frame object frame by frame (RLE and JPEG 2000)', async () => {
    const pixels = await pixelDataOf(stored.get(sops.get('multi')!)!);
    expect(pixels.length).toBe(ROWS * COLUMNS * 2 * 3);
    for (const key of ['rle/multi', 'j2k/multi']) {
      const res = await getExplicit(sops.get(key)!);
      expect(res.status).toBe(200);
      await expectDecompressed(Buffer.from(await res.arrayBuffer()), sops.get(key)!, pixels, 'MONOCHROME2');
    }
  });

  it('a lossy JPEG comes as RGB, its samples as dcmdjpeg decodes them, marked lossy', async () => {
    const sop = sops.get('jpegBaseline/rgb8')!;
    const res = await getExplicit(sop);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    const ds = (await parsePart10(body)).dataset;
    // dcmcjpeg stored it as YBR_FULL_422; decoded, it is RGB, samples interleaved.
    expect(getString((await parsePart10(stored.get(sop)!)).dataset, Tags.PhotometricInterpretation)).toBe(
      'YBR_FULL_422',
    );
    expect(getString(ds, Tags.PhotometricInterpretation)).toBe('RGB');
    expect(ds.get(Tags.PlanarConfiguration)).toMatchObject({ values: [0] });
    expect(getString(ds, Tags.LossyImageCompression)).toBe('01');
    expect(getString(ds, t(0x0028, 0x2114))).toBe('ISO_10918_1');
    // dcmtk's own decoder (IJG) on the stored object is the reference. Two JPEG decoders differ a little (the
    // inverse DCT, upsampling the chroma): ours must be as close to the original pixels as dcmdjpeg's, and close
    // to dcmdjpeg's. Unconverted YBR or swapped samples would be off by tens on average.
    const reference = await dcmdjpegPixels(dir, stored.get(sop)!);
    const ours = await pixelDataOf(body);
    const original = await nativePixels('rgb8');
    expect(ours.length).toBe(original.length);
    expect(reference.length).toBe(original.length);
    const meanDifference = (a: Buffer, b: Buffer) => {
      let sum = 0;
      for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
      return sum / a.length;
    };
    expect(meanDifference(ours, original)).toBeLessThan(meanDifference(reference, original) * 1.1);
    expect(meanDifference(ours, reference)).toBeLessThan(4);
  });

  it('a 12-bit JPEG comes as 16-bit samples (Bits Stored 12), as dcmdjpeg decodes it', async () => {
    const sop = sops.get('jpeg12')!;
    const res = await getExplicit(sop);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    const p = await parsePart10(body);
    expect(p.transferSyntaxUid).toBe(EXPLICIT);
    expect(p.dataset.get(Tags.BitsAllocated)).toMatchObject({ values: [16] });
    expect(p.dataset.get(Tags.BitsStored)).toMatchObject({ values: [12] });
    expect(getString(p.dataset, Tags.LossyImageCompression)).toBe('01');
    const reference = await dcmdjpegPixels(dir, stored.get(sop)!);
    const ours = await pixelDataOf(body);
    expect(ours.length).toBe(reference.length);
    expect(maxSampleDifference(ours, reference)).toBeLessThanOrEqual(1);
  });

  it('a series in Explicit VR Little Endian: native objects as stored, compressed ones decompressed', async () => {
    const res = await fetch(`${s.dicomweb}/studies/${study}/series/${series}`, {
      headers: {
        ...auth(),
        Accept: `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT}`,
      },
    });
    expect(res.status).toBe(200);
    const parts = await multipartParts(res);
    const inSeries = inMainSeries();
    expect(parts).toHaveLength(inSeries.length);
    const seen = new Set<string>();
    for (const part of parts) {
      expect(part.contentType).toBe(AS_EXPLICIT);
      expect(Number(part.headers['content-length'])).toBe(part.body.length);
      const p = await parsePart10(part.body);
      expect(p.transferSyntaxUid).toBe(EXPLICIT);
      expect(p.pixelData?.encapsulated ?? false).toBe(false);
      seen.add(getString(p.dataset, Tags.SOPInstanceUID)!);
    }
    expect([...seen].sort()).toEqual(inSeries.sort());
    const native = parts.find((p) => p.body.equals(stored.get(sops.get('mono16')!)!));
    expect(native, 'the native original comes byte for byte').toBeDefined();
  });

  it('a series asked for in JPEG-LS first, else in Explicit VR Little Endian: each object in the first it can go in', async () => {
    const JLS = '1.2.840.10008.1.2.4.80';
    const res = await fetch(`${s.dicomweb}/studies/${study}/series/${series}`, {
      headers: {
        ...auth(),
        Accept: `multipart/related; type="application/dicom"; transfer-syntax=${JLS}, multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT};q=0.5`,
      },
    });
    expect(res.status).toBe(200);
    const parts = await multipartParts(res);
    expect(parts).toHaveLength(inMainSeries().length);
    const bySop = await partsBySop(parts);
    // The JPEG-LS object as stored; until 5 Dec 2026 it was decompressed, because the native ones needed the
    // fallback and one syntax served them all.
    const jls = bySop.get(sops.get('jpegls/mono16')!)!;
    expect(jls.contentType).toBe(`application/dicom; transfer-syntax=${JLS}`);
    expect(jls.body.equals(stored.get(sops.get('jpegls/mono16')!)!)).toBe(true);
    // The others in the fallback: native ones as stored, the other compressed ones decompressed.
    expect(bySop.get(sops.get('mono16')!)!.contentType).toBe(AS_EXPLICIT);
    expect(bySop.get(sops.get('rle/multi')!)!.contentType).toBe(AS_EXPLICIT);
    // A syntax Custos would have to compress to, with no fallback: a 406 that says what it can do.
    const refused = await fetch(`${s.dicomweb}/studies/${study}/series/${series}`, {
      headers: { ...auth(), Accept: `multipart/related; type="application/dicom"; transfer-syntax=${JLS}` },
    });
    expect(refused.status).toBe(406);
    expect(((await refused.json()) as { detail: string }).detail).toMatch(
      /^instance [\d.]+ cannot go out in 1\.2\.840\.10008\.1\.2\.4\.80: Custos serves it (as stored \(.+\) or in 1\.2\.840\.10008\.1\.2\.1|as stored \(.+\) or decompressed to 1\.2\.840\.10008\.1\.2\.1), and compresses or transcodes nothing else/,
    );
  });

  it('WADO-URI decompresses when transferSyntax names Explicit VR Little Endian', async () => {
    const sop = sops.get('jpegls/mono16')!;
    const q = `requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${sop}&contentType=application%2Fdicom`;
    const res = await fetch(`${s.url}/wado?${q}&transferSyntax=${EXPLICIT}`, { headers: auth() });
    expect(res.status).toBe(200);
    await expectDecompressed(
      Buffer.from(await res.arrayBuffer()),
      sop,
      await nativePixels('mono16'),
      'MONOCHROME2',
    );
    // Without the parameter too: Explicit VR Little Endian is the default (PS3.18 §9.4.2.4; until 6 Dec 2026 the
    // object came as stored). A lossy JPEG still comes as stored.
    const byDefault = await fetch(`${s.url}/wado?${q}`, { headers: auth() });
    await expectDecompressed(
      Buffer.from(await byDefault.arrayBuffer()),
      sop,
      await nativePixels('mono16'),
      'MONOCHROME2',
    );
    const lossy = sops.get('jpegBaseline/rgb8')!;
    const lossyUri = `requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${lossy}&contentType=application%2Fdicom`;
    const asStored = await fetch(`${s.url}/wado?${lossyUri}`, { headers: auth() });
    expect(Buffer.from(await asStored.arrayBuffer()).equals(stored.get(lossy)!)).toBe(true);
  });

  it('without a transfer-syntax parameter, lossless objects come decompressed and lossy ones as stored (PS3.18 §8.7.3.4)', async () => {
    // What dicomweb-client 0.11's retrieveSeries() sends: no transfer-syntax parameter. Until 6 Dec 2026 every
    // object came as stored.
    const res = await fetch(`${s.dicomweb}/studies/${study}/series/${series}`, {
      headers: { ...auth(), Accept: 'multipart/related; type="application/dicom"' },
    });
    expect(res.status).toBe(200);
    const parts = await multipartParts(res);
    expect(parts).toHaveLength(inMainSeries().length);
    const bySop = await partsBySop(parts);
    for (const [codec, kind] of LOSSLESS) {
      const part = bySop.get(sops.get(`${codec}/${kind}`)!)!;
      expect(part.contentType, `${codec}/${kind}`).toBe(AS_EXPLICIT);
      expect((await parsePart10(part.body)).pixelData?.encapsulated, `${codec}/${kind}`).toBe(false);
    }
    // JPEG Baseline and Extended are lossy: the server has only lossy compressed pixel data, sent as it is.
    for (const key of ['jpegBaseline/rgb8', 'jpeg12']) {
      const part = bySop.get(sops.get(key)!)!;
      expect(part.contentType, key).toBe(`application/dicom; transfer-syntax=${CODEC_TS[key]}`);
      expect(part.body.equals(stored.get(sops.get(key)!)!), key).toBe(true);
    }
    expect(bySop.get(sops.get('mono16')!)!.body.equals(stored.get(sops.get('mono16')!)!)).toBe(true);
    // One instance alone, the same; `*` keeps the stored bytes.
    const sop = sops.get('jpegls/mono16')!;
    const one = await fetch(instanceUrl(sop), { headers: { ...auth(), Accept: 'application/dicom' } });
    expect(one.headers.get('content-type')).toBe(AS_EXPLICIT);
    await expectDecompressed(
      Buffer.from(await one.arrayBuffer()),
      sop,
      await nativePixels('mono16'),
      'MONOCHROME2',
    );
    const any = await fetch(instanceUrl(sop), {
      headers: { ...auth(), Accept: 'application/dicom; transfer-syntax=*' },
    });
    expect(Buffer.from(await any.arrayBuffer()).equals(stored.get(sop)!)).toBe(true);
  });

  it('curl gets a JPEG 2000 object decompressed, as an administrator scripts it', async () => {
    const sop = sops.get('j2k/rgb8')!;
    const out = join(dir, 'curl.dcm');
    const { stdout } = await run('curl', [
      '-sS',
      '-w',
      '%{http_code} %{content_type}',
      '-H',
      `Authorization: Bearer ${s.token}`,
      '-H',
      `Accept: ${AS_EXPLICIT}`,
      '-o',
      out,
      instanceUrl(sop),
    ]);
    expect(stdout).toBe(`200 ${AS_EXPLICIT}`);
    await expectDecompressed(await readFile(out), sop, await nativePixels('rgb8'), 'RGB');
  });

  it('what cannot be decoded is a problem+json status before any byte, recorded as unserved; the server goes on', async () => {
    const broken = await getExplicit(sops.get('broken')!, badSeries);
    expect(broken.status).toBe(422);
    expect(broken.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(((await broken.json()) as { detail: string }).detail).toMatch(/RLE/);
    // A series whose first object cannot be decoded: the status comes before the multipart body.
    const seriesRes = await fetch(`${s.dicomweb}/studies/${study}/series/${badSeries}`, {
      headers: {
        ...auth(),
        Accept: `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT}`,
      },
    });
    expect([406, 422]).toContain(seriesRes.status);
    await seriesRes.arrayBuffer();
    const unserved = await s.app.index.db
      .selectFrom('audit_ledger')
      .select(['record'])
      .where('action', '=', 'view-pixels')
      .where('outcome', '=', 'failure')
      .execute();
    const details = unserved.map(
      (u) => (JSON.parse(u.record) as { detail?: { httpStatus?: number } }).detail,
    );
    expect(details.filter((d) => d?.httpStatus === 422).length).toBeGreaterThanOrEqual(1);
    const ok = await getExplicit(sops.get('rle/mono16')!);
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
  });

  it('a later frame that does not decode cuts the response short (its status was sent); the server goes on', async () => {
    const res = await fetch(
      `${s.dicomweb}/studies/${laterStudy}/series/${laterSeries}/instances/${sops.get('badLater')}`,
      { headers: { ...auth(), Accept: AS_EXPLICIT } },
    );
    // The first frame decoded, so the answer started; the second fails, and the body ends before its length.
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
    const ok = await getExplicit(sops.get('rle/mono16')!);
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
  });

  describe('DIMSE', () => {
    let work: string;
    beforeAll(async () => {
      work = await mkdtemp(join(dir, 'dimse-'));
      await s.app.aes.add(admin, { title: 'DECOMPSCU', host: '127.0.0.1', port: 104, user: 'admin' });
    });
    const scu = () => ['-aet', 'DECOMPSCU', '-aec', 'CUSTOS'];
    /** Each received file: its transfer syntax and pixel data, by SOP Instance UID. */
    async function receivedIn(out: string) {
      const got = new Map<string, { ts: string; pixels: Buffer; bytes: Buffer }>();
      for (const f of await readdir(out)) {
        const bytes = await readFile(join(out, f));
        const p = await parsePart10(bytes);
        got.set(getString(p.dataset, Tags.SOPInstanceUID)!, {
          ts: p.transferSyntaxUid,
          pixels: p.pixelData?.encapsulated ? Buffer.alloc(0) : await pixelDataOf(bytes),
          bytes,
        });
      }
      return got;
    }
    /** The native pixels each lossless variant must arrive with. */
    const expectLosslessPixels = async (got: Map<string, { pixels: Buffer }>) => {
      for (const [codec, kind] of LOSSLESS)
        expect(
          got.get(sops.get(`${codec}/${kind}`)!)?.pixels.equals(await nativePixels(kind)),
          `${codec}/${kind}`,
        ).toBe(true);
    };

    /**
     * movescu (Study Root, with its debug output, which counts the sub-operations and lists the failed ones) of
     * the given keys to a storescp started with `flags` and registered as `title`: its output and what arrived.
     */
    async function moveToStorescp(title: string, flags: string[], keys: Record<string, string>) {
      const destPort = await freePort();
      const out = await mkdtemp(join(work, `${title}-`));
      const scp = spawnDcmtk('storescp', [...flags, '-aet', title, '-od', out, String(destPort)]);
      try {
        await s.app.aes.add(admin, { title, host: '127.0.0.1', port: destPort });
        await new Promise((r) => setTimeout(r, 300));
        const r = await dcmtk('movescu', [
          '-d',
          ...scu(),
          '-S',
          '-aem',
          title,
          '127.0.0.1',
          String(s.dicomPort),
          ...Object.entries(keys).flatMap(([k, v]) => ['-k', `${k}=${v}`]),
        ]);
        return { r, got: await receivedIn(out) };
      } finally {
        await stopChild(scp);
      }
    }

    /** The main series moved to a storescp with `flags`: every sub-operation succeeded, every object arrived. */
    async function moveTo(title: string, flags: string[]) {
      const { r, got } = await moveToStorescp(title, flags, {
        QueryRetrieveLevel: 'SERIES',
        StudyInstanceUID: study,
        SeriesInstanceUID: series,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/Completed Suboperations +: [1-9]/);
      expect(r.stderr).toMatch(/Failed Suboperations +: 0/);
      expect([...got.keys()].sort()).toEqual(inMainSeries().sort());
      return got;
    }

    it('C-MOVE to a storescp that takes only uncompressed syntaxes: decompressed, in explicit VR', async () => {
      const got = await moveTo('UNCOMPR', []);
      for (const [sop, g] of got) expect(g.ts, sop).toBe(EXPLICIT);
      await expectLosslessPixels(got);
      expect(got.get(sops.get('mono16')!)!.bytes.subarray(132).length).toBeGreaterThan(0);
    });

    it('C-MOVE to a storescp taking implicit VR alone: decompressed, in implicit VR', async () => {
      const got = await moveTo('IMPLONLY', ['+xi']);
      for (const [sop, g] of got) expect(g.ts, sop).toBe(IMPLICIT);
      await expectLosslessPixels(got);
    });

    it('C-MOVE to a storescp taking every syntax it knows: each object as stored where it can', async () => {
      const got = await moveTo('ACCEPTALL', ['+xa']);
      for (const [sop, g] of got) {
        const original = stored.get(sop)!;
        const ts = (await parsePart10(original)).transferSyntaxUid;
        if (ts === '1.2.840.10008.1.2.4.57' || ts === '1.2.840.10008.1.2.4.201') {
          // dcmtk 3.6.7's storescp +xa takes neither JPEG Lossless, Non-Hierarchical (Process 14) nor HTJ2K:
          // those come decompressed.
          expect(g.ts, sop).toBe(EXPLICIT);
          continue;
        }
        // The rest as stored: the same transfer syntax, the same encoded frames.
        expect(g.ts, sop).toBe(ts);
        expect(await encodedFrames(g.bytes), sop).toEqual(await encodedFrames(original));
      }
    });

    it('C-GET by getscu, which proposes uncompressed syntaxes only: decompressed', async () => {
      const out = await mkdtemp(join(work, 'get-'));
      const r = await dcmtk('getscu', [
        ...scu(),
        '-S',
        '-od',
        out,
        '127.0.0.1',
        String(s.dicomPort),
        '-k',
        'QueryRetrieveLevel=SERIES',
        '-k',
        `StudyInstanceUID=${study}`,
        '-k',
        `SeriesInstanceUID=${series}`,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const got = await receivedIn(out);
      expect([...got.keys()].sort()).toEqual(inMainSeries().sort());
      for (const [sop, g] of got) expect([EXPLICIT, IMPLICIT], sop).toContain(g.ts);
      await expectLosslessPixels(got);
    });

    it('C-MOVE: an object failing part way aborts that association; the next go on a new one', async () => {
      const { r, got } = await moveToStorescp('LATERDEST', [], {
        QueryRetrieveLevel: 'STUDY',
        StudyInstanceUID: laterStudy,
      });
      // The bad object (instance 1) goes first: its second frame fails after its first was sent.
      expect(r.stderr).toMatch(/Failed Suboperations +: 1/);
      expect(r.stderr).toMatch(/Completed Suboperations +: 1/);
      expect(r.stderr).toContain(sops.get('badLater')!);
      expect([...got.keys()]).toEqual([sops.get('goodLater')]);
    });

    it('C-MOVE of objects that cannot be decoded fails those sub-operations, each named, and the association goes on', async () => {
      const { r, got } = await moveToStorescp('BADDEST', [], {
        QueryRetrieveLevel: 'STUDY',
        StudyInstanceUID: study,
      });
      expect(r.stderr).toMatch(/Failed Suboperations +: 1/);
      expect(r.stderr).toContain(sops.get('broken')!);
      expect(got.size).toBe(inMainSeries().length);
    });
  });
});
