// A full disk: new objects are refused with a precise status (C-STORE A700, STOW-RS FailureReason A700), what
// was stored stays stored and readable, nothing is left half-written, and the server stays up. Two ways there:
// the free-space reserve (blob.minFreeBytes) refuses before the disk is full; a volume that fills all the same
// (a 24 MiB tmpfs as the data directory, reserve 0) gives ENOSPC and SQLITE_FULL, which must read the same way.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { captureIO } from './support/cli-io.js';
import { storescuTo } from './support/dcmtk.js';
import { fileNames } from './support/files.js';
import { serverOnVolume, tmpfs } from './support/volumes.js';
import { makeInstance, uid } from './support/fixtures.js';
import {
  postStow,
  shareIndexWithCli,
  startTestServer,
  stopThenCleanUp,
  type TestServer,
} from './support/test-server.js';

const run = promisify(execFile);
type Json = Record<string, { vr: string; Value?: unknown[] }>;

const OUT_OF_RESOURCES = 0xa700;
/** How dcmtk's storescu -v reports a C-STORE answered A700. */
const REFUSED_OUT_OF_RESOURCES = /Store Response \((Refused: OutOfResources|Unknown Status: 0xa700)\)/i;

async function stow(s: TestServer, parts: Buffer[]) {
  const res = await postStow(s, parts, { Accept: 'application/dicom+json' });
  const text = await res.text();
  const json = res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Json) : undefined;
  const items = (tag: string) => (json?.[tag]?.Value ?? []) as Json[];
  return {
    status: res.status,
    warning: res.headers.get('warning') ?? '',
    stored: items('00081199').map((i) => i['00081155']!.Value![0] as string),
    failed: items('00081198').map((i) => ({
      sop: i['00081155']?.Value?.[0] as string | undefined,
      reason: i['00081197']!.Value![0] as number,
    })),
  };
}

const studies = async (s: TestServer) => {
  const res = await fetch(`${s.dicomweb}/studies?includefield=00201208`, {
    headers: { Authorization: `Bearer ${s.token}` },
  });
  return { status: res.status, body: await res.text() };
};

const instanceRows = async (s: TestServer) =>
  (await s.app.index.db.selectFrom('instances').select('sop_instance_uid').execute()).map(
    (r) => r.sop_instance_uid,
  );

const storeFailures = async (s: TestServer) =>
  (
    await s.app.index.db
      .selectFrom('audit_ledger')
      .select('record')
      .where('action', '=', 'store')
      .where('outcome', '=', 'failure')
      .execute()
  ).map((r) => (JSON.parse(r.record) as { detail: { code: string } }).detail.code);

