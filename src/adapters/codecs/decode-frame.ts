// Decoders of compressed frames (the decode threads run these: codec-worker.ts). RLE is decoded here (rle.ts),
// and so is grey 12-bit extended JPEG (jpeg12.ts); 8-bit baseline and extended JPEG with jpeg-js, lossless JPEG
// with jpeg-lossless-decoder-js, JPEG-LS with CharLS, JPEG 2000 with OpenJPEG and HTJ2K with OpenJPH (the last
// three compiled to WebAssembly, @cornerstonejs/codec-*, the codecs the OHIF viewer decodes with in the browser).
import { createRequire } from 'node:module';
import jpeg from 'jpeg-js';
import { Decoder as LosslessJpegDecoder } from 'jpeg-lossless-decoder-js';
import { CustosError } from '../../domain/errors.js';
import type { DecodedFrame, FrameGeometry } from '../../ports/frame-decoder.js';
import { decodeJpeg12, Jpeg12Error } from './jpeg12.js';
import { decodeRle } from './rle.js';
import { DECODED_SYNTAXES, HTJ2K, JPEG_2000, JPEG_BASELINE, JPEG_LOSSLESS, RLE } from './syntaxes.js';

const failed = (ts: string, message: string) =>
  new CustosError({
    code: 'render.decode-failed',
    message: `the frame (${ts}) could not be decoded: ${message}`,
    httpStatus: 422,
  });

const unsupported = (message: string) =>
  new CustosError({ code: 'render.unsupported', message, httpStatus: 406 });

/** The CharLS, OpenJPEG and OpenJPH builds: an Emscripten module each, made once per thread when first needed. */
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): {
    width: number;
    height: number;
    bitsPerSample: number;
    componentCount: number;
    isSigned?: boolean;
    /** OpenJPH: whether the codestream's samples went through the reversible colour transform. */
    isUsingColorTransform?: boolean;
  };
  getInterleaveMode?(): number;
  delete(): void;
}
type WasmModule = Record<string, new () => WasmDecoder>;
const require = createRequire(import.meta.url);
const modules = new Map<string, Promise<WasmModule>>();
/** Each build's JavaScript loader (it finds its .wasm beside it). */
const LOADERS = {
  charls: '@cornerstonejs/codec-charls/decodewasmjs',
  openjpeg: '@cornerstonejs/codec-openjpeg/decodewasmjs',
  openjph: '@cornerstonejs/codec-openjph/wasmjs',
} as const;
function wasm(pkg: keyof typeof LOADERS): Promise<WasmModule> {
  let m = modules.get(pkg);
  if (!m) {
    const factory = require(LOADERS[pkg]) as (opts: object) => Promise<WasmModule>;
    // OpenJPEG reports each header it reads on stdout; nothing of it belongs in the server's output.
    m = factory({ print: () => undefined, printErr: () => undefined });
    modules.set(pkg, m);
  }
  return m;
}

async function decodeWasm(
  pkg: keyof typeof LOADERS,
  name: string,
  encoded: Buffer,
): Promise<Omit<DecodedFrame, 'photometric'> & { planar: boolean; colourTransform?: boolean }> {
  const d = new (await wasm(pkg))[name]!();
  try {
    d.getEncodedBuffer(encoded.length).set(encoded);
    d.decode();
    const info = d.getFrameInfo();
    const decoded = d.getDecodedBuffer();
    const bitsAllocated = info.bitsPerSample <= 8 ? 8 : 16;
    return {
      // Copied out of the module's memory, which the next decode reuses.
      pixels: Buffer.from(decoded),
      rows: info.height,
      columns: info.width,
      samplesPerPixel: info.componentCount,
      bitsAllocated,
      // CharLS hands colour back as the stream interleaves it: mode 0 is one plane after the other.
      planar: info.componentCount > 1 && d.getInterleaveMode?.() === 0,
      ...(info.isUsingColorTransform !== undefined ? { colourTransform: info.isUsingColorTransform } : {}),
    };
  } finally {
    d.delete();
  }
}

/** Samples of one plane after another → interleaved. */
function interleave(planes: Buffer, samples: number, bytes: number): Buffer {
  const n = planes.length / (samples * bytes);
  const out = Buffer.alloc(planes.length);
  for (let s = 0; s < samples; s++)
    for (let i = 0; i < n; i++)
      for (let b = 0; b < bytes; b++) out[(i * samples + s) * bytes + b] = planes[(s * n + i) * bytes + b]!;
  return out;
}

/** The sample precision of the first frame header (SOF) of a JPEG stream, undefined if there is none. */
function jpegPrecision(encoded: Buffer): number | undefined {
  let i = 2;
  while (i + 4 < encoded.length) {
    if (encoded[i] !== 0xff) return undefined;
    const marker = encoded[i + 1]!;
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
      return encoded[i + 4];
    i += 2 + encoded.readUInt16BE(i + 2);
  }
  return undefined;
}

/**
 * One frame of `ts` to native pixel data (ports/frame-decoder.ts). What a decoder made of it must be the image
 * the header describes: a codestream of other dimensions, or one a decoder read as nothing at all, is a 422.
 */
