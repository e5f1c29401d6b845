import { CustosError } from './errors.js';

/** What rendering a frame needs from the header (PS3.3 C.7.6.3 Image Pixel, C.11.2 VOI LUT, C.11.1 Modality LUT). */
export interface RenderParams {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  photometric: string;
  planarConfiguration: number;
  bigEndian: boolean;
  rescaleSlope: number;
  rescaleIntercept: number;
  windowCenter?: number;
  windowWidth?: number;
  /** How the window maps values to grey levels (PS3.3 C.11.2.1.3); LINEAR when absent. */
  voiFunction?: VoiFunction;
}

/** The VOI LUT Functions of PS3.3 C.11.2.1.3 (the WADO-RS `window` parameter's third value, PS3.18 §8.3.5.1.4). */
export const VOI_FUNCTIONS = ['LINEAR', 'LINEAR_EXACT', 'SIGMOID'] as const;
export type VoiFunction = (typeof VOI_FUNCTIONS)[number];

/** A VOI LUT Function as written (in a header or a request, any case and padding); undefined when none of them. */
export function voiFunctionOf(text: string): VoiFunction | undefined {
  const v = text.trim().toUpperCase();
  return (VOI_FUNCTIONS as readonly string[]).includes(v) ? (v as VoiFunction) : undefined;
}

const unsupported = (message: string) =>
  new CustosError({ code: 'render.unsupported', message, httpStatus: 406 });

/**
 * Native pixel data of one frame to 8-bit RGBA for a consumer display: modality rescale, then the window
 * (given, or the frame's full range, then always LINEAR) through its VOI LUT function, inverted for MONOCHROME1
 * (PS3.3 C.11.2.1.2 and C.11.2.1.3).
 */
export function renderToRgba(frame: Buffer, p: RenderParams): Buffer {
  const n = p.rows * p.columns;
  const out = Buffer.alloc(n * 4, 255);
  if (p.samplesPerPixel === 3) {
    if (p.bitsAllocated !== 8 || (p.photometric !== 'RGB' && p.photometric !== 'YBR_FULL'))
      throw unsupported(
        `colour images are rendered for 8-bit RGB only, not ${p.photometric}/${p.bitsAllocated}`,
      );
    if (frame.length < n * 3) throw unsupported('the frame is shorter than its geometry');
    for (let i = 0; i < n; i++) {
      const [r, g, b] =
        p.planarConfiguration === 1
          ? [frame[i]!, frame[n + i]!, frame[2 * n + i]!]
          : [frame[3 * i]!, frame[3 * i + 1]!, frame[3 * i + 2]!];
      if (p.photometric === 'YBR_FULL') {
        out[4 * i] = clamp(r + 1.402 * (b - 128));
        out[4 * i + 1] = clamp(r - 0.344136 * (g - 128) - 0.714136 * (b - 128));
        out[4 * i + 2] = clamp(r + 1.772 * (g - 128));
      } else {
        out[4 * i] = r;
        out[4 * i + 1] = g;
        out[4 * i + 2] = b;
      }
    }
    return out;
  }
  if (p.samplesPerPixel !== 1 || (p.photometric !== 'MONOCHROME1' && p.photometric !== 'MONOCHROME2')) {
    throw unsupported(`rendering of ${p.photometric} with ${p.samplesPerPixel} samples is not supported`);
  }
  if (p.bitsAllocated !== 8 && p.bitsAllocated !== 16)
    throw unsupported(`rendering of ${p.bitsAllocated}-bit pixels is not supported`);
  const bytes = p.bitsAllocated / 8;
  if (frame.length < n * bytes) throw unsupported('the frame is shorter than its geometry');
  const shift = 32 - p.bitsStored;
  // The modality value of pixel i, computed where it is needed rather than kept for every pixel: a Float64Array of
  // a 3328 × 4084 mammogram would be 109 MB more while it renders.
  const value = (i: number) => {
    let raw = bytes === 1 ? frame[i]! : p.bigEndian ? frame.readUInt16BE(2 * i) : frame.readUInt16LE(2 * i);
    // Keep BitsStored bits; sign-extend when PixelRepresentation is 1.
    raw = p.pixelRepresentation === 1 ? (raw << shift) >> shift : (raw << shift) >>> shift;
    return raw * p.rescaleSlope + p.rescaleIntercept;
  };
  const fn = p.voiFunction ?? 'LINEAR';
  // LINEAR needs a width of at least 1; LINEAR_EXACT and SIGMOID any width above 0 (C.11.2.1.3).
  const windowed = p.windowWidth !== undefined && (fn === 'LINEAR' ? p.windowWidth >= 1 : p.windowWidth > 0);
  let min = Infinity;
  let max = -Infinity;
  // The frame's full range is needed only when no window is given.
  if (!windowed || p.windowCenter === undefined)
    for (let i = 0; i < n; i++) {
      const v = value(i);
      if (v < min) min = v;
      if (v > max) max = v;
    }
  const width = windowed ? p.windowWidth! : Math.max(1, max - min);
  const center = windowed && p.windowCenter !== undefined ? p.windowCenter : (max + min) / 2;
  const lo = center - 0.5 - (width - 1) / 2;
  const invert = p.photometric === 'MONOCHROME1';
  const exact = windowed && fn === 'LINEAR_EXACT';
  const sigmoid = windowed && fn === 'SIGMOID';
  for (let i = 0; i < n; i++) {
    const v = value(i);
    let g = sigmoid
      ? clamp(255 / (1 + Math.exp((-4 * (v - center)) / width)))
      : exact
        ? clamp(((v - center) / width + 0.5) * 255)
        : clamp(((v - lo) / Math.max(1, width - 1)) * 255);
    if (invert) g = 255 - g;
    out[4 * i] = g;
    out[4 * i + 1] = g;
    out[4 * i + 2] = g;
  }
  return out;
}