describe.each(backends())('below the free-space reserve, on %s', (backend) => {
  let s: TestServer;
  let work: string;
  beforeAll(async () => {
    // More than any disk here has free: every new object is refused, reads go on.
    s = await startTestServer(backend, {
      configure: (c) => ({ ...c, blob: { ...c.blob, minFreeBytes: 2 ** 52 } }),
    });
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'FULLSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    work = await mkdtemp(join(tmpdir(), 'custos-reserve-'));
  });
  afterAll(async () => {
    expect(await stopThenCleanUp(s, () => rm(work, { recursive: true, force: true }))).toEqual([]);
  });

  it('refuses STOW-RS parts with FailureReason A700 and a Warning naming the reserve, storing nothing', async () => {
    const sops = [uid(1), uid(2)];
    const study = uid(3);
    const r = await stow(
      s,
      sops.map((sop) => makeInstance({ studyUid: study, seriesUid: uid(4), sopInstanceUid: sop })),
    );
    expect(r.status).toBe(409);
    expect(r.stored).toEqual([]);
    expect(r.failed.map((f) => f.reason)).toEqual([OUT_OF_RESOURCES, OUT_OF_RESOURCES]);
    expect(r.warning).toMatch(
      /storage is full \(the blob volume has .* free, less than the 4294967296 MiB reserve/,
    );
    expect(await instanceRows(s)).toEqual([]);
    expect(await fileNames(join(s.dataDir, 'blobs', 'objects'))).toEqual([]);
    expect(await storeFailures(s)).toEqual(['storage.full', 'storage.full']);
  });

  it('answers C-STORE with A700 (Refused: Out of Resources), which a modality retries later', async () => {
    const f = join(work, 'ct.dcm');
    await writeFile(f, makeInstance({ studyUid: uid(5), seriesUid: uid(6), sopInstanceUid: uid(7) }));
    const r = await storescuTo(s.dicomPort, 'FULLSCU', [f]);
    expect(r.stderr).toMatch(REFUSED_OUT_OF_RESOURCES);
    // A refused object's data is read to its end and dropped: the association carries on with the next one.
    const g = join(work, 'mr.dcm');
    await writeFile(
      g,
      makeInstance({ studyUid: uid(5), seriesUid: uid(6), sopInstanceUid: uid(8), rows: 256, columns: 256 }),
    );
    const two = await storescuTo(s.dicomPort, 'FULLSCU', [f, g], '--no-halt');
    expect(two.stderr.match(new RegExp(REFUSED_OUT_OF_RESOURCES, 'gi'))).toHaveLength(2);
    expect(two.stderr).toMatch(/Releasing Association/);
    expect(await instanceRows(s)).toEqual([]);
  });

  it('still answers queries, and says on /api/health that storage is below the reserve', async () => {
    expect((await studies(s)).status).toBe(200);
    const health = await fetch(`${s.url}/api/health`);
    expect(await health.json()).toEqual({ status: 'ok', storage: 'below-reserve', index: 'ok' });
    // Said once in the operator's log when the volume was first found below the reserve, not at every refusal.
    expect(s.notices).toEqual([
      expect.stringMatching(
        /^the blob volume has \d+ MiB free, less than the 4294967296 MiB reserve .*: new objects are refused/,
      ),
    ]);
  });

  it('stops `custos import` at the first refusal and says how many files were not tried', async () => {
    const dir = join(work, 'import');
    await run('mkdir', ['-p', dir]);
    const study = uid(8);
    for (let i = 0; i < 12; i++)
      await writeFile(
        join(dir, `${i}.dcm`),
        makeInstance({ studyUid: study, seriesUid: uid(9), sopInstanceUid: uid(i) }),
      );
    await shareIndexWithCli(s);
    const io = Object.assign(captureIO(work), { env: { CUSTOS_BLOB_MIN_FREE_BYTES: String(2 ** 52) } });
    expect(await main(['import', dir, '--data', s.dataDir], io), io.stderr).toBe(3);
    const summary = JSON.parse(io.stdout.trim().split('\n').pop()!) as {
      stored: number;
      failed: number;
      notTried: number;
    };
    // Three import workers: each has at most one file in hand when the first refusal stops them.
    expect(summary.stored).toBe(0);
    expect(summary.failed).toBeGreaterThanOrEqual(1);
    expect(summary.failed).toBeLessThanOrEqual(3);
    expect(summary.notTried).toBe(12 - summary.failed);
    expect(io.stderr).toMatch(/stopped: +\d+ files not tried: the archive's storage is full/);
  });

  it('refuses STOW-RS metadata and bulk data per instance with A700 without spooling its bulk data', async () => {
    const before = (await storeFailures(s)).length;
    const sop = uid(20);
    const boundary = 'reserve-metadata-boundary';
    const json = {
      '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] },
      '00080018': { vr: 'UI', Value: [sop] },
      '0020000D': { vr: 'UI', Value: [uid(21)] },
      '7FE00010': { vr: 'OW', BulkDataURI: 'px' },
    };
    const body = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Type: application/dicom+json\r\n\r\n${JSON.stringify([json])}\r\n`,
      ),
      Buffer.from(`--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Location: px\r\n\r\n`),
      Buffer.alloc(4096, 1),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${s.token}`,
        'Content-Type': `multipart/related; type="application/dicom+json"; boundary=${boundary}`,
      },
      body,
    });
    expect(res.status).toBe(409);
    const answer = (await res.json()) as Json;
    expect((answer['00081198']!.Value as Json[]).map((i) => i['00081197']!.Value![0])).toEqual([
      OUT_OF_RESOURCES,
    ]);
    expect(res.headers.get('warning')).toMatch(/storage is full \(the blob volume has .* free/);
    // Nothing was written to the data directory for it: not even the spool directory was made.
    expect(await stat(join(s.dataDir, 'tmp')).catch((e: NodeJS.ErrnoException) => e.code)).toBe('ENOENT');
    expect((await storeFailures(s)).slice(before)).toEqual(['storage.full']);
  });
});