export async function decodeFrame(ts: string, encoded: Buffer, g: FrameGeometry): Promise<DecodedFrame> {
  const d = await decodeAny(ts, encoded, g);
  const expected = g.rows * g.columns * g.samplesPerPixel * (d.bitsAllocated / 8);
  if (
    d.rows !== g.rows ||
    d.columns !== g.columns ||
    d.samplesPerPixel !== g.samplesPerPixel ||
    d.pixels.length < expected
  )
    throw failed(
      ts,
      `it holds ${d.columns} × ${d.rows} pixels of ${d.samplesPerPixel} sample(s) (${d.pixels.length} bytes), where the header says ${g.columns} × ${g.rows} of ${g.samplesPerPixel}`,
    );
  return d;
}

async function decodeAny(ts: string, encoded: Buffer, g: FrameGeometry): Promise<DecodedFrame> {
  if (!DECODED_SYNTAXES.has(ts)) throw unsupported(`frames in transfer syntax ${ts} are not decoded`);
  if (ts === RLE) return decodeRle(encoded, g);
  try {
    if (JPEG_BASELINE.includes(ts)) {
      const precision = jpegPrecision(encoded);
      if (precision === undefined) throw failed(ts, 'no JPEG frame header (SOF marker) found');
      if (precision === 12) {
        // Grey 12-bit extended JPEG (CT, MR): Custos's own decoder (jpeg12.ts), to 16-bit samples.
        try {
          const d = decodeJpeg12(encoded, g);
          return {
            pixels: d.pixels,
            rows: d.rows,
            columns: d.columns,
            samplesPerPixel: 1,
            bitsAllocated: 16,
            photometric: g.photometric,
          };
        } catch (err) {
          if (!(err instanceof Jpeg12Error)) throw err;
          if (err.kind === 'unsupported')
            throw unsupported(`12-bit JPEG (${ts}) with ${err.message} is not decoded`);
          throw failed(ts, err.message);
        }
      }
      if (precision !== 8)
        throw unsupported(`${precision}-bit JPEG (${ts}) is not decoded (8 and 12 bits are)`);
      // YBR_FULL_422 and YBR_FULL are the JPEG's YCbCr: turned into RGB. An RGB JPEG is left as it is.
      const img = jpeg.decode(encoded, {
        useTArray: true,
        formatAsRGBA: false,
        colorTransform: g.photometric.startsWith('YBR'),
        maxMemoryUsageInMB: 1024,
      });
      const rgb = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
      if (g.samplesPerPixel === 1) {
        const mono = Buffer.alloc(img.width * img.height);
        for (let i = 0; i < mono.length; i++) mono[i] = rgb[3 * i]!;
        return {
          pixels: mono,
          rows: img.height,
          columns: img.width,
          samplesPerPixel: 1,
          bitsAllocated: 8,
          photometric: g.photometric,
        };
      }
      return {
        pixels: rgb,
        rows: img.height,
        columns: img.width,
        samplesPerPixel: 3,
        bitsAllocated: 8,
        photometric: 'RGB',
      };
    }
    if (JPEG_LOSSLESS.includes(ts)) {
      const bytes = g.bitsAllocated > 8 ? 2 : 1;
      const out = new LosslessJpegDecoder().decode(new Uint8Array(encoded).buffer, 0, encoded.length, bytes);
      const pixels = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
      if (pixels.length !== g.rows * g.columns * g.samplesPerPixel * bytes)
        throw failed(
          ts,
          `${pixels.length} bytes decoded where the header's geometry needs ${g.rows * g.columns * g.samplesPerPixel * bytes}`,
        );
      return {
        pixels,
        rows: g.rows,
        columns: g.columns,
        samplesPerPixel: g.samplesPerPixel,
        bitsAllocated: bytes * 8,
        photometric: g.photometric,
      };
    }
    const j2k = JPEG_2000.includes(ts);
    const htj2k = HTJ2K.includes(ts);
    const d = j2k
      ? await decodeWasm('openjpeg', 'J2KDecoder', encoded)
      : htj2k
        ? await decodeWasm('openjph', 'HTJ2KDecoder', encoded)
        : await decodeWasm('charls', 'JpegLSDecoder', encoded);
    if (htj2k && d.samplesPerPixel > 1 && d.colourTransform === false)
      // OpenJPH's reference decoder (ojph_expand) reads these; the WebAssembly build's samples come back wrong
      // (test: decode-frame.test.ts). Refused rather than served as a wrong image.
      throw unsupported(
        `colour HTJ2K without the reversible colour transform (${ts}) is not decoded: the decoder Custos uses returns wrong samples for it`,
      );
    const bytes = d.bitsAllocated / 8;
    const pixels = d.planar ? interleave(d.pixels, d.samplesPerPixel, bytes) : d.pixels;
    // JPEG 2000 and HTJ2K undo their colour transform (YBR_RCT, YBR_ICT) as they decode.
    const photometric = (j2k || htj2k) && d.samplesPerPixel === 3 ? 'RGB' : g.photometric;
    return {
      pixels,
      rows: d.rows,
      columns: d.columns,
      samplesPerPixel: d.samplesPerPixel,
      bitsAllocated: d.bitsAllocated,
      photometric,
    };
  } catch (err) {
    if (err instanceof CustosError) throw err;
    throw failed(ts, err instanceof Error ? err.message : String(err));
  }
}
