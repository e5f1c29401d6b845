// Damage found by a partial read (frames, bulk data, a byte range, a rendered frame) is treated as a whole read
// treats it: object.corrupt, the instance marked corrupt and an alert recorded, and never another object's bytes.
// Until 6 Dec 2026 a blob file swapped with another object of the same study (same data key) decrypted cleanly on
// every partial read and was served with 200/206: a chunk's tag covered neither the blob id nor the index's length.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { compress } from './support/compressed.js';
import { makeInstance, pixelBytes, uid } from './support/fixtures.js';
import { blobFileOf, postStow, startTestServer, type TestServer } from './support/test-server.js';

const ROWS = 64;
const COLUMNS = 64;
const FRAMES = 4;
const FRAME = ROWS * COLUMNS * 2;
/** The blob chunk size the server runs with, and the blob format's header and tag sizes (chunked-aead.ts). */
const CHUNK = 4096;
const HEADER = 32;
const TAG = 16;

/** What a GET came to: its status and body, or the connection cut before the body ended (status 0: no reply). */
interface Outcome {
  status: number;
  body?: Buffer;
  cut?: boolean;
}

/** Whether `body` holds 128 bytes or more of `pixels` in a row (then one of its 64-byte aligned blocks). */
function holdsPixelsOf(body: Buffer, pixels: Buffer): boolean {
  for (let i = 0; i + 64 <= pixels.length; i += 64)
    if (body.includes(pixels.subarray(i, i + 64))) return true;
  return false;
}

