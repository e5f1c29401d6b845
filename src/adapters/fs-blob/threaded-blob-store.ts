import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { CustosError } from '../../domain/errors.js';
import type { BlobId } from '../../domain/ids.js';
import type { BlobStore, BlobWriter, ExpectedBlob, ListedBlob, StoredBlob } from '../../ports/blob-store.js';
import { workerScript } from '../worker-script.js';
import type { FromWorker, SerializedError, ToWorker } from './blob-writer-worker.js';
import { FsBlobStore, type FsBlobStoreOptions } from './fs-blob-store.js';

/** Plaintext gathered on the event loop before it is handed to the writer thread in one message. */
const STAGING_BYTES = 1024 * 1024;
/** Staging buffers of one writer the thread may hold at once; write() waits beyond that (back-pressure). */
const MAX_IN_FLIGHT = 2;
/** Staging buffers kept for reuse when idle (fresh ones cost page faults on every first touch). */
const MAX_FREE = 8;
/**
 * Bytes of short-lived buffers outside the JS heap on the event loop between two young-generation collections
 * there (garbage()). What arrives from a socket (a STOW-RS or C-STORE body) comes in new buffers, 64 KiB at a
 * time, each dead once copied into a staging buffer; what a read brings from the thread comes in the thread's
 * buffers, each dead once sent on. V8 collects them only when its young generation fills with JS objects or when
 * tens of MiB of them piled up: while a 1 GB object streamed in, ~35 MiB of dead socket buffers stayed resident.
 */
const COLLECT_BYTES = 16 * 1024 * 1024;

type Collect = (options: { type: 'minor' }) => void;

const stopped = (why: string): SerializedError => ({
  code: 'blob.write-failed',
  message: `the blob writer thread stopped (${why}); the object was not stored`,
});

const readStopped = (why: string): SerializedError => ({
  code: 'blob.read-failed',
  message: `the blob thread stopped (${why}); the object could not be read to its end`,
});

const toError = (e: SerializedError) =>
  new CustosError({
    code: e.code,
    message: e.message,
    ...(e.httpStatus !== undefined ? { httpStatus: e.httpStatus } : {}),
    ...(e.dicomStatus !== undefined ? { dicomStatus: e.dicomStatus } : {}),
    ...(e.detail ? { detail: e.detail } : {}),
  });

/**
 * FsBlobStore whose writers run on a thread of their own (blob-writer-worker.ts): the event loop only copies
 * arriving bytes into 1 MiB staging buffers and hands them over; hashing, AES-GCM, the file writes and the
 * fsyncs of commit() happen on the writer thread. Same format, layout and guarantees as FsBlobStore, which
 * still serves reads, `exists` and `delete` here. The thread starts with the first write and does not keep the
 * process alive while no writer is open.
 */
export class ThreadedBlobStore implements BlobStore {
  readonly root: string;
  private readonly local: FsBlobStore;
  private worker: Worker | undefined;
  private starting: Promise<Worker> | undefined;
  private nextId = 1;
  /** Open writers and pending requests, by id: each gets the thread's messages about it. */
  private readonly listeners = new Map<number, (m: FromWorker) => void>();
  private readonly free: ArrayBuffer[] = [];
  private collect: Collect | undefined;
  private sinceCollect = 0;

  constructor(private readonly opts: FsBlobStoreOptions) {
    this.local = new FsBlobStore(opts);
    this.root = this.local.root;
  }

