// A server killed (SIGKILL) in the middle of a STOW-RS upload: after restart no half-written object is visible,
// the index points at no missing blob, and the archive works.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/app/config.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { openApp } from '../src/app/custos-app.js';
import { makeInstance, uid } from './support/fixtures.js';
import { fileNames } from './support/files.js';
import { openStow, startChildServer } from './support/child-server.js';
import { backends, cliDatabases } from './support/backends.js';

describe.each(backends())('crash during STOW-RS (%s)', (backend) => {
  const databases = cliDatabases(backend);
  afterAll(() => databases.drop());
  it('leaves a consistent archive after SIGKILL mid-upload', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'custos-crash-'));
    await databases.configure(dataDir, 'crash');
    const { child, url, token } = await startChildServer(dataDir);
    const whole = uid(1);
    const first = makeInstance({ studyUid: uid(2), seriesUid: uid(3), sopInstanceUid: whole });
    const second = makeInstance({
      studyUid: uid(4),
      seriesUid: uid(5),
      sopInstanceUid: uid(6),
      rows: 512,
      columns: 512,
    });
    const req = openStow(url, token);
    req.on('error', () => undefined);
    req.write(
      Buffer.concat([
        Buffer.from('--K\r\nContent-Type: application/dicom\r\n\r\n'),
        first,
        Buffer.from('\r\n--K\r\nContent-Type: application/dicom\r\n\r\n'),
        second.subarray(0, second.length / 2),
      ]),
    );
    // Wait until the first instance is committed (QIDO sees only committed rows) and the second is being written.
    const committed = async () => {
      const res = await fetch(`${url}/dicom-web/instances?SOPInstanceUID=${whole}`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      return ((await res.json()) as unknown[]).length === 1;
    };
    for (let i = 0; i < 250 && !(await committed()); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await committed()).toBe(true);
    for (let i = 0; i < 100 && (await fileNames(join(dataDir, 'blobs', 'tmp'))).length === 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect((await fileNames(join(dataDir, 'blobs', 'tmp'))).length).toBe(1);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const app = await openApp(loadConfig({ env: {}, cwd: dataDir, flags: { dataDir } }));
    try {
      expect(await fileNames(join(dataDir, 'blobs', 'tmp'))).toEqual([]);
      const rows = await app.index.db
        .selectFrom('instances')
        .select(['sop_instance_uid', 'blob_id'])
        .execute();
      expect(rows.map((r) => r.sop_instance_uid)).toEqual([whole]);
      expect((await fileNames(join(dataDir, 'blobs', 'objects'))).sort()).toEqual(
        rows.map((r) => r.blob_id).sort(),
      );
      // The ledger committed with the index: one store record for the stored object, none for the half-sent one,
      // and the chain intact.
      const stores = await app.auditStore.search({ action: ['store'], outcome: 'success', limit: 10 });
      expect(stores.map((r) => r.objects?.sopInstanceUid)).toEqual([whole]);
      const report = await app.audit.verify(systemPrincipal('test'));
      expect(report.ok, JSON.stringify(report.problem)).toBe(true);
    } finally {
      await app.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
