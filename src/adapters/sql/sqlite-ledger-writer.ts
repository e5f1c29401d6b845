import { Worker } from 'node:worker_threads';
import { CustosError } from '../../domain/errors.js';
import { workerScript } from '../worker-script.js';
import type { AuditEventFields } from '../../domain/audit-record.js';
import type { LedgerBatch, LedgerBatchResult, LedgerWorkerData } from './sqlite-ledger-worker.js';

/**
 * Main-thread side of the ledger's SQLite writer thread. One batch is in flight at a time (the ledger queues
 * what arrives meanwhile into the next), so the thread never competes with itself for the write lock.
 */
export class SqliteLedgerWriter {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: unknown) => void }>();

  constructor(private readonly data: LedgerWorkerData) {}

  private starting: Promise<Worker> | undefined;

  private async start(): Promise<Worker> {
    const worker = new Worker(
      await workerScript(import.meta.url, 'sqlite-ledger-worker', ['better-sqlite3-multiple-ciphers']),
      { workerData: this.data },
    );
    worker.unref();
    worker.on('message', (m: LedgerBatchResult) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      // Idle, the thread must not keep the process alive; with a batch in flight, it must.
      if (this.pending.size === 0) worker.unref();
      if (m.error === undefined) p.resolve();
      else
        p.reject(
          new CustosError({
            code: 'audit.append-failed',
            message: `the audit ledger refused a batch: ${m.error}`,
          }),
        );
    });
    const fail = (err: unknown) => {
      this.worker = undefined;
      for (const p of this.pending.values())
        p.reject(
          new CustosError({
            code: 'audit.append-failed',
            message: `the audit ledger writer stopped: ${(err as Error)?.message ?? String(err)}`,
            cause: err,
          }),
        );
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (this.pending.size) fail(new Error(`exited with code ${code}`));
      this.worker = undefined;
    });
    this.worker = worker;
    return worker;
  }

  private async current(): Promise<Worker> {
    if (this.worker) return this.worker;
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  async write(items: { event: AuditEventFields; at: Date }[]): Promise<void> {
    const worker = await this.current();
    const id = this.nextId++;
    const msg: LedgerBatch = { id, items: items.map((i) => ({ event: i.event, at: i.at.getTime() })) };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage(msg);
    });
  }

  async close(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    await new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      worker.ref();
      worker.postMessage('close');
    });
  }
}
