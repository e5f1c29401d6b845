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
}

const unsupported = (message: string) =>
  new CustosError({ code: 'render.unsupported', message, httpStatus: 406 });

/**
 * Native pixel data of one frame to 8-bit RGBA for a consumer display: modality rescale, then the window
 * (given, or the frame's full range), inverted for MONOCHROME1 (PS3.3 C.11.2.1.2 linear VOI function).
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
  const values = new Float64Array(n);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    let raw = bytes === 1 ? frame[i]! : p.bigEndian ? frame.readUInt16BE(2 * i) : frame.readUInt16LE(2 * i);
    // Keep BitsStored bits; sign-extend when PixelRepresentation is 1.
    raw = p.pixelRepresentation === 1 ? (raw << shift) >> shift : (raw << shift) >>> shift;
    const v = raw * p.rescaleSlope + p.rescaleIntercept;
    values[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const width = p.windowWidth && p.windowWidth >= 1 ? p.windowWidth : Math.max(1, max - min);
  const center =
    p.windowWidth && p.windowWidth >= 1 && p.windowCenter !== undefined ? p.windowCenter : (max + min) / 2;
  const lo = center - 0.5 - (width - 1) / 2;
  const invert = p.photometric === 'MONOCHROME1';
  for (let i = 0; i < n; i++) {
    let g = clamp(((values[i]! - lo) / Math.max(1, width - 1)) * 255);
    if (invert) g = 255 - g;
    out[4 * i] = g;
    out[4 * i + 1] = g;
    out[4 * i + 2] = g;
  }
  return out;
}

const clamp = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));
