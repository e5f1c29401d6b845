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
 * How long the decode thread stays without work before it is stopped. The codecs' WebAssembly memory only grows:
 * decoding one 3328 × 4084 JPEG 2000 mammogram (2.3 s) left the process 170 MB larger, which an idle thread would
 * hold for good. Starting the thread and its codecs again costs tens of milliseconds.
 */
const IDLE_MS = 10_000;

/**
 * Decodes frames on a thread of its own (codec-worker.ts), started when the first compressed frame is rendered
 * and stopped again after `idleMs` without work. Frames are decoded one after the other in the order asked. The
 * thread never keeps the process alive; if it dies, what it was decoding fails and the next frame starts a new one.
 */
export class ThreadedFrameDecoder implements FrameDecoder {
  private worker?: Promise<Worker>;
  private readonly waiting = new Map<number, Waiting>();
  private next = 0;
  private closed = false;
  private idle?: NodeJS.Timeout;
  /** The thread once started (the promise in `worker` resolved to it). */
  private current?: Worker;

  constructor(private readonly idleMs = IDLE_MS) {}

  /** Whether the decode thread is running (started and not stopped for idleness). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  decodes(transferSyntaxUid: string): boolean {
    return DECODED_SYNTAXES.has(transferSyntaxUid);
  }

  async decode(ts: string, encoded: Buffer, geometry: FrameGeometry): Promise<DecodedFrame> {
    if (this.closed)
      throw new CustosError({ code: 'render.closed', message: 'the server is stopping', httpStatus: 503 });
    clearTimeout(this.idle);
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
        if (this.waiting.size === 0) {
          worker.unref();
          this.idle = setTimeout(() => this.stopIdle(worker), this.idleMs).unref();
        }
        if ('error' in a) w.reject(new CustosError(a.error));
        else
          w.resolve({
            ...a.frame,
            pixels: Buffer.from(a.frame.pixels.buffer, a.frame.pixels.byteOffset, a.frame.pixels.byteLength),
          });
      });
      const died = (why: string) => {
        if (this.current !== worker) return;
        this.worker = undefined;
        this.current = undefined;
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
      this.current = worker;
      return worker;
    });
    return this.worker;
  }

  /** Stop a thread that has had nothing to do for idleMs; the next frame starts another. */
  private stopIdle(worker: Worker): void {
    if (this.current !== worker || this.waiting.size > 0) return;
    this.worker = undefined;
    this.current = undefined;
    void worker.terminate();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idle);
    const worker = await this.worker?.catch(() => undefined);
    if (worker) await worker.terminate();
  }
}
