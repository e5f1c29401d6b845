// First-time setup of a data directory by two processes at once (docs/cli.md, src/app/setup-lock.ts): the first
// initialises it under DATA/setup.lock, the second waits and then uses the archive the first made. Until 6 Dec 2026
// both initialised it: one failed (UNIQUE constraint failed: users.username, a migration finding its tables, a
// keyfile half written) or two one-time passwords were made and one was lost.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, cliDatabases } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';

const child = fileURLToPath(new URL('./support/cli-child.ts', import.meta.url));

/** `custos ARGS` in a process of its own; `waitFor` resolves when stderr holds the text (or the process ended). */
function custos(args: string[], env: NodeJS.ProcessEnv) {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const out = { stdout: '', stderr: '' };
  const listeners: (() => void)[] = [];
  proc.stdout.on('data', (c: Buffer) => (out.stdout += c.toString()));
  proc.stderr.on('data', (c: Buffer) => {
    out.stderr += c.toString();
    for (const l of listeners) l();
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const waitFor = (text: string) =>
    Promise.race([
      exited,
      new Promise<void>((resolve) => {
        const check = () => out.stderr.includes(text) && resolve();
        listeners.push(check);
        check();
      }),
    ]);
  return { out, exited, waitFor };
}

/** A pid that no process has any more: a child that has exited. */
const deadPid = () =>
  new Promise<number>((resolve) => {
    const p = execFile('true');
    p.on('exit', () => resolve(p.pid!));
  });

describe.each(backends())('first-time setup of a data directory by two processes (%s)', (backend) => {
  let cwd: string;
  const databases = cliDatabases(backend);
  const env = (name: string): NodeJS.ProcessEnv => databases.env(name);
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'custos-setup-lock-'));
    for (const [i, dir] of ['a', 'b', 'c', 'd'].entries()) {
      await mkdir(join(cwd, dir));
      await writeFile(
        join(cwd, dir, '1.dcm'),
        makeInstance({ studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: uid(3 + i) }),
      );
    }
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
    await databases.drop();
  });

  it('two imports started at once on a fresh directory: one initialises it, both import, one password', async () => {
    const e = env('two');
    const data = join(cwd, 'd-two');
    const [one, two] = ['a', 'b'].map((src) =>
      custos(['import', join(cwd, src), '--data', data, '--no-progress'], e),
    );
    expect(await one!.exited, one!.out.stderr).toBe(0);
    expect(await two!.exited, two!.out.stderr).toBe(0);
    const banners = (one!.out.stderr + two!.out.stderr).match(/one-time password:/g) ?? [];
    expect(banners).toHaveLength(1);
    expect(JSON.parse(one!.out.stdout)).toMatchObject({ stored: 1, failed: 0 });
    expect(JSON.parse(two!.out.stdout)).toMatchObject({ stored: 1, failed: 0 });
    expect(existsSync(join(data, 'setup.lock'))).toBe(false);
  }, 120_000);

  it('waits while a live process holds the setup lock, touching nothing, and goes on when it is removed', async () => {
    const e = env('wait');
    const data = join(cwd, 'd-wait');
    await mkdir(data);
    // This test process stands for the other `custos serve` that is initialising the directory.
    await writeFile(join(data, 'setup.lock'), `${process.pid}\n`);
    const run = custos(['import', join(cwd, 'c'), '--data', data, '--no-progress'], e);
    await run.waitFor('custos: waiting for process');
    expect(run.out.stderr).toContain(
      `custos: waiting for process ${process.pid}, which is initialising the data directory ${data} (${join(data, 'setup.lock')})`,
    );
    expect(existsSync(join(data, 'keys', 'kek.json'))).toBe(false);
    await unlink(join(data, 'setup.lock'));
    expect(await run.exited, run.out.stderr).toBe(0);
    expect(JSON.parse(run.out.stdout)).toMatchObject({ stored: 1 });
    expect(run.out.stderr).toContain('one-time password:');
  }, 120_000);

  it('takes over a setup lock left by a process that no longer runs, saying so', async () => {
    const e = env('stale');
    const data = join(cwd, 'd-stale');
    await mkdir(data);
    const pid = await deadPid();
    await writeFile(join(data, 'setup.lock'), `${pid}\n`);
    const run = custos(['import', join(cwd, 'd'), '--data', data, '--no-progress'], e);
    expect(await run.exited, run.out.stderr).toBe(0);
    expect(run.out.stderr).toContain(
      `custos: taking over the setup lock ${join(data, 'setup.lock')} left by process ${pid}, which no longer runs`,
    );
    expect(run.out.stderr).toContain('one-time password:');
    expect(existsSync(join(data, 'setup.lock'))).toBe(false);
  }, 120_000);
});
