// An animated GIF as independent decoders read it: netpbm's giftopnm for every image's pixels, gifsicle for the
// delays and the loop (giftopnm does not report them).
import { execFileSync } from 'node:child_process';

export interface GifImage {
  width: number;
  height: number;
  /** One byte a pixel for a grey image (PGM), three for a colour one (PPM). */
  grey: boolean;
  samples: Buffer;
}

/** Every image of the GIF, in order, as giftopnm writes them (`-image=all`: one PNM after another). */
export function gifImages(gif: Buffer): GifImage[] {
  const out = execFileSync('giftopnm', ['-image=all'], { input: gif, stdio: ['pipe', 'pipe', 'pipe'] });
  const images: GifImage[] = [];
  let at = 0;
  while (at < out.length) {
    const header = /^(P[56])\s+(\d+)\s+(\d+)\s+255\s/.exec(out.toString('latin1', at, at + 64));
    if (!header) throw new Error(`giftopnm wrote no PNM header at byte ${at}`);
    const [width, height] = [Number(header[2]), Number(header[3])];
    const grey = header[1] === 'P5';
    const start = at + header[0].length;
    const end = start + width * height * (grey ? 1 : 3);
    images.push({ width, height, grey, samples: out.subarray(start, end) });
    at = end;
  }
  return images;
}

/** What gifsicle --info says of the GIF: its images' delays (hundredths of a second) and whether it loops. */
export function gifTiming(gif: Buffer): { images: number; delays: number[]; loopsForever: boolean } {
  const info = execFileSync('gifsicle', ['--info'], { input: gif }).toString('latin1');
  const images = [...info.matchAll(/^\s*\+ image #\d+/gm)].length;
  const delays = [...info.matchAll(/delay (\d+(?:\.\d+)?)s/g)].map((m) => Math.round(Number(m[1]) * 100));
  return { images, delays, loopsForever: /^\s*loop forever$/m.test(info) };
}