const clamp = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** The `viewport` of a rendered image (PS3.18 §8.3.5.1.3): the size to fit it in, and optionally a region of it. */
export interface Viewport {
  width: number;
  height: number;
  /** Columns sx … sx+|sw|−1 and rows sy … sy+|sh|−1 of the image; a negative sw or sh mirrors that axis. */
  region?: { x: number; y: number; width: number; height: number };
  /**
   * A region given as fractions of the image's width and height, 0 to 1 from the top left (WADO-URI `region`,
   * PS3.18 §8.2.4): the pixels it touches.
   */
  fraction?: { x0: number; y0: number; x1: number; y1: number };
  /** Never enlarge: the viewport only bounds the size (a region asked for without rows or columns). */
  shrinkOnly?: boolean;
}

/** Largest viewport side: a 4096 × 4096 RGBA image is 64 MiB before it is encoded. */
export const MAX_VIEWPORT = 4096;

const badViewport = (message: string) =>
  new CustosError({
    code: 'wado.bad-parameter',
    message: `viewport ${message}`,
    httpStatus: 400,
    detail: { parameter: 'viewport' },
  });

/** `vw,vh` or `vw,vh,sx,sy,sw,sh`; sx and sy may be empty (0), sw and sh empty (to the image's edge). */
export function parseViewport(text: string): Viewport {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length !== 2 && parts.length !== 6)
    throw badViewport(`must be vw,vh or vw,vh,sx,sy,sw,sh, got '${text}'`);
  const int = (p: string, name: string) => {
    if (!/^-?\d+$/.test(p)) throw badViewport(`${name} must be an integer, got '${p}'`);
    return Number(p);
  };
  const width = int(parts[0]!, 'vw');
  const height = int(parts[1]!, 'vh');
  if (width < 1 || height < 1 || width > MAX_VIEWPORT || height > MAX_VIEWPORT)
    throw badViewport(`vw and vh must be from 1 to ${MAX_VIEWPORT}, got ${width},${height}`);
  if (parts.length === 2) return { width, height };
  const opt = (p: string, name: string) => (p === '' ? undefined : int(p, name));
  const x = opt(parts[2]!, 'sx') ?? 0;
  const y = opt(parts[3]!, 'sy') ?? 0;
  const sw = opt(parts[4]!, 'sw');
  const sh = opt(parts[5]!, 'sh');
  if (x < 0 || y < 0) throw badViewport(`sx and sy must not be negative, got ${x},${y}`);
  if (sw === 0 || sh === 0) throw badViewport('sw and sh must not be 0');
  return { width, height, region: { x, y, width: sw ?? 0, height: sh ?? 0 } };
}

