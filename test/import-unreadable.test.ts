// `custos import` over a tree with a file it cannot open (docs/cli.md): that file is one failed entry, the rest of
// the tree is imported and the summary is printed. Until 6 Dec 2026 the open error of such a file, when it came
// before the ingest read from the stream, ended the process (an unhandled 'error' event) with no summary.
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance, uid } from './support/fixtures.js';
import { backends, cliDatabases } from './support/backends.js';

const child = fileURLToPath(new URL('./support/cli-child.ts', import.meta.url));
const FILES = 12;
// Root reads a file of mode 000 all the same: the import then runs as nobody, who cannot.
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

describe.each(backends())('custos import with a file it cannot open (%s)', (backend) => {
  let cwd: string;
  const databases = cliDatabases(backend);
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'custos-import-unreadable-'));
    await mkdir(join(cwd, 'src'));
    const study = uid(1);
    const series = uid(2);
    for (let i = 0; i < FILES; i++)
      await writeFile(
        join(cwd, 'src', `${String(i + 1).padStart(3, '0')}.dcm`),
        makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: uid(3), instanceNumber: i + 1 }),
      );
    // First in name order, so that it is opened while the ingest is still deciding whether it may store.
    await writeFile(
      join(cwd, 'src', '000.dcm'),
      makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: uid(3) }),
    );
    await chmod(join(cwd, 'src', '000.dcm'), 0o000);
    if (asRoot) for (const p of [cwd, join(cwd, 'src')]) await chown(p, NOBODY, NOBODY);
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
    await databases.drop();
  });

  it('lists it as failed, imports the rest and prints the summary', async () => {
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', child, 'import', join(cwd, 'src'), '--data', join(cwd, 'd'), '--no-progress'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...databases.env('d') },
        ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
      },
    );
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
    expect(stderr).not.toContain('Unhandled');
    expect(code, stderr).toBe(3);
    expect(stderr).toMatch(/failed +000\.dcm: .*EACCES/);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { stored: number; failed: number };
    expect(summary).toMatchObject({ stored: FILES, failed: 1 });
  }, 120_000);
});
