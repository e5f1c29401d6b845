// The package's own declarations sit beside its ES module build, which its package.json does not export.
declare module 'jpeg-lossless-decoder-js' {
  export class Decoder {
    /** Decoded samples of `numBytes` bytes each (1 or 2), in a typed array of that width. */
    decode(buffer: ArrayBuffer, offset?: number, length?: number, numBytes?: number): ArrayBufferView;
  }
}
