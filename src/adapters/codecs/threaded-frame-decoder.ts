import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CustosError } from '../../domain/errors.js';
import type {
  DecodedFrame,
  FrameDecoder,
  FrameGeometry,
  RenderedFrame,
  RenderJob,
} from '../../ports/frame-decoder.js';
import { workerScript } from '../worker-script.js';
import type { CodecAnswer, CodecRequest } from './codec-worker.js';
import { DECODED_SYNTAXES } from './syntaxes.js';
import { transferable } from './transferable.js';

interface Waiting {
  resolve: (answer: DecodedFrame | RenderedFrame) => void;
  reject: (err: unknown) => void;
}

/** A request without its id (the thread numbers it), as `run` takes it. */
type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never;

const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/**
 * How long the decode thread stays without work before it is stopped. The codecs' WebAssembly memory only grows:
 * decoding one 3328 × 4084 JPEG 2000 mammogram (2.3 s) left the process 170 MB larger, which an idle thread would
 * hold for good. Starting the thread and its codecs again costs tens of milliseconds.
 */
const IDLE_MS = 10_000;

/**
 * One decode thread (codec-worker.ts), started when it is first given a frame and stopped again after `idleMs`
 * without work. Its frames are decoded one after the other in the order given. The thread never keeps the process
 * alive; if it dies, what it was decoding fails and the next frame starts a new one.
 */
class DecodeThread {
  private worker?: Promise<Worker>;
  private readonly waiting = new Map<number, Waiting>();
  private next = 0;
  private idle?: NodeJS.Timeout;
  /** The thread once started (the promise in `worker` resolved to it). */
  private current?: Worker;

  constructor(private readonly idleMs: number) {}

  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Frames given and not yet answered. */
  get load(): number {
    return this.waiting.size;
  }

  decode(ts: string, encoded: Buffer, geometry: FrameGeometry): Promise<DecodedFrame> {
    const bytes = transferable(encoded);
    return this.run({ kind: 'decode', ts, encoded: bytes, geometry }, bytes) as Promise<DecodedFrame>;
  }

  render(job: RenderJob): Promise<RenderedFrame> {
    const stored = transferable(job.stored);
    return this.run({ kind: 'render', job: { ...job, stored } }, stored) as Promise<RenderedFrame>;
  }

  private async run(
    request: Unnumbered<CodecRequest>,
    bytes: Uint8Array<ArrayBuffer>,
  ): Promise<DecodedFrame | RenderedFrame> {
    clearTimeout(this.idle);
    const id = ++this.next;
    // Counted as waiting at once, before the thread has started, so that the pool sees this thread busy.
    const answer = new Promise<DecodedFrame | RenderedFrame>((resolve, reject) =>
      this.waiting.set(id, { resolve, reject }),
    );
    try {
      const worker = await this.start();
      // Held by the process while it has work (idempotent; unref once the last answer is in).
      worker.ref();
      worker.postMessage({ ...request, id } as CodecRequest, [bytes.buffer]);
    } catch (err) {
      this.waiting.delete(id);
      throw err;
    }
    return answer;
  }

  private start(): Promise<Worker> {
    this.worker ??= workerScript(import.meta.url, 'codec-worker', [
      '@cornerstonejs/codec-charls',
      '@cornerstonejs/codec-openjpeg',
      '@cornerstonejs/codec-openjph',
    ]).then((script) => {
      const worker = new Worker(script);
      worker.unref();
      worker.on('message', (a: CodecAnswer) => {
        const w = this.waiting.get(a.id);
        if (!w) return;
        this.waiting.delete(a.id);
        if (this.waiting.size === 0) {
          worker.unref();
          this.idle = setTimeout(() => this.stopIdle(worker), this.idleMs).unref();
        }
        if ('error' in a) w.reject(new CustosError(a.error));
        else if ('rendered' in a) w.resolve({ ...a.rendered, bytes: asBuffer(a.rendered.bytes) });
        else w.resolve({ ...a.frame, pixels: asBuffer(a.frame.pixels) });
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
    clearTimeout(this.idle);
    const worker = await this.worker?.catch(() => undefined);
    if (worker) await worker.terminate();
  }
}

/**
 * Decodes frames on threads of their own (`threads` of them, by default two where the machine has two cores or
 * more), each started when needed and stopped after `idleMs` without work. A frame goes to the thread with the
 * fewest frames waiting, so a second request's frames, or the next frames of the same object asked for ahead,
 * are decoded beside the first's: decoding, not reading or sending, is what a decompressed retrieve waits for
 * (a 512 × 512 JPEG-LS frame takes ~10 ms in CharLS's WebAssembly build).
 */
export class ThreadedFrameDecoder implements FrameDecoder {
  private readonly lanes: DecodeThread[];
  private closed = false;

  constructor(idleMs = IDLE_MS, threads = Math.min(2, availableParallelism())) {
    this.lanes = Array.from({ length: Math.max(1, threads) }, () => new DecodeThread(idleMs));
  }

  /** How many decode threads are running (started and not stopped for idleness). */
  get running(): number {
    return this.lanes.filter((l) => l.running).length;
  }

  /** How many frames may usefully be decoded at once: one a thread. */
  get parallelism(): number {
    return this.lanes.length;
  }

  decodes(transferSyntaxUid: string): boolean {
    return DECODED_SYNTAXES.has(transferSyntaxUid);
  }

  async decode(ts: string, encoded: Buffer, geometry: FrameGeometry): Promise<DecodedFrame> {
    return this.lane().decode(ts, encoded, geometry);
  }

  /**
   * Rendering, encoding included, runs on the decode threads too: the event loop only reads the frame and sends
   * the bytes (render-frame.ts).
   */
  async render(job: RenderJob): Promise<RenderedFrame> {
    return this.lane().render(job);
  }

  /**
   * The least loaded thread; among equals a running one, so that an idle pool does not start a second thread for
   * one frame at a time.
   */
  private lane(): DecodeThread {
    if (this.closed)
      throw new CustosError({ code: 'render.closed', message: 'the server is stopping', httpStatus: 503 });
    return this.lanes.reduce((best, l) =>
      l.load < best.load || (l.load === best.load && l.running && !best.running) ? l : best,
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.lanes.map((l) => l.close()));
  }
}
