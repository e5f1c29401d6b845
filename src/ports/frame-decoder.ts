import type { RenderParams, Viewport } from '../domain/render.js';

/** What a compressed frame claims to be, from the header (PS3.3 C.7.6.3 Image Pixel Module). */
export type FrameGeometry = Pick<
  RenderParams,
  | 'rows'
  | 'columns'
  | 'samplesPerPixel'
  | 'bitsAllocated'
  | 'bitsStored'
  | 'pixelRepresentation'
  | 'photometric'
>;

/**
 * One frame decoded to native pixel data: little endian, samples interleaved (planar configuration 0), one or
 * two bytes a sample as `bitsAllocated` says. `photometric` is what the pixels are now: a JPEG or JPEG 2000
 * decoder turns YBR_FULL_422, YBR_ICT and YBR_RCT into RGB.
 */
export interface DecodedFrame {
  pixels: Buffer;
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  photometric: string;
}

/** What a rendered frame is encoded as: one image (PS3.18 §8.7.4), or one image of an animated GIF. */
export type RenderOutput =
  | { type: 'image/jpeg'; quality: number }
  | { type: 'image/png' }
  | { type: 'image/gif' }
  /**
   * One image of an animated GIF shown for `delay` hundredths of a second: `grey` is the colour table of the
   * GIF's header; without it the frame is the first, and its bytes begin with the header (a looping one) it makes.
   */
  | { type: 'gif-image'; delay: number; grey?: boolean };

/** One frame to render for consumer display: its stored bytes and how the header says to render them. */
export interface RenderJob {
  /** The frame as stored: native pixel data, or its fragments concatenated. Taken over as `decode` takes it. */
  stored: Buffer;
  transferSyntaxUid: string;
  /** Whether `stored` is native pixel data (nothing to decode). */
  native: boolean;
  geometry: FrameGeometry;
  /** What the header (and the request's window) add to what decoding says of the pixels. */
  params: Pick<
    RenderParams,
    | 'planarConfiguration'
    | 'bigEndian'
    | 'rescaleSlope'
    | 'rescaleIntercept'
    | 'windowCenter'
    | 'windowWidth'
    | 'voiFunction'
  >;
  viewport?: Viewport;
  output: RenderOutput;
}

/** A rendered frame, encoded; `grey` is the colour table of the GIF header the first image of an animation made. */
export interface RenderedFrame {
  bytes: Buffer;
  grey?: boolean;
}

/**
 * Decodes compressed frames (RLE, JPEG, JPEG-LS, JPEG 2000): rendering, decoded frames, decompressed objects; and
 * renders frames for consumer display (decoded when compressed, windowed, fitted to the viewport, encoded).
 */
export interface FrameDecoder {
  /** Whether frames in this transfer syntax can be decoded at all (a frame may still fail, e.g. progressive 12-bit JPEG). */
  decodes(transferSyntaxUid: string): boolean;
  /**
   * The frame's encoded bytes (its fragments concatenated); rejects with a CustosError naming what failed. The
   * decoder may take `encoded` over (a threaded one transfers a buffer that owns its memory): the caller does not
   * use it afterwards.
   */
  decode(transferSyntaxUid: string, encoded: Buffer, geometry: FrameGeometry): Promise<DecodedFrame>;
  /**
   * The frame decoded when compressed, rendered to RGBA (render.ts), fitted to the viewport and encoded; rejects
   * with a CustosError naming what failed.
   */
  render(job: RenderJob): Promise<RenderedFrame>;
  /** How many frames it decodes at once (threads): how far ahead a decompressed object's frames are asked for. */
  readonly parallelism?: number;
  close(): Promise<void>;
}
