// The benchmark's STOW-RS client: parts streamed from disk, chunked, with back-pressure.
import { createReadStream } from 'node:fs';
import { request } from 'node:http';
import type { Peer } from './proc.js';

export interface StowResult {
  status: number;
  stored: number;
  failed: number;
  detail: string;
}

/** POST one STOW-RS request whose parts are streamed from disk (PS3.18 §10.5), chunked, with back-pressure. */
export function stowFiles(peer: Peer, files: string[]): Promise<StowResult> {
  const boundary = `bench-${Math.random().toString(16).slice(2)}`;
  const url = new URL(`${peer.dicomweb}/studies`);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          ...peer.headers,
          Accept: 'application/dicom+json',
          'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
          'Transfer-Encoding': 'chunked',
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let stored = 0;
          let failed = 0;
          try {
            const body = JSON.parse(text) as Record<string, { Value?: unknown[] }>;
            stored = body['00081199']?.Value?.length ?? 0; // ReferencedSOPSequence
            failed = body['00081198']?.Value?.length ?? 0; // FailedSOPSequence
          } catch {
            /* not JSON: status and detail tell */
          }
          resolve({
            status: res.statusCode ?? 0,
            stored,
            failed,
            detail: `${res.headers.warning ?? ''} ${text.slice(0, 1000)}`,
          });
        });
      },
    );
    req.on('error', reject);
    req.setNoDelay(true);
    (async () => {
      for (const f of files) {
        req.write(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
        for await (const chunk of createReadStream(f, { highWaterMark: 1 << 20 }))
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        req.write('\r\n');
      }
      req.end(`--${boundary}--\r\n`);
    })().catch(reject);
  });
}