describe.each(backends())('a data directory whose volume fills up, on %s', (backend) => {
  let s: TestServer;
  let volume: Awaited<ReturnType<typeof tmpfs>>;
  let work: string;
  const study = uid(20);
  const series = uid(21);
  // 40 instances of 512 KiB of pixels: about 21 MB, more than the 16 MiB volume holds beside the index.
  const sops = Array.from({ length: 40 }, (_, i) => uid(100 + i));
  const instance = (sop: string, n: number) =>
    makeInstance({
      studyUid: study,
      seriesUid: series,
      sopInstanceUid: sop,
      instanceNumber: n,
      rows: 512,
      columns: 512,
    });
  let first: Awaited<ReturnType<typeof stow>>;
  beforeAll(async () => {
    volume = await tmpfs(16);
    work = await mkdtemp(join(tmpdir(), 'custos-full-work-'));
    s = await serverOnVolume(backend, volume.dir, 'FULLSCU');
    first = await stow(
      s,
      sops.map((sop, i) => instance(sop, i + 1)),
    );
  }, 120_000);
  afterAll(async () => {
    const unexpected = await stopThenCleanUp(
      s,
      async () => volume?.unmount(),
      () => rm(work, { recursive: true, force: true }),
    );
    expect(unexpected).toEqual([]);
  });

  it('answers STOW-RS 202: what fitted is referenced, every other part failed with A700', async () => {
    expect(first.status).toBe(202);
    expect(first.stored.length).toBeGreaterThan(0);
    expect(first.failed.length).toBeGreaterThan(0);
    expect(first.stored.length + first.failed.length).toBe(sops.length);
    expect(new Set(first.failed.map((f) => f.reason))).toEqual(new Set([OUT_OF_RESOURCES]));
    expect(first.warning).toMatch(/storage is full/);
  });

  it('answers C-STORE with A700, or refuses the association as transient where even its audit record finds no room', async () => {
    const f = join(work, 'ct.dcm');
    await writeFile(f, instance(uid(30), 99));
    // What the refused parts' cleanup freed, and the index's unused pages, taken too: the volume is full to the byte.
    await volume.fill();
    const r = await storescuTo(s.dicomPort, 'FULLSCU', [f]);
    // SQLite: the index, whose ledger records every association, is on the full volume. PostgreSQL: only the blobs.
    if (backend === 'sqlite')
      expect(r.stderr).toMatch(
        /Association Rejected[\s\S]*Result: Rejected Transient[\s\S]*Reason: Local Limit Exceeded/,
      );
    else expect(r.stderr).toMatch(REFUSED_OUT_OF_RESOURCES);
  });

  it('refuses a read whose audit record finds no room with 507 problem+json, and serves it once space is freed', async () => {
    const full = await studies(s);
    if (backend === 'sqlite') {
      // The index and its ledger are on the full volume: nothing leaves without its audit record.
      expect(full.status).toBe(507);
      expect(JSON.parse(full.body)).toMatchObject({ code: 'storage.full', status: 507 });
    } else {
      expect(full.status).toBe(200);
    }
    await volume.grow(96);
    const after = await studies(s);
    expect(after.status).toBe(200);
    const [row] = JSON.parse(after.body) as Json[];
    expect(row!['00201208']!.Value).toEqual([first.stored.length]);
  });

  it('kept exactly the referenced instances, whole: rows, one blob each, no temp files, a ledger that verifies', async () => {
    expect((await instanceRows(s)).sort()).toEqual([...first.stored].sort());
    expect(await fileNames(join(volume.dir, 'data', 'blobs', 'objects'))).toHaveLength(first.stored.length);
    const tmp = join(volume.dir, 'data', 'blobs', 'tmp');
    for (const owner of await readdir(tmp)) expect(await readdir(join(tmp, owner))).toEqual([]);
    const sop = first.stored[0]!;
    const res = await fetch(`${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}`, {
      headers: { Authorization: `Bearer ${s.token}`, Accept: 'multipart/related; type="application/dicom"' },
    });
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.includes(instance(sop, sops.indexOf(sop) + 1))).toBe(true);
    const report = await s.app.audit.verify(systemPrincipal('test'));
    expect(report.ok).toBe(true);
    expect(await storeFailures(s)).toContain('storage.full');
  });

  it('stores the refused instances once there is room again', async () => {
    const refused = first.failed.map((f) => f.sop!);
    const again = await stow(
      s,
      refused.map((sop) => instance(sop, sops.indexOf(sop) + 1)),
    );
    expect(again.status).toBe(200);
    expect(again.stored.sort()).toEqual([...refused].sort());
    expect((await instanceRows(s)).sort()).toEqual([...sops].sort());
  });
});
