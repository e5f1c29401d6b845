import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run a dcmtk tool. TCP_NODELAY=1: Debian's dcmtk leaves Nagle's algorithm on otherwise (issue 3), which costs
 * ~45 ms per message on loopback.
 */
export function dcmtk(
  tool: string,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, {
      cwd: opts.cwd,
      env: { ...process.env, TCP_NODELAY: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * storescp over TLS as a C-MOVE destination `title` on `port`, presenting `cert` and `key` and storing into `out`.
 * `-ic`: it takes the caller's certificate unverified, so that only the caller's check of this one is tested.
 */
export const spawnTlsDestination = (key: string, cert: string, title: string, out: string, port: number) =>
  spawnDcmtk('storescp', ['+tls', key, cert, '-ic', '-aet', title, '-od', out, String(port)]);

/** A long-running dcmtk process (storescp as a C-MOVE destination). */
export function spawnDcmtk(tool: string, args: string[], cwd?: string): ChildProcess {
  const child = spawn(tool, args, {
    cwd,
    env: { ...process.env, TCP_NODELAY: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Resolves once a socket listens on TCP `port` (Linux's /proc/net/tcp and tcp6, state 0A): a peer just spawned takes
 * connections from then on. Nothing connects to it to find out, so its log and what it received stay as they were.
 */
export async function untilListening(port: number, timeoutMs = 20_000): Promise<void> {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const deadline = Date.now() + timeoutMs; ;) {
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      const rows = (await readFile(table, 'utf8').catch(() => '')).split('\n');
      if (
        rows.some((row) => {
          const [, address, , state] = row.trim().split(/\s+/);
          return address?.endsWith(local) && state === '0A';
        })
      )
        return;
    }
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** dcmtk's storescu -v of `files` from `aet` to Custos's AE on loopback `port`: each answer's status is in stderr. */
export const storescuTo = (port: number | null, aet: string, files: string[], ...flags: string[]) =>
  dcmtk('storescu', ['-v', ...flags, '-aet', aet, '-aec', 'CUSTOS', '127.0.0.1', String(port), ...files]);

/**
 * dcmtk's movescu -S (Study Root) from `aet` to Custos's AE on loopback `port`, to `dest`, one `-k` per key;
 * `flags` go before its own options (`-d` prints each response's status and counts).
 */
export const movescuTo = (
  port: number | null,
  aet: string,
  dest: string,
  keys: string[],
  ...flags: string[]
) =>
  dcmtk('movescu', [
    ...flags,
    '-aet',
    aet,
    '-aec',
    'CUSTOS',
    '-S',
    '-aem',
    dest,
    '127.0.0.1',
    String(port),
    ...keys.flatMap((k) => ['-k', k]),
  ]);

/** dcmtk's getscu -v -S (Study Root) from `aet` to Custos's AE on loopback `port` into `outDir`, one `-k` per key. */
export const getscuTo = (port: number | null, aet: string, outDir: string, ...keys: string[]) =>
  dcmtk('getscu', [
    '-v',
    '-aet',
    aet,
    '-aec',
    'CUSTOS',
    '-S',
    '-od',
    outDir,
    '127.0.0.1',
    String(port),
    ...keys.flatMap((k) => ['-k', k]),
  ]);

/**
 * dcmtk's findscu from `aet` to Custos's AE on loopback `port`, one `-k` per key: `-v` (each answer in stderr), or
 * `-d` with `debug` (each response's status and command too); Study Root (`-S`) unless `model` is `-P` (Patient
 * Root); `flags` go before its own options (`-X` to keep each answer as a file in `cwd` or `-od`, `--max-pdu`, TLS).
 */
export const findscuWith = (
  port: number | string | null,
  aet: string,
  keys: string[],
  opts: { model?: '-S' | '-P'; debug?: boolean; flags?: string[]; cwd?: string } = {},
) =>
  dcmtk(
    'findscu',
    [
      opts.debug ? '-d' : '-v',
      ...(opts.flags ?? []),
      '-aet',
      aet,
      '-aec',
      'CUSTOS',
      opts.model ?? '-S',
      '127.0.0.1',
      String(port),
      ...keys.flatMap((k) => ['-k', k]),
    ],
    opts.cwd === undefined ? {} : { cwd: opts.cwd },
  );

/** dcmtk's findscu -v -S (Study Root) from `aet` to Custos's AE on loopback `port`, one `-k` per key. */
export const findscuTo = (port: number | null, aet: string, ...keys: string[]) =>
  findscuWith(port, aet, keys);
