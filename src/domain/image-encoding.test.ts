import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { gifImages, gifTiming } from '../../test/support/gif-reader.js';
import {
  encodeGif,
  encodePng,
  GIF_TRAILER,
  gifDelays,
  gifHeader,
  gifImage,
  type RgbaImage,
} from './image-encoding.js';

/** netpbm's reading of an image (pngtopnm, giftopnm): its size and samples (1 a pixel for grey, else 3). */
function netpbm(
  tool: 'pngtopnm' | 'giftopnm',
  bytes: Buffer,
): { width: number; height: number; samples: Buffer; grey: boolean } {
  const out = execFileSync(tool, { input: bytes, stdio: ['pipe', 'pipe', 'pipe'] });
  const header = /^(P[56])\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(out.toString('latin1', 0, 64))!;
  expect(header[4]).toBe('255');
  return {
    width: Number(header[2]),
    height: Number(header[3]),
    samples: out.subarray(header[0].length),
    grey: header[1] === 'P5',
  };
}

/** A deterministic image: noise (every byte value, no runs), grey or in colour. */
function image(width: number, height: number, grey: boolean): RgbaImage {
  const data = Buffer.alloc(width * height * 4, 255);
  let x = 12345;
  const next = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  for (let i = 0; i < width * height; i++) {
    const v = next();
    data[4 * i] = v;
    data[4 * i + 1] = grey ? v : next();
    data[4 * i + 2] = grey ? v : next();
  }
  return { data, width, height };
}

const rgb = (img: RgbaImage) => {
  const out = Buffer.alloc(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) img.data.copy(out, 3 * i, 4 * i, 4 * i + 3);
  return out;
};
const greys = (img: RgbaImage) => {
  const out = Buffer.alloc(img.width * img.height);
  for (let i = 0; i < out.length; i++) out[i] = img.data[4 * i]!;
  return out;
};

describe('encodePng', () => {
  it('writes a grey image as 8-bit greyscale and a colour one as truecolour, both exactly as netpbm reads them', () => {
    for (const grey of [true, false]) {
      const img = image(300, 257, grey);
      const read = netpbm('pngtopnm', encodePng(img));
      expect([read.width, read.height, read.grey]).toEqual([300, 257, grey]);
      expect(read.samples.equals(grey ? greys(img) : rgb(img))).toBe(true);
    }
  });
});

describe('encodeGif', () => {
  it('writes a grey image exactly, over several LZW table resets, as netpbm reads it', () => {
    // 300 × 257 pixels of noise fill the 4096-code table many times over: each fill is a clear code.
    const img = image(300, 257, true);
    const read = netpbm('giftopnm', encodeGif(img));
    expect([read.width, read.height]).toEqual([300, 257]);
    const samples = read.grey ? read.samples : Buffer.from(read.samples.filter((_, i) => i % 3 === 0));
    expect(samples.equals(greys(img))).toBe(true);
  });

  it('writes a colour image on a 3-3-2 palette: each sample within half a step of its level', () => {
    const img = image(64, 33, false);
    const read = netpbm('giftopnm', encodeGif(img));
    expect(read.grey).toBe(false);
    const want = rgb(img);
    const steps = [255 / 7, 255 / 7, 255 / 3];
    for (let i = 0; i < want.length; i++)
      expect(Math.abs(read.samples[i]! - want[i]!), `sample ${i}`).toBeLessThanOrEqual(
        steps[i % 3]! / 2 + 0.5,
      );
  });

  it('writes small images, a single pixel among them, and refuses a side longer than 65535', () => {
    for (const [w, h] of [
      [1, 1],
      [2, 3],
      [17, 1],
    ] as const) {
      const img = image(w, h, true);
      const read = netpbm('giftopnm', encodeGif(img));
      expect([read.width, read.height]).toEqual([w, h]);
      const samples = read.grey ? read.samples : Buffer.from(read.samples.filter((_, i) => i % 3 === 0));
      expect(samples.equals(greys(img))).toBe(true);
    }
    expect(() => encodeGif({ data: Buffer.alloc(4 * 65536), width: 65536, height: 1 })).toThrow(RangeError);
  });
});

describe('animated GIF (gifHeader, gifImage, GIF_TRAILER)', () => {
  it('writes frame after frame, each exact as giftopnm reads it, with its delay and a loop as gifsicle reads them', () => {
    const frames = [image(40, 30, true), image(40, 30, false), image(40, 30, true)];
    frames[2]!.data.fill(200, 0, 40 * 4); // not the first frame again
    const { bytes, grey } = gifHeader(frames[0]!, { loop: true });
    expect(grey).toBe(true);
    const gif = Buffer.concat([
      bytes,
      ...frames.map((f, i) => gifImage(f, { grey, delay: [4, 7, 300][i]! })),
      GIF_TRAILER,
    ]);
    const read = gifImages(gif);
    expect(read.map((r) => [r.width, r.height])).toEqual([
      [40, 30],
      [40, 30],
      [40, 30],
    ]);
    // The grey frames on the global grey table exactly; the colour one on its own 3-3-2 local table.
    for (const i of [0, 2]) {
      const r = read[i]!;
      const samples = r.grey ? r.samples : Buffer.from(r.samples.filter((_, k) => k % 3 === 0));
      expect(samples.equals(greys(frames[i]!)), `frame ${i}`).toBe(true);
    }
    expect(read[1]!.grey).toBe(false);
    const want = rgb(frames[1]!);
    const steps = [255 / 7, 255 / 7, 255 / 3];
    for (let k = 0; k < want.length; k++)
      expect(Math.abs(read[1]!.samples[k]! - want[k]!), `sample ${k}`).toBeLessThanOrEqual(
        steps[k % 3]! / 2 + 0.5,
      );
    expect(gifTiming(gif)).toEqual({ images: 3, delays: [4, 7, 300], loopsForever: true });
    // A still image has neither a delay nor a loop.
    expect(gifTiming(encodeGif(frames[0]!))).toEqual({ images: 1, delays: [], loopsForever: false });
  });

  it('rounds delays on the running total, never below 2 hundredths', () => {
    // 30 frames a second: 3, 3, 4 … so that 30 frames last exactly one second.
    const thirty = gifDelays(Array.from({ length: 30 }, () => 1000 / 30));
    expect(thirty.slice(0, 3)).toEqual([3, 4, 3]);
    expect(thirty.reduce((a, b) => a + b)).toBe(100);
    expect(gifDelays([40, 250, 0, 5])).toEqual([4, 25, 2, 2]);
  });
});
