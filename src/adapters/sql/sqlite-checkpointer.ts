import { Worker } from 'node:worker_threads';
import { workerScript } from '../worker-script.js';
import type { CheckpointWorkerData } from './sqlite-checkpoint-worker.js';

/**
 * Main-thread side of the SQLite index's checkpoint thread (sqlite-checkpoint-worker.ts). The thread never keeps
 * the process alive; close() stops it.
 */
export class SqliteCheckpointer {
  private readonly exited: Promise<void>;

  private constructor(private readonly worker: Worker) {
    this.exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  }

  static async start(data: CheckpointWorkerData): Promise<SqliteCheckpointer> {
    const worker = new Worker(
      await workerScript(import.meta.url, 'sqlite-checkpoint-worker', ['better-sqlite3-multiple-ciphers']),
      { workerData: data },
    );
    worker.unref();
    // A thread that fails (the index cannot be opened a second time) only costs the server's connection its
    // checkpoints off the event loop: it checkpoints itself past its safety-net size (sqlite-group-commit.ts).
    worker.on('error', () => undefined);
    return new SqliteCheckpointer(worker);
  }

  async close(): Promise<void> {
    // Waiting for the thread to end must keep the process alive until it has.
    this.worker.ref();
    this.worker.postMessage('close');
    await this.exited;
  }
}
