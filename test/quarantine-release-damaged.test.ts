import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const MODALITY = 0x00080060;

/**
 * docs/fixity.md: a quarantined object whose stored bytes are damaged is not released ("a release of it fails on
 * the same checks"). Until 7 Dec 2026 a release read only the header's chunks: damage in the pixel data of an
 * object larger than one chunk (256 KiB) went unseen, and the damaged object was released into the archive.
 */
describe.each(backends())('releasing a damaged quarantined object on %s', (backend) => {
  let s: TestServer;
  let steward: string;
  const studyUid = uid(1);
  const sop = uid(3);

  beforeAll(async () => {
    s = await startTestServer(backend);
    const operator = systemPrincipal('test');
    await s.app.accounts.add(operator, { username: 'steward', role: 'data-steward' });
    steward = (await s.app.auth.createToken(operator, 'steward')).token;
    // 512 × 512 × 16 bits: pixel data over two chunks; without Modality (Type 1) it is quarantined.
    const bytes = makeInstance({
      studyUid,
      seriesUid: uid(2),
      sopInstanceUid: sop,
      patientId: 'RELDMG',
      rows: 512,
      columns: 512,
      omit: [MODALITY],
    });
    const { body, contentType } = stowBody([{ bytes }]);
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    expect(res.status).toBe(202);
  });
  afterAll(async () => {
    await s?.stop();
  });

  const post = (path: string, body: unknown) =>
    fetch(`${s.url}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${steward}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('refuses the release, marks the entry corrupt and alerts, and archives nothing', async () => {
    const entry = await s.app.index.db
      .selectFrom('quarantine')
      .select(['id', 'blob_id'])
      .where('sop_instance_uid', '=', sop)
      .executeTakeFirstOrThrow();
    const objects = join(s.dataDir, 'blobs', 'objects');
    const rel = (await readdir(objects, { recursive: true })).find((f) => f.endsWith(entry.blob_id));
    const file = join(objects, rel!);
    const bytes = await readFile(file);
    // In the last chunk: the pixel data, far past the header.
    const at = bytes.length - 1000;
    bytes[at] = bytes[at]! ^ 0x40;
    await writeFile(file, bytes);

    expect((await post(`/api/quarantine/${entry.id}/corrections`, { Modality: 'CT' })).status).toBe(200);
    const res = await post(`/api/quarantine/${entry.id}/release`, {});
    expect(res.status).toBe(500);
    const problem = (await res.json()) as { code: string; detail: string };
    expect(problem.code).toBe('object.corrupt');
    expect(problem.detail).toContain(entry.id);

    const instance = await s.app.index.db
      .selectFrom('instances')
      .select('sop_instance_uid')
      .where('sop_instance_uid', '=', sop)
      .executeTakeFirst();
    expect(instance).toBeUndefined();
    const after = await s.app.index.db
      .selectFrom('quarantine')
      .select(['status', 'fixity_status'])
      .where('id', '=', entry.id)
      .executeTakeFirstOrThrow();
    expect(after).toEqual({ status: 'quarantined', fixity_status: 'corrupt' });
    const alerts = await s.app.auditStore.search({ action: ['alert'], studyUid, limit: 20 });
    const integrity = alerts.filter((a) => (a.detail as { alert?: string }).alert === 'object-integrity');
    expect(integrity).toHaveLength(1);
    expect(integrity[0]).toMatchObject({
      outcome: 'failure',
      objects: { sopInstanceUids: [sop], quarantineId: entry.id },
      detail: { alert: 'object-integrity', found: 'release', where: 'quarantine' },
    });
    // Refused again, before a byte is read, while the entry is known to be corrupt.
    const again = await post(`/api/quarantine/${entry.id}/release`, {});
    expect(again.status).toBe(500);
    expect(((await again.json()) as { code: string }).code).toBe('object.corrupt');
  });
});
