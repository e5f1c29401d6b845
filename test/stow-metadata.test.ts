// STOW-RS metadata and bulk data (PS3.18 §10.5.1): DICOM JSON in the first part, bulk data in parts named by
// Content-Location. Until 7 Dec 2026 such a request was a 415.
import { execFile, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepStowSpools } from '../src/adapters/fs-blob/bulk-spool.js';
import { datasetToJson, type DicomJsonDataset } from '../src/dicom/dicom-json.js';
import { nativeDicomXml } from '../src/dicom/dicom-xml.js';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { Tags } from '../src/dicom/tags.js';
import { backends } from './support/backends.js';
import { compress, nativeObject } from './support/compressed.js';
import { makeInstance, uid } from './support/fixtures.js';
import { multipartParts } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= require('xhr2');
const { api } = require('dicomweb-client') as {
  api: {
    DICOMwebClient: new (o: { url: string; headers: Record<string, string> }) => {
      retrieveInstance(o: {
        studyInstanceUID: string;
        seriesInstanceUID: string;
        sopInstanceUID: string;
      }): Promise<ArrayBuffer>;
    };
  };
};

type Json = Record<string, { vr: string; Value?: unknown[] }>;
interface Part {
  type: string;
  location?: string;
  bytes: Buffer;
  headers?: string;
}

const BOUNDARY = 'stow-metadata-boundary-1f2e';

