// Worker thread of DecryptPool (decrypt-pool.ts): opens whole objects (decrypt, authenticate, SHA-256) off the
// server's event loop. Messages: OpenRequest in, OpenResponse out, buffers transferred both ways.
import { parentPort } from 'node:worker_threads';
import { openObject } from './chunked-aead.js';

export interface OpenRequest {
  id: number;
  key: Uint8Array;
  file: ArrayBuffer;
  sha256: string;
}

export type OpenResponse = { id: number } & (
  { plaintext: ArrayBuffer } | { failed: number | 'header' | 'sha256' }
);

parentPort!.on('message', (m: OpenRequest) => {
  const opened = openObject(Buffer.from(m.key), Buffer.from(m.file), m.sha256);
  if ('plaintext' in opened) {
    const buf = opened.plaintext.buffer as ArrayBuffer;
    parentPort!.postMessage({ id: m.id, plaintext: buf } satisfies OpenResponse, [buf]);
  } else parentPort!.postMessage({ id: m.id, failed: opened.failed } satisfies OpenResponse);
});
