// A backslash separates the values of a DICOM attribute (PS3.5 §6.4): no single value of a text matching key holds
// one, so `PatientID=A\B` asks for two values, which QIDO-RS, like C-FIND, takes only for UIDs and modalities. It is
// refused naming the key. Until 7 Dec 2026 it was matched as one value and answered [], as if nothing were stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

describe.each(backends())('QIDO-RS text values holding a backslash, on %s', (backend) => {
  let s: TestServer;
  const studyUid = uid(1);

  beforeAll(async () => {
    s = await startTestServer(backend);
    const stored = await postStow(s, [
      makeInstance({
        studyUid,
        seriesUid: uid(2),
        sopInstanceUid: uid(3),
        patientId: 'BS-A',
        patientName: 'Doe^Jo',
      }),
    ]);
    expect(stored.status, await stored.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const qido = async (path: string) => {
    const res = await fetch(`${s.dicomweb}${path}`, { headers: { Authorization: `Bearer ${s.token}` } });
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as unknown };
  };

  it.each([
    ['/studies?PatientID=BS-A%5CBS-B', 'PatientID'],
    ['/studies?PatientName=Doe^Jo%5CRoe^Jo', 'PatientName'],
    ['/studies?AccessionNumber=*%5C*', 'AccessionNumber'],
    ['/series?SeriesDescription=a%5Cb', 'SeriesDescription'],
  ])('refuses %s with a 400 naming the key', async (path, parameter) => {
    const r = await qido(path);
    expect(r.status).toBe(400);
    expect(r.type).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({
      code: 'qido.bad-parameter',
      parameter,
      detail: `${parameter}: one value only (no multiple value matching); a backslash separates values, and only UIDs and modalities take a list`,
    });
  });

  it('still takes a backslash between UIDs and between modalities as a list', async () => {
    for (const query of [
      `StudyInstanceUID=${studyUid}%5C${uid(9)}`,
      'PatientID=BS-A&ModalitiesInStudy=MR%5CCT',
    ]) {
      const r = await qido(`/studies?${query}`);
      expect(r.status, query).toBe(200);
      expect(r.body, query).toHaveLength(1);
    }
  });
});
