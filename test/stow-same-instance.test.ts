// One STOW-RS request holding the same SOP Instance UID twice, with different contents: the first part is kept
// (archived or quarantined, as validation decides), the second fails as a conflict (0x0111) naming where the
// first went, and nothing of it stays behind. Until 7 Dec 2026 the outcome followed the backend's timing: both
// parts could be quarantined as two entries, or one archived and the other quarantined beside it (PostgreSQL),
// or the first part fail against the second (SQLite).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { fileNames } from './support/files.js';
import { makeInstance, stowBody, uid, type FixtureSpec } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/test-server.js';

type Item = Record<string, { vr: string; Value?: unknown[] }>;
const MODALITY = 0x00080060;
const DUPLICATE_SOP_INSTANCE = 0x0111;
const DATA_SET_MISMATCH_WARNING = 0xb007;

describe.each(backends())('STOW-RS of one SOP Instance UID twice on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend);
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
  });

  async function stowTwice(first: Partial<FixtureSpec>, second: Partial<FixtureSpec>) {
    const ids = { studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: uid(3) };
    const { body, contentType } = stowBody([
      { bytes: makeInstance({ ...ids, ...first }) },
      { bytes: makeInstance({ ...ids, ...second }) },
    ]);
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    const json = (await res.json()) as Record<string, { Value: Item[] }>;
    const db = s.app.index.db;
    const archived = await db
      .selectFrom('instances')
      .select('blob_id')
      .where('sop_instance_uid', '=', ids.sopInstanceUid)
      .execute();
    const held = await db
      .selectFrom('quarantine')
      .select(['id', 'blob_id'])
      .where('sop_instance_uid', '=', ids.sopInstanceUid)
      .execute();
    const failures = await db
      .selectFrom('audit_ledger')
      .select('record')
      .where('action', '=', 'store')
      .where('outcome', '=', 'failure')
      .execute();
    return {
      uid: ids.sopInstanceUid,
      status: res.status,
      warning: res.headers.get('warning') ?? '',
      referenced: json['00081199']?.Value ?? [],
      failed: json['00081198']?.Value ?? [],
      archived,
      held,
      failures: failures.filter((f) => f.record.includes(ids.sopInstanceUid)),
    };
  }

  /** Every blob file is an archived instance's or a quarantine entry's: a refused part left none behind. */
  async function expectNoStrayBlobs() {
    const db = s.app.index.db;
    const owned = [
      ...(await db.selectFrom('instances').select('blob_id').execute()),
      ...(await db.selectFrom('quarantine').select('blob_id').execute()),
    ].map((r) => r.blob_id);
    expect((await fileNames(join(s.dataDir, 'blobs', 'objects'))).sort()).toEqual(owned.sort());
    expect(await fileNames(join(s.dataDir, 'blobs', 'tmp'))).toEqual([]);
  }

  const conflictItem = (r: Awaited<ReturnType<typeof stowTwice>>) => {
    expect(r.failed).toHaveLength(1);
    expect(r.failed[0]!['00081155']!.Value).toEqual([r.uid]);
    expect(r.failed[0]!['00081197']!.Value).toEqual([DUPLICATE_SOP_INSTANCE]);
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]!.record).toContain('ingest.conflict');
  };

  it('archives the first of two valid parts and fails the second as a conflict', async () => {
    const r = await stowTwice({}, { studyDescription: 'SECOND' });
    expect(r.status).toBe(202);
    expect(r.referenced).toHaveLength(1);
    expect(r.referenced[0]!['00081190']).toBeDefined();
    conflictItem(r);
    expect(r.warning).toContain(
      `part 2 (${r.uid}): SOP instance ${r.uid} is already stored with different content`,
    );
    expect(r.archived).toHaveLength(1);
    expect(r.held).toHaveLength(0);
    await expectNoStrayBlobs();
  });

  it('quarantines the first of two defective parts and fails the second as a conflict naming the entry', async () => {
    const r = await stowTwice({ omit: [MODALITY] }, { omit: [MODALITY], studyDescription: 'SECOND' });
    expect(r.status).toBe(202);
    expect(r.referenced).toHaveLength(1);
    expect(r.referenced[0]!['00081196']!.Value).toEqual([DATA_SET_MISMATCH_WARNING]);
    conflictItem(r);
    expect(r.held).toHaveLength(1);
    expect(r.warning).toContain(
      `part 2 (${r.uid}): SOP instance ${r.uid} is already held in quarantine (${r.held[0]!.id}) with different content; it was not stored`,
    );
    expect(r.archived).toHaveLength(0);
    await expectNoStrayBlobs();
  });

  it('keeps a quarantined first part and refuses a valid second one rather than archiving it beside the entry', async () => {
    const r = await stowTwice({ omit: [MODALITY] }, { studyDescription: 'SECOND' });
    expect(r.status).toBe(202);
    expect(r.referenced).toHaveLength(1);
    expect(r.referenced[0]!['00081190']).toBeUndefined();
    conflictItem(r);
    expect(r.held).toHaveLength(1);
    expect(r.warning).toContain(
      `part 2 (${r.uid}): SOP instance ${r.uid} is already held in quarantine (${r.held[0]!.id})`,
    );
    expect(r.archived).toHaveLength(0);
    await expectNoStrayBlobs();
  });

  it('keeps an archived first part and refuses a defective second one rather than quarantining it', async () => {
    const r = await stowTwice({}, { omit: [MODALITY], studyDescription: 'SECOND' });
    expect(r.status).toBe(202);
    expect(r.referenced).toHaveLength(1);
    expect(r.referenced[0]!['00081190']).toBeDefined();
    conflictItem(r);
    expect(r.warning).toContain(
      `part 2 (${r.uid}): SOP instance ${r.uid} is already stored with different content`,
    );
    expect(r.archived).toHaveLength(1);
    expect(r.held).toHaveLength(0);
    await expectNoStrayBlobs();
  });

  it('takes the same defective object twice as one quarantine entry, not a conflict', async () => {
    const r = await stowTwice({ omit: [MODALITY] }, { omit: [MODALITY] });
    expect(r.status).toBe(202);
    expect(r.failed).toHaveLength(0);
    expect(r.referenced).toHaveLength(2);
    expect(r.held).toHaveLength(1);
    expect(r.failures).toHaveLength(0);
    await expectNoStrayBlobs();
  });
});
