// WADO-RS rendered of a multi-frame instance (PS3.18 §10.4.1.1.3): a Multi-frame Image (Table 8.7.2-1) is
// rendered as image/gif (Table 8.7.4-1), every frame in one animated image timed by the Cine Module; image/jpeg and
// image/png are for a single frame, so a client that accepts only those gets a 406 naming the frames resource.
// Until 7 Dec 2026 the instance's first frame alone came back, in any of the three. The answers are read back by
// netpbm's giftopnm (the frames' pixels) and gifsicle (their delays and the loop).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpegJs from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { compress, t } from './support/compressed.js';
import { makeInstance, MR_IMAGE, pixelValue, stowBody, uid } from './support/fixtures.js';
import { gifImages, gifTiming } from './support/gif-reader.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const ROWS = 4;
const COLUMNS = 5;
/** A window over every frame's values (frame f holds f × 1000 + a few tens): each frame its own greys. */
const [CENTER, WIDTH] = [1020, 2100];

/** Frame f (from 0) rendered by hand through the window, LINEAR (PS3.3 C.11.2.1.2), as one grey a pixel. */
function expectedGreys(f: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < ROWS; r++)
    for (let c = 0; c < COLUMNS; c++) {
      const y = ((pixelValue(f, r, c) - (CENTER - 0.5)) / (WIDTH - 1) + 0.5) * 255;
      out.push(Math.round(Math.min(255, Math.max(0, y))));
    }
  return out;
}

