// Rendering compressed objects (WADO-RS rendered and thumbnails, WADO-URI's default image/jpeg). The compressed
// objects are made by dcmtk (dcmcrle, dcmcjpls, dcmcjpeg) and GDCM (gdcmconv --j2k) from natively encoded ones
// the test writes; each native original is stored too, under a UID of its own, and a lossless codec must render
// to exactly the JPEG its original renders to. Until 5 Dec 2026 every compressed object answered 406.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpegJs from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { backends } from './support/backends.js';
import { dcmtk } from './support/dcmtk.js';
import {
  COLUMNS,
  compress,
  LOSSLESS,
  nativeObject,
  nativePixels,
  ROWS,
  type Codec,
  type Source,
} from './support/compressed.js';
import { multipartParts } from './support/http.js';
import { stowBody, uid } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const LOSSY: [Codec, Source][] = [
  ['jpegBaseline', 'mono8'],
  ['jpegBaseline', 'rgb8'],
];

describe.each(backends())('rendering compressed objects on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  const study = uid(1);
  const series = uid(2);
  /** SOP Instance UID of each native original and of each compressed variant (`codec/source`). */
  const sops = new Map<string, string>();
  const auth = () => ({ Authorization: `Bearer ${s.token}` });
  const rendered = async (sop: string, query = '') => {
    const res = await fetch(
      `${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}/rendered${query}`,
      { headers: auth() },
    );
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  };

  const ids = (sopInstanceUid: string) => ({ studyUid: study, seriesUid: series, sopInstanceUid });
  async function compressed(codec: Codec, kind: Source): Promise<Buffer> {
    const out = await compress(dir, codec, nativeObject(kind, ids(uid(3))));
    sops.set(`${codec}/${kind}`, out.sopInstanceUid);
    return out.bytes;
  }

  beforeAll(async () => {
    s = await startTestServer(backend);
    dir = await mkdtemp(join(tmpdir(), 'custos-render-'));
    const parts: Buffer[] = [];
    for (const kind of ['mono16', 'mono8', 'rgb8', 'mono12'] as const) {
      const sop = uid(4);
      sops.set(kind, sop);
      parts.push(nativeObject(kind, ids(sop)));
    }
    for (const [codec, kind] of [...LOSSLESS, ...LOSSY, ['jpegExtended', 'mono12'] as [Codec, Source]])
      parts.push(await compressed(codec, kind));
    // An RLE frame whose header claims five segments where 16-bit grey has two.
    const good = sops.get('rle/mono16')!;
    const goodMono8 = sops.get('rle/mono8')!;
    const broken = await compressed('rle', 'mono16');
    sops.set('broken', sops.get('rle/mono16')!);
    sops.set('rle/mono16', good);
    const fragment = (await parsePart10(broken)).pixelData!.fragments![0]!;
    broken.writeUInt32LE(5, fragment.offset);
    parts.push(broken);
    // An RLE object whose header claims 20,000 × 20,000 pixels (400 megapixels).
    const huge = await compressed('rle', 'mono8');
    sops.set('huge', sops.get('rle/mono8')!);
    sops.set('rle/mono8', goodMono8);
    const hugeFile = join(dir, 'huge.dcm');
    await writeFile(hugeFile, huge);
    const modified = await dcmtk('dcmodify', [
      '-nb',
      '-m',
      '(0028,0010)=20000',
      '-m',
      '(0028,0011)=20000',
      hugeFile,
    ]);
    expect(modified.code, modified.stderr).toBe(0);
    parts.push(await readFile(hugeFile));
    const { body, contentType } = stowBody(parts.map((bytes) => ({ bytes })));
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    // Stored, every one: dcmcjpeg's lossy objects with a validation warning (202), none failed or held back.
    expect([200, 202], res.headers.get('warning') ?? '').toContain(res.status);
    const stored = ((await res.json()) as Record<string, { Value?: Record<string, unknown>[] }>)['00081199'];
    expect(stored?.Value?.filter((item) => item['00081190'])).toHaveLength(parts.length);
  });
  afterAll(async () => {
    await s?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each(LOSSLESS)('renders %s %s exactly as its natively encoded original', async (codec, kind) => {
    const original = await rendered(sops.get(kind)!);
    expect(original.res.status).toBe(200);
    const decoded = await rendered(sops.get(`${codec}/${kind}`)!);
    expect(decoded.res.status, decoded.body.toString()).toBe(200);
    expect(decoded.res.headers.get('content-type')).toBe('image/jpeg');
    expect(decoded.body.equals(original.body)).toBe(true);
    // Windowed and scaled alike, too.
    const q = '?window=120,200&viewport=32,24&quality=70';
    expect((await rendered(sops.get(`${codec}/${kind}`)!, q)).body).toEqual(
      (await rendered(sops.get(kind)!, q)).body,
    );
  });

  it.each(LOSSY)('renders %s %s close to its original', async (codec, kind) => {
    const original = jpegJs.decode((await rendered(sops.get(kind)!, '?quality=100')).body);
    const res = await rendered(sops.get(`${codec}/${kind}`)!, '?quality=100');
    expect(res.res.status, res.body.toString()).toBe(200);
    const decoded = jpegJs.decode(res.body);
    expect([decoded.width, decoded.height]).toEqual([COLUMNS, ROWS]);
    let sum = 0;
    for (let i = 0; i < decoded.data.length; i++) sum += Math.abs(decoded.data[i]! - original.data[i]!);
    // dcmcjpeg's lossy JPEG at its default quality (colour 4:2:2 subsampled), then two JPEGs at quality 100: a
    // few levels on average (a colour transform left out would be tens; decode-frame.test.ts compares the
    // decoder with libjpeg's own).
    expect(sum / decoded.data.length).toBeLessThan(6);
  });

  it("renders a compressed object for WADO-URI's default image/jpeg and as a thumbnail", async () => {
    const sop = sops.get('j2k/mono16')!;
    const uri = await fetch(
      `${s.url}/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${sop}`,
      { headers: auth() },
    );
    expect(uri.status).toBe(200);
    expect(Buffer.from(await uri.arrayBuffer())).toEqual((await rendered(sop)).body);
    const thumb = await fetch(`${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}/thumbnail`, {
      headers: auth(),
    });
    expect(thumb.status).toBe(200);
    expect(jpegJs.decode(Buffer.from(await thumb.arrayBuffer())).width).toBe(128);
    // A study with compressed instances only: its thumbnail comes from one of them (406 until 5 Dec 2026).
    const other = { studyUid: uid(5), seriesUid: uid(6), sopInstanceUid: uid(7) };
    const { bytes } = await compress(dir, 'jpegls', nativeObject('mono8', other));
    const { body, contentType } = stowBody([{ bytes }]);
    const stored = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    expect(stored.status).toBe(200);
    const studyThumb = await fetch(`${s.dicomweb}/studies/${other.studyUid}/thumbnail`, { headers: auth() });
    expect(studyThumb.status, await studyThumb.clone().text()).toBe(200);
    expect(studyThumb.headers.get('content-type')).toBe('image/jpeg');
  });

  it('renders a 12-bit JPEG as its natively encoded original renders, give or take its lossy coding', async () => {
    // Until 5 Dec 2026 a 406: jpeg-js decodes 8-bit JPEG only; 12-bit is Custos's own decoder (jpeg12.ts).
    const q = '?window=2048,4096';
    const twelve = await rendered(sops.get('jpegExtended/mono12')!, q);
    expect(twelve.res.status, twelve.body.toString()).toBe(200);
    expect(twelve.res.headers.get('content-type')).toBe('image/jpeg');
    const original = await rendered(sops.get('mono12')!, q);
    const a = jpegJs.decode(twelve.body);
    const b = jpegJs.decode(original.body);
    expect([a.width, a.height]).toEqual([COLUMNS, ROWS]);
    let sum = 0;
    for (let i = 0; i < a.data.length; i += 4) sum += Math.abs(a.data[i]! - b.data[i]!);
    // The texture spans the whole window: an image decoded wrong (bits, level shift, block order) is off by tens.
    expect(sum / (a.data.length / 4)).toBeLessThan(3);
  });

  it('names what it cannot decode (400 megapixels) with 406, and a corrupt frame with 422; the server goes on', async () => {
    const broken = await rendered(sops.get('broken')!);
    expect(broken.res.status).toBe(422);
    expect(JSON.parse(broken.body.toString())).toMatchObject({
      code: 'render.decode-failed',
      detail: expect.stringContaining('5 segments'),
    });
    const huge = await rendered(sops.get('huge')!);
    expect(huge.res.status).toBe(406);
    expect(JSON.parse(huge.body.toString())).toMatchObject({
      code: 'render.unsupported',
      detail: expect.stringContaining('20000 × 20000 pixels is larger than the 100 megapixels'),
    });
    // Each was recorded as an access and then, since nothing was served, as a failure naming why (until 5 Dec 2026
    // the ledger showed only the access, as if the image had been sent).
    const records = (
      await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['record'])
        .where('study_uid', '=', study)
        .where('action', '=', 'view-pixels')
        .execute()
    ).map(
      (r) =>
        JSON.parse(r.record) as {
          outcome: string;
          objects?: { sopInstanceUids?: string[] };
          detail?: { unserved?: string; httpStatus?: number };
        },
    );
    const about = (sop: string) =>
      records
        .filter((r) => r.objects?.sopInstanceUids?.[0] === sop)
        .map((r) => [r.outcome, r.detail?.unserved, r.detail?.httpStatus]);
    expect(about(sops.get('broken')!)).toEqual([
      ['success', undefined, undefined],
      ['failure', 'render.decode-failed', 422],
    ]);
    expect(about(sops.get('huge')!)).toEqual([
      ['success', undefined, undefined],
      ['failure', 'render.unsupported', 406],
    ]);
    // The object itself is still served as stored, and the next rendering works.
    const dicom = await fetch(
      `${s.dicomweb}/studies/${study}/series/${series}/instances/${sops.get('broken')!}`,
      { headers: { ...auth(), Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } },
    );
    expect(dicom.status).toBe(200);
    expect((await rendered(sops.get('rle/mono16')!)).res.status).toBe(200);
  });

  it('decodes compressed frames to Explicit VR Little Endian when a client asks for that transfer syntax', async () => {
    const EXPLICIT = '1.2.840.10008.1.2.1';
    const frame = (sop: string, accept: string) =>
      fetch(`${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}/frames/1`, {
        headers: { ...auth(), Accept: accept },
      });
    for (const [codec, kind] of LOSSLESS) {
      const res = await frame(
        sops.get(`${codec}/${kind}`)!,
        `multipart/related; type="application/octet-stream"; transfer-syntax=${EXPLICIT}`,
      );
      expect(res.status, `${codec} ${kind}: ${await res.clone().text()}`).toBe(200);
      const parts = await multipartParts(res);
      expect(parts).toHaveLength(1);
      expect(parts[0]!.contentType).toBe(`application/octet-stream; transfer-syntax=${EXPLICIT}`);
      expect(parts[0]!.body.equals(await nativePixels(kind)), `${codec} ${kind}`).toBe(true);
    }
    // The single part form, and the frame as stored when the client takes any syntax.
    const sop = sops.get('jpegls/mono16')!;
    const single = await frame(sop, `application/octet-stream; transfer-syntax=${EXPLICIT}`);
    expect(single.status).toBe(200);
    expect(single.headers.get('content-type')).toBe(`application/octet-stream; transfer-syntax=${EXPLICIT}`);
    expect(Buffer.from(await single.arrayBuffer()).equals(await nativePixels('mono16'))).toBe(true);
    const stored = await frame(sop, 'multipart/related; type="application/octet-stream"; transfer-syntax=*');
    expect((await multipartParts(stored))[0]!.contentType).toBe(
      'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.80',
    );
    // Without a transfer-syntax application/octet-stream means Explicit VR Little Endian, as dicomweb-client's
    // retrieveInstanceFrames() asks by default (until 5 Dec 2026 it got the JPEG-LS bytes).
    for (const accept of ['multipart/related; type="application/octet-stream"', 'application/octet-stream']) {
      const res = await frame(sop, accept);
      expect(res.status).toBe(200);
      const [part] = accept.startsWith('multipart')
        ? await multipartParts(res)
        : [{ contentType: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) }];
      expect(part!.contentType).toBe(`application/octet-stream; transfer-syntax=${EXPLICIT}`);
      expect(part!.body.equals(await nativePixels('mono16')), accept).toBe(true);
    }
    // Where decoding would contradict the header, such a request gets the frame as stored, labelled so.
    const colour = await frame(
      sops.get('jpegBaseline/rgb8')!,
      'multipart/related; type="application/octet-stream"',
    );
    expect(colour.status).toBe(200);
    expect((await multipartParts(colour))[0]!.contentType).toBe(
      'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.50',
    );
    // Decoded, a lossy colour JPEG would be RGB where its header says YBR_FULL_422.
    const ybr = await frame(
      sops.get('jpegBaseline/rgb8')!,
      `multipart/related; type="application/octet-stream"; transfer-syntax=${EXPLICIT}`,
    );
    expect(ybr.status).toBe(406);
    expect(await ybr.json()).toMatchObject({ detail: expect.stringContaining('YBR_FULL_422') });
    // A 12-bit JPEG frame decodes to 16-bit samples (BitsAllocated 16, BitsStored 12), near its original's.
    const twelve = await frame(
      sops.get('jpegExtended/mono12')!,
      `application/octet-stream; transfer-syntax=${EXPLICIT}`,
    );
    expect(twelve.status).toBe(200);
    const pixels = Buffer.from(await twelve.arrayBuffer());
    const original = await nativePixels('mono12');
    expect(pixels.length).toBe(original.length);
    let sum = 0;
    for (let i = 0; i < original.length; i += 2)
      sum += Math.abs(pixels.readUInt16LE(i) - original.readUInt16LE(i));
    expect(sum / (original.length / 2)).toBeLessThan(40); // of 4096 levels
  });
});
