import { Worker } from 'node:worker_threads';
import { workerScript, workerSource } from '../workers/worker-script.js';
import type { OpenedObject } from './chunked-aead.js';
import type { OpenRequest, OpenResponse } from './open-object-worker.js';

interface Slot {
  worker: Promise<Worker>;
  pending: Map<number, { resolve: (r: OpenedObject) => void; reject: (e: unknown) => void }>;
}

/**
 * Worker threads that open whole objects (decrypt every chunk, check every tag and the SHA-256): for a
 * whole-object read the cryptography is most of the CPU, and on the event loop it would leave every other core
 * idle while one request is served. The read of the file and the writes to the client stay on the event loop;
 * the next object is decrypted on another core meanwhile. Idle workers do not keep the process alive.
 */
export class DecryptPool {
  private readonly slots: (Slot | undefined)[];
  private nextId = 1;

  constructor(readonly size: number) {
    this.slots = Array.from({ length: size }, () => undefined);
  }

  /** Open `file` (the whole object file, its ArrayBuffer handed over to the worker) under `key`. */
  async open(key: Buffer, file: Buffer, sha256: string): Promise<OpenedObject> {
    const slot = this.pick();
    const worker = await slot.worker;
    const id = this.nextId++;
    const ab = file.buffer as ArrayBuffer;
    const transferable = file.byteOffset === 0 && file.byteLength === ab.byteLength;
    return new Promise<OpenedObject>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      worker.ref();
      const message: OpenRequest = {
        id,
        key: new Uint8Array(key),
        file: transferable ? ab : ab.slice(file.byteOffset, file.byteOffset + file.byteLength),
        sha256,
      };
      worker.postMessage(message, [message.file]);
    });
  }

  /** The least busy worker, started on first use (and again after it died). */
  private pick(): Slot {
    let best = 0;
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i];
      if (!s) {
        best = i;
        break;
      }
      if (s.pending.size < this.slots[best]!.pending.size) best = i;
    }
    return (this.slots[best] ??= this.start(best));
  }

  private start(index: number): Slot {
    const pending: Slot['pending'] = new Map();
    const slot: Slot = {
      pending,
      worker: workerScript(workerSource('open-object-worker', import.meta.url)).then((url) => {
        const worker = new Worker(url);
        worker.unref();
        worker.on('message', (m: OpenResponse) => {
          const p = pending.get(m.id);
          if (!p) return;
          pending.delete(m.id);
          if (pending.size === 0) worker.unref();
          p.resolve('plaintext' in m ? { plaintext: Buffer.from(m.plaintext) } : { failed: m.failed });
        });
        const fail = (err: unknown) => {
          if (this.slots[index] === slot) this.slots[index] = undefined;
          for (const p of pending.values()) p.reject(err);
          pending.clear();
        };
        worker.on('error', fail);
        worker.on('exit', (code) => fail(new Error(`the decryption worker exited with code ${code}`)));
        return worker;
      }),
    };
    slot.worker.catch(() => {
      if (this.slots[index] === slot) this.slots[index] = undefined;
    });
    return slot;
  }

  /** Stop the workers (tests; a server just exits). */
  async close(): Promise<void> {
    const slots = this.slots.splice(0, this.slots.length, ...this.slots.map(() => undefined));
    await Promise.all(slots.map(async (s) => s && (await (await s.worker).terminate())));
  }
}
