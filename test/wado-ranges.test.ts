// WADO-RS byte ranges (PS3.18: "If the Range header is specified in the request, the server shall return only the
// specified bytes of the bulk data object"), single part frames and bulk data, and HEAD without reading objects.
// Until 5 Dec 2026 a Range header was ignored (200, the whole value or object), `Accept: application/octet-stream`
// got a multipart answer, and a HEAD read and decrypted every object it named only to drop the bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobStore } from '../src/ports/blob-store.js';
import { backends } from './support/backends.js';
import { makeInstance, pixelBytes, stowBody, uid } from './support/fixtures.js';
import { multipartParts } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';

/** Every read of the blob store: the range asked for and the plaintext bytes it yielded. */
interface Read {
  range?: { start: number; end: number };
  bytes: number;
}

function countingReads(reads: Read[]) {
  return (inner: BlobStore): BlobStore => ({
    create: (key) => inner.create(key),
    exists: (id) => inner.exists(id),
    list: (prefix) => inner.list(prefix),
    delete: (id) => inner.delete(id),
    sweepTemp: () => inner.sweepTemp(),
    read(blobId, key, range, sha256) {
      const r: Read = { ...(range ? { range } : {}), bytes: 0 };
      reads.push(r);
      return (async function* () {
        for await (const chunk of inner.read(blobId, key, range, sha256)) {
          r.bytes += chunk.length;
          yield chunk;
        }
      })();
    },
  });
}