  private async start(): Promise<Worker> {
    // The writer thread collects its dead ciphertext buffers itself (blob-writer-worker.ts), and the event loop its
    // dead socket and read buffers (garbage()): V8 gives `gc` to the contexts created after this flag is set, the thread's
    // and a throw-away one here among them (the server's own context has none).
    setFlagsFromString('--expose-gc');
    this.collect ??= runInNewContext('gc') as Collect;
    const worker = new Worker(await workerScript(import.meta.url, 'blob-writer-worker'), {
      workerData: { root: this.root, chunkSize: this.opts.chunkSize, fsync: this.opts.fsync },
      // Its JS heap holds a few small objects per open writer: a small young generation keeps it (and the
      // resident memory it reserves) small.
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 64 },
    });
    worker.unref();
    worker.on('message', (m: FromWorker) => this.listeners.get(m.w)?.(m));
    const fail = (why: string) => {
      if (this.worker === worker) this.worker = undefined;
      for (const [w, listener] of [...this.listeners])
        listener({ op: 'done', w, error: stopped(why), stopped: why });
    };
    worker.on('error', (err) => fail(err.message));
    worker.on('exit', (code) => fail(`exit code ${code}`));
    this.worker = worker;
    return worker;
  }

  private async thread(): Promise<Worker> {
    if (this.worker) return this.worker;
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  /** Register a listener for id `w`; the thread keeps the process alive while any is registered. */
  listen(w: number, listener: (m: FromWorker) => void): void {
    this.listeners.set(w, listener);
    this.worker?.ref();
  }

  unlisten(w: number): void {
    this.listeners.delete(w);
    if (this.listeners.size === 0) this.worker?.unref();
  }

  post(worker: Worker, m: ToWorker, transfer: ArrayBuffer[] = []): void {
    worker.postMessage(m, transfer);
  }

  /** `n` more bytes of such buffers passed through the event loop: a minor collection every COLLECT_BYTES. */
  garbage(n: number): void {
    this.sinceCollect += n;
    if (this.sinceCollect < COLLECT_BYTES || !this.collect) return;
    this.sinceCollect = 0;
    this.collect({ type: 'minor' });
  }

  takeBuffer(): ArrayBuffer {
    return this.free.pop() ?? new ArrayBuffer(STAGING_BYTES);
  }

  returnBuffer(buf: ArrayBuffer): void {
    if (this.free.length < MAX_FREE && buf.byteLength === STAGING_BYTES) this.free.push(buf);
  }

  async create(dataKey: Buffer): Promise<BlobWriter> {
    if (dataKey.length !== 32)
      throw new CustosError({ code: 'blob.bad-key', message: 'a blob data key must be 32 bytes (AES-256)' });
    const worker = await this.thread();
    const w = this.nextId++;
    const writer = new ThreadBlobWriter(this, worker, w);
    this.listen(w, (m) => writer.receive(m));
    this.post(worker, { op: 'create', w, key: new Uint8Array(dataKey) });
    return writer;
  }

  /**
   * FsBlobStore's read on the thread: it reads, decrypts and checks (chunk tags, the length, the SHA-256 of a whole object,
   * the final piece held back until it matches) and sends the plaintext here about 1 MiB at a time, at most
   * two messages ahead of the consumer. A consumer that stops early cancels the read there.
   */
  async *read(
    blobId: BlobId,
    dataKey: Buffer,
    range?: { start: number; end: number },
    expected?: ExpectedBlob,
  ): AsyncGenerator<Buffer> {
    const worker = await this.thread();
    const w = this.nextId++;
    const inbox: FromWorker[] = [];
    let wake: (() => void) | undefined;
    this.listen(w, (m) => {
      inbox.push(m);
      const wakeUp = wake;
      wake = undefined;
      wakeUp?.();
    });
    let finished = false;
    try {
      this.post(worker, {
        op: 'read',
        w,
        blobId,
        key: new Uint8Array(dataKey),
        ...(range ? { range } : {}),
        ...(expected ? { expected } : {}),
      });
      for (;;) {
        while (inbox.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        const m = inbox.shift()!;
        if (m.op === 'data') {
          this.post(worker, { op: 'more', w });
          let bytes = 0;
          for (const c of m.chunks) {
            bytes += c.byteLength;
            yield Buffer.from(c.buffer, c.byteOffset, c.byteLength);
          }
          this.garbage(bytes);
        } else if (m.op === 'end') {
          finished = true;
          return;
        } else {
          finished = true;
          if (m.op === 'done' && m.error && m.stopped === undefined) throw toError(m.error);
          throw toError(readStopped(m.op === 'done' && m.stopped !== undefined ? m.stopped : 'no answer'));
        }
      }
    } finally {
      this.unlisten(w);
      if (!finished && this.worker === worker) this.post(worker, { op: 'cancel', w });
    }
  }

  exists(blobId: BlobId): Promise<boolean> {
    return this.local.exists(blobId);
  }

  list(prefix: string): AsyncIterable<ListedBlob> {
    return this.local.list(prefix);
  }

  delete(blobId: BlobId): Promise<void> {
    return this.local.delete(blobId);
  }

  /** Removes what a crash left in tmp/; once the thread runs, it sweeps itself (it knows its open writers). */
  async sweepTemp(): Promise<number> {
    const worker = this.worker;
    if (!worker) return this.local.sweepTemp();
    const w = this.nextId++;
    return new Promise<number>((resolve, reject) => {
      this.listen(w, (m) => {
        this.unlisten(w);
        if (m.op === 'swept') resolve(m.removed);
        else reject(toError(m.op === 'done' && m.error ? m.error : stopped('no answer')));
      });
      this.post(worker, { op: 'sweep', w });
    });
  }

  /** Stops the writer thread (open writers fail). */
  async close(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.ref();
    this.post(worker, { op: 'close' });
    await exited;
  }
}

/** The event loop's half of a writer: copies into staging buffers, sends them, waits for the thread's answer. */
class ThreadBlobWriter implements BlobWriter {
  private staging: ArrayBuffer | undefined;
  private staged = 0;
  private inFlight = 0;
  private failure: CustosError | undefined;
  private state: 'open' | 'committing' | 'done' = 'open';
  private writing = false;
  /** Woken by every ack and by the final answer. */
  private wake: (() => void) | undefined;
  private final: FromWorker | undefined;
  private sealed: ((blob: StoredBlob) => void) | undefined;

  constructor(
    private readonly store: ThreadedBlobStore,
    private readonly worker: Worker,
    private readonly w: number,
  ) {}

  receive(m: FromWorker): void {
    if ((m.op === 'sealed' || m.op === 'committed' || m.op === 'done') && m.buf)
      this.store.returnBuffer(m.buf);
    if (m.op === 'sealed') {
      this.sealed?.(m.stored);
      return;
    }
    if (m.op === 'ack') {
      this.inFlight--;
      this.store.returnBuffer(m.buf);
      if (m.error) this.failure ??= toError(m.error);
    } else {
      this.final = m;
      if (m.op === 'done' && m.error) this.failure ??= toError(m.error);
      this.store.unlisten(this.w);
    }
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private waitForMessage(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  private closedError(what: string) {
    return new CustosError({
      code: 'blob.closed',
      message: `${what} on a blob writer that was committed or aborted`,
    });
  }

  private send(): void {
    const buf = this.staging!;
    this.staging = undefined;
    this.inFlight++;
    this.store.post(this.worker, { op: 'write', w: this.w, buf, len: this.staged }, [buf]);
    this.staged = 0;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.state !== 'open') throw this.closedError('write');
    if (this.writing)
      throw new CustosError({
        code: 'blob.concurrent-write',
        message: 'write() was called before the previous write() resolved',
      });
    if (this.failure) throw this.failure;
    this.writing = true;
    try {
      let off = 0;
      while (off < chunk.length) {
        this.staging ??= this.store.takeBuffer();
        const n = Math.min(STAGING_BYTES - this.staged, chunk.length - off);
        chunk.copy(new Uint8Array(this.staging, this.staged, n), 0, off, off + n);
        this.staged += n;
        off += n;
        if (this.staged === STAGING_BYTES) {
          this.send();
          while (this.inFlight >= MAX_IN_FLIGHT && !this.final) await this.waitForMessage();
          if (this.failure) throw this.failure;
        }
      }
      this.store.garbage(chunk.length);
    } finally {
      this.writing = false;
    }
  }

  async commit(sealed?: (blob: StoredBlob) => void): Promise<StoredBlob> {
    if (this.state !== 'open') throw this.closedError('commit');
    if (this.writing)
      throw new CustosError({
        code: 'blob.concurrent-write',
        message: 'commit() was called before the previous write() resolved',
      });
    this.state = 'committing';
    try {
      // The last staged bytes go with the commit (one message, no ack); the thread gives the buffer back.
      const buf = this.staged > 0 ? this.staging : undefined;
      if (!buf && this.staging) this.store.returnBuffer(this.staging);
      this.staging = undefined;
      this.sealed = sealed;
      this.store.post(
        this.worker,
        {
          op: 'commit',
          w: this.w,
          ...(sealed ? { sealed: true } : {}),
          ...(buf ? { buf, len: this.staged } : {}),
        },
        buf ? [buf] : [],
      );
      this.staged = 0;
      while (!this.final) await this.waitForMessage();
      if (this.final.op === 'committed') return this.final.stored;
      throw this.failure ?? toError(stopped('no answer'));
    } finally {
      this.state = 'done';
    }
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'done';
    if (this.staging) this.store.returnBuffer(this.staging);
    this.staging = undefined;
    if (this.final) return;
    this.store.post(this.worker, { op: 'abort', w: this.w });
    while (!this.final) await this.waitForMessage();
  }
}
