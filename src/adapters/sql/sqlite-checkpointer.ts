import { Worker } from 'node:worker_threads';
import { workerScript } from '../worker-script.js';
import type { CheckpointWorkerData } from './sqlite-checkpoint-worker.js';

/**
 * How long after the index opens its checkpoint thread starts. A short-lived process (a `custos token create`, an
 * `ae add`) writes far less than the write-ahead log the thread waits for (CHECKPOINT_BYTES) and closes before
 * then, so it starts no thread. Until 8 Dec 2026 the thread started at once, and closing waited for it to have
 * loaded SQLite and opened the index before it could stop: about 0.8 s after each command's work was done (1.6 s on
 * a loaded machine). Until the thread runs, the server's connection checkpoints past its safety-net size
 * (sqlite-group-commit.ts), as when the thread fails.
 */
export const CHECKPOINTER_DELAY_MS = 2_000;

/**
 * Main-thread side of the SQLite index's checkpoint thread (sqlite-checkpoint-worker.ts), started
 * CHECKPOINTER_DELAY_MS after start(). The thread never keeps the process alive; close() stops it, or keeps it
 * from starting.
 */
export class SqliteCheckpointer {
  private timer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private worker: Worker | undefined;
  private exited: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly data: CheckpointWorkerData,
    delayMs: number,
  ) {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.starting = this.spawn();
    }, delayMs).unref();
  }

  static start(data: CheckpointWorkerData, delayMs = CHECKPOINTER_DELAY_MS): SqliteCheckpointer {
    return new SqliteCheckpointer(data, delayMs);
  }

  /** Whether the thread has been started (and not yet stopped by close()). */
  get running(): boolean {
    return this.worker !== undefined && !this.closed;
  }

  private async spawn(): Promise<void> {
    const script = await workerScript(import.meta.url, 'sqlite-checkpoint-worker', [
      'better-sqlite3-multiple-ciphers',
    ]);
    if (this.closed) return;
    const worker = new Worker(script, { workerData: this.data });
    worker.unref();
    // A thread that fails (the index cannot be opened a second time) only costs the server's connection its
    // checkpoints off the event loop: it checkpoints itself past its safety-net size (sqlite-group-commit.ts).
    worker.on('error', () => undefined);
    this.exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    this.worker = worker;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.starting?.catch(() => undefined);
    if (!this.worker) return;
    // Waiting for the thread to end must keep the process alive until it has.
    this.worker.ref();
    this.worker.postMessage('close');
    await this.exited;
  }
}
