// The peer the OHIF viewer uses: dicomweb-client, in Node through an XMLHttpRequest implementation (xhr2).
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpegJs from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { compress, nativeObject, nativePixels } from './support/compressed.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { makeInstance, pixelBytes, uid } from './support/fixtures.js';

const require = createRequire(import.meta.url);
(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= require('xhr2');
const { api } = require('dicomweb-client') as {
  api: {
    DICOMwebClient: new (o: {
      url: string;
      headers: Record<string, string>;
      singlepart?: string;
    }) => DicomwebClient;
  };
};

interface DicomwebClient {
  storeInstances(o: { datasets: ArrayBuffer[] }): Promise<unknown>;
  searchForStudies(o?: {
    queryParams?: Record<string, string>;
  }): Promise<Record<string, { Value?: unknown[] }>[]>;
  searchForSeries(o: { studyInstanceUID: string }): Promise<Record<string, { Value?: unknown[] }>[]>;
  searchForInstances(o: {
    studyInstanceUID: string;
    seriesInstanceUID?: string;
  }): Promise<Record<string, { Value?: unknown[] }>[]>;
  retrieveStudyMetadata(o: {
    studyInstanceUID: string;
  }): Promise<Record<string, { Value?: unknown[]; BulkDataURI?: string }>[]>;
  retrieveInstance(o: {
    studyInstanceUID: string;
    seriesInstanceUID: string;
    sopInstanceUID: string;
  }): Promise<ArrayBuffer>;
  retrieveStudy(o: { studyInstanceUID: string }): Promise<ArrayBuffer[]>;
  retrieveBulkData(o: {
    BulkDataURI: string;
    byteRange?: number[];
    mediaTypes?: { mediaType: string; transferSyntaxUID?: string }[];
    headers?: Record<string, string>;
  }): Promise<ArrayBuffer[]>;
  retrieveInstanceThumbnail(o: {
    studyInstanceUID: string;
    seriesInstanceUID: string;
    sopInstanceUID: string;
    queryParams?: Record<string, string>;
  }): Promise<ArrayBuffer[]>;
  retrieveInstanceFrames(o: {
    studyInstanceUID: string;
    seriesInstanceUID: string;
    sopInstanceUID: string;
    frameNumbers: number[];
    mediaTypes?: { mediaType: string; transferSyntaxUID?: string }[];
  }): Promise<ArrayBuffer[]>;
}

const toArrayBuffer = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

describe.each(backends())('dicomweb-client (OHIF) against Custos on %s', (backend) => {
  let s: TestServer;
  let client: DicomwebClient;
  const study = uid(1);
  const series = uid(2);
  const sops = [uid(3), uid(4)];
  const bytes = sops.map((sop, i) =>
    makeInstance({
      studyUid: study,
      seriesUid: series,
      sopInstanceUid: sop,
      instanceNumber: i + 1,
      patientName: 'Client^Test',
      patientId: 'DWC-1',
      rows: 6,
      columns: 6,
      frames: 2,
    }),
  );

  beforeAll(async () => {
    s = await startTestServer(backend);
    client = new api.DICOMwebClient({ url: s.dicomweb, headers: { Authorization: `Bearer ${s.token}` } });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('stores with storeInstances', async () => {
    await client.storeInstances({ datasets: bytes.map(toArrayBuffer) });
    const found = await client.searchForStudies({ queryParams: { PatientID: 'DWC-1' } });
    expect(found.map((r) => r['0020000D']!.Value![0])).toEqual([study]);
  });

  it('searches series and instances', async () => {
    const ser = await client.searchForSeries({ studyInstanceUID: study });
    expect(ser.map((r) => r['0020000E']!.Value![0])).toEqual([series]);
    const inst = await client.searchForInstances({ studyInstanceUID: study, seriesInstanceUID: series });
    expect(inst.map((r) => r['00080018']!.Value![0])).toEqual(sops);
  });

  it('retrieves metadata, instances, the study and frames', async () => {
    const meta = await client.retrieveStudyMetadata({ studyInstanceUID: study });
    expect(meta.length).toBe(2);
    expect(meta[0]!['00100020']!.Value).toEqual(['DWC-1']);
    const one = await client.retrieveInstance({
      studyInstanceUID: study,
      seriesInstanceUID: series,
      sopInstanceUID: sops[1]!,
    });
    expect(Buffer.from(one)).toEqual(bytes[1]);
    const all = await client.retrieveStudy({ studyInstanceUID: study });
    expect(all.map((b) => Buffer.from(b))).toEqual(bytes);
    const frames = await client.retrieveInstanceFrames({
      studyInstanceUID: study,
      seriesInstanceUID: series,
      sopInstanceUID: sops[0]!,
      frameNumbers: [2],
    });
    expect(frames.length).toBe(1);
    expect(Buffer.from(frames[0]!)).toEqual(pixelBytes(6, 6, 2).subarray(72, 144));
  });

  it('gets the frame of a JPEG-LS object decoded when it asks for Explicit VR Little Endian', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custos-dwc-'));
    try {
      const ids = { studyUid: uid(5), seriesUid: uid(6), sopInstanceUid: uid(7) };
      const { bytes: jls } = await compress(dir, 'jpegls', nativeObject('mono16', ids));
      await client.storeInstances({ datasets: [toArrayBuffer(jls)] });
      const [frame] = await client.retrieveInstanceFrames({
        studyInstanceUID: ids.studyUid,
        seriesInstanceUID: ids.seriesUid,
        sopInstanceUID: ids.sopInstanceUid,
        frameNumbers: [1],
        mediaTypes: [{ mediaType: 'application/octet-stream', transferSyntaxUID: '1.2.840.10008.1.2.1' }],
      });
      expect(Buffer.from(frame!).equals(await nativePixels('mono16'))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gets the pixel data of a JPEG-LS object decoded through its BulkDataURI, as its frame, when it asks for octet-stream', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custos-dwc-'));
    try {
      const ids = { studyUid: uid(11), seriesUid: uid(12), sopInstanceUid: uid(13) };
      const { bytes: jls, frame: stored } = await compress(dir, 'jpegls', nativeObject('mono16', ids));
      await client.storeInstances({ datasets: [toArrayBuffer(jls)] });
      const [meta] = await client.retrieveStudyMetadata({ studyInstanceUID: ids.studyUid });
      const uri = meta!['7FE00010']!.BulkDataURI!;
      // retrieveBulkData's default Accept is multipart/related; type="application/octet-stream", whose default
      // transfer syntax is Explicit VR Little Endian (PS3.18 Table 8.7.3-2): the pixels, not the JPEG-LS stream.
      const [pixels] = await client.retrieveBulkData({ BulkDataURI: uri });
      expect(Buffer.from(pixels!).equals(await nativePixels('mono16'))).toBe(true);
      const [frame] = await client.retrieveInstanceFrames({
        studyInstanceUID: ids.studyUid,
        seriesInstanceUID: ids.seriesUid,
        sopInstanceUID: ids.sopInstanceUid,
        frameNumbers: [1],
      });
      expect(Buffer.from(frame!).equals(Buffer.from(pixels!))).toBe(true);
      // transfer-syntax=* still gets it as stored.
      const [asStored] = await client.retrieveBulkData({
        BulkDataURI: uri,
        mediaTypes: [{ mediaType: 'application/octet-stream', transferSyntaxUID: '*' }],
      });
      expect(Buffer.from(asStored!).equals(stored)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gets the frame of a JPEG-LS object as stored when it asks for image/x-jls, the older name of image/jls', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custos-dwc-'));
    try {
      const ids = { studyUid: uid(8), seriesUid: uid(9), sopInstanceUid: uid(10) };
      const { bytes: jls, frame: stored } = await compress(dir, 'jpegls', nativeObject('mono16', ids));
      await client.storeInstances({ datasets: [toArrayBuffer(jls)] });
      // dicomweb-client 0.11 offers image/x-jls and image/jls for JPEG-LS; PS3.18 §8.7.3.3 Note 8 names the former.
      const [frame] = await client.retrieveInstanceFrames({
        studyInstanceUID: ids.studyUid,
        seriesInstanceUID: ids.seriesUid,
        sopInstanceUID: ids.sopInstanceUid,
        frameNumbers: [1],
        mediaTypes: [{ mediaType: 'image/x-jls', transferSyntaxUID: '1.2.840.10008.1.2.4.80' }],
      });
      expect(Buffer.from(frame!).equals(stored)).toBe(true);
      // The answer names the type by its current name.
      const res = await fetch(
        `${s.dicomweb}/studies/${ids.studyUid}/series/${ids.seriesUid}/instances/${ids.sopInstanceUid}/frames/1`,
        { headers: { Authorization: `Bearer ${s.token}`, Accept: 'image/x-jls' } },
      );
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jls; transfer-syntax=1.2.840.10008.1.2.4.80');
      expect(Buffer.from(await res.arrayBuffer()).equals(stored)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('follows a metadata BulkDataURI and fetches a thumbnail', async () => {
    const [meta] = await client.retrieveStudyMetadata({ studyInstanceUID: study });
    const uri = meta!['7FE00010']!.BulkDataURI!;
    expect(uri).toMatch(/\/bulkdata\/7FE00010$/);
    const [pixels] = await client.retrieveBulkData({ BulkDataURI: uri });
    expect(Buffer.from(pixels!)).toEqual(pixelBytes(6, 6, 2));
    // A byte range of it (the library sends Range and takes the multipart 200), and the single part form OHIF can ask for.
    const [some] = await client.retrieveBulkData({ BulkDataURI: uri, byteRange: [10, 29] });
    expect(Buffer.from(some!)).toEqual(pixelBytes(6, 6, 2).subarray(10, 30));
    const single = new api.DICOMwebClient({
      url: s.dicomweb,
      headers: { Authorization: `Bearer ${s.token}` },
      singlepart: 'bulkdata',
    });
    const [whole] = await single.retrieveBulkData({
      BulkDataURI: uri,
      headers: { Accept: 'application/octet-stream' },
    });
    expect(Buffer.from(whole!)).toEqual(pixelBytes(6, 6, 2));
    // The library hands a single-part answer back as a list of one.
    const [thumb] = await client.retrieveInstanceThumbnail({
      studyInstanceUID: study,
      seriesInstanceUID: series,
      sopInstanceUID: sops[0]!,
      queryParams: { viewport: '3,3' },
    });
    const img = jpegJs.decode(Buffer.from(thumb!));
    expect([img.width, img.height]).toEqual([3, 3]);
  });
});
