// A policy applied by `custos policy apply` (its own process) reaches every `serve --workers` process.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_FILE } from '../src/adapters/policy/cedar-policy.js';
import { cliOn, startWorkersServe } from './support/serve-workers.js';
import { backends, cliDatabases } from './support/backends.js';

describe.each(backends())('policy versions across worker processes (%s)', (backend) => {
  const databases = cliDatabases(backend);
  afterAll(() => databases.drop());
  it('every worker decides with a version applied by another process', async () => {
    const data = await mkdtemp(join(tmpdir(), 'custos-workers-policy-'));
    await databases.configure(data, 'policy');
    const { proc, url, out } = await startWorkersServe(data);
    try {
      expect(url, out()).toBeDefined();
      const cli = (...args: string[]) => cliOn(data, ...args);
      const { stdout: token } = await cli('token', 'create', '--user', 'admin');
      // New connections each time, so that both workers answer.
      const statuses = () =>
        Promise.all(
          Array.from({ length: 8 }, async () => {
            const res = await fetch(`${url}/dicom-web/studies`, {
              headers: { Authorization: `Bearer ${token.trim()}`, Connection: 'close' },
            });
            await res.arrayBuffer();
            return res.status;
          }),
        );
      expect(await statuses()).toEqual(Array(8).fill(200));

      // Version 2: the first-start administrator may no longer search.
      const text = (await readFile(DEFAULT_POLICY_FILE, 'utf8')).replace(
        /(@id\("archive-query"\)[\s\S]*?Custos::Role::"data-steward"),\s*Custos::Role::"administrator"\]/,
        '$1]',
      );
      expect(text).not.toBe(await readFile(DEFAULT_POLICY_FILE, 'utf8'));
      await writeFile(join(data, 'v2.cedar'), text);
      const applied = await cli(
        'policy',
        'apply',
        join(data, 'v2.cedar'),
        '--comment',
        'no searches by admin',
      );
      expect(applied.stderr).toMatch(/as policy version 2/);

      let last: number[] = [];
      for (let i = 0; i < 40; i++) {
        last = await statuses();
        if (last.every((s) => s === 403)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(last).toEqual(Array(8).fill(403));
    } finally {
      proc.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => proc.once('exit', r));
      expect(code).toBe(0);
      await rm(data, { recursive: true, force: true });
    }
  });
});
