// Temp files belong to the process writing them: a CLI command (or a second server process) that opens the same
// data directory while a server receives an object must not remove that object's temp file; one that finds the
// temp files of a process that died removes them.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/app/config.js';
import { openApp } from '../src/app/custos-app.js';
import { makeInstance, uid } from './support/fixtures.js';
import { fileNames } from './support/files.js';
import { cliOn } from './support/serve-workers.js';
import { openStow, startChildServer } from './support/child-server.js';

/** A STOW-RS request of one instance whose first half is sent now and the rest when `finish` is called. */
function halfSent(url: string, token: string, instance: Buffer) {
  const req = openStow(url, token);
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
  // A request of a server killed in the test fails; nobody waits for it then.
  answer.catch(() => undefined);
  req.write(
    Buffer.concat([
      Buffer.from('--K\r\nContent-Type: application/dicom\r\n\r\n'),
      instance.subarray(0, instance.length / 2),
    ]),
  );
  return {
    finish: () => {
      req.end(Buffer.concat([instance.subarray(instance.length / 2), Buffer.from('\r\n--K--\r\n')]));
      return answer;
    },
  };
}

const tmpFiles = (dataDir: string) => fileNames(join(dataDir, 'blobs', 'tmp'));

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('temp files of writes in flight', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  it('a CLI command run during an upload leaves its temp file alone, and the upload is stored', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'custos-tmp-owner-'));
    const { child, url, token } = await startChildServer(dataDir);
    cleanups.push(async () => {
      child.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    });
    const sop = uid(1);
    const instance = makeInstance({
      studyUid: uid(2),
      seriesUid: uid(3),
      sopInstanceUid: sop,
      rows: 512,
      columns: 512,
    });
    const upload = halfSent(url, token, instance);
    await until(async () => (await tmpFiles(dataDir)).length === 1, 'the temp file of the upload');

    // An operator's command in its own process, over the same data directory, while the object arrives.
    const { stdout } = await cliOn(dataDir, 'token', 'create', '--user', 'admin');
    expect(stdout.trim().length).toBeGreaterThan(20);
    expect((await tmpFiles(dataDir)).length).toBe(1);

    const res = await upload.finish();
    expect(res.status, res.body).toBe(200);
    const found = await fetch(`${url}/dicom-web/instances?SOPInstanceUID=${sop}`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(((await found.json()) as unknown[]).length).toBe(1);
    expect(await tmpFiles(dataDir)).toEqual([]);
  });

  it("a process's start removes the temp files of a process that was killed mid-upload", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'custos-tmp-dead-'));
    const first = await startChildServer(dataDir);
    cleanups.push(async () => {
      first.child.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    });
    const instance = makeInstance({
      studyUid: uid(4),
      seriesUid: uid(5),
      sopInstanceUid: uid(6),
      rows: 512,
      columns: 512,
    });
    halfSent(first.url, first.token, instance);
    await until(async () => (await tmpFiles(dataDir)).length === 1, 'the temp file of the upload');
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    // Any later process over the data directory (here a CLI command) sweeps what the dead one left.
    await cliOn(dataDir, 'token', 'create', '--user', 'admin');
    expect(await tmpFiles(dataDir)).toEqual([]);
    expect(await readdir(join(dataDir, 'blobs', 'tmp'))).toEqual([]);
  });

  it('says in the log what a start removed of a process killed mid-upload', async () => {
    // Until 6 Dec 2026 a 60 MB .partial of a kill -9 mid-STOW went without a word in the server's log.
    const dataDir = await mkdtemp(join(tmpdir(), 'custos-tmp-said-'));
    const first = await startChildServer(dataDir);
    cleanups.push(async () => {
      first.child.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    });
    halfSent(
      first.url,
      first.token,
      makeInstance({ studyUid: uid(7), seriesUid: uid(8), sopInstanceUid: uid(9), rows: 512, columns: 512 }),
    );
    await until(async () => (await tmpFiles(dataDir)).length === 1, 'the temp file of the upload');
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    const notices: string[] = [];
    const app = await openApp(loadConfig({ env: {}, cwd: dataDir, flags: { dataDir } }), {
      notice: (line) => notices.push(line),
    });
    await app.close();
    expect(await tmpFiles(dataDir)).toEqual([]);
    expect(notices).toContainEqual(
      expect.stringMatching(/^removed 1 temporary file under .*blobs\/tmp left by a process that stopped/),
    );
  });
});
