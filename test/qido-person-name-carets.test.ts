// PS3.5 §6.2.1.1 lets a person name's empty trailing components be left out with their carets or be sent with
// them: `Doe^John` and `DOE^JOHN^^^` are one name. QIDO-RS and C-FIND match either spelling against the other.
// Until 7 Dec 2026 a name was matched as spelt, so `PatientName=Doe^John` did not find a patient a modality sent as
// `DOE^JOHN^^^`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { findscuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

describe.each(backends())('person names with and without trailing carets, on %s', (backend) => {
  let s: TestServer;
  const names = { carets: 'DOE^JOHN^^^', bare: 'Roe^Jane', longer: 'DOE^JOHNNY', family: 'Poe^^^^' };
  const studyOf: Record<string, string> = {};

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'PNSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    const parts = Object.entries(names).map(([key, patientName], i) => {
      studyOf[key] = uid(1);
      return makeInstance({
        studyUid: studyOf[key],
        seriesUid: uid(2),
        sopInstanceUid: uid(3),
        patientId: `PNC-${i}`,
        patientName,
      });
    });
    const stored = await postStow(s, parts);
    expect(stored.status, await stored.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const found = async (name: string) => {
    const res = await fetch(`${s.dicomweb}/studies?PatientID=PNC-*&PatientName=${encodeURIComponent(name)}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const rows = (await res.json()) as { '0020000D': { Value: string[] } }[];
    return rows.map((r) => r['0020000D'].Value[0]).sort();
  };

  it.each([
    ['Doe^John', ['carets']],
    ['doe^john^', ['carets']],
    ['DOE^JOHN^^^', ['carets']],
    ['Doe^Jo?n', ['carets']],
    ['Roe^Jane^^^', ['bare']],
    ['Roe^Ja?e^^', ['bare']],
    ['Poe', ['family']],
    ['Poe^', ['family']],
    ['Doe', []],
  ])('QIDO-RS PatientName=%s finds %j', async (name, keys) => {
    expect(await found(name)).toEqual(keys.map((k) => studyOf[k]).sort());
  });

  it('C-FIND finds a name sent with trailing carets by the name without them', async () => {
    const r = await findscuTo(
      s.dicomPort,
      'PNSCU',
      'QueryRetrieveLevel=STUDY',
      'PatientName=DOE^JOHN',
      'StudyInstanceUID',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(1);
    expect(r.stderr).toContain(studyOf.carets);
  });
});
