// `custos fixity orphans`: blobs that nothing in the index refers to (a crash between a blob's commit and its
// index transaction leaves one) are listed, and removed on request; archived and quarantined objects never are.
// Runs on every backend.
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import type { StoredBlob } from '../src/ports/blob-store.js';
import { backends } from './support/backends.js';
import { captureIO } from './support/cli-io.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { shareIndexWithCli, startTestServer, type TestServer } from './support/test-server.js';

describe.each(backends())('orphan blobs on %s', (backend) => {
  let s: TestServer;
  const studyUid = uid(1);
  const held = uid(20);
  const auth = () => ({ Authorization: `Bearer ${s.token}` });
  const blobPath = (id: string) => join(s.dataDir, 'blobs', 'objects', id.slice(0, 2), id);
  const exists = (id: string) =>
    stat(blobPath(id)).then(
      () => true,
      () => false,
    );
  /** What a crash leaves between a blob's commit and its index transaction: a durable blob nothing refers to. */
  const strayBlob = async (): Promise<StoredBlob> => {
    const w = await s.app.blobs.create(randomBytes(32));
    await w.write(randomBytes(70_000));
    return w.commit();
  };
  const blobIds = async (table: 'instances' | 'quarantine') =>
    (await s.app.index.db.selectFrom(table).select('blob_id').execute()).map((r) => r.blob_id);
  const cli = async (...args: string[]) => {
    const io = captureIO(s.dataDir);
    const code = await main(['fixity', 'orphans', '--data', s.dataDir, ...args], io);
    return { code, io, summary: JSON.parse(io.stdout.trim().split('\n').at(-1)!) as Record<string, number> };
  };

  /** STOW-RS these objects; every one must be stored or quarantined. */
  const stow = async (objects: Buffer[]) => {
    const { body, contentType } = stowBody(objects.map((bytes) => ({ bytes })));
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType, Accept: 'application/dicom+json' },
      body,
    });
    expect(res.status).toBeLessThan(300);
  };
  /** Blobs in the store once set up: the instances, and the quarantined object's. */
  let blobs = 0;

  beforeAll(async () => {
    s = await startTestServer(backend);
    // Without Modality (Type 1): quarantined at the default level, its raw bytes kept as a blob.
    await stow([
      makeInstance({
        studyUid,
        seriesUid: uid(3),
        sopInstanceUid: held,
        patientId: 'ORPH',
        omit: [0x00080060],
      }),
    ]);
    expect(await blobIds('quarantine')).toHaveLength(1);
    // Instances until their blob ids start with every hex digit: the check compares one first digit at a time.
    for (let round = 0; round < 20; round++) {
      if (new Set((await blobIds('instances')).map((id) => id[0])).size === 16) break;
      await stow(
        Array.from({ length: 25 }, (_, i) =>
          makeInstance({
            studyUid,
            seriesUid: uid(2),
            sopInstanceUid: uid(1000 + round * 25 + i),
            patientId: 'ORPH',
          }),
        ),
      );
    }
    const ids = await blobIds('instances');
    expect(new Set(ids.map((id) => id[0])).size).toBe(16);
    blobs = ids.length + 1;
    await shareIndexWithCli(s);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('finds no orphan where every blob is an instance or a quarantine entry', async () => {
    const { code, summary } = await cli('--min-age-hours', '0');
    expect(code).toBe(0);
    expect(summary).toEqual({ listed: blobs, orphans: 0, removed: 0, young: 0 });
  });

  it('lists a blob nothing refers to, leaves it until --remove, then removes only it', async () => {
    const stray = await strayBlob();
    // Written just now: within the default age limit (24 h) it may be an ingest committing; not counted.
    const recent = await cli();
    expect(recent.code).toBe(0);
    expect(recent.summary).toEqual({ listed: blobs + 1, orphans: 0, removed: 0, young: blobs + 1 });

    const listed = await cli('--min-age-hours', '0');
    expect(listed.code, listed.io.stderr).toBe(1);
    expect(listed.summary).toEqual({ listed: blobs + 1, orphans: 1, removed: 0, young: 0 });
    expect(listed.io.stderr).toContain(`ORPHAN ${stray.blobId}`);
    expect(listed.io.stderr).toContain('--remove');
    expect(await exists(stray.blobId)).toBe(true);

    const removed = await cli('--min-age-hours', '0', '--remove');
    expect(removed.code, removed.io.stderr).toBe(0);
    expect(removed.summary).toEqual({ listed: blobs + 1, orphans: 1, removed: 1, young: 0 });
    expect(removed.io.stderr).toContain(`REMOVED ${stray.blobId}`);
    expect(await exists(stray.blobId)).toBe(false);
    for (const id of [...(await blobIds('instances')), ...(await blobIds('quarantine'))])
      expect(await exists(id)).toBe(true);

    // Every archived and quarantined object still reads back whole.
    const pass = await s.app.fixity.runPass(systemPrincipal('test'));
    expect(pass).toMatchObject({ checked: blobs, ok: blobs, corrupt: [] });
    const res = await fetch(`${s.dicomweb}/studies/${studyUid}`, { headers: auth() });
    expect(res.status).toBe(200);
    await res.arrayBuffer();

    // Each run is in the ledger, the removal with the blob's id (newest first; the fixity pass above came last).
    const runs = (await s.app.auditStore.search({ action: ['fixity-check'], limit: 10 })).filter(
      (r) => r.detail?.kind === 'orphan-blobs',
    );
    expect(runs.map((r) => [r.detail?.orphans, r.detail?.removed])).toEqual([
      [1, 1],
      [1, 0],
      [0, 0],
      [0, 0],
    ]);
    expect(runs[0]).toMatchObject({
      outcome: 'success',
      objects: { count: 1 },
      detail: { kind: 'orphan-blobs', blobIds: [stray.blobId] },
    });
  });

  it('rejects a --min-age-hours that is not a whole number', async () => {
    const io = captureIO(s.dataDir);
    expect(await main(['fixity', 'orphans', '--data', s.dataDir, '--min-age-hours', '-1'], io)).not.toBe(0);
    expect(io.stderr).toMatch(/whole number|-1/);
  });
});
