// A decode thread (threaded-frame-decoder.ts): decodes compressed frames (rendering, decoded frames, decompressed
// objects) and renders frames for consumer display (render-frame.ts) off the server's event loop, where a JPEG 2000
// mammogram, or the images of an animated GIF, would otherwise hold every other request.
// Messages are `CodecRequest` / `CodecAnswer`.
import { parentPort } from 'node:worker_threads';
import { CustosError } from '../../domain/errors.js';
import type { DecodedFrame, FrameGeometry, RenderJob } from '../../ports/frame-decoder.js';
import { decodeFrame } from './decode-frame.js';
import { renderFrame } from './render-frame.js';
import { transferable } from './transferable.js';

export interface DecodeRequest {
  id: number;
  kind: 'decode';
  ts: string;
  encoded: Uint8Array;
  geometry: FrameGeometry;
}

/** A RenderJob whose bytes crossed to the thread (a Buffer arrives as a Uint8Array). */
export interface RenderRequest {
  id: number;
  kind: 'render';
  job: Omit<RenderJob, 'stored'> & { stored: Uint8Array };
}

export type CodecRequest = DecodeRequest | RenderRequest;

export interface WorkerError {
  code: string;
  message: string;
  httpStatus: number;
  dicomStatus?: number;
  detail?: Record<string, unknown>;
}

export type CodecAnswer =
  | { id: number; frame: Omit<DecodedFrame, 'pixels'> & { pixels: Uint8Array } }
  | { id: number; rendered: { bytes: Uint8Array; grey?: boolean } }
  | { id: number; error: WorkerError };

const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** What failed, as a CustosError's fields: a codec's own error is a frame that cannot be decoded (422). */
function failure(err: unknown, kind: CodecRequest['kind']): WorkerError {
  const e =
    err instanceof CustosError
      ? err
      : new CustosError({
          code: kind === 'decode' ? 'render.decode-failed' : 'render.failed',
          message: String(err),
          httpStatus: kind === 'decode' ? 422 : 500,
        });
  return {
    code: e.code,
    message: e.message,
    httpStatus: e.httpStatus,
    ...(e.dicomStatus !== undefined ? { dicomStatus: e.dicomStatus } : {}),
    ...(e.detail !== undefined ? { detail: e.detail } : {}),
  };
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (m: CodecRequest | 'close') => {
    if (m === 'close') {
      port.close();
      return;
    }
    const fail = (err: unknown) => {
      const answer: CodecAnswer = { id: m.id, error: failure(err, m.kind) };
      port.postMessage(answer);
    };
    if (m.kind === 'render') {
      renderFrame({ ...m.job, stored: asBuffer(m.job.stored) }).then((r) => {
        const bytes = transferable(r.bytes);
        const answer: CodecAnswer = {
          id: m.id,
          rendered: { bytes, ...(r.grey !== undefined ? { grey: r.grey } : {}) },
        };
        port.postMessage(answer, [bytes.buffer]);
      }, fail);
      return;
    }
    decodeFrame(m.ts, asBuffer(m.encoded), m.geometry).then((frame) => {
      // Transferred, not copied, when the decoder's buffer owns its memory (transferable).
      const pixels = transferable(frame.pixels);
      const answer: CodecAnswer = { id: m.id, frame: { ...frame, pixels } };
      port.postMessage(answer, [pixels.buffer]);
    }, fail);
  });
}
