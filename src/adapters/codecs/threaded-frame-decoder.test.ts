import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { FrameGeometry } from '../../ports/frame-decoder.js';
import { RLE } from './syntaxes.js';
import { ThreadedFrameDecoder } from './threaded-frame-decoder.js';

/** One 8-bit RLE segment of `n` bytes of `value` (a replicate run), with its 64-byte header. */
function rleFrame(n: number, value: number): Buffer {
  const header = Buffer.alloc(64);
  header.writeUInt32LE(1, 0);
  header.writeUInt32LE(64, 4);
  return Buffer.concat([header, Buffer.from([257 - n, value])]);
}
const g: FrameGeometry = {
  rows: 2,
  columns: 4,
  samplesPerPixel: 1,
  bitsAllocated: 8,
  bitsStored: 8,
  pixelRepresentation: 0,
  photometric: 'MONOCHROME2',
};

describe('ThreadedFrameDecoder', () => {
  let decoder: ThreadedFrameDecoder | undefined;
  afterEach(async () => {
    await decoder?.close();
  });

  it('decodes on its thread, reports a bad frame as a 422 and goes on with the next', async () => {
    decoder = new ThreadedFrameDecoder();
    expect(decoder.running).toBe(0);
    expect((await decoder.decode(RLE, rleFrame(8, 7), g)).pixels).toEqual(Buffer.alloc(8, 7));
    await expect(decoder.decode(RLE, Buffer.alloc(10), g)).rejects.toMatchObject({
      code: 'render.decode-failed',
      httpStatus: 422,
    });
    const [a, b] = await Promise.all([
      decoder.decode(RLE, rleFrame(8, 1), g),
      decoder.decode(RLE, rleFrame(8, 2), g),
    ]);
    expect([a.pixels[0], b.pixels[0]]).toEqual([1, 2]);
  });

  it('stops its thread after idleMs without work, and starts another for the next frame', async () => {
    decoder = new ThreadedFrameDecoder(100, 2);
    // One frame at a time keeps to one thread.
    await decoder.decode(RLE, rleFrame(8, 3), g);
    await decoder.decode(RLE, rleFrame(8, 5), g);
    expect(decoder.running).toBe(1);
    await sleep(400);
    expect(decoder.running).toBe(0);
    expect((await decoder.decode(RLE, rleFrame(8, 4), g)).pixels[7]).toBe(4);
    expect(decoder.running).toBe(1);
  });

  it('decodes frames asked for together on as many threads as it has, each answer to its own frame', async () => {
    decoder = new ThreadedFrameDecoder(10_000, 2);
    expect(decoder.parallelism).toBe(2);
    const values = Array.from({ length: 12 }, (_, i) => i + 10);
    const frames = await Promise.all(values.map((v) => decoder!.decode(RLE, rleFrame(8, v), g)));
    expect(frames.map((f) => f.pixels[0])).toEqual(values);
    expect(decoder.running).toBe(2);
    // A single thread, when so made.
    await decoder.close();
    decoder = new ThreadedFrameDecoder(10_000, 1);
    await Promise.all(values.map((v) => decoder!.decode(RLE, rleFrame(8, v), g)));
    expect(decoder.running).toBe(1);
  });

  it('renders on its thread: a frame decoded, windowed, fitted and encoded; a bad request keeps its status and detail', async () => {
    decoder = new ThreadedFrameDecoder();
    const job = {
      stored: rleFrame(8, 200),
      transferSyntaxUid: RLE,
      native: false,
      geometry: g,
      params: { planarConfiguration: 0, bigEndian: false, rescaleSlope: 1, rescaleIntercept: 0 },
    };
    const png = await decoder.render({ ...job, output: { type: 'image/png' } });
    expect(png.bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    // The first image of an animation carries the GIF's header and says which colour table it chose.
    const first = await decoder.render({
      ...job,
      stored: rleFrame(8, 9),
      output: { type: 'gif-image', delay: 4 },
    });
    expect([first.bytes.subarray(0, 6).toString('latin1'), first.grey]).toEqual(['GIF89a', true]);
    const next = await decoder.render({
      ...job,
      stored: rleFrame(8, 9),
      viewport: { width: 2, height: 2 },
      output: { type: 'gif-image', delay: 4, grey: true },
    });
    expect(next.bytes[0]).toBe(0x21); // a Graphic Control Extension, no header
    await expect(
      decoder.render({
        ...job,
        stored: rleFrame(8, 9),
        viewport: { width: 2, height: 2, region: { x: 3, y: 0, width: 4, height: 1 } },
        output: { type: 'image/jpeg', quality: 90 },
      }),
    ).rejects.toMatchObject({
      code: 'wado.bad-parameter',
      httpStatus: 400,
      detail: { parameter: 'viewport' },
    });
    await expect(
      decoder.render({ ...job, stored: Buffer.alloc(10), output: { type: 'image/gif' } }),
    ).rejects.toMatchObject({
      code: 'render.decode-failed',
      httpStatus: 422,
    });
  });
});
