// Rendered images (WADO-RS rendered, thumbnails, WADO-URI) are rendered and encoded on the decode threads, not on
// the server's event loop. Until 7 Dec 2026 a compressed frame was decoded on a thread but rendered to RGBA, fitted
// to the viewport and encoded (jpeg-js, PNG, GIF with its LZW) on the event loop: the animated GIF of a 500-frame
// 1024 × 1024 object held it for 55 s, a tenth of a second a frame, and QIDO-RS answers meanwhile took up to 0.27 s
// instead of milliseconds. The render and encode functions are wrapped here to count their calls on the event loop
// (a decode thread runs its own bundle of them, uncounted), so the check is of where the work runs, not how long.
import jpegJs from 'jpeg-js';
import type * as ImageEncoding from '../src/domain/image-encoding.js';
import type * as Render from '../src/domain/render.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { gifImages, gifTiming } from './support/gif-reader.js';
import { postStow, startTestServer, type TestServer } from './support/test-server.js';

const onLoop = vi.hoisted(() => {
  const calls: string[] = [];
  /** `f`, each call to it on this thread noted as `name`. */
  const counted =
    <A extends unknown[], R>(name: string, f: (...a: A) => R) =>
    (...a: A): R => {
      calls.push(name);
      return f(...a);
    };
  return { calls, counted };
});

vi.mock('../src/domain/render.js', async (importOriginal) => {
  const real = await importOriginal<typeof Render>();
  return {
    ...real,
    renderToRgba: onLoop.counted('renderToRgba', real.renderToRgba),
    fitToViewport: onLoop.counted('fitToViewport', real.fitToViewport),
  };
});
vi.mock('../src/domain/image-encoding.js', async (importOriginal) => {
  const real = await importOriginal<typeof ImageEncoding>();
  return {
    ...real,
    encodePng: onLoop.counted('encodePng', real.encodePng),
    encodeGif: onLoop.counted('encodeGif', real.encodeGif),
    gifImage: onLoop.counted('gifImage', real.gifImage),
  };
});
vi.mock('jpeg-js', async (importOriginal) => {
  const real = (await importOriginal<{ default: typeof jpegJs }>()).default;
  const encode = onLoop.counted('jpeg encode', real.encode);
  return { default: { ...real, encode }, ...real, encode };
});

const FRAMES = 12;
const SIZE = 128;

describe.each(backends())('rendering off the event loop on %s', (backend) => {
  let s: TestServer;
  const study = uid(1);
  const series = uid(2);
  const [multi, single] = [uid(3), uid(4)];
  const auth = () => ({ Authorization: `Bearer ${s.token}` });
  const instanceUrl = (sop: string, rest: string) =>
    `${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}${rest}`;

  beforeAll(async () => {
    s = await startTestServer(backend);
    const base = { studyUid: study, seriesUid: series, rows: SIZE, columns: SIZE };
    const res = await postStow(s, [
      makeInstance({ ...base, sopInstanceUid: multi, frames: FRAMES, instanceNumber: 1 }),
      makeInstance({ ...base, sopInstanceUid: single, instanceNumber: 2 }),
    ]);
    expect(res.status, await res.clone().text()).toBe(200);
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
  });

  it('renders, fits and encodes animated GIFs, JPEG, PNG and thumbnails on a decode thread, none of it on the event loop', async () => {
    onLoop.calls.length = 0;
    const get = async (url: string, accept: string) => {
      const res = await fetch(url, { headers: { ...auth(), Accept: accept } });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(res.headers.get('content-type')).toBe(accept);
      return Buffer.from(await res.arrayBuffer());
    };
    const gif = await get(instanceUrl(multi, '/rendered?viewport=64,64'), 'image/gif');
    expect(gifTiming(gif)).toMatchObject({ images: FRAMES, loopsForever: true });
    expect(gifImages(gif).every((i) => i.width === 64 && i.height === 64)).toBe(true);
    const jpeg = jpegJs.decode(await get(instanceUrl(single, '/rendered'), 'image/jpeg'));
    expect([jpeg.width, jpeg.height]).toEqual([SIZE, SIZE]);
    const png = await get(instanceUrl(multi, '/frames/3/rendered'), 'image/png');
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    const still = await get(instanceUrl(single, '/rendered'), 'image/gif');
    expect(gifTiming(still).images).toBe(1);
    const thumbnail = jpegJs.decode(
      await get(`${s.dicomweb}/studies/${study}/thumbnail?viewport=32,32`, 'image/jpeg'),
    );
    expect([thumbnail.width, thumbnail.height]).toEqual([32, 32]);
    const uri = jpegJs.decode(
      await get(
        `${s.url}/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${single}&contentType=image/jpeg`,
        'image/jpeg',
      ),
    );
    expect(uri.width).toBe(SIZE);
    expect(onLoop.calls).toEqual([]);
  });
});
