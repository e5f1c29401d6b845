export const RLE = '1.2.840.10008.1.2.5';
export const JPEG_BASELINE = ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51'];
export const JPEG_LOSSLESS = ['1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.70'];
export const JPEG_LS = ['1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81'];
export const JPEG_2000 = ['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91'];

/** The compressed transfer syntaxes whose frames are decoded (decode-frame.ts). */
export const DECODED_SYNTAXES: ReadonlySet<string> = new Set([
  RLE,
  ...JPEG_BASELINE,
  ...JPEG_LOSSLESS,
  ...JPEG_LS,
  ...JPEG_2000,
]);