/**
 * An RGBA image (or the viewport's region of it) scaled to fit the viewport with its aspect ratio kept: each
 * output pixel is the mean of the source pixels it covers (at least the nearest one, when enlarging).
 */
export function fitToViewport(
  rgba: Buffer,
  width: number,
  height: number,
  vp: Viewport,
): { data: Buffer; width: number; height: number } {
  const r = vp.fraction ? pixelRegion(vp.fraction, width, height) : vp.region;
  const x0 = r?.x ?? 0;
  const y0 = r?.y ?? 0;
  // An empty sw/sh (0 here) runs to the image's edge.
  const sw = r && r.width !== 0 ? r.width : width - x0;
  const sh = r && r.height !== 0 ? r.height : height - y0;
  const rw = Math.abs(sw);
  const rh = Math.abs(sh);
  if (x0 + rw > width || y0 + rh > height || rw < 1 || rh < 1)
    throw badViewport(`region ${x0},${y0},${sw},${sh} is not inside the ${width} × ${height} image`);
  const scale = Math.min(vp.width / rw, vp.height / rh, vp.shrinkOnly ? 1 : Infinity);
  const ow = Math.max(1, Math.min(vp.width, Math.round(rw * scale)));
  const oh = Math.max(1, Math.min(vp.height, Math.round(rh * scale)));
  const out = Buffer.alloc(ow * oh * 4);
  for (let oy = 0; oy < oh; oy++) {
    const ya = Math.floor((oy * rh) / oh);
    const yb = Math.max(ya + 1, Math.ceil(((oy + 1) * rh) / oh));
    const ty = sh < 0 ? oh - 1 - oy : oy;
    for (let ox = 0; ox < ow; ox++) {
      const xa = Math.floor((ox * rw) / ow);
      const xb = Math.max(xa + 1, Math.ceil(((ox + 1) * rw) / ow));
      let red = 0;
      let green = 0;
      let blue = 0;
      for (let y = ya; y < yb; y++) {
        let at = ((y0 + y) * width + x0 + xa) * 4;
        for (let x = xa; x < xb; x++, at += 4) {
          red += rgba[at]!;
          green += rgba[at + 1]!;
          blue += rgba[at + 2]!;
        }
      }
      const n = (yb - ya) * (xb - xa);
      const tx = sw < 0 ? ow - 1 - ox : ox;
      const o = (ty * ow + tx) * 4;
      out[o] = Math.round(red / n);
      out[o + 1] = Math.round(green / n);
      out[o + 2] = Math.round(blue / n);
      out[o + 3] = 255;
    }
  }
  return { data: out, width: ow, height: oh };
}

/** The pixels a region given in fractions of a `width` × `height` image touches (at least one). */
function pixelRegion(
  f: NonNullable<Viewport['fraction']>,
  width: number,
  height: number,
): NonNullable<Viewport['region']> {
  const x = Math.min(width - 1, Math.floor(f.x0 * width));
  const y = Math.min(height - 1, Math.floor(f.y0 * height));
  return {
    x,
    y,
    width: Math.max(1, Math.ceil(f.x1 * width) - x),
    height: Math.max(1, Math.ceil(f.y1 * height) - y),
  };
}
