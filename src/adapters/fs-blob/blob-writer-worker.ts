// The blob thread (threaded-blob-store.ts): hashes, encrypts and writes objects with FsBlobStore's own writer,
// and reads, decrypts and checks them with its reader, so that neither the cipher and hash work nor the file
// system calls (open, read, write, fdatasync, rename, directory fsync, each a hop to the libuv pool) run on the
// server's event loop. Messages are `ToWorker` / `FromWorker`.
import { parentPort, workerData } from 'node:worker_threads';
import { CustosError } from '../../domain/errors.js';
import type { BlobId } from '../../domain/ids.js';
import { storageWriteError } from '../../domain/storage-full.js';
import type { BlobWriter, ExpectedBlob, StoredBlob } from '../../ports/blob-store.js';
import { FsBlobStore, type FsBlobStoreOptions } from './fs-blob-store.js';

export type ToWorker =
  | { op: 'create'; w: number; key: Uint8Array }
  /** `buf` holds `len` plaintext bytes; it is transferred here and back again with the ack. */
  | { op: 'write'; w: number; buf: ArrayBuffer; len: number }
  /**
   * With `sealed`, a `sealed` message goes out once the blob's digest is known, before it is made durable. `buf`
   * holds the last `len` plaintext bytes (a final write in the same message); it comes back with the first answer.
   */
  | { op: 'commit'; w: number; sealed?: boolean; buf?: ArrayBuffer; len?: number }
  | { op: 'abort'; w: number }
  | { op: 'sweep'; w: number }
  /** Stream the plaintext of a blob (FsBlobStore.read) as `data` messages, then `end` or a failed `done`. */
  | {
      op: 'read';
      w: number;
      blobId: string;
      key: Uint8Array;
      range?: { start: number; end: number };
      expected?: ExpectedBlob;
    }
  /** The reader took one `data` message: one more may be sent. */
  | { op: 'more'; w: number }
  /** The reader stopped early: the read ends without a further message. */
  | { op: 'cancel'; w: number }
  | { op: 'close' };

export interface SerializedError {
  code: string;
  message: string;
  httpStatus?: number;
  dicomStatus?: number;
  detail?: Record<string, unknown>;
}

export type FromWorker =
  | { op: 'ack'; w: number; buf: ArrayBuffer; error?: SerializedError }
  /** `buf`: a commit's final staging buffer, given back (on the first of `sealed`, `committed`, `done`). */
  | { op: 'sealed'; w: number; stored: StoredBlob; buf?: ArrayBuffer }
  | { op: 'committed'; w: number; stored: StoredBlob; buf?: ArrayBuffer }
  | { op: 'swept'; w: number; removed: number }
  /** Plaintext pieces in order; their buffers are transferred. */
  | { op: 'data'; w: number; chunks: Uint8Array[] }
  | { op: 'end'; w: number }
  /** `stopped`: not from the thread, which stopped (threaded-blob-store.ts), for the reason given. */
  | { op: 'done'; w: number; error?: SerializedError; stopped?: string; buf?: ArrayBuffer };

export function serializeError(err: unknown, doing: 'writing' | 'reading' = 'writing'): SerializedError {
  if (err instanceof CustosError) {
    return {
      code: err.code,
      message: err.message,
      httpStatus: err.httpStatus,
      ...(err.dicomStatus !== undefined ? { dicomStatus: err.dicomStatus } : {}),
      ...(err.detail ? { detail: err.detail } : {}),
    };
  }
  const e = err as NodeJS.ErrnoException | undefined;
  if (doing === 'writing') {
    const reported = storageWriteError('the blob volume', err);
    if (reported instanceof CustosError) return serializeError(reported);
  }
  return {
    code: doing === 'writing' ? 'blob.write-failed' : 'blob.read-failed',
    message: `${doing} ${doing === 'writing' ? 'to' : 'from'} the blob store failed: ${e?.message ?? String(err)}`,
    ...(e?.code ? { detail: { errno: e.code } } : {}),
  };
}

