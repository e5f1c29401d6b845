// A query answer discloses the patients it lists: the record names them, and a patient's accounting of disclosures
// lists who found that patient by a search (QIDO-RS, C-FIND, the console's study list), not only who opened a study.
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
    // Found by either patient: the ledger search and the accounting of disclosures.
    for (const patient of ['DISC-A', 'DISC-B']) {
      const found = (await (
        await fetch(`${s.url}/api/audit/records?patient=${patient}&action=query`, { headers: auth })
      ).json()) as { records: AuditRecord[] };
      expect(found.records.map((r) => r.seq)).toContain(record.seq);
    }
    expect(await queryActors('DISC-B')).toEqual(['admin']);
    const a = (await disclosures('DISC-A')).disclosures.find((d) => d.actor === 'admin')!;
    expect(a.count).toBe(2);
    const verify = await fetch(`${s.url}/api/audit/verify`, { headers: auth });
    expect(verify.status).toBe(200);
  });

  it('keeps the patients indexed beside the ledger append-only', async () => {
    const db = s.app.index.db;
    await expect(db.deleteFrom('audit_ledger_patients').execute()).rejects.toThrow(/append-only/);
    await expect(db.updateTable('audit_ledger_patients').set({ patient_id: 'X' }).execute()).rejects.toThrow(
      /append-only/,
    );
    expect((await db.selectFrom('audit_ledger_patients').selectAll().execute()).length).toBe(2);
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
    // Newest first: the AE's C-FIND after the administrator's search by name.
    expect(await queryActors('DISC-B')).toEqual(['FINDSCU', 'admin']);
  });

  it('records no patient for an answer with no matches', async () => {
    await fetch(`${s.dicomweb}/studies?PatientID=NOBODY`, { headers: auth });
    const record = await lastQuery();
    expect(record.patientId).toBeUndefined();
    expect(record.objects).toMatchObject({ count: 0, patients: [] });
  });
});
