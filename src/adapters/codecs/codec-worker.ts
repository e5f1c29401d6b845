// A decode thread (threaded-frame-decoder.ts): decodes compressed frames (rendering, decoded frames, decompressed
// objects) off the server's event loop, where a JPEG 2000 mammogram would otherwise hold every other request for
// a good part of a second.
// Messages are `DecodeRequest` / `DecodeAnswer`.
import { parentPort } from 'node:worker_threads';
import { CustosError } from '../../domain/errors.js';
import type { DecodedFrame, FrameGeometry } from '../../ports/frame-decoder.js';
import { decodeFrame } from './decode-frame.js';
import { transferable } from './transferable.js';

export interface DecodeRequest {
  id: number;
  ts: string;
  encoded: Uint8Array;
  geometry: FrameGeometry;
}

export type DecodeAnswer =
  | { id: number; frame: Omit<DecodedFrame, 'pixels'> & { pixels: Uint8Array } }
  | { id: number; error: { code: string; message: string; httpStatus: number } };

if (parentPort) {
  const port = parentPort;
  port.on('message', (m: DecodeRequest | 'close') => {
    if (m === 'close') {
      port.close();
      return;
    }
    const encoded = Buffer.from(m.encoded.buffer, m.encoded.byteOffset, m.encoded.byteLength);
    decodeFrame(m.ts, encoded, m.geometry).then(
      (frame) => {
        // Transferred, not copied, when the decoder's buffer owns its memory (transferable).
        const pixels = transferable(frame.pixels);
        const answer: DecodeAnswer = { id: m.id, frame: { ...frame, pixels } };
        port.postMessage(answer, [pixels.buffer]);
      },
      (err: unknown) => {
        const e =
          err instanceof CustosError
            ? err
            : new CustosError({ code: 'render.decode-failed', message: String(err), httpStatus: 422 });
        const answer: DecodeAnswer = {
          id: m.id,
          error: { code: e.code, message: e.message, httpStatus: e.httpStatus },
        };
        port.postMessage(answer);
      },
    );
  });
}