interface Open {
  writer: Promise<BlobWriter>;
  /** This writer's operations, one after the other (a BlobWriter takes one call at a time). */
  chain: Promise<void>;
  failure?: unknown;
}

/**
 * Every write turns plaintext into new ciphertext buffers (Node's cipher has no output-buffer form). They die at
 * once, but they live outside the JS heap, and this thread allocates almost nothing else on it: left alone, V8
 * would let tens of MiB of them pile up before its external-memory heuristic collects. A young-generation
 * collection every RECLAIM_BYTES frees them. Each costs ~0.9 ms whatever it frees on a busy 2-core machine (V8
 * hands the work to helper threads and waits for them), so not too often: every 4 MiB, 141 collections took
 * 109–160 ms of the thread's time during a 606 MB STOW-RS; every 16 MiB, 41–43 took 58–75 ms, and the 1 GB
 * upload peaked at 245 MB (bench/README.md, 4 Dec 2026 midday). `gc` exists when the server started this thread
 * with --expose-gc (threaded-blob-store.ts).
 */
const RECLAIM_BYTES = 16 * 1024 * 1024;
const collect = (globalThis as { gc?: (options: { type: 'minor' }) => void }).gc;
let sinceCollect = 0;
const written = (n: number) => {
  sinceCollect += n;
  if (sinceCollect < RECLAIM_BYTES || !collect) return;
  sinceCollect = 0;
  collect({ type: 'minor' });
};

/** Plaintext gathered into one `data` message. */
const READ_MESSAGE_BYTES = 1024 * 1024;
/** `data` messages of one read the event loop has not taken yet; the read waits beyond that. */
const READ_AHEAD = 2;

interface Reading {
  credit: number;
  cancelled: boolean;
  wake?: () => void;
}

