import { readFile, rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { captureIO } from './support/cli-io.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import {
  blobFileOf,
  ledgerHead,
  ledgerSince,
  postStow,
  shareIndexWithCli,
  startTestServer,
  type TestServer,
} from './support/test-server.js';

/** The fixity status the index of `s` holds for an instance. */
async function fixityStatus(s: TestServer, sop: string): Promise<string | null> {
  const row = await s.app.index.db
    .selectFrom('instances')
    .select('fixity_status')
    .where('sop_instance_uid', '=', sop)
    .executeTakeFirstOrThrow();
  return row.fixity_status;
}

describe.each(backends())('fixity on %s', (backend) => {
  let s: TestServer;
  const studyUid = uid(1);
  const series = uid(2);
  const sops = Array.from({ length: 6 }, (_, i) => uid(10 + i));
  const auth = () => ({ Authorization: `Bearer ${s.token}` });
  const blobFile = (sop: string) => blobFileOf(s, sop);
  const statusOf = (sop: string) => fixityStatus(s, sop);

  beforeAll(async () => {
    s = await startTestServer(backend);
    const { body, contentType } = stowBody(
      sops.map((sop, i) => ({
        bytes: makeInstance({
          studyUid,
          seriesUid: series,
          sopInstanceUid: sop,
          patientId: 'FIX',
          instanceNumber: i + 1,
        }),
      })),
    );
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    expect(res.status).toBe(200);
    await shareIndexWithCli(s);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('runs the scheduled pass in resumable slices under a lease, then waits for the interval', async () => {
    const stop = new AbortController();
    const first = await s.app.fixity.runScheduled({
      intervalSeconds: 3600,
      signal: stop.signal,
      onProgress: (p) => p.checked === 2 && stop.abort(),
    });
    expect(first).toMatchObject({ checked: 2, complete: false });
    // Another process holds the job: this one does nothing.
    await s.app.index.db
      .updateTable('job_state')
      .set({ lease_owner: 'other-node', lease_until: new Date(Date.now() + 60_000).toISOString() })
      .where('name', '=', 'fixity')
      .execute();
    expect(await s.app.fixity.runScheduled({ intervalSeconds: 3600 })).toBeUndefined();
    await s.app.index.db
      .updateTable('job_state')
      .set({ lease_owner: null, lease_until: null })
      .where('name', '=', 'fixity')
      .execute();
    const rest = await s.app.fixity.runScheduled({ intervalSeconds: 3600 });
    expect(rest).toMatchObject({ checked: 4, ok: 4, corrupt: [], complete: true });
    for (const sop of sops) expect(await statusOf(sop)).toBe('ok');
    expect(await s.app.fixity.runScheduled({ intervalSeconds: 3600 })).toBeUndefined();
    const [pass] = await s.app.auditStore.search({ action: ['fixity-check'], limit: 1 });
    expect(pass).toMatchObject({
      outcome: 'success',
      objects: { count: 6 },
      detail: { kind: 'scheduled', complete: true },
    });
  });

  it('holds to its read rate', async () => {
    const bytes = (
      await s.app.index.db
        .selectFrom('instances')
        .select((eb) => eb.fn.sum<number>('size').as('n'))
        .executeTakeFirstOrThrow()
    ).n;
    const rate = Number(bytes) * 4; // the whole set in a quarter of a second, at most
    const report = await s.app.fixity.runPass(systemPrincipal('test'), { bytesPerSecond: rate });
    expect(report.seconds).toBeGreaterThanOrEqual(0.24);
  });

  it('`custos fixity run` finds a flipped byte and a missing file, marks and alerts, and retrieve refuses them', async () => {
    const flipped = await blobFile(sops[1]!);
    const bytes = await readFile(flipped);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x40;
    await writeFile(flipped, bytes);
    await rm(await blobFile(sops[4]!));

    const out = captureIO(s.dataDir);
    const code = await main(['fixity', 'run', '--data', s.dataDir], out);
    expect(code, out.stderr).toBe(1);
    expect(JSON.parse(out.stdout.trim().split('\n').at(-1)!)).toEqual({ checked: 6, ok: 4, corrupt: 2 });
    expect(out.stderr).toContain(`CORRUPT ${sops[1]}`);
    expect(out.stderr).toContain(`CORRUPT ${sops[4]}`);
    expect(await statusOf(sops[1]!)).toBe('corrupt');
    expect(await statusOf(sops[4]!)).toBe('corrupt');
    expect(await statusOf(sops[0]!)).toBe('ok');

    const alerts = await s.app.auditStore.search({ action: ['alert'], studyUid, limit: 10 });
    expect(alerts.map((a) => a.objects?.sopInstanceUids?.[0]).sort()).toEqual([sops[1], sops[4]].sort());
    expect(alerts[0]!.detail).toMatchObject({ alert: 'object-integrity', found: 'fixity' });

    const bad = await fetch(`${s.dicomweb}/studies/${studyUid}/series/${series}/instances/${sops[1]}`, {
      headers: auth(),
    });
    expect(bad.status).toBe(500);
    expect(await bad.json()).toMatchObject({
      code: 'object.corrupt',
      detail: expect.stringContaining(sops[1]!),
    });
    // The study goes without them: 206 (Partial Content) and a Warning naming them (until 6 Dec 2026 a 500).
    const since = await ledgerHead(s);
    const whole = await fetch(`${s.dicomweb}/studies/${studyUid}`, { headers: auth() });
    expect(whole.status).toBe(206);
    const warning = whole.headers.get('warning')!;
    expect(warning).toMatch(/^299 \S+\/dicom-web "2 of 6 instances left out: instances /);
    for (const sop of [sops[1]!, sops[4]!]) expect(warning).toContain(sop);
    const body = Buffer.from(await whole.arrayBuffer());
    const served = sops.filter((sop) => body.includes(Buffer.from(sop)));
    expect(served.sort()).toEqual([sops[0], sops[2], sops[3], sops[5]].sort());
    // The ledger says which were not served, and why.
    const unserved = (await ledgerSince(s, since)).find(
      (r) => r.action === 'view-pixels' && r.outcome === 'failure',
    );
    expect(unserved?.objects?.sopInstanceUids?.slice().sort()).toEqual([sops[1], sops[4]].sort());
    expect(unserved?.detail).toMatchObject({ unserved: 'object.corrupt' });
    // Every instance damaged: the series is refused whole.
    const onlyDamaged = await fetch(
      `${s.dicomweb}/studies/${studyUid}/series/${series}/instances/${sops[4]}`,
      { headers: { ...auth(), Accept: 'multipart/related; type="application/dicom"' } },
    );
    expect(onlyDamaged.status).toBe(500);
    const good = await fetch(`${s.dicomweb}/studies/${studyUid}/series/${series}/instances/${sops[0]}`, {
      headers: auth(),
    });
    expect(good.status).toBe(200);
    await good.arrayBuffer();
    // Metadata stays readable: the header is in the index, not in the damaged blob.
    const meta = await fetch(
      `${s.dicomweb}/studies/${studyUid}/series/${series}/instances/${sops[1]}/metadata`,
      {
        headers: auth(),
      },
    );
    expect(meta.status).toBe(200);
    expect(s.unexpected).toEqual([]);
  });

  it('answers a read of an object whose file went missing since the last pass as object.corrupt, alerts and marks it', async () => {
    // Until 6 Dec 2026 the client saw the connection cut (no status), and nothing was alerted or marked.
    await rm(await blobFile(sops[5]!));
    const url = `${s.dicomweb}/studies/${studyUid}/series/${series}/instances/${sops[5]}`;
    const first = await fetch(url, { headers: auth() });
    expect(first.status).toBe(500);
    expect(first.headers.get('content-type')).toContain('application/problem+json');
    expect(await first.json()).toMatchObject({
      code: 'object.corrupt',
      detail: expect.stringContaining(sops[5]!),
    });
    expect(await statusOf(sops[5]!)).toBe('corrupt');
    const alerts = await s.app.auditStore.search({ action: ['alert'], studyUid, limit: 10 });
    expect(alerts.find((a) => a.objects?.sopInstanceUids?.[0] === sops[5])?.detail).toMatchObject({
      alert: 'object-integrity',
    });
    // WADO-URI is refused the same way, before a byte, now that it is marked.
    const uri = await fetch(
      `${s.url}/wado?requestType=WADO&studyUID=${studyUid}&seriesUID=${series}&objectUID=${sops[5]}&contentType=application%2Fdicom`,
      { headers: auth() },
    );
    expect(uri.status).toBe(500);
    expect(s.unexpected).toEqual([]);
  });
});

describe.each(backends())('fixity of a study whose data key is gone, on %s', (backend) => {
  let s: TestServer;
  const keyless = { studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: uid(3) };
  const sound = { studyUid: uid(4), seriesUid: uid(5), sopInstanceUid: uid(6) };
  beforeAll(async () => {
    s = await startTestServer(backend);
    const res = await postStow(s, [
      makeInstance({ ...keyless, patientId: 'KEYLESS' }),
      makeInstance({ ...sound, patientId: 'SOUND' }),
    ]);
    expect(res.status).toBe(200);
    await shareIndexWithCli(s);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('`custos fixity run` names its objects unreadable and goes on with the other studies', async () => {
    // Until 6 Dec 2026 the pass stopped at the first such object: exit 2, "no data key for the study: its objects
    // cannot be decrypted", no study named, no ledger record, and nothing after it verified.
    await s.app.index.db.deleteFrom('study_keys').where('study_uid', '=', keyless.studyUid).execute();
    const out = captureIO(s.dataDir);
    const code = await main(['fixity', 'run', '--data', s.dataDir], out);
    expect(code, out.stderr).toBe(1);
    expect(JSON.parse(out.stdout.trim().split('\n').at(-1)!)).toEqual({ checked: 2, ok: 1, corrupt: 1 });
    expect(out.stderr).toContain(`CORRUPT ${keyless.sopInstanceUid} (study ${keyless.studyUid}): unreadable`);
    const status = (sop: string) => fixityStatus(s, sop);
    expect(await status(keyless.sopInstanceUid)).toBe('corrupt');
    expect(await status(sound.sopInstanceUid)).toBe('ok');
    const [pass] = await s.app.auditStore.search({ action: ['fixity-check'], limit: 1 });
    expect(pass).toMatchObject({ outcome: 'failure' });
    const [alert] = await s.app.auditStore.search({
      action: ['alert'],
      studyUid: keyless.studyUid,
      limit: 1,
    });
    expect(alert?.detail).toMatchObject({ alert: 'object-integrity', found: 'fixity' });
  });
});
