// A disk that fails under a running server: ext4 with errors=remount-ro (Debian's default) refuses every write with
// EROFS once it has seen an I/O error. New objects are refused with a status that says "later" (C-STORE A700,
// STOW-RS FailureReason A700, 503 with Retry-After), nothing is stored half-way, the server stays up, the operator
// is told once and /api/health says so. Until 5 Dec 2026 each request got "500 internal error", an association
// was aborted, and the log filled with EROFS stack traces.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { storescuTo } from './support/dcmtk.js';
import { fileNames } from './support/files.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { postStow, stopThenCleanUp, type TestServer } from './support/test-server.js';
import { ext4, serverOnVolume } from './support/volumes.js';

type Json = Record<string, { vr: string; Value?: unknown[] }>;

describe.each(backends())('a data directory whose disk fails, on %s', (backend) => {
  let s: TestServer;
  let volume: Awaited<ReturnType<typeof ext4>>;
  let work: string;
  const study = uid(1);
  const series = uid(2);
  const sops = [uid(3), uid(4), uid(5)];
  const late = uid(6);
  const midway = uid(7);
  let midwayAnswer: { status: number; warning: string; body: Json };
  const instance = (sop: string) => makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: sop });
  const get = (path: string, accept = 'application/dicom+json') =>
    fetch(`${s.dicomweb}${path}`, { headers: { Authorization: `Bearer ${s.token}`, Accept: accept } });
  const health = async () => (await fetch(`${s.url}/api/health`)).json();

  beforeAll(async () => {
    volume = await ext4(64);
    work = await mkdtemp(join(tmpdir(), 'custos-unwritable-'));
    s = await serverOnVolume(backend, volume.dir, 'DISKSCU');
    expect((await postStow(s, sops.map(instance))).status).toBe(200);
    await writeFile(join(work, 'late.dcm'), instance(late));
    expect(await health()).toEqual({ status: 'ok', storage: 'ok', index: 'ok' });
    // The disk fails while an object is on its way: its first half is being written when the error comes.
    const big = makeInstance({
      studyUid: study,
      seriesUid: series,
      sopInstanceUid: midway,
      rows: 1024,
      columns: 1024,
    });
    const { body, contentType } = stowBody([{ bytes: big }]);
    let send!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({ start: (c) => void (send = c) });
    const response = fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${s.token}`,
        'Content-Type': contentType,
        Accept: 'application/dicom+json',
      },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    send.enqueue(body.subarray(0, body.length >> 1));
    const tmp = join(volume.dir, 'data', 'blobs', 'tmp');
    const writing = async () =>
      (await Promise.all((await readdir(tmp)).map((o) => readdir(join(tmp, o))))).some((f) => f.length > 0);
    const deadline = Date.now() + 10_000;
    while (!(await writing())) {
      if (Date.now() > deadline) throw new Error('the object being sent never reached a temp file');
      await new Promise((r) => setTimeout(r, 10));
    }
    await volume.fail();
    send.enqueue(body.subarray(body.length >> 1));
    send.close();
    const res = await response;
    midwayAnswer = {
      status: res.status,
      warning: res.headers.get('warning') ?? '',
      body: (await res.json()) as Json,
    };
  }, 120_000);
  afterAll(async () => {
    const unexpected = await stopThenCleanUp(
      s,
      async () => volume?.unmount(),
      () => rm(work, { recursive: true, force: true }),
    );
    expect(unexpected).toEqual([]);
    // It stopped all the same; with SQLite the ledger's closing checkpoint had nowhere to go, and the log says so.
    if (backend === 'sqlite')
      expect(s.notices.at(-1)).toMatch(/^the ledger was not sealed at shutdown: the archive cannot write/);
  });

  it('fails the object whose write the disk refused midway with FailureReason A700, naming the read-only volume', () => {
    expect(midwayAnswer.status).toBe(409);
    const failed = (midwayAnswer.body['00081198']?.Value ?? []) as Json[];
    expect(failed.map((f) => [f['00081155']?.Value?.[0], f['00081197']!.Value![0]])).toEqual([
      [midway, 0xa700],
    ]);
    expect(midwayAnswer.warning).toMatch(
      /the archive cannot write to its storage \(the blob volume is read-only\)/,
    );
  });

  it('tells the operator once, unasked, and says on /api/health that storage refuses writes', async () => {
    // The volumes are measured every 5 s while the server runs, whether or not anything is stored.
    const deadline = Date.now() + 15_000;
    while (!s.notices.some((l) => l.includes('refuses writes')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(s.notices).toEqual([
      expect.stringMatching(
        backend === 'sqlite'
          ? /^the blob volume \(.*\) refuses writes \(EROFS: read-only file system\): nothing can be stored or recorded, so nothing is served either, until/
          : /^the blob volume \(.*\) refuses writes \(EROFS: read-only file system\): nothing can be stored until/,
      ),
    ]);
    expect(await health()).toEqual({ status: 'ok', storage: 'unwritable', index: 'ok' });
  });

  it('refuses STOW-RS parts with FailureReason A700 and a Warning naming the volume and its error', async () => {
    const res = await postStow(s, [instance(late)], { Accept: 'application/dicom+json' });
    const body = (await res.json()) as Json;
    expect(res.status).toBe(409);
    const failed = (body['00081198']?.Value ?? []) as Json[];
    expect(failed.map((f) => f['00081197']!.Value![0])).toEqual([0xa700]);
    const warning = res.headers.get('warning');
    expect(warning).toMatch(/the blob volume refuses writes: EROFS: read-only file system/);
    // With SQLite the ledger is on the failed disk too: the refusal could not be recorded, and the sender is told.
    if (backend === 'sqlite')
      expect(warning).toMatch(
        /the audit ledger could not record this failure either: .*the index's volume is read-only/,
      );
    else expect(warning).not.toMatch(/could not record/);
  });

  it('answers C-STORE with A700, or refuses the association as transient where its audit record cannot be written', async () => {
    const r = await storescuTo(s.dicomPort, 'DISKSCU', [join(work, 'late.dcm')]);
    if (backend === 'sqlite')
      expect(r.stderr).toMatch(
        /Association Rejected[\s\S]*Result: Rejected Transient[\s\S]*Reason: Local Limit Exceeded/,
      );
    else expect(r.stderr).toMatch(/Store Response \((Refused: OutOfResources|Unknown Status: 0xa700)\)/i);
  });

  it('serves what was stored where the ledger is elsewhere (PostgreSQL), and 503 where it is on the failed disk', async () => {
    const res = await get(`/studies?StudyInstanceUID=${study}&includefield=00201208`);
    if (backend === 'sqlite') {
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('60');
      expect(await res.json()).toMatchObject({
        code: 'storage.unwritable',
        detail: expect.stringMatching(/the index's volume is read-only/),
      });
      return;
    }
    expect(res.status).toBe(200);
    expect(((await res.json()) as Json[])[0]!['00201208']!.Value).toEqual([sops.length]);
    const one = await get(
      `/studies/${study}/series/${series}/instances/${sops[0]}`,
      'multipart/related; type="application/dicom"',
    );
    expect(one.status).toBe(200);
    expect(Buffer.from(await one.arrayBuffer()).includes(instance(sops[0]!))).toBe(true);
  });

  it('stored nothing half-way: the instances stored before, one blob each, only the refused temp file, the server still up', async () => {
    const rows = await s.app.index.db.selectFrom('instances').select('sop_instance_uid').execute();
    expect(rows.map((r) => r.sop_instance_uid).sort()).toEqual([...sops].sort());
    expect(await fileNames(join(volume.dir, 'data', 'blobs', 'objects'))).toHaveLength(sops.length);
    // The object refused midway left its temp file: a volume that refuses writes refuses the unlink too. It has no
    // name a reader knows, and the first start after the repair sweeps it (tmp-ownership.test.ts). The objects
    // refused before they were read left nothing.
    const tmp = join(volume.dir, 'data', 'blobs', 'tmp');
    const left = (await Promise.all((await readdir(tmp)).map((o) => readdir(join(tmp, o))))).flat();
    expect(left).toEqual([expect.stringMatching(/^[0-9a-f]{32}\.partial$/)]);
    expect((await fetch(`${s.url}/api/health`)).status).toBe(200);
  });
});