function body(parts: Part[]): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const location = p.location !== undefined ? `Content-Location: ${p.location}\r\n` : '';
    chunks.push(Buffer.from(`--${BOUNDARY}\r\nContent-Type: ${p.type}\r\n${location}${p.headers ?? ''}\r\n`));
    chunks.push(p.bytes, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

const CONTENT_TYPE = `multipart/related; type="application/dicom+json"; boundary=${BOUNDARY}`;
const metadataPart = (datasets: unknown): Part => ({
  type: 'application/dicom+json',
  bytes: Buffer.from(JSON.stringify(datasets)),
});

/**
 * An instance as DICOM JSON as a client sends it: its pixel data, and pixel data inside sequence items (an icon),
 * as BulkDataURIs `<uri>` and `<uri>/<item path>`, the other binary values as InlineBinary; and the bulk data parts.
 */
async function asMetadata(part10: Buffer, uri: string): Promise<{ json: DicomJsonDataset; bulk: Part[] }> {
  const parsed = await parsePart10(part10, { maxInlineValueBytes: 64 * 1024 * 1024 });
  const bulk: Part[] = [];
  const json = datasetToJson(parsed.dataset, {
    bulkDataUri: (path, el) => {
      if (path[path.length - 1] !== Tags.PixelData) return undefined;
      const bytes =
        el.kind === 'bytes'
          ? el.data
          : el.kind === 'bulk'
            ? part10.subarray(el.offset, el.offset + el.length)
            : undefined;
      if (!bytes) return undefined;
      const location = path.length === 1 ? uri : `${uri}/${path.join('.')}`;
      bulk.push({ type: 'application/octet-stream', location, bytes });
      return location;
    },
  });
  return { json, bulk };
}

/** A stored object as JSON for comparison, every binary value (pixel data too) inline, and its pixel data. */
async function comparable(part10: Buffer): Promise<{ json: DicomJsonDataset; pixels: Buffer | undefined }> {
  const parsed = await parsePart10(part10, { maxInlineValueBytes: 64 * 1024 * 1024 });
  const px = parsed.pixelData;
  return {
    json: datasetToJson(parsed.dataset, { inlineBinaryMax: Number.MAX_SAFE_INTEGER }),
    pixels: px && !px.encapsulated ? part10.subarray(px.offset, px.offset + px.length) : undefined,
  };
}

const noMatches = async (s: TestServer, studyUid: string) => {
  const res = await fetch(`${s.dicomweb}/studies?StudyInstanceUID=${studyUid}`, {
    headers: { Authorization: `Bearer ${s.token}` },
  });
  return res.status === 204 || (res.status === 200 && ((await res.json()) as unknown[]).length === 0);
};

describe.each(backends())('STOW-RS metadata and bulk data on %s', (backend) => {
  let s: TestServer;
  let scratch: string;
  beforeAll(async () => {
    s = await startTestServer(backend, {
      limits: { maxRequestBytes: 3_000_000, maxInstanceBytes: 400_000 },
    });
    scratch = await mkdtemp(join(tmpdir(), 'custos-stow-metadata-'));
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  const post = (payload: Buffer, contentType = CONTENT_TYPE, path = '/studies') =>
    fetch(`${s.dicomweb}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body: payload,
    });

  const retrieve = async (studyUid: string, seriesUid: string, sopUid: string): Promise<Buffer> => {
    const res = await fetch(`${s.dicomweb}/studies/${studyUid}/series/${seriesUid}/instances/${sopUid}`, {
      headers: {
        Authorization: `Bearer ${s.token}`,
        Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*',
      },
    });
    expect(res.status).toBe(200);
    const parts = await multipartParts(res);
    expect(parts).toHaveLength(1);
    return parts[0]!.body;
  };

  /** Request spools left in this server's spool directory (inside the data directory). */
  const spoolLeft = async () => {
    expect(s.app.stowSpoolDir.startsWith(join(s.dataDir, 'tmp'))).toBe(true);
    return readdir(s.app.stowSpoolDir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [];
      throw e;
    });
  };

  it('stores instances sent with curl as DICOM JSON and octet-stream bulk data, attribute for attribute and pixel for pixel', async () => {
    const ids = [1, 2].map((i) => ({
      studyUid: uid(10 + i),
      seriesUid: uid(20 + i),
      sopInstanceUid: uid(30 + i),
    }));
    const originals = ids.map((id, i) =>
      makeInstance({
        ...id,
        rows: 16,
        columns: 12,
        patientName: i === 0 ? 'Müller^Jürgen' : 'Doe^John',
        patientId: `PID-STOW-JSON-${i}`,
        extra: [
          // An InlineBinary value and a sequence item with bulk data of its own.
          { tag: 0x00090010, vr: 'LO', value: 'CUSTOS TEST' },
          { tag: 0x00091010, vr: 'OB', value: Buffer.from('a binary value, inline') },
          {
            tag: 0x00880200,
            vr: 'SQ',
            value: [
              [
                { tag: 0x00280002, vr: 'US', value: 1 },
                { tag: 0x00280004, vr: 'CS', value: 'MONOCHROME2' },
                { tag: 0x00280010, vr: 'US', value: 2 },
                { tag: 0x00280011, vr: 'US', value: 2 },
                { tag: 0x00280100, vr: 'US', value: 8 },
                { tag: 0x00280101, vr: 'US', value: 8 },
                { tag: 0x00280102, vr: 'US', value: 7 },
                { tag: 0x00280103, vr: 'US', value: 0 },
                { tag: 0x7fe00010, vr: 'OB', value: Buffer.from([1, 2, 3, 4]) },
              ],
            ],
          },
          { tag: 0x00283006, vr: 'US', value: [0, 1, 2, 3] },
        ],
      }),
    );
    const sent = await Promise.all(
      originals.map((o, i) => asMetadata(o, `http://client.invalid/px/${i + 1}`)),
    );
    expect(JSON.stringify(sent[0]!.json)).toContain('InlineBinary');
    expect(sent[0]!.bulk.map((p) => p.location)).toEqual([
      'http://client.invalid/px/1/8913408.0.2145386512',
      'http://client.invalid/px/1',
    ]);
    // The bulk data of the second instance comes before the metadata, the first's after it.
    const payload = body([...sent[1]!.bulk, metadataPart(sent.map((x) => x.json)), ...sent[0]!.bulk]);
    const file = join(scratch, 'curl-body');
    await writeFile(file, payload);
    const { stdout } = await run('curl', [
      '-sS',
      '-w',
      '\n%{http_code}',
      '-X',
      'POST',
      '-H',
      `Authorization: Bearer ${s.token}`,
      '-H',
      `Content-Type: ${CONTENT_TYPE}`,
      '-H',
      'Accept: application/dicom+json',
      '--data-binary',
      `@${file}`,
      `${s.dicomweb}/studies`,
    ]);
    const lines = stdout.trimEnd().split('\n');
    const status = Number(lines.pop());
    const answer = JSON.parse(lines.join('\n')) as Json;
    expect(answer['00081198']).toBeUndefined();
    expect(status).toBe(200);
    expect((answer['00081199']!.Value as Json[]).map((i) => i['00081155']!.Value![0])).toEqual(
      ids.map((id) => id.sopInstanceUid),
    );
    for (const [i, id] of ids.entries()) {
      const back = await comparable(await retrieve(id.studyUid, id.seriesUid, id.sopInstanceUid));
      const original = await comparable(originals[i]!);
      expect(back.json).toEqual(original.json);
      expect(back.pixels!.equals(original.pixels!)).toBe(true);
    }
    expect(await spoolLeft()).toEqual([]);
  });

  it('stores what dicomweb-client then retrieves as the same object (its storeInstances sends only application/dicom)', async () => {
    const id = { studyUid: uid(40), seriesUid: uid(41), sopInstanceUid: uid(42) };
    const original = makeInstance({ ...id, rows: 20, columns: 20, frames: 3 });
    const { json, bulk } = await asMetadata(original, 'cid:pixels@client.invalid');
    const res = await post(body([metadataPart([json]), ...bulk]), CONTENT_TYPE, `/studies/${id.studyUid}`);
    expect([res.status, res.headers.get('warning')]).toEqual([200, null]);
    const client = new api.DICOMwebClient({
      url: s.dicomweb,
      headers: { Authorization: `Bearer ${s.token}` },
    });
    const back = Buffer.from(
      await client.retrieveInstance({
        studyInstanceUID: id.studyUid,
        seriesInstanceUID: id.seriesUid,
        sopInstanceUID: id.sopInstanceUid,
      }),
    );
    const got = await comparable(back);
    const sent = await comparable(original);
    expect(got.json).toEqual(sent.json);
    expect(got.pixels!.equals(sent.pixels!)).toBe(true);
  });

  it.each([
    ['jpegBaseline', 'mono8', 'image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.50'],
    // PS3.18 Table 8.7.3-5: without a transfer-syntax parameter, the media type's default.
    ['jpegLosslessSv1', 'mono16', 'image/jpeg', '1.2.840.10008.1.2.4.70'],
    ['jpegls', 'mono16', 'image/jls', '1.2.840.10008.1.2.4.80'],
  ] as const)(
    'encapsulates compressed pixel data (%s of %s) sent as %s',
    async (codec, source, mediaType, ts) => {
      const id = { studyUid: uid(50), seriesUid: uid(51), sopInstanceUid: uid(52) };
      const jpeg = await compress(scratch, codec, nativeObject(source, id));
      const parsed = await parsePart10(jpeg.bytes, { maxInlineValueBytes: 0 });
      const json = datasetToJson(parsed.dataset, {
        bulkDataUri: (path) => (path.length === 1 && path[0] === Tags.PixelData ? 'frame-1' : undefined),
      });
      // dcmcjpeg leaves ImageType with one value (VM 2-n), which the archive would warn about.
      json['00080008'] = { vr: 'CS', Value: ['DERIVED', 'PRIMARY'] };
      const res = await post(
        body([metadataPart([json]), { type: mediaType, location: 'frame-1', bytes: jpeg.frame }]),
      );
      expect([res.status, res.headers.get('warning')]).toEqual([200, null]);
      const back = await retrieve(id.studyUid, id.seriesUid, jpeg.sopInstanceUid);
      const again = await parsePart10(back, { maxInlineValueBytes: 0 });
      expect(again.transferSyntaxUid).toBe(ts);
      const fragments = again.pixelData!.fragments!;
      expect(Buffer.concat(fragments.map((f) => back.subarray(f.offset, f.offset + f.length)))).toEqual(
        jpeg.frame.length % 2 ? Buffer.concat([jpeg.frame, Buffer.alloc(1)]) : jpeg.frame,
      );
      const bulkMarker = { bulkDataUri: () => 'bulk' };
      expect(datasetToJson(again.dataset, bulkMarker)).toEqual({
        ...datasetToJson(parsed.dataset, bulkMarker),
        '00080008': json['00080008'],
      });
    },
  );

  it('serves the frame of pixel data stored as image/jpx back as image/jpx (PS3.18 Table 8.7.3-5)', async () => {
    // A JPEG 2000 codestream (GDCM) sent as image/jpx is stored in JPEG 2000 Part 2 (.4.92), the media type's
    // default; its frame goes back labelled so. Until 7 Dec 2026 it went out as application/octet-stream, and a
    // client asking for image/jpx, the type it stored it in, got a 406.
    const id = { studyUid: uid(70), seriesUid: uid(71), sopInstanceUid: uid(72) };
    const j2k = await compress(scratch, 'j2k', nativeObject('mono16', id));
    const parsed = await parsePart10(j2k.bytes, { maxInlineValueBytes: 0 });
    const json = datasetToJson(parsed.dataset, {
      bulkDataUri: (path) => (path.length === 1 && path[0] === Tags.PixelData ? 'jpx-1' : undefined),
    });
    delete json['00020010'];
    const res = await post(
      body([metadataPart([json]), { type: 'image/jpx', location: 'jpx-1', bytes: j2k.frame }]),
    );
    expect([res.status, res.headers.get('warning')]).toEqual([200, null]);
    const JPX = '1.2.840.10008.1.2.4.92';
    const url = `${s.dicomweb}/studies/${id.studyUid}/series/${id.seriesUid}/instances/${id.sopInstanceUid}/frames/1`;
    const padded = j2k.frame.length % 2 ? Buffer.concat([j2k.frame, Buffer.alloc(1)]) : j2k.frame;
    for (const accept of [
      undefined,
      'multipart/related; type="image/jpx"',
      `multipart/related; type="image/jpx"; transfer-syntax=${JPX}`,
    ]) {
      const got = await fetch(url, {
        headers: { Authorization: `Bearer ${s.token}`, ...(accept ? { Accept: accept } : {}) },
      });
      expect(got.status, `${accept}: ${await got.clone().text()}`).toBe(200);
      expect(got.headers.get('content-type'), accept).toMatch(
        /^multipart\/related; type="image\/jpx"; boundary=/,
      );
      const [part] = await multipartParts(got);
      expect(part!.headers['content-type'], accept).toBe(`image/jpx; transfer-syntax=${JPX}`);
      expect(part!.body.equals(padded), accept).toBe(true);
    }
    const single = await fetch(url, { headers: { Authorization: `Bearer ${s.token}`, Accept: 'image/jpx' } });
    expect(single.status).toBe(200);
    expect(single.headers.get('content-type')).toBe(`image/jpx; transfer-syntax=${JPX}`);
    expect(Buffer.from(await single.arrayBuffer()).equals(padded)).toBe(true);
  });

  it('stores instances sent as application/dicom+xml metadata (one part per instance) with their bulk data', async () => {
    const ids = [1, 2].map((i) => ({
      studyUid: uid(100 + i),
      seriesUid: uid(110 + i),
      sopInstanceUid: uid(120 + i),
    }));
    const originals = ids.map((id) =>
      makeInstance({ ...id, rows: 10, columns: 6, studyDescription: 'CT <HEAD> & "NECK"' }),
    );
    const sent = await Promise.all(originals.map((o, i) => asMetadata(o, `xml-px-${i}`)));
    const xmlPart = (json: DicomJsonDataset): Part => ({
      type: 'application/dicom+xml',
      bytes: Buffer.from(nativeDicomXml(json as never)),
    });
    const res = await post(
      body([
        xmlPart(sent[0]!.json),
        ...sent[1]!.bulk,
        xmlPart(sent[1]!.json),
        ...sent[0]!.bulk,
        { type: 'application/dicom+xml', bytes: Buffer.from('<NativeDicomModel><DicomAttribute') },
      ]),
      `multipart/related; type="application/dicom+xml"; boundary=${BOUNDARY}`,
    );
    expect(res.status).toBe(202);
    const answer = (await res.json()) as Json;
    expect((answer['00081199']!.Value as Json[]).map((i) => i['00081155']!.Value![0])).toEqual(
      ids.map((id) => id.sopInstanceUid),
    );
    expect((answer['00081198']!.Value as Json[]).map((i) => i['00081197']!.Value![0])).toEqual([0xc000]);
    expect(res.headers.get('warning')).toContain('part 5: the metadata is not a Native DICOM Model document');
    for (const [i, id] of ids.entries()) {
      const back = await comparable(await retrieve(id.studyUid, id.seriesUid, id.sopInstanceUid));
      const original = await comparable(originals[i]!);
      expect(back.json).toEqual(original.json);
      expect(back.pixels!.equals(original.pixels!)).toBe(true);
    }
  });

  it('keeps private data elements sent in XML as gggg00ee with a privateCreator, and serves them so', async () => {
    const id = { studyUid: uid(130), seriesUid: uid(131), sopInstanceUid: uid(132) };
    const sent = await asMetadata(makeInstance(id), 'xml-private-px');
    // PS3.19 Table A.1.5-2, as dcm4che writes it: the block is the recipient's, no Private Creator element sent.
    const xml = nativeDicomXml(sent.json as never).replace(
      '</NativeDicomModel>',
      '<DicomAttribute tag="00290010" privateCreator="ACME 1.0" vr="LO"><Value number="1">acme ten</Value>' +
        '</DicomAttribute></NativeDicomModel>',
    );
    const res = await post(
      body([{ type: 'application/dicom+xml', bytes: Buffer.from(xml) }, ...sent.bulk]),
      `multipart/related; type="application/dicom+xml"; boundary=${BOUNDARY}`,
    );
    expect(res.status).toBe(200);
    const stored = datasetToJson(
      (await parsePart10(await retrieve(id.studyUid, id.seriesUid, id.sopInstanceUid))).dataset,
    );
    expect(stored['00290010']).toEqual({ vr: 'LO', Value: ['ACME 1.0'] });
    expect(stored['00291010']).toEqual({ vr: 'LO', Value: ['acme ten'] });
    const metadata = await fetch(
      `${s.dicomweb}/studies/${id.studyUid}/series/${id.seriesUid}/instances/${id.sopInstanceUid}/metadata`,
      {
        headers: {
          Authorization: `Bearer ${s.token}`,
          Accept: 'multipart/related; type="application/dicom+xml"',
        },
      },
    );
    expect(metadata.status).toBe(200);
    const [part] = await multipartParts(metadata);
    const served = part!.body.toString('utf8');
    expect(served).toContain(
      '<DicomAttribute tag="00290010" privateCreator="ACME 1.0" vr="LO"><Value number="1">acme ten</Value></DicomAttribute>',
    );
    expect(served).not.toContain('tag="00291010"');
  });

  it('fails only the instances whose metadata or bulk data is wrong, and names what was wrong', async () => {
    const good = { studyUid: uid(60), seriesUid: uid(61), sopInstanceUid: uid(62) };
    const dangling = { studyUid: uid(63), seriesUid: uid(64), sopInstanceUid: uid(65) };
    const noUid = { studyUid: uid(66), seriesUid: uid(67), sopInstanceUid: uid(68) };
    const a = await asMetadata(makeInstance(good), 'px-good');
    const b = await asMetadata(makeInstance(dangling), 'px-nobody-sent');
    const c = await asMetadata(makeInstance(noUid), 'px-no-uid');
    delete c.json['00080018'];
    const badValue = { studyUid: uid(69), seriesUid: uid(59), sopInstanceUid: uid(58) };
    const d = await asMetadata(makeInstance(badValue), 'px-bad-value');
    d.json['00280010'] = { vr: 'US', Value: ['sixteen'] };
    const res = await post(
      body([
        metadataPart([a.json, b.json, c.json, d.json]),
        { type: 'application/dicom+json', bytes: Buffer.from('[{"00100010": {"vr": "PN", ') },
        ...a.bulk,
        ...c.bulk,
        // Named by an instance that fails before its BulkDataURI is reached: not also reported as unreferenced.
        ...d.bulk,
        { type: 'application/octet-stream', location: 'px-orphan', bytes: Buffer.alloc(64, 7) },
      ]),
    );
    expect(res.status).toBe(202);
    const answer = (await res.json()) as Json;
    expect((answer['00081199']!.Value as Json[]).map((i) => i['00081155']!.Value![0])).toEqual([
      good.sopInstanceUid,
    ]);
    const failed = (answer['00081198']!.Value as Json[]).map((i) => ({
      uid: i['00081155']?.Value?.[0],
      reason: i['00081197']!.Value![0],
    }));
    expect(failed).toEqual([
      { uid: dangling.sopInstanceUid, reason: 0xa900 },
      { uid: undefined, reason: 0xa900 },
      { uid: badValue.sopInstanceUid, reason: 0xc000 },
      { uid: undefined, reason: 0xc000 },
      { uid: undefined, reason: 0xc000 },
    ]);
    const warning = res.headers.get('warning') ?? '';
    expect(warning).toContain(
      `part 1 instance 2 (${dangling.sopInstanceUid}): (7FE0,0010) PixelData (OW) has BulkDataURI 'px-nobody-sent'`,
    );
    expect(warning).toContain('part 1 instance 3');
    expect(warning).toContain(
      `part 1 instance 4 (${badValue.sopInstanceUid}): (0028,0010) Rows: a US value must be a number`,
    );
    expect(warning).toMatch(/SOP Instance UID|SOPInstanceUID/);
    expect(warning).toContain('part 2: the metadata is not UTF-8 JSON');
    expect(warning).toContain("part 6: Content-Location 'px-orphan' is referred to by no BulkDataURI");
    expect(await noMatches(s, dangling.studyUid)).toBe(true);
    expect(await spoolLeft()).toEqual([]);
  });

  it('refuses a metadata part whose charset is not UTF-8 (0xC000, naming it), and reads utf-8 and "ISO_IR 192" as UTF-8', async () => {
    const utf8 = { studyUid: uid(80), seriesUid: uid(81), sopInstanceUid: uid(82) };
    const term = { studyUid: uid(83), seriesUid: uid(84), sopInstanceUid: uid(85) };
    const latin1 = { studyUid: uid(86), seriesUid: uid(87), sopInstanceUid: uid(88) };
    const metadataOf = (ids: typeof utf8, uri: string) =>
      asMetadata(makeInstance({ ...ids, patientName: 'MÃ¼ller^Hans', patientId: `PID-CHARSET-${uri}` }), uri);
    const [a, b, c] = [
      await metadataOf(utf8, 'px-utf8'),
      await metadataOf(term, 'px-term'),
      await metadataOf(latin1, 'px-latin1'),
    ];
    // In ISO-8859-1, 'MÃ¼ller' is the bytes 4D C3 BC …, which read as UTF-8 are 'Müller': until 7 Dec 2026 the
    // charset was ignored and the third part was stored under a name its sender never wrote.
    const res = await post(
      body([
        {
          type: 'application/dicom+json; charset=utf-8',
          bytes: Buffer.from(JSON.stringify([a.json]), 'utf8'),
        },
        {
          type: 'application/dicom+json; charset="ISO_IR 192"',
          bytes: Buffer.from(JSON.stringify([b.json]), 'utf8'),
        },
        {
          type: 'application/dicom+json; charset=ISO-8859-1',
          bytes: Buffer.from(JSON.stringify([c.json]), 'latin1'),
        },
        ...a.bulk,
        ...b.bulk,
        ...c.bulk,
      ]),
    );
    expect(res.status).toBe(202);
    const answer = (await res.json()) as Json;
    expect((answer['00081199']!.Value as Json[]).map((i) => i['00081155']!.Value![0])).toEqual([
      utf8.sopInstanceUid,
      term.sopInstanceUid,
    ]);
    // The refused part, and the bulk data only it referred to.
    expect((answer['00081198']!.Value as Json[]).map((i) => i['00081197']!.Value![0])).toEqual([
      0xc000, 0xc000,
    ]);
    expect(res.headers.get('warning')).toContain(
      'part 3: the metadata is application/dicom+json; charset=ISO-8859-1, but Custos reads metadata only in UTF-8',
    );
    expect(res.headers.get('warning')).toContain("part 6: Content-Location 'px-latin1'");
    expect(await noMatches(s, latin1.studyUid)).toBe(true);
    const stored = await comparable(await retrieve(utf8.studyUid, utf8.seriesUid, utf8.sopInstanceUid));
    expect(stored.json['00100010']!.Value).toEqual([{ Alphabetic: 'MÃ¼ller^Hans' }]);
    expect(await spoolLeft()).toEqual([]);
  });

  it('fails with 0xA700 the instance whose bulk data part exceeds limits.maxInstanceBytes, storing the others', async () => {
    const small = { studyUid: uid(70), seriesUid: uid(71), sopInstanceUid: uid(72) };
    const big = { studyUid: uid(73), seriesUid: uid(74), sopInstanceUid: uid(75) };
    const a = await asMetadata(makeInstance(small), 'px-small');
    const b = await asMetadata(makeInstance({ ...big, rows: 500, columns: 500 }), 'px-big');
    expect(b.bulk[0]!.bytes.length).toBeGreaterThan(400_000);
    const res = await post(body([metadataPart([b.json, a.json]), ...b.bulk, ...a.bulk]));
    expect(res.status).toBe(202);
    const answer = (await res.json()) as Json;
    expect((answer['00081198']!.Value as Json[])[0]!['00081197']!.Value).toEqual([0xa700]);
    expect((answer['00081199']!.Value as Json[])[0]!['00081155']!.Value).toEqual([small.sopInstanceUid]);
    expect(res.headers.get('warning')).toContain('exceeds 400000 bytes (limits.maxInstanceBytes)');
    expect(await spoolLeft()).toEqual([]);
  });

  it('refuses a body over limits.maxRequestBytes with 413 problem+json, storing nothing and leaving no spool', async () => {
    const ids = { studyUid: uid(80), seriesUid: uid(81), sopInstanceUid: uid(82) };
    const a = await asMetadata(makeInstance(ids), 'px');
    const filler = Array.from({ length: 10 }, (_, i) => ({
      type: 'application/octet-stream',
      location: `filler-${i}`,
      bytes: Buffer.alloc(350_000, i),
    }));
    const payload = body([metadataPart([a.json]), ...a.bulk, ...filler]);
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': CONTENT_TYPE },
      // Streamed (chunked), so that the limit is found while reading, not from Content-Length.
      body: new Blob([payload]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    expect(((await res.json()) as { code: string }).code).toBe('stow.too-large');
    expect(await noMatches(s, ids.studyUid)).toBe(true);
    expect(await spoolLeft()).toEqual([]);
  });

  it('keeps spooled bulk data encrypted on disk while the rest of the request is on its way', async () => {
    const ids = { studyUid: uid(130), seriesUid: uid(131), sopInstanceUid: uid(132) };
    const original = makeInstance({ ...ids, rows: 64, columns: 64 });
    const { json, bulk } = await asMetadata(original, 'px-sealed');
    const pixels = bulk[0]!.bytes;
    const full = body([metadataPart([json]), ...bulk]);
    // Up to the delimiter after the bulk data part: the part is complete, the body is not.
    const cut = full.lastIndexOf(`--${BOUNDARY}--`) + 2 + BOUNDARY.length;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    controller.enqueue(full.subarray(0, cut));
    const answer = fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': CONTENT_TYPE },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    let spooled: Buffer | undefined;
    while (!spooled) {
      for (const request of await spoolLeft()) {
        const file = join(s.app.stowSpoolDir, request, '2');
        const bytes = await readFile(file).catch(() => undefined);
        if (bytes?.length === pixels.length) spooled = bytes;
      }
      if (!spooled) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(spooled.equals(pixels)).toBe(false);
    expect(spooled.includes(pixels.subarray(1000, 1032))).toBe(false);
    controller.enqueue(full.subarray(cut));
    controller.close();
    const res = await answer;
    expect(res.status).toBe(200);
    const back = await comparable(await retrieve(ids.studyUid, ids.seriesUid, ids.sopInstanceUid));
    expect(back.pixels!.equals(pixels)).toBe(true);
    expect(await spoolLeft()).toEqual([]);
  });

  it("sweeps the spool a process that stopped mid-request left, not a running process's", async () => {
    const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
    const ended = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => ended.on('exit', resolve));
    const tmp = join(s.dataDir, 'tmp');
    const stale = join(tmp, `stow.${ended.pid}.0.deadbeef@${host}`);
    const otherHost = join(tmp, `stow.${ended.pid}.0.deadbeef@elsewhere`);
    const live = s.app.stowSpoolDir;
    for (const dir of [stale, otherHost, live]) {
      await mkdir(join(dir, 'request'), { recursive: true });
      await writeFile(join(dir, 'request', '1'), Buffer.alloc(16));
    }
    expect(await sweepStowSpools(s.dataDir)).toBe(1);
    expect((await readdir(tmp)).sort()).toEqual([basename(otherHost), basename(live)].sort());
    await rm(join(live, 'request'), { recursive: true });
    await rm(otherHost, { recursive: true });
  });

  it('refuses per instance a compressed pixel data part whose transfer syntax is neither named nor implied (0xC122)', async () => {
    const ids = { studyUid: uid(90), seriesUid: uid(91), sopInstanceUid: uid(92) };
    const a = await asMetadata(makeInstance(ids), 'px');
    const res = await post(
      body([
        metadataPart([a.json]),
        { type: 'image/x-custos-test', location: 'px', bytes: Buffer.from([0xff, 0xd8]) },
      ]),
    );
    expect(res.status).toBe(409);
    const answer = (await res.json()) as Json;
    expect((answer['00081198']!.Value as Json[])[0]!['00081197']!.Value).toEqual([0xc122]);
    expect(res.headers.get('warning')).toContain('without a transfer-syntax parameter');
  });
});
