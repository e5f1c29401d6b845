// `custos serve --workers 2`: several processes on one port over one data directory.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { cliOn, startWorkersServe } from './support/serve-workers.js';
import { backends, cliDatabases } from './support/backends.js';

describe.each(backends())('serve with worker processes (%s)', (backend) => {
  const databases = cliDatabases(backend);
  afterAll(() => databases.drop());
  it('initialises once, serves from every worker, and stops cleanly', async () => {
    const data = await mkdtemp(join(tmpdir(), 'custos-workers-'));
    await databases.configure(data, 'w1');
    const {
      proc,
      url,
      out: printed,
    } = await startWorkersServe(data, ['--dicom-port', '0', '--dicom-host', '127.0.0.1']);
    const out = printed();
    expect(url, out).toBeDefined();
    expect(out.match(/one-time password/g)?.length).toBe(1);
    expect(out).toMatch(/2 worker processes/);
    const children = (await readFile(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8'))
      .trim()
      .split(/\s+/);
    expect(children.length).toBe(2);

    const { stdout: token } = await cliOn(data, 'token', 'create', '--user', 'admin');
    const auth = { Authorization: `Bearer ${token.trim()}` };
    // Several connections at once, so both workers take requests; every write lands in the one index.
    const stows = Array.from({ length: 8 }, async (_, i) => {
      const { body, contentType } = stowBody([
        {
          bytes: makeInstance({
            studyUid: uid(100 + i),
            seriesUid: uid(200 + i),
            sopInstanceUid: uid(300 + i),
            patientId: 'WRK',
          }),
        },
      ]);
      const res = await fetch(`${url}/dicom-web/studies`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': contentType, Connection: 'close' },
        body,
      });
      return res.status;
    });
    expect(await Promise.all(stows)).toEqual(Array(8).fill(200));
    const found = (await (
      await fetch(`${url}/dicom-web/studies?PatientID=WRK`, { headers: auth })
    ).json()) as unknown[];
    expect(found.length).toBe(8);
    // Both processes append to the one ledger at once: their records must still form one gapless chain.
    const queries = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const res = await fetch(`${url}/dicom-web/studies?PatientID=WRK`, {
          headers: { ...auth, Connection: 'close' },
        });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(queries).toEqual(Array(40).fill(200));

    proc.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => proc.once('exit', r));
    expect(code).toBe(0);
    const verified = await cliOn(data, 'audit', 'verify');
    expect(verified.stdout).toMatch(/^ledger OK: \d+ records/);
    const records = Number(/ledger OK: (\d+) records/.exec(verified.stdout)![1]);
    expect(records).toBeGreaterThanOrEqual(8 + 40 + 1);
    await rm(data, { recursive: true, force: true });
  });

  it('replaces a worker that dies, and stops with status 1 when workers keep dying', async () => {
    const data = await mkdtemp(join(tmpdir(), 'custos-workers-'));
    await databases.configure(data, 'w2');
    const { proc, url, err } = await startWorkersServe(data, ['--dicom-port', 'off']);
    expect(url, err()).toBeDefined();
    const children = async () =>
      (await readFile(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8'))
        .trim()
        .split(/\s+/)
        .filter(Boolean);
    const waitFor = async (what: () => boolean | Promise<boolean>) => {
      for (let i = 0; i < 300 && !(await what()); i++) await new Promise((r) => setTimeout(r, 50));
    };
    const exited = new Promise<number | null>((r) => proc.once('exit', r));
    // Killed: said in the log, and another worker takes its place (until 5 Dec 2026 none did, and with both
    // gone the HTTP port was closed while the primary ran on).
    const [first] = await children();
    process.kill(Number(first), 'SIGKILL');
    await waitFor(() => /started worker \d+ in its place/.test(err()));
    expect(err()).toMatch(
      new RegExp(`worker ${first} was killed \\(SIGKILL\\); started worker \\d+ in its place`),
    );
    await waitFor(async () => (await children()).length === 2 && !(await children()).includes(first!));
    expect(await children()).toHaveLength(2);
    await waitFor(async () => (await fetch(`${url}/api/health`).catch(() => undefined))?.status === 200);
    expect((await fetch(`${url}/api/health`, { headers: { Connection: 'close' } })).status).toBe(200);
    // More deaths than workers within a minute: a crash loop, which ends the server for its supervisor to see.
    for (let i = 0; i < 2; i++) {
      const [next] = await children();
      process.kill(Number(next), 'SIGKILL');
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(await exited).toBe(1);
    expect(err()).toMatch(/3 workers died within a minute, so the server stops \(status 1\)/);
    expect((await cliOn(data, 'audit', 'verify')).stdout).toMatch(/^ledger OK/);
    await rm(data, { recursive: true, force: true });
  });

  it('answers connections made while a worker stops and dies from the other worker', async () => {
    const data = await mkdtemp(join(tmpdir(), 'custos-workers-'));
    await databases.configure(data, 'w3');
    const { proc, url, err } = await startWorkersServe(data, ['--dicom-port', 'off']);
    const exited = new Promise<number | null>((r) => proc.once('exit', r));
    let stopped: string | undefined;
    try {
      expect(url, err()).toBeDefined();
      [stopped] = (await readFile(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8')).trim().split(/\s+/);
      // A worker that takes no connection any more (stopped here; in life: busy dying) and is then killed. Until
      // 6 Dec 2026 the primary accepted each connection and handed it to a worker in turn: one handed to this
      // worker stayed open in the primary, unanswered, for good.
      process.kill(Number(stopped), 'SIGSTOP');
      const health = () =>
        fetch(`${url}/api/health`, {
          headers: { Connection: 'close' },
          signal: AbortSignal.timeout(20_000),
        }).then(
          (r) => r.status,
          (e: Error) => e.name,
        );
      const answers = Array.from({ length: 4 }, health);
      await new Promise((r) => setTimeout(r, 500));
      process.kill(Number(stopped), 'SIGKILL');
      expect(await Promise.all(answers)).toEqual([200, 200, 200, 200]);
    } finally {
      // A failed expectation must not leave the server behind (nor a stopped worker it would wait for).
      try {
        if (stopped) process.kill(Number(stopped), 'SIGKILL');
      } catch {
        // Killed already.
      }
      proc.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    await rm(data, { recursive: true, force: true });
  });

  it('lets a STOW-RS in flight finish on SIGTERM, taking no new connection meanwhile', async () => {
    const data = await mkdtemp(join(tmpdir(), 'custos-sigterm-'));
    await databases.configure(data, 'w4');
    // One process (the last --workers wins): SIGTERM reaches the server itself.
    const { proc, url, err } = await startWorkersServe(data, ['--workers', '1', '--dicom-port', 'off']);
    expect(url, err()).toBeDefined();
    const { stdout: token } = await cliOn(data, 'token', 'create', '--user', 'admin');
    const sop = uid(400);
    const { body, contentType } = stowBody([
      { bytes: makeInstance({ studyUid: uid(401), seriesUid: uid(402), sopInstanceUid: sop }) },
    ]);
    const target = new URL(`${url}/dicom-web/studies`);
    const exited = new Promise<number | null>((r) => proc.once('exit', r));
    let refused: boolean | undefined;
    const answered = new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          headers: {
            Authorization: `Bearer ${token.trim()}`,
            'Content-Type': contentType,
            'Content-Length': String(body.length),
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      req.write(body.subarray(0, body.length >> 1), () => {
        // Half the body is in: the server is told to stop, and the rest follows.
        proc.kill('SIGTERM');
        setTimeout(() => {
          // No new connection is taken meanwhile.
          void fetch(`${url}/api/health`).then(
            () => (refused = false),
            () => (refused = true),
          );
          req.end(body.subarray(body.length >> 1));
        }, 500);
      });
    });
    // Until 5 Dec 2026 the connection was cut at once: no answer, nothing stored.
    expect(await answered).toBe(200);
    expect(await exited).toBe(0);
    expect(refused).toBe(true);
    const { stdout } = await cliOn(data, 'audit', 'verify');
    expect(stdout).toMatch(/^ledger OK/);
    await rm(data, { recursive: true, force: true });
  });
});
