import { CustosError } from '../../domain/errors.js';
import type { DecodedFrame, FrameGeometry } from '../../ports/frame-decoder.js';

const bad = (message: string) =>
  new CustosError({ code: 'render.decode-failed', message: `RLE frame: ${message}`, httpStatus: 422 });

/**
 * RLE Lossless (PS3.5 Annex G). A frame is a 64-byte header (segment count, then fifteen u32 offsets from the
 * start of the frame) and one PackBits segment per byte of each sample: for each sample in turn, its most
 * significant byte first. The result is native pixel data, little endian, samples interleaved.
 */
export function decodeRle(encoded: Buffer, g: FrameGeometry): DecodedFrame {
  if (g.bitsAllocated !== 8 && g.bitsAllocated !== 16)
    throw bad(`Bits Allocated ${g.bitsAllocated} is not decoded (8 and 16 are)`);
  const bytes = g.bitsAllocated / 8;
  const segments = g.samplesPerPixel * bytes;
  if (encoded.length < 64) throw bad(`${encoded.length} bytes, shorter than the 64-byte header`);
  const count = encoded.readUInt32LE(0);
  if (count !== segments)
    throw bad(
      `${count} segments, where ${g.samplesPerPixel} sample(s) of ${g.bitsAllocated} bits need ${segments}`,
    );
  const pixels = g.rows * g.columns;
  // Every byte is written below (each segment fills its byte of every pixel, or the frame is refused), and a
  // buffer of its own goes to the server thread without a copy (transferable.ts).
  const out = Buffer.allocUnsafeSlow(pixels * segments);
  const stride = segments;
  for (let s = 0; s < count; s++) {
    const start = encoded.readUInt32LE(4 + 4 * s);
    const end = s + 1 < count ? encoded.readUInt32LE(8 + 4 * s) : encoded.length;
    if (start < 64 || end > encoded.length || start > end)
      throw bad(`segment ${s + 1} lies outside the frame (${start}–${end} of ${encoded.length} bytes)`);
    const sample = Math.floor(s / bytes);
    // Segment order is most significant byte first; little-endian output puts it last within the sample.
    const byte = bytes - 1 - (s % bytes);
    let at = sample * bytes + byte;
    let written = 0;
    let i = start;
    while (written < pixels && i < end) {
      const n = encoded[i++]!;
      if (n < 128) {
        const run = Math.min(n + 1, pixels - written);
        if (i + run > end) throw bad(`segment ${s + 1} ends inside a literal run`);
        for (let k = 0; k < run; k++, at += stride) out[at] = encoded[i + k]!;
        i += n + 1;
        written += run;
      } else if (n > 128) {
        if (i >= end) throw bad(`segment ${s + 1} ends inside a replicate run`);
        const value = encoded[i++]!;
        const run = Math.min(257 - n, pixels - written);
        for (let k = 0; k < run; k++, at += stride) out[at] = value;
        written += run;
      }
      // n === 128 (-128 as a signed byte) is a no-op.
    }
    if (written < pixels) throw bad(`segment ${s + 1} holds ${written} of ${pixels} bytes`);
  }
  return {
    pixels: out,
    rows: g.rows,
    columns: g.columns,
    samplesPerPixel: g.samplesPerPixel,
    bitsAllocated: g.bitsAllocated,
    photometric: g.photometric,
  };
}
