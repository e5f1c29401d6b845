// Start test/support/serve-child.ts: a Custos server in a process of its own, for tests that kill it or run the
// CLI beside it. Resolves with its URL and an administrator token once it listens.
import { spawn, type ChildProcess } from 'node:child_process';
import { request, type ClientRequest } from 'node:http';
import { join } from 'node:path';

export interface ChildServer {
  child: ChildProcess;
  url: string;
  token: string;
}

export async function startChildServer(dataDir: string): Promise<ChildServer> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'serve-child.ts'), dataDir],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const started = await new Promise<{ url: string; token: string }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
    });
    child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return { child, ...started };
}

/** A STOW-RS request to `url` (chunked, multipart boundary `K`) whose body the caller writes piece by piece. */
export function openStow(url: string, token: string): ClientRequest {
  const u = new URL(`${url}/dicom-web/studies`);
  return request({
    host: u.hostname,
    port: u.port,
    path: u.pathname,
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      Accept: 'application/dicom+json',
      'Content-Type': 'multipart/related; type="application/dicom"; boundary=K',
      'Transfer-Encoding': 'chunked',
    },
  });
}
