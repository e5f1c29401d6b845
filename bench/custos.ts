// Custos as a user runs it: the built `bin/custos.js` with its defaults (SQLite index, encrypted and checksummed
// filesystem blobs), on loopback, with a throw-away data directory and an API token.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { benchError, stopChild, tail, type Peer } from './proc.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const bin = join(root, 'bin', 'custos.js');

/** The calling AE title of the benchmark's DIMSE clients. */
export const BENCH_AE = 'BENCHSCU';

export interface CustosOptions {
  /** `--workers` (server processes sharing the port); omitted: the CLI default. */
  workers?: number;
  /** `dicom.storeAck` (C-STORE success once committed, the default, or once received and validated). */
  storeAck?: 'committed' | 'received';
  /** Write a V8 CPU profile of the server into this directory (node --cpu-prof). */
  cpuProf?: string;
}

export async function startCustos(opts: CustosOptions = {}): Promise<Peer> {
  if (!existsSync(join(root, 'dist', 'app', 'cli.js')))
    throw benchError('custos-not-built', 'Custos is not built: run `npm run build` first');
  const dir = await mkdtemp(join(tmpdir(), 'custos-bench-'));
  // The benchmark measures the defaults, not whatever CUSTOS_* the caller's shell happens to export.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CUSTOS_')));
  const args = [
    bin,
    'serve',
    '--data',
    dir,
    '--http-port',
    '0',
    '--http-host',
    '127.0.0.1',
    '--dicom-port',
    '0',
    '--dicom-host',
    '127.0.0.1',
  ];
  if (opts.workers !== undefined) args.push('--workers', String(opts.workers));
  if (opts.cpuProf) args.unshift('--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`);
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.storeAck ? { ...env, CUSTOS_DICOM_STORE_ACK: opts.storeAck } : env,
  });
  const errors = tail(child.stderr);
  const cleanup = async () => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  let dicomPort = 0;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const onData = (d: Buffer) => {
        // Bounded: only the start-up banner matters (it holds the one-time password, which we never keep).
        out = (out + d.toString()).slice(-8000);
        const m = /listening on (http:\/\/[^\s)]+)/.exec(out);
        const dp = /DICOM AE \S+ on port (\d+)/.exec(out);
        if (m && dp) {
          child.stdout.off('data', onData);
          child.stdout.resume();
          dicomPort = Number(dp[1]);
          resolve(m[1]!);
        }
      };
      child.stdout.on('data', onData);
      child.once('exit', (code, signal) =>
        reject(
          benchError('custos-exited', `custos serve exited (${code ?? signal}) while starting: ${errors()}`),
        ),
      );
      setTimeout(
        () => reject(benchError('timeout', `custos serve did not print "listening on" in 60 s: ${errors()}`)),
        60_000,
      ).unref();
    });
    const { stdout } = await run(
      process.execPath,
      [bin, 'token', 'create', '--user', 'admin', '--data', dir],
      {
        env,
      },
    );
    // A server that dies mid-run must say why, not leave the next request to fail with "other side closed".
    // 'close', not 'exit': by then its stderr is read to the end (a V8 fatal error prints its trace last). A death
    // by any other cause than our stop is reported even when the failed request already made the run stop it.
    let stopping = false;
    child.once('close', (code, signal) => {
      const ours = stopping && (code === 0 || signal === 'SIGTERM' || signal === 'SIGKILL');
      if (!ours)
        process.stderr.write(`custos serve exited during the run (${code ?? signal}): ${errors()}\n`);
    });
    const token = stdout.trim();
    if (!token || token.includes('\n'))
      throw benchError('custos-token', `custos token create printed no single token line`);
    // The benchmark's DIMSE client, registered like any AE (bound to the administrator account).
    const ae = await fetch(`${url}/api/admin/aes`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: BENCH_AE, host: '127.0.0.1', port: 104, user: 'admin' }),
    });
    if (ae.status !== 201)
      throw benchError('custos-ae', `registering ${BENCH_AE} answered ${ae.status}: ${await ae.text()}`);
    return {
      name: 'Custos',
      dicomweb: `${url}/dicom-web`,
      headers: { Authorization: `Bearer ${token}` },
      pid: child.pid!,
      dicomPort,
      aet: 'CUSTOS',
      stop: async () => {
        stopping = true;
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
