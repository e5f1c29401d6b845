import { Worker } from 'node:worker_threads';
import { CustosError } from '../../domain/errors.js';
import type { DecodedFrame, FrameDecoder, FrameGeometry } from '../../ports/frame-decoder.js';
import { workerScript } from '../worker-script.js';
import type { DecodeAnswer, DecodeRequest } from './codec-worker.js';
import { DECODED_SYNTAXES } from './syntaxes.js';

interface Waiting {
  resolve: (frame: DecodedFrame) => void;
  reject: (err: unknown) => void;
}

/**
 * Decodes frames on a thread of its own (codec-worker.ts), started when the first compressed frame is rendered.
 * Frames are decoded one after the other in the order asked. The thread never keeps the process alive; if it
 * dies, what it was decoding fails and the next frame starts a new one.
 */
export class ThreadedFrameDecoder implements FrameDecoder {
  private worker?: Promise<Worker>;
  private readonly waiting = new Map<number, Waiting>();
  private next = 0;
  private closed = false;

  decodes(transferSyntaxUid: string): boolean {
    return DECODED_SYNTAXES.has(transferSyntaxUid);
  }

  async decode(ts: string, encoded: Buffer, geometry: FrameGeometry): Promise<DecodedFrame> {
    if (this.closed)
      throw new CustosError({ code: 'render.closed', message: 'the server is stopping', httpStatus: 503 });
    const worker = await this.start();
    const id = ++this.next;
    // A copy of its own to transfer: the caller's buffer may be a slice of a larger one.
    const bytes = new Uint8Array(encoded);
    return new Promise<DecodedFrame>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (this.waiting.size === 1) worker.ref();
      const request: DecodeRequest = { id, ts, encoded: bytes, geometry };
      worker.postMessage(request, [bytes.buffer]);
    });
  }

  private start(): Promise<Worker> {
    this.worker ??= workerScript(import.meta.url, 'codec-worker', [
      '@cornerstonejs/codec-charls',
      '@cornerstonejs/codec-openjpeg',
    ]).then((script) => {
      const worker = new Worker(script);
      worker.unref();
      worker.on('message', (a: DecodeAnswer) => {
        const w = this.waiting.get(a.id);
        if (!w) return;
        this.waiting.delete(a.id);
        if (this.waiting.size === 0) worker.unref();
        if ('error' in a) w.reject(new CustosError(a.error));
        else
          w.resolve({
            ...a.frame,
            pixels: Buffer.from(a.frame.pixels.buffer, a.frame.pixels.byteOffset, a.frame.pixels.byteLength),
          });
      });
      const died = (why: string) => {
        this.worker = undefined;
        const err = new CustosError({
          code: 'render.decode-failed',
          message: `the decode thread stopped (${why})`,
          httpStatus: 500,
        });
        for (const w of this.waiting.values()) w.reject(err);
        this.waiting.clear();
      };
      worker.on('error', (err) => died(err.message));
      worker.on('exit', (code) => died(`exit code ${code}`));
      return worker;
    });
    return this.worker;
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = await this.worker?.catch(() => undefined);
    if (worker) await worker.terminate();
  }
}