if (parentPort) {
  const port = parentPort;
  // This thread does nothing else: the page-cache calls are made inline, only the fsyncs go to the pool.
  const store = new FsBlobStore({ ...(workerData as FsBlobStoreOptions), inlineIo: true });
  const open = new Map<number, Open>();
  const reads = new Map<number, Reading>();

  /** One read: FsBlobStore's reader (tags, SHA-256, the final piece held back) with flow control and cancel. */
  const read = async (m: Extract<ToWorker, { op: 'read' }>) => {
    const rd: Reading = { credit: READ_AHEAD, cancelled: false };
    reads.set(m.w, rd);
    const key = Buffer.from(m.key.buffer, m.key.byteOffset, m.key.byteLength);
    const pieces = store.read(m.blobId as BlobId, key, m.range, m.expected)[Symbol.asyncIterator]();
    let chunks: Uint8Array[] = [];
    let transfer: ArrayBuffer[] = [];
    let bytes = 0;
    const send = async () => {
      while (rd.credit === 0 && !rd.cancelled) await new Promise<void>((r) => (rd.wake = r));
      if (rd.cancelled) return;
      rd.credit--;
      post({ op: 'data', w: m.w, chunks }, transfer);
      written(bytes);
      chunks = [];
      transfer = [];
      bytes = 0;
    };
    try {
      for (;;) {
        const { value, done } = await pieces.next();
        if (done || rd.cancelled) break;
        // A decrypted chunk is a buffer of its own and goes as it is; a part of one (a range's ends) is copied
        // into one (never a slice of Buffer's shared pool, which must not leave this thread).
        const own =
          value.byteOffset === 0 &&
          value.buffer.byteLength === value.length &&
          value.buffer instanceof ArrayBuffer
            ? new Uint8Array(value.buffer, 0, value.length)
            : new Uint8Array(value);
        chunks.push(own);
        transfer.push(own.buffer as ArrayBuffer);
        bytes += own.length;
        if (bytes >= READ_MESSAGE_BYTES) await send();
        if (rd.cancelled) break;
      }
      if (!rd.cancelled && chunks.length) await send();
      if (!rd.cancelled) post({ op: 'end', w: m.w });
    } catch (err) {
      // What came before the failure was authenticated: it goes first, as FsBlobStore's reader yields it.
      if (!rd.cancelled && chunks.length) await send();
      if (!rd.cancelled) post({ op: 'done', w: m.w, error: serializeError(err, 'reading') });
    } finally {
      reads.delete(m.w);
      await pieces.return?.(undefined);
    }
  };
  const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

  const step = (o: Open, fn: (writer: BlobWriter) => Promise<void>) => {
    o.chain = o.chain.then(async () => {
      try {
        await fn(await o.writer);
      } catch (err) {
        o.failure ??= err;
      }
    });
  };

  /** Queue `len` bytes of `buf` for the writer (nothing once it failed); FsBlobWriter keeps no reference after. */
  const write = (o: Open, buf: ArrayBuffer, len: number) =>
    step(o, async (writer) => {
      if (o.failure === undefined) await writer.write(Buffer.from(buf, 0, len));
      written(len);
    });

  port.on('message', (m: ToWorker) => {
    switch (m.op) {
      case 'create': {
        const writer = store.create(Buffer.from(m.key.buffer, m.key.byteOffset, m.key.byteLength));
        const o: Open = { writer, chain: Promise.resolve() };
        writer.catch((err: unknown) => (o.failure ??= err));
        open.set(m.w, o);
        return;
      }
      case 'write': {
        const o = open.get(m.w)!;
        write(o, m.buf, m.len);
        // FsBlobWriter keeps no reference to what it was given once write() resolved: the buffer goes back.
        void o.chain.then(() =>
          post(
            { op: 'ack', w: m.w, buf: m.buf, ...(o.failure ? { error: serializeError(o.failure) } : {}) },
            [m.buf],
          ),
        );
        return;
      }
      case 'commit': {
        const o = open.get(m.w)!;
        open.delete(m.w);
        if (m.buf) write(o, m.buf, m.len ?? 0);
        // The final staging buffer rides back on the first answer, so a small object costs one message each way
        // fewer than a separate write and its ack.
        let giveBack = m.buf;
        const answer = (a: Extract<FromWorker, { op: 'sealed' | 'committed' | 'done' }>) => {
          const buf = giveBack;
          giveBack = undefined;
          post(buf ? { ...a, buf } : a, buf ? [buf] : []);
        };
        void o.chain.then(async () => {
          try {
            const writer = await o.writer;
            if (o.failure !== undefined) {
              await writer.abort();
              throw o.failure;
            }
            const sealed = m.sealed
              ? (stored: StoredBlob) => answer({ op: 'sealed', w: m.w, stored })
              : undefined;
            answer({ op: 'committed', w: m.w, stored: await writer.commit(sealed) });
          } catch (err) {
            answer({ op: 'done', w: m.w, error: serializeError(err) });
          }
        });
        return;
      }
      case 'abort': {
        const o = open.get(m.w);
        open.delete(m.w);
        // A writer whose file could not even be created has nothing to abort.
        const finished = o
          ? o.chain.then(() =>
              o.writer.then(
                (writer) => writer.abort(),
                () => undefined,
              ),
            )
          : Promise.resolve();
        void finished.then(
          () => post({ op: 'done', w: m.w }),
          (err: unknown) => post({ op: 'done', w: m.w, error: serializeError(err) }),
        );
        return;
      }
      case 'read':
        void read(m);
        return;
      case 'more':
      case 'cancel': {
        const rd = reads.get(m.w);
        if (!rd) return;
        if (m.op === 'more') rd.credit++;
        else rd.cancelled = true;
        const wake = rd.wake;
        rd.wake = undefined;
        wake?.();
        return;
      }
      case 'sweep': {
        void store.sweepTemp().then(
          (removed) => post({ op: 'swept', w: m.w, removed }),
          (err: unknown) => post({ op: 'done', w: m.w, error: serializeError(err) }),
        );
        return;
      }
      case 'close':
        port.close();
        return;
    }
  });
}
