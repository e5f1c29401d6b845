import { TransferSyntax } from './tags.js';

/** How a transfer syntax encodes the dataset after the file meta information (PS3.5 §10, Annex A). */
export interface TransferSyntaxEncoding {
  explicit: boolean;
  little: boolean;
  deflated: boolean;
}

/**
 * The encoding of a transfer syntax, or undefined when it is not one Custos can read. Every DICOM transfer
 * syntax other than implicit VR LE, explicit VR BE and the deflated one is explicit VR little endian (PS3.5 A.4:
 * encapsulated ones differ only in the pixel data, which the parser recognises by its undefined length), so any
 * UID under the standard's 1.2.840.10008.1.2 arc reads that way. Private transfer syntaxes may encode anything.
 */
export function transferSyntaxEncoding(uid: string): TransferSyntaxEncoding | undefined {
  switch (uid) {
    case TransferSyntax.ImplicitVRLittleEndian:
      return { explicit: false, little: true, deflated: false };
    case TransferSyntax.ExplicitVRBigEndian:
      return { explicit: true, little: false, deflated: false };
    case TransferSyntax.DeflatedExplicitVRLittleEndian:
      return { explicit: true, little: true, deflated: true };
  }
  if (/^1\.2\.840\.10008\.1\.2\.[1-9][0-9]*(\.[1-9][0-9]*)*$/.test(uid))
    return { explicit: true, little: true, deflated: false };
  return undefined;
}

/**
 * The transfer syntaxes whose pixel data is native (PS3.5 §8.1.1: a value of defined length): implicit and
 * explicit VR little endian, deflated, and (retired) big endian. Every other standard one encapsulates it (A.4).
 */
const NATIVE = new Set<string>([
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.DeflatedExplicitVRLittleEndian,
  TransferSyntax.ExplicitVRBigEndian,
]);

export function isNativeTransferSyntax(uid: string): boolean {
  return NATIVE.has(uid);
}

/** JPIP Referenced (and Deflate): the pixel data is fetched from a URL, not held in the object (PS3.5 A.6, A.7). */
export function isReferencedPixelTransferSyntax(uid: string): boolean {
  return uid === '1.2.840.10008.1.2.4.94' || uid === '1.2.840.10008.1.2.4.95';
}

/**
 * The video transfer syntaxes (PS3.5 §8.2): MPEG-2 (.100, .101), MPEG-4 AVC/H.264 (.102–.106) and HEVC/H.265
 * (.107, .108). Their pixel data is one stream for every frame, however it is cut into fragments (PS3.5 A.4).
 */
export function isVideoTransferSyntax(uid: string): boolean {
  const m = /^1\.2\.840\.10008\.1\.2\.4\.(\d+)$/.exec(uid);
  return m !== null && Number(m[1]) >= 100 && Number(m[1]) <= 108;
}
