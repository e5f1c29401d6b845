// A query answer discloses the patients it lists: the record names them, and when it answered one patient the search
// by patient and its accounting of disclosures list who found that patient (QIDO-RS, C-FIND, the console's study list).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { findscuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

interface Disclosures {
  disclosures: { actor: string; actions: string[]; count: number }[];
  records: number;
}

describe.each(backends())('queries in the accounting of disclosures, on %s', (backend) => {
  let s: TestServer;
  let auth: Record<string, string>;

  beforeAll(async () => {
    s = await startTestServer(backend);
    auth = { Authorization: `Bearer ${s.token}` };
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'FINDSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    const objects = [
      { patientId: 'DISC-A', patientName: 'Quest^Ann' },
      { patientId: 'DISC-A', patientName: 'Quest^Ann' },
      { patientId: 'DISC-B', patientName: 'Quest^Bob' },
    ].map((p) => makeInstance({ ...p, studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: uid(3) }));
    expect((await postStow(s, objects)).status).toBe(200);
  });
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const disclosures = async (patient: string) =>
    (await (
      await fetch(`${s.url}/api/audit/disclosures?patient=${patient}`, { headers: auth })
    ).json()) as Disclosures;
  const queryActors = async (patient: string) =>
    (await disclosures(patient)).disclosures.filter((d) => d.actions.includes('query')).map((d) => d.actor);
  const lastQuery = async (): Promise<AuditRecord> => {
    const page = (await (
      await fetch(`${s.url}/api/audit/records?action=query&limit=1`, { headers: auth })
    ).json()) as { records: AuditRecord[] };
    return page.records[0]!;
  };

  it('names the one patient a QIDO-RS answer holds, so the query is among that patient’s disclosures', async () => {
    expect(await queryActors('DISC-A')).toEqual([]);
    const res = await fetch(`${s.dicomweb}/studies?PatientID=DISC-A`, { headers: auth });
    expect(((await res.json()) as unknown[]).length).toBe(2);
    const record = await lastQuery();
    expect(record.patientId).toBe('DISC-A');
    expect(record.objects).toMatchObject({ count: 2, patients: ['DISC-A'] });
    expect(await queryActors('DISC-A')).toEqual(['admin']);
    expect(await queryActors('DISC-B')).toEqual([]);
  });

  it('lists every patient of an answer that holds several, and claims none of them as the record’s own', async () => {
    const res = await fetch(`${s.dicomweb}/studies?PatientName=quest*`, { headers: auth });
    expect(((await res.json()) as unknown[]).length).toBe(3);
    const record = await lastQuery();
    expect(record.patientId).toBeUndefined();
    expect((record.objects?.patients as string[]).sort()).toEqual(['DISC-A', 'DISC-B']);
    // Not indexed by each patient: the search by patient finds only queries that answered that patient alone.
    const found = (await (
      await fetch(`${s.url}/api/audit/records?patient=DISC-B&action=query`, { headers: auth })
    ).json()) as { records: AuditRecord[] };
    expect(found.records).toEqual([]);
  });

  it('names the patient a C-FIND answered, under the calling AE', async () => {
    const r = await findscuTo(
      s.dicomPort,
      'FINDSCU',
      'QueryRetrieveLevel=STUDY',
      'PatientID=DISC-B',
      'StudyInstanceUID',
    );
    expect(r.code).toBe(0);
    const record = await lastQuery();
    expect(record.actor.name).toBe('FINDSCU');
    expect(record.patientId).toBe('DISC-B');
    expect(await queryActors('DISC-B')).toEqual(['FINDSCU']);
  });

  it('records no patient for an answer with no matches', async () => {
    await fetch(`${s.dicomweb}/studies?PatientID=NOBODY`, { headers: auth });
    const record = await lastQuery();
    expect(record.patientId).toBeUndefined();
    expect(record.objects).toMatchObject({ count: 0, patients: [] });
  });
});
