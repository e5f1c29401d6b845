import { CustosError } from './errors.js';

/** Where pixel data and other bulk values sit inside a stored Part 10 object. */
export interface BulkMap {
  /** Byte offset where the dataset (after the group 0002 file meta) starts. */
  datasetStart: number;
  /** Offsets are into the inflated dataset stream (deflated transfer syntax), not the stored bytes. */
  deflated: boolean;
  /** Bulk values by tag path (8-hex tags joined by '.'), as referenced by `bulk:<path>` BulkDataURIs. */
  elements: Record<string, { offset: number; length: number }>;
  pixel?: {
    tagPath: string;
    offset: number;
    length: number;
    encapsulated: boolean;
    /** `opens`: the fragment starts a JPEG or JPEG 2000 codestream (recorded since 5 Dec 2026). */
    fragments?: { offset: number; length: number; opens?: boolean }[];
    basicOffsetTable?: number[];
  };
}

export interface ImageGeometry {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  numberOfFrames: number;
}

export type ByteRange = { offset: number; length: number };

/**
 * Bytes `start` to `end` (inclusive) of the value the ranges make up end to end, as ranges of the object: what
 * a byte range request (RFC 9110 §14) of a frame or a bulk data value reads.
 */
export function sliceRanges(ranges: ByteRange[], start: number, end: number): ByteRange[] {
  const out: ByteRange[] = [];
  let at = 0;
  for (const r of ranges) {
    const from = Math.max(start, at);
    const to = Math.min(end + 1, at + r.length);
    if (from < to) out.push({ offset: r.offset + (from - at), length: to - from });
    at += r.length;
    if (at > end) break;
  }
  return out;
}

const notFound = (message: string) =>
  new CustosError({ code: 'wado.frame-not-found', message, httpStatus: 404 });

/**
 * The byte ranges that make up each requested frame (1-based numbers, PS3.18 §10.4.1.1.4). Native pixel data is
 * sliced by frame size; encapsulated pixel data is mapped through the Basic Offset Table, or one fragment per
 * frame, or all fragments for a single frame (PS3.5 A.4).
 */
export function frameRanges(bulk: BulkMap, g: ImageGeometry, frames: number[]): ByteRange[][] {
  const px = bulk.pixel;
  if (!px) throw notFound('the instance has no pixel data');
  for (const f of frames) {
    if (!Number.isInteger(f) || f < 1 || f > g.numberOfFrames) {
      throw notFound(`frame ${f} does not exist: the instance has ${g.numberOfFrames} frame(s)`);
    }
  }
  if (!px.encapsulated) {
    const bits = g.rows * g.columns * g.samplesPerPixel * g.bitsAllocated;
    if (bits % 8 !== 0) {
      throw new CustosError({
        code: 'wado.frame-unaligned',
        message: 'frames of this 1-bit image are not byte-aligned and cannot be served separately',
        httpStatus: 406,
      });
    }
    const size = bits / 8;
    // Pixel data shorter than its header says (Number of Frames too large, a file cut short before it was sent):
    // a frame it does not hold whole is not served as an empty or cut body with 200, as until 5 Dec 2026.
    for (const f of frames)
      if (f * size > px.length)
        throw new CustosError({
          code: 'wado.frame-missing',
          message: `frame ${f} is not in the stored pixel data: the header describes ${g.numberOfFrames} frame(s) of ${size} bytes, the pixel data holds ${px.length} bytes`,
          httpStatus: 404,
        });
    return frames.map((f) => [{ offset: px.offset + (f - 1) * size, length: size }]);
  }
  const frags = px.fragments ?? [];
  if (frags.length === 0) throw notFound('the encapsulated pixel data has no fragments');
  const bot = px.basicOffsetTable ?? [];
  let groups: ByteRange[][];
  if (bot.length === g.numberOfFrames && bot.length > 0) {
    // BOT offsets count from the first byte of the first fragment's item tag; fragments record value offsets.
    const base = frags[0]!.offset - 8;
    const starts = frags.map((fr) => fr.offset - 8 - base);
    groups = bot.map((start, i) => {
      const end = i + 1 < bot.length ? bot[i + 1]! : Number.POSITIVE_INFINITY;
      return frags.filter((_, k) => starts[k]! >= start && starts[k]! < end);
    });
  } else if (frags.length === g.numberOfFrames) {
    groups = frags.map((fr) => [fr]);
  } else if (g.numberOfFrames === 1) {
    groups = [frags];
  } else if (frags[0]!.opens && frags.filter((fr) => fr.opens).length === g.numberOfFrames) {
    // No offset table and frames of several fragments (dcmtk's `dcmcjpeg +fs 1`): each frame starts at a fragment
    // that opens a codestream, as dcmtk and pydicom read them (until 5 Dec 2026 a 501).
    groups = [];
    for (const fr of frags) {
      if (fr.opens) groups.push([]);
      groups[groups.length - 1]!.push(fr);
    }
  } else {
    throw new CustosError({
      code: 'wado.frame-boundaries-unknown',
      message: `the object has ${g.numberOfFrames} frames in ${frags.length} fragments, no Basic or Extended Offset Table, and fragments that do not each open a frame's codestream, so frames cannot be located`,
      httpStatus: 501,
    });
  }
  return frames.map((f) => groups[f - 1]!);
}
