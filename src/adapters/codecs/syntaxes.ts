export const RLE = '1.2.840.10008.1.2.5';
export const JPEG_BASELINE = ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51'];
export const JPEG_LOSSLESS = ['1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.70'];
export const JPEG_LS = ['1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81'];
export const JPEG_2000 = ['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91'];
/** High-Throughput JPEG 2000: lossless, lossless with RPCL progression, and lossless or lossy (PS3.5 §8.2.14). */
export const HTJ2K = ['1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.202', '1.2.840.10008.1.2.4.203'];

/** The compressed transfer syntaxes whose frames are decoded (decode-frame.ts). */
export const DECODED_SYNTAXES: ReadonlySet<string> = new Set([
  RLE,
  ...JPEG_BASELINE,
  ...JPEG_LOSSLESS,
  ...JPEG_LS,
  ...JPEG_2000,
  ...HTJ2K,
]);
