// A server that has used up its file descriptors (EMFILE: `ulimit -n`, systemd's LimitNOFILE): a store that
// cannot open its temporary file is refused as a passing lack of resources (STOW-RS FailureReason A700, 503 when
// nothing was stored), with a message that names the limit and no path, the log does not call the volume failed,
// and the server serves again once descriptors are free. Until 6 Dec 2026 such a part failed with 0x0110 and a
// Warning quoting the temporary file's path, and the volume probe logged a file system to repair.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance, stowBody, uid } from './support/fixtures.js';

const run = promisify(execFile);
const child = join(import.meta.dirname, 'support', 'serve-child.ts');

describe('a server out of file descriptors', () => {
  let dir: string;
  let proc: ChildProcess;
  let url: string;
  let token: string;
  let stderr = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-emfile-'));
    proc = spawn(process.execPath, ['--import', 'tsx', child, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      proc.once('exit', () => reject(new Error(`server exited: ${stderr}`)));
    });
    ({ url, token } = JSON.parse(line) as { url: string; token: string });
  }, 60_000);

  afterAll(async () => {
    proc?.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses stores with A700 naming the limit, and stores again once descriptors are free', async () => {
    const study = uid(1);
    const series = uid(2);
    const stow = async () => {
      const { body, contentType } = stowBody([
        { bytes: makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: uid(3) }) },
      ]);
      const res = await fetch(`${url}/dicom-web/studies`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': contentType,
          Accept: 'application/dicom+json',
        },
        body,
      });
      const text = await res.text();
      return { status: res.status, warning: res.headers.get('warning') ?? '', text };
    };
    // Keep-alive connections made first, so that the requests below need descriptors only for what they store.
    expect((await Promise.all(Array.from({ length: 8 }, stow))).map((r) => r.status)).toEqual(
      Array(8).fill(200),
    );
    const open = (await readdir(`/proc/${proc.pid}/fd`)).length;
    const { stdout: soft } = await run('prlimit', [
      '--pid',
      String(proc.pid),
      '--nofile',
      '--output=SOFT',
      '--noheadings',
    ]);
    // The soft limit only, at what is open now: the next file the server opens fails with EMFILE.
    await run('prlimit', ['--pid', String(proc.pid), `--nofile=${open}:`]);
    let starved: Awaited<ReturnType<typeof stow>>[];
    try {
      starved = await Promise.all(Array.from({ length: 8 }, stow));
    } finally {
      await run('prlimit', ['--pid', String(proc.pid), `--nofile=${soft.trim()}:`]);
    }
    const refused = starved.filter((r) => r.status !== 200);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.text).not.toContain('"Value":[272]'); // 0x0110, processing failure
      expect(r.warning).not.toContain('.partial');
      expect(r.warning).toMatch(/file descriptor limit \(EMFILE/);
    }
    expect(refused.some((r) => r.text.includes('"Value":[42752]'))).toBe(true); // 0xA700
    // Descriptors free again: it stores.
    expect((await stow()).status).toBe(200);
    expect(stderr).not.toContain('refuses writes');
  }, 60_000);
});
