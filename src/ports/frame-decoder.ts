import type { RenderParams } from '../domain/render.js';

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

/** Decodes compressed frames (RLE, JPEG, JPEG-LS, JPEG 2000): rendering, decoded frames, decompressed objects. */
export interface FrameDecoder {
  /** Whether frames in this transfer syntax can be decoded at all (a frame may still fail, e.g. progressive 12-bit JPEG). */
  decodes(transferSyntaxUid: string): boolean;
  /**
   * The frame's encoded bytes (its fragments concatenated); rejects with a CustosError naming what failed. The
   * decoder may take `encoded` over (a threaded one transfers a buffer that owns its memory): the caller does not
   * use it afterwards.
   */
  decode(transferSyntaxUid: string, encoded: Buffer, geometry: FrameGeometry): Promise<DecodedFrame>;
  /** How many frames it decodes at once (threads): how far ahead a decompressed object's frames are asked for. */
  readonly parallelism?: number;
  close(): Promise<void>;
}
