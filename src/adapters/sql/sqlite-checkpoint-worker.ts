// The SQLite index's checkpoint thread (sqlite-checkpointer.ts): copies the write-ahead log into the database file
// on a connection of its own, so that neither the copy nor its two syncs run on the server's event loop. Message:
// 'close'.
import { statSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteHandle, WAL_TRUNCATE_BYTES } from './sqlite-handle.js';

export interface CheckpointWorkerData {
  path: string;
  key: Uint8Array;
}

/**
 * A restarted WAL is cut back to WAL_TRUNCATE_BYTES (sqlite-handle.ts), so the file's size says how much awaits
 * copying: a PASSIVE checkpoint, which blocks no reader or writer of other connections, runs once it passes
 * CHECKPOINT_BYTES. A checkpoint leaves the WAL's header alone, so it does not make the server's connection drop
 * its page cache (a commit by another connection would).
 */
const CHECKPOINT_BYTES = 2 * WAL_TRUNCATE_BYTES;
const CHECKPOINT_EVERY_MS = 500;

if (parentPort) {
  const port = parentPort;
  const data = workerData as CheckpointWorkerData;
  const db = openSqliteHandle(data.path, Buffer.from(data.key));
  const walPath = `${data.path}-wal`;
  const checkpoint = () => {
    let size = 0;
    try {
      size = statSync(walPath).size;
    } catch {
      return;
    }
    if (size < CHECKPOINT_BYTES) return;
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // Busy or failing now: the next round tries again, and the server's own safety-net checkpoint remains.
    }
  };
  const timer = setInterval(checkpoint, CHECKPOINT_EVERY_MS);
  port.on('message', (m: 'close') => {
    if (m !== 'close') return;
    clearInterval(timer);
    db.close();
    port.close();
  });
}
