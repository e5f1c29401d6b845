// Ctrl-C in the middle of `custos import` (docs/cli.md): the files being stored are finished, no other is begun,
// the summary says how many were not tried, and running the import again stores the rest. Until 5 Dec 2026 the
// process died at once, printed nothing, and could leave a blob no index row referred to.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { captureIO } from './support/cli-io.js';
import { makeInstance, uid } from './support/fixtures.js';
import { backends, cliDatabases } from './support/backends.js';

const child = fileURLToPath(new URL('./support/cli-child.ts', import.meta.url));
const FILES = 1500;

describe.each(backends())('custos import interrupted by SIGINT (%s)', (backend) => {
  let cwd: string;
  const databases = cliDatabases(backend);
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'custos-import-int-'));
    await mkdir(join(cwd, 'src'));
    const study = uid(1);
    const series = uid(2);
    for (let i = 0; i < FILES; i++)
      await writeFile(
        join(cwd, 'src', `${String(i).padStart(5, '0')}.dcm`),
        makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: uid(3), instanceNumber: i + 1 }),
      );
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
    await databases.drop();
  });

  it('finishes what it began, says what it did not try, and the next run stores the rest', async () => {
    // From the checkout, where tsx resolves; the tree and the data directory by absolute path.
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', child, 'import', join(cwd, 'src'), '--data', join(cwd, 'd')],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...databases.env('d') } },
    );
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const signalled = new Promise<void>((resolve) =>
      proc.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        // The progress line every 500 files (stderr is no terminal): the import is under way.
        if (stderr.includes(`imported 500/${FILES} files`)) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    await Promise.race([signalled, exited]);
    proc.kill('SIGINT');
    expect(await exited, stderr).toBe(3);
    expect(stderr).toContain('custos: SIGINT: finishing the files being stored, then stopping');
    const first = JSON.parse(stdout.trim().split('\n').at(-1)!) as { stored: number; notTried: number };
    expect(first.stored).toBeGreaterThanOrEqual(500);
    expect(first.notTried).toBeGreaterThan(0);
    expect(first.stored + first.notTried).toBe(FILES);
    expect(stderr).toMatch(
      new RegExp(
        `stopped: +${first.notTried} files? not tried: interrupted by SIGINT\\. Run the same import again`,
      ),
    );

    const again = captureIO(cwd);
    again.env = databases.env('d');
    expect(await main(['import', 'src', '--data', 'd', '--no-progress'], again)).toBe(0);
    expect(JSON.parse(again.stdout.trim())).toMatchObject({
      stored: first.notTried,
      unchanged: first.stored,
    });
    // Nothing half-stored: no blob without its index row.
    const orphans = captureIO(cwd);
    orphans.env = databases.env('d');
    expect(await main(['fixity', 'orphans', '--min-age-hours', '0', '--data', 'd'], orphans)).toBe(0);
    expect(JSON.parse(orphans.stdout.trim().split('\n').at(-1)!)).toMatchObject({ orphans: 0 });
  }, 120_000);
});
