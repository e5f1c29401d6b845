// A CLI command whose reader goes away (`custos audit export | head -n 1`, docs/cli.md): the command stops, says
// on stderr that its output is incomplete and exits 1. Until 7 Dec 2026 the next write to the closed pipe died
// with Node's "Unhandled 'error' event" (EPIPE) and a stack trace.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { captureIO } from './support/cli-io.js';
import { backends, cliDatabases } from './support/backends.js';

const child = fileURLToPath(new URL('./support/cli-child.ts', import.meta.url));

describe.each(backends())('a CLI command whose stdout reader has gone (%s)', (backend) => {
  let cwd: string;
  const databases = cliDatabases(backend);
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'custos-cli-epipe-'));
    await mkdir(join(cwd, 'empty'));
    // An import of nothing initialises the archive; its ledger then holds the first start's records.
    const init = captureIO(cwd);
    init.env = databases.env('d');
    expect(await main(['import', 'empty', '--data', 'd', '--no-progress'], init)).toBe(0);
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
    await databases.drop();
  });

  it('stops, says its output is incomplete and exits 1, without a stack trace', async () => {
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', child, 'audit', 'export', '--format', 'jsonl', '--data', join(cwd, 'd')],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...databases.env('d') } },
    );
    // As `| head -n 0` does: the reader closes its end before the command has written anything.
    proc.stdout.destroy();
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => proc.on('close', (c) => resolve(c)));
    expect(stderr).toContain(
      'custos: the output was closed before all of it was written (EPIPE); what went out is incomplete',
    );
    expect(stderr).not.toContain('Unhandled');
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(code).toBe(1);
  });
});