describe.each(backends())('WADO-RS ranges, single parts and HEAD on %s', (backend) => {
  let s: TestServer;
  const reads: Read[] = [];
  const ids = { studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: uid(3) };
  // 4 frames of 256 × 256 × 16 bits: 128 KiB each, 512 KiB of pixel data, over many 4 KiB blob chunks.
  const pixels = pixelBytes(256, 256, 4);
  const FRAME = 256 * 256 * 2;
  let base: string;
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    fetch(`${base}${path}`, { method, headers: { Authorization: `Bearer ${s.token}`, ...headers } });

  beforeAll(async () => {
    s = await startTestServer(backend, {
      configure: (c) => ({ ...c, blob: { ...c.blob, chunkSize: 4096 } }),
      wrapBlobs: countingReads(reads),
    });
    const { body, contentType } = stowBody([
      { bytes: makeInstance({ ...ids, rows: 256, columns: 256, frames: 4 }) },
    ]);
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    expect(res.status).toBe(200);
    base = `${s.dicomweb}/studies/${ids.studyUid}/series/${ids.seriesUid}/instances/${ids.sopInstanceUid}`;
  });
  afterAll(async () => {
    await s.stop();
  });

  it('answers a Range on bulk data with those bytes alone, in the multipart answer (200, Content-Range on the part)', async () => {
    reads.length = 0;
    const res = await get('/bulkdata/7FE00010', { Range: 'bytes=1000-1099' });
    // RFC 9110 §15.3.7: a 206 is the range its Content-Range names, or multipart/byteranges; this message is a
    // multipart/related whose part holds the range. Until 7 Dec 2026 a 206 with no Content-Range of its own.
    expect(res.status).toBe(200);
    expect(res.headers.get('content-range')).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/^multipart\/related; type="application\/octet-stream"/);
    const parts = await multipartParts(res);
    expect(parts).toHaveLength(1);
    expect(parts[0]!.body).toEqual(pixels.subarray(1000, 1100));
    expect(parts[0]!.headers['content-range']).toBe(`bytes 1000-1099/${pixels.length}`);
    expect(parts[0]!.headers['content-length']).toBe('100');
    // Only those bytes were asked of the store (which decrypts the chunks that cover them), not the object.
    expect(reads).toHaveLength(1);
    expect(reads[0]!.range!.end - reads[0]!.range!.start).toBe(100);
    expect(reads[0]!.bytes).toBe(100);
  });

  it('sends a single part body when asked for application/octet-stream, with or without a Range', async () => {
    const whole = await get('/bulkdata/7FE00010', { Accept: 'application/octet-stream' });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe(
      'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1',
    );
    expect(whole.headers.get('content-length')).toBe(String(pixels.length));
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await whole.arrayBuffer())).toEqual(pixels);

    const tail = await get('/bulkdata/7FE00010', { Accept: 'application/octet-stream', Range: 'bytes=-10' });
    expect(tail.status).toBe(206);
    expect(tail.headers.get('content-range')).toBe(
      `bytes ${pixels.length - 10}-${pixels.length - 1}/${pixels.length}`,
    );
    expect(tail.headers.get('content-length')).toBe('10');
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(pixels.subarray(pixels.length - 10));

    const open = await get('/bulkdata/7FE00010', {
      Accept: 'application/octet-stream',
      Range: 'bytes=524000-',
    });
    expect(open.status).toBe(206);
    expect(Buffer.from(await open.arrayBuffer())).toEqual(pixels.subarray(524000));
  });

  it('reads a range of one frame, single part or multipart', async () => {
    const single = await get('/frames/2', { Accept: 'application/octet-stream', Range: 'bytes=0-15' });
    expect(single.status).toBe(206);
    expect(single.headers.get('content-range')).toBe(`bytes 0-15/${FRAME}`);
    expect(Buffer.from(await single.arrayBuffer())).toEqual(pixels.subarray(FRAME, FRAME + 16));

    const multi = await get('/frames/3', { Range: 'bytes=100-' });
    expect(multi.status).toBe(200);
    const [part] = await multipartParts(multi);
    expect(part!.headers['content-range']).toBe(`bytes 100-${FRAME - 1}/${FRAME}`);
    expect(part!.body).toEqual(pixels.subarray(2 * FRAME + 100, 3 * FRAME));
  });

  it('serves several frames whole, and refuses them as one single part (406)', async () => {
    const multi = await get('/frames/1,4', { Range: 'bytes=0-9' });
    expect(multi.status).toBe(200);
    const parts = await multipartParts(multi);
    expect(parts.map((p) => p.body)).toEqual([
      pixels.subarray(0, FRAME),
      pixels.subarray(3 * FRAME, 4 * FRAME),
    ]);
    const single = await get('/frames/1,4', { Accept: 'application/octet-stream' });
    expect(single.status).toBe(406);
    expect(single.headers.get('content-type')).toBe('application/problem+json');
    expect(((await single.json()) as { detail: string }).detail).toMatch(
      /2 frames cannot go out as a single part/,
    );
  });

  it('answers a range past the end with 416 and the length, and ignores ranges it does not take', async () => {
    const past = await get('/bulkdata/7FE00010', { Range: `bytes=${pixels.length}-` });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${pixels.length}`);
    expect(past.headers.get('content-type')).toBe('application/problem+json');
    expect(((await past.json()) as { code: string }).code).toBe('http.range-not-satisfiable');
    // Recorded as an access, then as a failure: nothing was served (until 5 Dec 2026 only the access).
    const [last] = await s.app.index.db
      .selectFrom('audit_ledger')
      .select(['record'])
      .where('study_uid', '=', ids.studyUid)
      .orderBy('seq', 'desc')
      .limit(1)
      .execute();
    expect(JSON.parse(last!.record)).toMatchObject({
      action: 'view-pixels',
      outcome: 'failure',
      detail: { unserved: 'http.range-not-satisfiable', httpStatus: 416 },
    });
    // Several ranges, a reversed one, another unit: the whole value (RFC 9110 §14.2 lets a server ignore them).
    for (const range of ['bytes=0-1,5-6', 'bytes=9-1', 'items=0-1']) {
      const res = await get('/bulkdata/7FE00010', { Accept: 'application/octet-stream', Range: range });
      expect(res.status, range).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()), range).toEqual(pixels);
    }
  });

  it('resumes the download of a whole object: a Range of it reads only those bytes (WADO-RS, WADO-URI)', async () => {
    const whole = await get('', { Accept: 'application/dicom' });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    const bytes = Buffer.from(await whole.arrayBuffer());
    reads.length = 0;
    const rest = await get('', { Accept: 'application/dicom', Range: 'bytes=1000-' });
    expect(rest.status).toBe(206);
    expect(rest.headers.get('content-range')).toBe(`bytes 1000-${bytes.length - 1}/${bytes.length}`);
    expect(Buffer.from(await rest.arrayBuffer())).toEqual(bytes.subarray(1000));
    expect(reads.map((r) => r.range)).toEqual([{ start: 1000, end: bytes.length }]);
    const uri = `${s.url}/wado?requestType=WADO&contentType=application/dicom&studyUID=${ids.studyUid}&seriesUID=${ids.seriesUid}&objectUID=${ids.sopInstanceUid}`;
    const preamble = await fetch(uri, {
      headers: { Authorization: `Bearer ${s.token}`, Range: 'bytes=0-131' },
    });
    expect(preamble.status).toBe(206);
    expect(Buffer.from(await preamble.arrayBuffer()).toString('latin1', 128)).toBe('DICM');
    const past = await get('', { Accept: 'application/dicom', Range: `bytes=${bytes.length}-` });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
    // A study in multipart/related goes whole.
    const study = await fetch(`${s.dicomweb}/studies/${ids.studyUid}`, {
      headers: { Authorization: `Bearer ${s.token}`, Range: 'bytes=0-9' },
    });
    expect(study.status).toBe(200);
    expect((await multipartParts(study))[0]!.body).toEqual(bytes);
  });

  it('ignores a Range sent with If-Range, whose validator cannot match, and sends the whole value (RFC 9110 §13.1.5)', async () => {
    // Custos sends neither an ETag nor a Last-Modified: no If-Range validator is its representation's, so the
    // Range is ignored (200, the whole value), also one past the end. Until 7 Dec 2026 If-Range was not read: a
    // 206 spliced bytes of this representation onto whatever the client held.
    const whole = Buffer.from(await (await get('', { Accept: 'application/dicom' })).arrayBuffer());
    const uri = `${s.url}/wado?requestType=WADO&contentType=application/dicom&studyUID=${ids.studyUid}&seriesUID=${ids.seriesUid}&objectUID=${ids.sopInstanceUid}`;
    for (const ifRange of ['"a0b1c2"', 'W/"a0b1c2"', 'Mon, 07 Dec 2026 05:00:00 GMT']) {
      for (const [url, accept, body] of [
        [`${base}/bulkdata/7FE00010`, 'application/octet-stream', pixels],
        [`${base}/frames/2`, 'application/octet-stream', pixels.subarray(FRAME, 2 * FRAME)],
        [base, 'application/dicom', whole],
        [uri, '*/*', whole],
      ] as const) {
        for (const range of ['bytes=100-', `bytes=${body.length}-`]) {
          const res = await fetch(url, {
            headers: {
              Authorization: `Bearer ${s.token}`,
              Accept: accept,
              Range: range,
              'If-Range': ifRange,
            },
          });
          expect(res.status, `${url} ${range} If-Range ${ifRange}`).toBe(200);
          expect(res.headers.get('content-range'), url).toBeNull();
          expect(Buffer.from(await res.arrayBuffer()).equals(body), url).toBe(true);
        }
      }
    }
    // In the multipart answer too: the part carries the whole value, without Content-Range.
    const multi = await get('/bulkdata/7FE00010', { Range: 'bytes=100-199', 'If-Range': '"a0b1c2"' });
    expect(multi.status).toBe(200);
    const [part] = await multipartParts(multi);
    expect(part!.headers['content-range']).toBeUndefined();
    expect(part!.body).toEqual(pixels);
  });

  it('ignores a Range on HEAD: the headers of the whole value, never a 206 or 416 (RFC 9110 §14.2)', async () => {
    // GET is the only method range handling is defined for; a server MUST ignore Range on any other. Until 7 Dec
    // 2026 a HEAD with Range got a 206 whose Content-Length was the range's, or a 416, not the value's length.
    const paths = [
      [base, { Accept: 'application/dicom' }],
      [`${base}/bulkdata/7FE00010`, { Accept: 'application/octet-stream' }],
      [`${base}/frames/1`, { Accept: 'application/octet-stream' }],
    ] as const;
    for (const [url, headers] of paths) {
      const got = await fetch(url, { headers: { Authorization: `Bearer ${s.token}`, ...headers } });
      expect(got.status, url).toBe(200);
      await got.arrayBuffer();
      for (const range of ['bytes=0-9', 'bytes=-4', 'bytes=99999999-']) {
        const head = await fetch(url, {
          method: 'HEAD',
          headers: { Authorization: `Bearer ${s.token}`, Range: range, ...headers },
        });
        expect(head.status, `${url} ${range}`).toBe(200);
        expect(head.headers.get('content-range'), `${url} ${range}`).toBeNull();
        expect(head.headers.get('content-length'), `${url} ${range}`).toBe(got.headers.get('content-length'));
        expect(head.headers.get('accept-ranges'), `${url} ${range}`).toBe('bytes');
      }
    }
  });

  it('answers HEAD with the headers of GET and reads no object', async () => {
    const study = `${s.dicomweb}/studies/${ids.studyUid}`;
    const paths = [
      [study, {}],
      [base, { Accept: 'application/dicom' }],
      [`${base}/bulkdata/7FE00010`, { Accept: 'application/octet-stream' }],
      [`${base}/frames/1`, {}],
    ] as const;
    for (const [url, headers] of paths) {
      reads.length = 0;
      const head = await fetch(url, {
        method: 'HEAD',
        headers: { Authorization: `Bearer ${s.token}`, ...headers },
      });
      expect(head.status, url).toBe(200);
      expect(reads, url).toEqual([]);
      const got = await fetch(url, { headers: { Authorization: `Bearer ${s.token}`, ...headers } });
      expect(got.status, url).toBe(200);
      expect(head.headers.get('content-type')!.split(';')[0], url).toBe(
        got.headers.get('content-type')!.split(';')[0],
      );
      expect(head.headers.get('content-length'), url).toBe(got.headers.get('content-length'));
      await got.arrayBuffer();
      expect(reads.length, url).toBeGreaterThan(0);
    }
  });
});
