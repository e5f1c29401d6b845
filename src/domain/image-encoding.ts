// PNG and GIF encoders for rendered images (PS3.18 §8.7.4: image/jpeg, image/gif and image/png are the rendered
// media types an origin server supports). Both take what src/domain/render.ts makes: 8-bit RGBA, opaque. A grey
// image (every pixel's R, G and B equal, as every MONOCHROME frame renders) is written as grey: one byte a pixel.
import { crc32, deflateSync } from 'node:zlib';

/** The media types a rendered image goes out in (PS3.18 §8.7.4); JPEG is the default. */
export const RENDERED_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif'] as const;
export type RenderedMediaType = (typeof RENDERED_MEDIA_TYPES)[number];

export interface RgbaImage {
  data: Buffer;
  width: number;
  height: number;
}

function isGrey(img: RgbaImage): boolean {
  const d = img.data;
  for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
  return true;
}

/** PNG (ISO/IEC 15948): 8-bit greyscale or truecolour, each row filtered with Sub, one IDAT. Lossless. */
export function encodePng(img: RgbaImage): Buffer {
  const { width, height, data } = img;
  const grey = isGrey(img);
  const channels = grey ? 1 : 3;
  const stride = width * channels;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (stride + 1);
    raw[row] = 1; // filter type Sub: each byte minus the one a pixel to its left
    for (let x = 0; x < width; x++) {
      const src = 4 * (y * width + x);
      for (let c = 0; c < channels; c++) {
        const left = x > 0 ? data[src - 4 + c]! : 0;
        raw[row + 1 + x * channels + c] = (data[src + c]! - left) & 0xff;
      }
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = grey ? 0 : 2; // colour type: greyscale, truecolour
  // compression method 0, filter method 0, no interlace: the bytes are already 0
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function chunk(type: string, body: Buffer): Buffer {
  const out = Buffer.alloc(12 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.write(type, 4, 'latin1');
  body.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
  return out;
}

/**
 * GIF89a with one 256-entry colour table: the 256 greys for a grey image (exact), else 8 levels of red and green
 * and 4 of blue (3-3-2 bits, the colour image approximated, as GIF's palette allows).
 */
export function encodeGif(img: RgbaImage): Buffer {
  const { bytes, grey } = gifHeader(img);
  return Buffer.concat([bytes, gifImage(img, { grey }), GIF_TRAILER]);
}

/**
 * The start of a GIF89a whose images are the size of `first`: the logical screen, the colour table `first` needs
 * (grey or 3-3-2, as encodeGif has it) and, for an animation, the NETSCAPE2.0 application extension that loops it
 * for ever. The images follow one at a time (gifImage), then GIF_TRAILER: an animated GIF is written frame by
 * frame, never held whole.
 */
export function gifHeader(first: RgbaImage, opts: { loop?: boolean } = {}): { bytes: Buffer; grey: boolean } {
  const { width, height } = first;
  if (width > 0xffff || height > 0xffff) throw new RangeError('a GIF image is at most 65535 pixels a side');
  const grey = isGrey(first);
  const screen = Buffer.alloc(7);
  screen.writeUInt16LE(width, 0);
  screen.writeUInt16LE(height, 2);
  screen[4] = 0xf7; // a global colour table of 2^(7+1) entries, 8 bits of colour resolution
  const parts = [Buffer.from('GIF89a', 'latin1'), screen, gifPalette(grey)];
  if (opts.loop) {
    const loop = Buffer.alloc(19);
    loop.set([0x21, 0xff, 0x0b]);
    loop.write('NETSCAPE2.0', 3, 'latin1');
    // sub-block of 3 bytes: 1, then the loop count (0: for ever), then the block terminator
    loop.set([0x03, 0x01, 0x00, 0x00, 0x00], 14);
    parts.push(loop);
  }
  return { bytes: Buffer.concat(parts), grey };
}

/**
 * One image of a GIF begun by gifHeader: `grey` is the header's colour table (an image that needs the other one
 * carries it as a local colour table); `delay`, in hundredths of a second, is how long it is shown before the
 * next (a Graphic Control Extension, GIF89a §23).
 */
export function gifImage(img: RgbaImage, opts: { grey: boolean; delay?: number }): Buffer {
  const { width, height, data } = img;
  const grey = isGrey(img);
  const parts: Buffer[] = [];
  if (opts.delay !== undefined) {
    const control = Buffer.from([0x21, 0xf9, 0x04, 0x04, 0, 0, 0, 0]); // disposal 1: leave the image in place
    control.writeUInt16LE(Math.min(0xffff, Math.max(0, Math.round(opts.delay))), 4);
    parts.push(control);
  }
  const descriptor = Buffer.alloc(10);
  descriptor[0] = 0x2c;
  descriptor.writeUInt16LE(width, 5);
  descriptor.writeUInt16LE(height, 7);
  const local = grey !== opts.grey;
  if (local) descriptor[9] = 0x87; // a local colour table of 2^(7+1) entries
  parts.push(descriptor);
  if (local) parts.push(gifPalette(grey));
  const indexes = Buffer.alloc(width * height);
  for (let i = 0; i < indexes.length; i++) {
    const [r, g, b] = [data[4 * i]!, data[4 * i + 1]!, data[4 * i + 2]!];
    indexes[i] = grey
      ? r
      : (Math.round((r * 7) / 255) << 5) | (Math.round((g * 7) / 255) << 2) | Math.round((b * 3) / 255);
  }
  parts.push(Buffer.from([8]), subBlocks(lzw(indexes))); // LZW minimum code size 8
  return Buffer.concat(parts);
}

/** The end of a GIF. */
export const GIF_TRAILER = Buffer.from([0x3b]);

/** The 256 greys, or 8 levels of red and green and 4 of blue (3-3-2 bits). */
function gifPalette(grey: boolean): Buffer {
  const palette = Buffer.alloc(256 * 3);
  for (let i = 0; i < 256; i++) {
    if (grey) palette.fill(i, 3 * i, 3 * i + 3);
    else {
      palette[3 * i] = Math.round((((i >> 5) & 7) * 255) / 7);
      palette[3 * i + 1] = Math.round((((i >> 2) & 7) * 255) / 7);
      palette[3 * i + 2] = Math.round(((i & 3) * 255) / 3);
    }
  }
  return palette;
}

/**
 * Display times in milliseconds as GIF delays in hundredths of a second, rounded on the running total so that
 * the animation's length stays true over many frames (33.3 ms frames are 3, 3, 4 …, not 3 each). A delay below
 * 2 is 2: browsers show 0 and 1 as a tenth of a second.
 */
export function gifDelays(durationsMs: number[]): number[] {
  let elapsed = 0;
  let shown = 0;
  return durationsMs.map((ms) => {
    elapsed += ms;
    const delay = Math.max(2, Math.round(elapsed / 10) - shown);
    shown += delay;
    return delay;
  });
}

/** GIF's variable-length LZW (codes of 9 to 12 bits, least significant bit first, a clear code when full). */
function lzw(indexes: Buffer): Buffer {
  const CLEAR = 256;
  const END = 257;
  const out: number[] = [];
  let bits = 0;
  let nbits = 0;
  let width = 9;
  const emit = (code: number) => {
    bits |= code << nbits;
    nbits += width;
    while (nbits >= 8) {
      out.push(bits & 0xff);
      bits >>>= 8;
      nbits -= 8;
    }
  };
  // The dictionary: a string of codes is its prefix's code and the next index, keyed prefix * 256 + index.
  let table = new Map<number, number>();
  let next = END + 1;
  emit(CLEAR);
  if (indexes.length === 0) {
    emit(END);
    if (nbits > 0) out.push(bits & 0xff);
    return Buffer.from(out);
  }
  let prefix = indexes[0]!;
  for (let i = 1; i < indexes.length; i++) {
    const k = indexes[i]!;
    const key = prefix * 256 + k;
    const known = table.get(key);
    if (known !== undefined) {
      prefix = known;
      continue;
    }
    emit(prefix);
    if (next < 4096) {
      table.set(key, next++);
      // The decoder's table is one entry behind: it widens its codes when it reaches 2^width, as this does.
      if (next > 1 << width && width < 12) width++;
    } else {
      emit(CLEAR);
      table = new Map();
      next = END + 1;
      width = 9;
    }
    prefix = k;
  }
  emit(prefix);
  emit(END);
  if (nbits > 0) out.push(bits & 0xff);
  return Buffer.from(out);
}

/** Data sub-blocks of at most 255 bytes each, then the block terminator. */
function subBlocks(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += 255) {
    const piece = data.subarray(i, i + 255);
    parts.push(Buffer.from([piece.length]), piece);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}
