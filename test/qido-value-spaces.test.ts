// PS3.5 §6.2: trailing spaces never count in a value, leading ones count in PN only. The index keeps values so
// trimmed, and a QIDO-RS value is trimmed the same way before matching. Until 7 Dec 2026 `PatientID=SP-1%20`
// found nothing where SP-1 was stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

describe.each(backends())('QIDO-RS values with leading and trailing spaces, on %s', (backend) => {
  let s: TestServer;
  const studyUid = uid(1);

  beforeAll(async () => {
    s = await startTestServer(backend);
    const stored = await postStow(s, [
      makeInstance({
        studyUid,
        seriesUid: uid(2),
        sopInstanceUid: uid(3),
        patientId: 'SP-1',
        patientName: 'Space^Sam',
        accessionNumber: 'ACC-SP',
        modality: 'CT',
      }),
    ]);
    expect(stored.status, await stored.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const found = async (query: string) => {
    const res = await fetch(`${s.dicomweb}/studies?${query}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    return ((await res.json()) as { '0020000D': { Value: string[] } }[]).map((r) => r['0020000D'].Value[0]);
  };

  it.each([
    'PatientID=SP-1%20',
    'PatientID=%20SP-1',
    'PatientID=SP-*%20%20',
    'AccessionNumber=%20ACC-SP%20%20',
    'PatientName=space^sam%20',
    'PatientName=Space^S?m%20%20',
    `PatientID=%20%20&StudyInstanceUID=${studyUid}`,
  ])('finds the study by %s', async (query) => {
    expect(await found(query)).toEqual([studyUid]);
  });

  it('keeps a leading space of a person name, which counts (PS3.5 §6.2)', async () => {
    expect(await found('PatientName=%20Space^Sam')).toEqual([]);
  });
});
