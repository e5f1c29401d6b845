// The index rows of an instance are written while its blob is made durable, and commit only once it is: a blob
// that fails at that last step (its fdatasync, rename or directory fsync) leaves no row, no ledger record of a
// store, no file, and the other instances of the same request are stored.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustosError } from '../src/domain/errors.js';
import type { BlobStore, BlobWriter, StoredBlob } from '../src/ports/blob-store.js';
import { backends } from './support/backends.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { fileNames } from './support/files.js';
import { startTestServer, type TestServer } from './support/test-server.js';

type Json = Record<string, { vr: string; Value?: Json[] | string[] | number[] }>;

/**
 * The real store, except that the commit of an object whose bytes hold `failing` (its SOP Instance UID) fails
 * after the blob was sealed and made durable, and a delay later: as a failing directory fsync does, the file is
 * removed first. (Parts of one STOW-RS request are not committed in a fixed order.)
 */
function failingCommits(failing: string, events: string[]) {
  return (inner: BlobStore): BlobStore => ({
    read: (...args) => inner.read(...args),
    exists: (id) => inner.exists(id),
    list: (prefix) => inner.list(prefix),
    delete: (id) => inner.delete(id),
    sweepTemp: () => inner.sweepTemp(),
    async create(key: Buffer): Promise<BlobWriter> {
      const writer = await inner.create(key);
      const seen: Buffer[] = [];
      return {
        write: (chunk) => {
          seen.push(Buffer.from(chunk));
          return writer.write(chunk);
        },
        abort: () => writer.abort(),
        async commit(sealed?: (blob: StoredBlob) => void): Promise<StoredBlob> {
          const fails = Buffer.concat(seen).includes(failing);
          const stored = await writer.commit((blob) => {
            if (fails) events.push('sealed');
            sealed?.(blob);
          });
          if (!fails) return stored;
          // Long enough for the ingest to have written its rows in the open transaction.
          await new Promise((r) => setTimeout(r, 150));
          await inner.delete(stored.blobId);
          events.push('failed');
          throw new CustosError({ code: 'blob.write-failed', message: 'simulated directory fsync failure' });
        },
      };
    },
  });
}

describe.each(backends())('a blob that fails to become durable, on %s', (backend) => {
  let s: TestServer;
  const events: string[] = [];
  const sops = [uid(3), uid(4), uid(5)];
  beforeAll(async () => {
    s = await startTestServer(backend, { wrapBlobs: failingCommits(sops[1]!, events) });
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
  });

  it('is failed alone: no index row, no store record, no file; the other instances are stored', async () => {
    const studyUid = uid(1);
    const seriesUid = uid(2);
    const { body, contentType } = stowBody(
      sops.map((sopInstanceUid) => ({ bytes: makeInstance({ studyUid, seriesUid, sopInstanceUid }) })),
    );
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${s.token}`,
        'Content-Type': contentType,
        Accept: 'application/dicom+json',
      },
      body,
    });
    // PS3.18 §10.5.3: some instances stored, some failed.
    expect(res.status).toBe(202);
    const answer = (await res.json()) as Json;
    const uidsIn = (seq: string) =>
      ((answer[seq]?.Value ?? []) as Json[]).map((item) => (item['00081155']!.Value as string[])[0]);
    expect(uidsIn('00081199')).toEqual([sops[0], sops[2]]); // ReferencedSOPSequence
    expect(uidsIn('00081198')).toEqual([sops[1]]); // FailedSOPSequence
    // The failing blob had been sealed, so its rows were written before its commit failed: they were rolled back.
    expect(events).toEqual(['sealed', 'failed']);

    const rows = await s.app.index.db
      .selectFrom('instances')
      .select(['sop_instance_uid', 'blob_id'])
      .where('study_uid', '=', studyUid)
      .orderBy('sop_instance_uid')
      .execute();
    expect(rows.map((r) => r.sop_instance_uid).sort()).toEqual([sops[0], sops[2]].sort());
    const study = await s.app.index.db
      .selectFrom('studies')
      .select(['num_instances', 'num_series'])
      .where('study_uid', '=', studyUid)
      .executeTakeFirstOrThrow();
    expect(study).toEqual({ num_instances: 2, num_series: 1 });
    expect((await fileNames(join(s.dataDir, 'blobs', 'objects'))).sort()).toEqual(
      rows.map((r) => r.blob_id).sort(),
    );
    expect(await fileNames(join(s.dataDir, 'blobs', 'tmp'))).toEqual([]);

    const stores = await s.app.auditStore.search({ action: ['store'], limit: 20 });
    const stored = stores.filter((r) => r.outcome === 'success').map((r) => r.objects?.sopInstanceUid);
    expect(stored.sort()).toEqual([sops[0], sops[2]].sort());
    const failed = stores.filter((r) => r.outcome === 'failure');
    expect(failed.map((r) => r.objects?.sopInstanceUid)).toEqual([sops[1]]);
    expect(JSON.stringify(failed[0]!.detail)).toContain('blob.write-failed');
  });
});
