// Issue 6: the fixity job and `custos fixity run` verify the raw bytes kept in quarantine too, and report and
// alert a corrupt quarantined blob as they do an archived one. Runs on every backend.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { backends } from './support/backends.js';
import { captureIO } from './support/cli-io.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { shareIndexWithCli, startTestServer, type TestServer } from './support/test-server.js';

const MODALITY = 0x00080060;

describe.each(backends())('fixity of quarantined objects on %s', (backend) => {
  let s: TestServer;
  const studyUid = uid(1);
  const series = uid(2);
  const archived = uid(3);
  const held = [uid(4), uid(5)];
  const entry = async (sop: string) =>
    s.app.index.db
      .selectFrom('quarantine')
      .select(['id', 'blob_id', 'fixity_status'])
      .where('sop_instance_uid', '=', sop)
      .executeTakeFirstOrThrow();
  const blobFile = async (blobId: string) => {
    const rel = (await readdir(join(s.dataDir, 'blobs', 'objects'), { recursive: true })).find((f) =>
      f.endsWith(blobId),
    );
    return join(s.dataDir, 'blobs', 'objects', rel!);
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    const objects = [
      makeInstance({ studyUid, seriesUid: series, sopInstanceUid: archived, patientId: 'FIXQ' }),
      // Without Modality (Type 1): quarantined at the default level, raw bytes kept encrypted.
      ...held.map((sop) =>
        makeInstance({
          studyUid,
          seriesUid: series,
          sopInstanceUid: sop,
          patientId: 'FIXQ',
          omit: [MODALITY],
        }),
      ),
    ];
    const { body, contentType } = stowBody(objects.map((bytes) => ({ bytes })));
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    expect(res.status).toBe(202);
    await shareIndexWithCli(s);
  });
  afterAll(async () => {
    await s?.stop();
    expect(s.unexpected).toEqual([]);
  });

  it('the scheduled pass goes on from the archive into the quarantine, resumably', async () => {
    const stop = new AbortController();
    const first = await s.app.fixity.runScheduled({
      intervalSeconds: 3600,
      signal: stop.signal,
      onProgress: (p) => {
        expect(p.total).toBe(3);
        if (p.checked === 2) stop.abort();
      },
    });
    expect(first).toMatchObject({ checked: 2, complete: false });
    const cursor = await s.app.index.db
      .selectFrom('job_state')
      .select('cursor')
      .where('name', '=', 'fixity')
      .executeTakeFirstOrThrow();
    expect(cursor.cursor).toMatch(/^q:/);
    const rest = await s.app.fixity.runScheduled({ intervalSeconds: 3600 });
    expect(rest).toMatchObject({ checked: 1, ok: 1, corrupt: [], complete: true });
    for (const sop of held) expect((await entry(sop)).fixity_status).toBe('ok');
  });

  it('`custos fixity run` reports a corrupt quarantined blob, marks it and records an alert', async () => {
    const bad = await entry(held[1]!);
    const file = await blobFile(bad.blob_id);
    const bytes = await readFile(file);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x40;
    await writeFile(file, bytes);

    const out = captureIO(s.dataDir);
    const code = await main(['fixity', 'run', '--data', s.dataDir], out);
    expect(code, out.stderr).toBe(1);
    expect(JSON.parse(out.stdout.trim().split('\n').at(-1)!)).toEqual({ checked: 3, ok: 2, corrupt: 1 });
    expect(out.stderr).toContain(`CORRUPT ${held[1]} (study ${studyUid}, in quarantine ${bad.id})`);
    expect((await entry(held[1]!)).fixity_status).toBe('corrupt');
    expect((await entry(held[0]!)).fixity_status).toBe('ok');

    const alerts = await s.app.auditStore.search({ action: ['alert'], studyUid, limit: 20 });
    const integrity = alerts.filter((a) => (a.detail as { alert?: string }).alert === 'object-integrity');
    expect(integrity).toHaveLength(1);
    expect(integrity[0]).toMatchObject({
      outcome: 'failure',
      objects: { sopInstanceUids: [held[1]], quarantineId: bad.id },
      detail: { alert: 'object-integrity', found: 'fixity', where: 'quarantine' },
    });
  });
});
