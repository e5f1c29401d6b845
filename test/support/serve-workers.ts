// `custos serve --workers 2` in a child process (through cli-child.ts), and the CLI against the same data.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const child = join(import.meta.dirname, 'cli-child.ts');

export interface WorkersServe {
  proc: ChildProcess;
  /** The base URL, once the primary printed 'listening on' (undefined if it did not within 60 s). */
  url: string | undefined;
  /** Everything the server printed on stdout so far. */
  out(): string;
  /** Everything it printed on stderr so far (the operator's log). */
  err(): string;
}

/** Start `serve --workers 2` on a free loopback port over `data`, with any further serve flags and environment. */
export async function startWorkersServe(
  data: string,
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<WorkersServe> {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      child,
      'serve',
      '--data',
      data,
      '--http-port',
      '0',
      '--http-host',
      '127.0.0.1',
      '--workers',
      '2',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 1200 && !/listening on/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
  const url = /listening on (https?:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
  return { proc, url, out: () => out, err: () => err };
}

/** Run a `custos` CLI command against `data` (in its own process, like an operator would). */
export const cliOn = (data: string, ...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', child, ...args, '--data', data]);
