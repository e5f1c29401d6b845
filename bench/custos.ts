// Custos as a user runs it (built bin, SQLite + filesystem, encryption and checksums on), on loopback.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Peer } from './proc.js';

const run = promisify(execFile);
const bin = join(import.meta.dirname, '..', 'bin', 'custos.js');

export async function startCustos(): Promise<Peer> {
  const dir = await mkdtemp(join(tmpdir(), 'custos-bench-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CUSTOS_')));
  const child = spawn(
    process.execPath,
    [bin, 'serve', '--data', dir, '--http-port', '0', '--http-host', '127.0.0.1'],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+?)\s/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => reject(new Error(`custos exited ${code}: ${err}`)));
  });
  const { stdout } = await run(process.execPath, [bin, 'token', 'create', '--user', 'admin', '--data', dir], {
    env,
  });
  return {
    name: 'Custos',
    dicomweb: `${url}/dicom-web`,
    headers: { Authorization: `Bearer ${stdout.trim()}` },
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