describe.each(backends())('integrity of partial reads on %s', (backend) => {
  let s: TestServer;
  const studyUid = uid(1);
  const seriesUid = `${studyUid}.1`;
  // Two instances of one study whose blobs have the same size: same header layout, different pixels.
  const sopA = `${studyUid}.1.1`;
  const sopB = `${studyUid}.1.2`;
  const sopC = `${studyUid}.1.3`;
  const pixelsA = pixelBytes(ROWS, COLUMNS, FRAMES);
  const pixelsB = Buffer.from(pixelsA.map((b) => b ^ 0x5a));
  const auth = () => ({ Authorization: `Bearer ${s.token}` });
  const instanceUrl = (sop: string) =>
    `${s.dicomweb}/studies/${studyUid}/series/${seriesUid}/instances/${sop}`;

  const rowOf = (sop: string) =>
    s.app.index.db
      .selectFrom('instances')
      .select(['blob_id', 'size', 'fixity_status'])
      .where('sop_instance_uid', '=', sop)
      .executeTakeFirstOrThrow();
  const blobFile = (sop: string) => blobFileOf(s, sop);
  /** Forget a mark, so that the next request reads the object again rather than being refused up front. */
  const unmark = (sop: string) =>
    s.app.index.db
      .updateTable('instances')
      .set({ fixity_status: 'ok' })
      .where('sop_instance_uid', '=', sop)
      .execute();
  const alertsFor = async (sop: string) =>
    (await s.app.auditStore.search({ action: ['alert'], studyUid, limit: 100 })).filter(
      (a) => a.objects?.sopInstanceUids?.[0] === sop,
    ).length;

  /** Frames, bulk data, ranges and a rendered frame of one instance: the reads that decrypt part of it. */
  const partialReads = (sop: string): [string, string, Record<string, string>][] => [
    [
      'frame 1, multipart',
      `${instanceUrl(sop)}/frames/1`,
      { Accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' },
    ],
    ['frame 3, single part', `${instanceUrl(sop)}/frames/3`, { Accept: 'application/octet-stream' }],
    ['pixel bulk data', `${instanceUrl(sop)}/bulkdata/7FE00010`, { Accept: 'application/octet-stream' }],
    [
      'a range of the pixel bulk data',
      `${instanceUrl(sop)}/bulkdata/7FE00010`,
      { Accept: 'application/octet-stream', Range: `bytes=${FRAME}-${FRAME + 99}` },
    ],
    ['a range of the instance', instanceUrl(sop), { Accept: 'application/dicom', Range: 'bytes=2000-2999' }],
    [
      'a range of the instance near its end',
      instanceUrl(sop),
      { Accept: 'application/dicom', Range: 'bytes=-100' },
    ],
    ['a rendered frame', `${instanceUrl(sop)}/frames/1/rendered`, { Accept: 'image/png' }],
  ];
  /**
   * Each request is answered 500 object.corrupt, marks the instance corrupt and records one alert (the mark is
   * then forgotten, so that the next request reads the object again). `leaked` says whether a body holds bytes
   * that must not be served.
   */
  const expectEachRefused = async (
    sop: string,
    requests: [string, string, Record<string, string>][],
    leaked: (body: Buffer) => boolean,
  ) => {
    for (const [what, url, headers] of requests) {
      const before = await alertsFor(sop);
      const logged = s.notices.filter((n) => n.startsWith('a read found')).length;
      const out = await get(url, headers);
      if (out.body) expect(leaked(out.body), what).toBe(false);
      // Until 6 Dec 2026 frames and bulk data sent their status line before reading: an empty reply (single part)
      // or a 200 cut after the first part's headers, and the ledger held only the access's success.
      expect(out.cut, what).toBeUndefined();
      expect(out.status, what).toBe(500);
      expect(JSON.parse(out.body!.toString()), what).toMatchObject({ code: 'object.corrupt' });
      const [last] = await s.app.auditStore.search({ action: ['view-pixels'], studyUid, limit: 1 });
      expect(last, what).toMatchObject({ outcome: 'failure', detail: { unserved: 'object.corrupt' } });
      expect((await rowOf(sop)).fixity_status, what).toBe('corrupt');
      expect(await alertsFor(sop), what).toBe(before + 1);
      // And a line in the server's log, naming the blob, not the patient (until 6 Dec 2026 nothing was said).
      expect(s.notices.at(-1), what).toMatch(
        /^a read found a stored object damaged or missing \(stored object [0-9a-f]{32} /,
      );
      expect(s.notices.filter((n) => n.startsWith('a read found')).length, what).toBe(logged + 1);
      await unmark(sop);
    }
  };

  const get = async (url: string, headers: Record<string, string>): Promise<Outcome> => {
    const res = await fetch(url, { headers: { ...auth(), ...headers } }).catch(() => undefined);
    if (!res) return { status: 0, cut: true };
    try {
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
    } catch {
      return { status: res.status, cut: true };
    }
  };

  beforeAll(async () => {
    // Small chunks, so that a frame or a range lies in chunks before the final one (which binds the length).
    s = await startTestServer(backend, {
      configure: (c) => ({ ...c, blob: { ...c.blob, chunkSize: CHUNK } }),
    });
    const common = { studyUid, seriesUid, rows: ROWS, columns: COLUMNS, frames: FRAMES };
    const res = await postStow(s, [
      makeInstance({ ...common, sopInstanceUid: sopA, instanceNumber: 1 }),
      makeInstance({
        ...common,
        sopInstanceUid: sopB,
        instanceNumber: 2,
        extra: [{ tag: 0x7fe00010, vr: 'OW', value: pixelsB }],
      }),
      makeInstance({ ...common, sopInstanceUid: sopC, instanceNumber: 3 }),
    ]);
    expect(res.status).toBe(200);
    expect((await rowOf(sopA)).size).toBe((await rowOf(sopB)).size);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('never serves the pixels of another object of the study whose file was put in place of this one', async () => {
    const [fileA, fileB] = [await blobFile(sopA), await blobFile(sopB)];
    const [bytesA, bytesB] = [await readFile(fileA), await readFile(fileB)];
    await writeFile(fileA, bytesB);
    await writeFile(fileB, bytesA);
    await expectEachRefused(sopA, partialReads(sopA), (body) => holdsPixelsOf(body, pixelsB));
    await writeFile(fileA, bytesA);
    await writeFile(fileB, bytesB);
    const whole = await get(`${instanceUrl(sopA)}/frames/2`, { Accept: 'application/octet-stream' });
    expect(whole.status).toBe(200);
    expect(whole.body).toEqual(pixelsA.subarray(FRAME, 2 * FRAME));
    expect(s.unexpected).toEqual([]);
  });

  it("refuses an object cut short whose header's length was edited to match, inside and past what is left", async () => {
    // Until 6 Dec 2026 the header's length was taken for the object's: a frame past what was left got a 416
    // blob.bad-range "outside the object of N bytes" (N from the file) or a cut connection, one inside it was
    // served, the ledger said success, and nothing was marked or alerted.
    const file = await blobFile(sopC);
    const intact = await readFile(file);
    const kept = 4 * CHUNK;
    const cut = Buffer.from(intact.subarray(0, HEADER + 4 * (CHUNK + TAG)));
    cut.writeBigUInt64BE(BigInt(kept), 24);
    await writeFile(file, cut);
    await expectEachRefused(sopC, partialReads(sopC), () => false);
    await writeFile(file, intact);
    expect(s.unexpected).toEqual([]);
  });

  it('answers frames and bulk data of a damaged or missing object 500 object.corrupt before the status line', async () => {
    const file = await blobFile(sopC);
    const intact = await readFile(file);
    const flipped = Buffer.from(intact);
    // A flipped byte in every chunk, so that each read meets one in its first chunk.
    for (let at = HEADER + 100; at < flipped.length; at += CHUNK + TAG) flipped[at]! ^= 0x40;
    const frameReads = partialReads(sopC).filter(([what]) =>
      ['frame 1, multipart', 'frame 3, single part', 'pixel bulk data'].includes(what),
    );
    expect(frameReads).toHaveLength(3);
    await writeFile(file, flipped);
    await expectEachRefused(sopC, frameReads, () => false);
    await rm(file);
    await expectEachRefused(sopC, frameReads, () => false);
    await writeFile(file, intact);
    expect(s.unexpected).toEqual([]);
  });

  it('answers damage met while decompressing for a client as object.corrupt, marked and alerted', async () => {
    // Until 6 Dec 2026 the header read of a decompressed answer went around the damage handling: 500 blob.integrity
    // naming the internal blob id, nothing marked or alerted, and each request read the object again.
    const dir = await mkdtemp(join(tmpdir(), 'custos-read-integrity-'));
    try {
      const sopD = `${studyUid}.1.4`;
      // A private element of 20 KB before the pixel data: the header lies in chunks the frame does not.
      const original = makeInstance({
        studyUid,
        seriesUid,
        sopInstanceUid: sopD,
        instanceNumber: 4,
        rows: ROWS,
        columns: COLUMNS,
        extra: [
          { tag: 0x00090010, vr: 'LO', value: 'CUSTOS TEST' },
          { tag: 0x00091010, vr: 'OB', value: Buffer.alloc(20_000, 7) },
        ],
      });
      const { bytes } = await compress(dir, 'jpegLosslessSv1', original);
      expect((await postStow(s, [bytes])).status).toBe(200);
      const file = await blobFile(sopD);
      const intact = await readFile(file);
      const damaged = Buffer.from(intact);
      damaged[HEADER + 1000]! ^= 0x40;
      await writeFile(file, damaged);
      const accept = { Accept: 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1' };
      await expectEachRefused(sopD, [['decompressed', instanceUrl(sopD), accept]], () => false);
      // Once marked, the next request is refused before anything is read: no second alert.
      expect((await get(instanceUrl(sopD), accept)).status).toBe(500);
      expect((await rowOf(sopD)).fixity_status).toBe('corrupt');
      expect((await get(instanceUrl(sopD), accept)).status).toBe(500);
      expect(await alertsFor(sopD)).toBe(2);
      await writeFile(file, intact);
      await unmark(sopD);
      const sound = await get(instanceUrl(sopD), accept);
      expect(sound.status).toBe(200);
      expect(s.unexpected).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
