import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { blobFileOf, startTestServer, type TestServer } from './support/test-server.js';

/**
 * docs/fixity.md, "The scheduled pass": "When the pass ends a `fixity-check` record in the ledger says how many
 * objects were checked and which were corrupt." A pass runs in slices; until 7 Dec 2026 its record named only the
 * corrupt objects of its last slice, so damage found in an earlier slice ended in a `success` record naming none.
 */
describe.each(backends())('the scheduled fixity pass record on %s', (backend) => {
  let s: TestServer;
  const studyUid = uid(1);
  const series = uid(2);
  const sops = Array.from({ length: 4 }, (_, i) => uid(10 + i));

  // The system's time unless a test moves it on.
  let offset = 0;
  const clock = { now: () => new Date(Date.now() + offset) };

  beforeAll(async () => {
    s = await startTestServer(backend, { clock });
    const { body, contentType } = stowBody(
      sops.map((sop, i) => ({
        bytes: makeInstance({
          studyUid,
          seriesUid: series,
          sopInstanceUid: sop,
          patientId: 'FIXSCHED',
          instanceNumber: i + 1,
        }),
      })),
    );
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    expect(res.status).toBe(200);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('names the corrupt object an earlier slice found when the pass ends', async () => {
    // The first object in the pass's own order (the index's collation), damaged: the first slice finds it.
    const { sop_instance_uid: first } = await s.app.index.db
      .selectFrom('instances')
      .select('sop_instance_uid')
      .orderBy('sop_instance_uid')
      .limit(1)
      .executeTakeFirstOrThrow();
    const file = await blobFileOf(s, first);
    const bytes = await readFile(file);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x40;
    await writeFile(file, bytes);

    const stop = new AbortController();
    const slice = await s.app.fixity.runScheduled({
      intervalSeconds: 3600,
      signal: stop.signal,
      onProgress: (p) => p.checked === 2 && stop.abort(),
    });
    expect(slice).toMatchObject({ checked: 2, complete: false });
    expect(slice?.corrupt.map((c) => c.sopInstanceUid)).toEqual([first]);
    const rest = await s.app.fixity.runScheduled({ intervalSeconds: 3600 });
    expect(rest).toMatchObject({ checked: 2, ok: 2, complete: true });

    const [pass] = await s.app.auditStore.search({ action: ['fixity-check'], limit: 1 });
    expect(pass).toMatchObject({
      outcome: 'failure',
      objects: { count: 4, sopInstanceUids: [first] },
      detail: { kind: 'scheduled', complete: true, corrupt: 1 },
    });
  });

  it("gives the whole pass's wall-clock duration, from its first slice's start to its last one's end", async () => {
    // The last pass ended within the hour: two hours on, the next is due.
    offset += 2 * 3600_000;
    const stop = new AbortController();
    const slice = await s.app.fixity.runScheduled({
      intervalSeconds: 3600,
      signal: stop.signal,
      onProgress: (p) => p.checked === 2 && stop.abort(),
    });
    expect(slice).toMatchObject({ checked: 2, complete: false });
    const startedAt = (
      await s.app.index.db
        .selectFrom('job_state')
        .select('pass_started_at')
        .where('name', '=', 'fixity')
        .executeTakeFirstOrThrow()
    ).pass_started_at!;
    // The rest of the pass, three hours later (the scheduler's next slice).
    offset += 3 * 3600_000;
    const rest = await s.app.fixity.runScheduled({ intervalSeconds: 3600 });
    expect(rest).toMatchObject({ checked: 2, complete: true });
    expect(rest!.seconds).toBeLessThan(3600);
    const endedAt = (
      await s.app.index.db
        .selectFrom('job_state')
        .select('last_pass_completed_at')
        .where('name', '=', 'fixity')
        .executeTakeFirstOrThrow()
    ).last_pass_completed_at!;

    const [pass] = await s.app.auditStore.search({ action: ['fixity-check'], limit: 1 });
    expect(pass).toMatchObject({ detail: { kind: 'scheduled', complete: true } });
    expect(pass!.detail!.seconds).toBe((Date.parse(endedAt) - Date.parse(startedAt)) / 1000);
    expect(pass!.detail!.seconds).toBeGreaterThanOrEqual(3 * 3600);
  });
});