describe.each(backends())('WADO-RS rendered multi-frame instances on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  const study = uid(1);
  const series = uid(2);
  const sop = { vector: uid(3), frameTime: uid(4), untimed: uid(5), rle: uid(6), single: uid(7) };
  const auth = () => ({ Authorization: `Bearer ${s.token}` });
  const url = (sopUid: string, rest = '/rendered') =>
    `${s.dicomweb}/studies/${study}/series/${series}/instances/${sopUid}${rest}`;
  const get = (u: string, accept?: string) =>
    fetch(u, { headers: { ...auth(), ...(accept !== undefined ? { Accept: accept } : {}) } });
  const gif = async (res: Response) => {
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');
    return Buffer.from(await res.arrayBuffer());
  };
  /** Each image's greys (one a pixel), whether giftopnm wrote it grey or in colour. */
  const greysOf = (bytes: Buffer) =>
    gifImages(bytes).map((i) => [...(i.grey ? i.samples : i.samples.filter((_, k) => k % 3 === 0))]);
  const instance = (
    sopInstanceUid: string,
    frames: number,
    extra: Parameters<typeof makeInstance>[0]['extra'],
  ) =>
    makeInstance({
      studyUid: study,
      seriesUid: series,
      sopInstanceUid,
      modality: 'MR',
      sopClassUid: MR_IMAGE,
      rows: ROWS,
      columns: COLUMNS,
      frames,
      extra,
    });

  beforeAll(async () => {
    s = await startTestServer(backend);
    dir = await mkdtemp(join(tmpdir(), 'custos-multiframe-'));
    // Frame Time Vector (0018,1065) and a Frame Time (0018,1063) that the vector overrides.
    const timing = [
      { tag: t(0x0018, 0x1065), vr: 'DS', value: ['0', '40', '250'] },
      { tag: t(0x0018, 0x1063), vr: 'DS', value: '99' },
    ];
    const parts = [
      instance(sop.vector, 3, timing),
      instance(sop.frameTime, 4, [{ tag: t(0x0018, 0x1063), vr: 'DS', value: '33.3' }]),
      instance(sop.untimed, 2, []),
      (await compress(dir, 'rle', instance(sop.rle, 3, timing))).bytes,
      instance(sop.single, 1, []),
    ];
    const { body, contentType } = stowBody(parts.map((bytes) => ({ bytes })));
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    expect(res.status, await res.clone().text()).toBe(200);
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('renders every frame as one looping animated GIF, each frame shown for its Frame Time Vector increment', async () => {
    const window = `?window=${CENTER},${WIDTH}`;
    for (const accept of [undefined, 'image/gif', '*/*', 'image/*', 'image/jpeg, image/gif;q=0.5']) {
      const bytes = await gif(await get(url(sop.vector, `/rendered${window}`), accept));
      expect(
        gifImages(bytes).map((i) => [i.width, i.height]),
        accept,
      ).toEqual([
        [COLUMNS, ROWS],
        [COLUMNS, ROWS],
        [COLUMNS, ROWS],
      ]);
      expect(greysOf(bytes), accept).toEqual([0, 1, 2].map(expectedGreys));
      // Frame 1 shown 40 ms, frame 2 250 ms, the last as long as the one before it; in hundredths of a second.
      expect(gifTiming(bytes), accept).toEqual({ images: 3, delays: [4, 25, 25], loopsForever: true });
    }
    // Each frame is the one …/frames/{n}/rendered shows on its own (PNG: lossless).
    const bytes = await gif(await get(url(sop.vector, `/rendered${window}`)));
    const frames = greysOf(bytes);
    for (const n of [1, 2, 3]) {
      const png = await get(url(sop.vector, `/frames/${n}/rendered${window}`), 'image/png');
      expect(png.headers.get('content-type')).toBe('image/png');
      const still = await gif(await get(url(sop.vector, `/frames/${n}/rendered${window}`), 'image/gif'));
      expect(greysOf(still), `frame ${n}`).toEqual([frames[n - 1]]);
      expect(gifTiming(still)).toEqual({ images: 1, delays: [], loopsForever: false });
      await png.arrayBuffer();
    }
  });

  it('times frames by the Frame Time without a vector, and at ten a second without either', async () => {
    // 33.3 ms a frame, rounded on the running total: 3, 4, 3, 3 hundredths.
    const timed = await gif(await get(url(sop.frameTime)));
    expect(gifTiming(timed)).toEqual({ images: 4, delays: [3, 4, 3, 3], loopsForever: true });
    const untimed = await gif(await get(url(sop.untimed)));
    expect(gifTiming(untimed)).toEqual({ images: 2, delays: [10, 10], loopsForever: true });
  });

  it('fits every frame to the viewport, and renders an RLE-compressed original to the same frames', async () => {
    const fitted = await gif(await get(url(sop.vector, '/rendered?viewport=10,10')));
    expect(gifImages(fitted).map((i) => [i.width, i.height])).toEqual([
      [10, 8],
      [10, 8],
      [10, 8],
    ]);
    const window = `?window=${CENTER},${WIDTH}`;
    const rle = await gif(await get(url(sop.rle, `/rendered${window}`)));
    expect(greysOf(rle)).toEqual([0, 1, 2].map(expectedGreys));
    expect(gifTiming(rle)).toEqual({ images: 3, delays: [4, 25, 25], loopsForever: true });
  });

  it('answers a client that takes only single-frame types with 406 naming image/gif and the frames resource', async () => {
    const unserved = () =>
      s.app.index.db
        .selectFrom('audit_ledger')
        .select(['record'])
        .where('study_uid', '=', study)
        .where('outcome', '=', 'failure')
        .orderBy('seq')
        .execute();
    const before = (await unserved()).length;
    for (const accept of ['image/jpeg', 'image/png', 'image/gif;q=0, image/*']) {
      const res = await get(url(sop.vector), accept);
      expect(res.status, accept).toBe(406);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const body = (await res.json()) as { code: string; detail: string };
      expect(body.code).toBe('http.not-acceptable');
      expect(body.detail).toContain('has 3 frames');
      expect(body.detail).toContain('image/gif');
      expect(body.detail).toContain('/frames/{n}/rendered');
    }
    // Each refusal is in the ledger as an unserved view of the instance.
    const records = (await unserved()).slice(before).map((r) => JSON.parse(r.record) as object);
    expect(records).toHaveLength(3);
    for (const r of records)
      expect(r).toMatchObject({
        objects: { what: 'wado-rs rendered', sopInstanceUids: [sop.vector] },
        detail: { unserved: 'http.not-acceptable', httpStatus: 406 },
      });
    // One frame still comes as JPEG, and so does an instance of one frame.
    for (const u of [url(sop.vector, '/frames/2/rendered'), url(sop.single)]) {
      const res = await get(u, 'image/jpeg');
      expect(res.status, u).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      const img = jpegJs.decode(Buffer.from(await res.arrayBuffer()));
      expect([img.width, img.height]).toEqual([COLUMNS, ROWS]);
    }
  });

  it('reads the Accept header where the accept query parameter names nothing the instance is rendered as (PS3.18 §8.7.8.1)', async () => {
    // OHIF's rendered thumbnails ask …/rendered?accept=image/jpeg; a browser sends its own Accept, Chromium's is this.
    const browser = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
    const window = `window=${CENTER},${WIDTH}`;
    const animated = await gif(await get(url(sop.vector, `/rendered?accept=image/jpeg&${window}`), browser));
    expect(greysOf(animated)).toEqual([0, 1, 2].map(expectedGreys));
    expect(gifTiming(animated)).toEqual({ images: 3, delays: [4, 25, 25], loopsForever: true });
    // The parameter still comes first where the resource is served in what it names: one frame, one instance.
    for (const u of [
      url(sop.vector, '/frames/2/rendered?accept=image/png'),
      url(sop.single, '/rendered?accept=image/png'),
    ]) {
      const res = await get(u, 'image/gif');
      expect(res.status, u).toBe(200);
      expect(res.headers.get('content-type'), u).toBe('image/png');
      await res.arrayBuffer();
    }
    // And where neither names image/gif it is a 406 as before.
    const refused = await get(url(sop.vector, '/rendered?accept=image/jpeg'), 'image/png, image/jpeg');
    expect(refused.status).toBe(406);
    expect(((await refused.json()) as { detail: string }).detail).toContain("Accept was 'image/jpeg'");
  });
});
