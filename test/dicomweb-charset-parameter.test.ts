// The charset query parameter (PS3.18 §8.3.3.2) lists the character sets a client takes; one that lists none Custos
// answers in (it writes UTF-8 only and converts no object) is a 400 naming the parameter, as the standard has it,
// before anything is decided or recorded. Until 7 Dec 2026 it was not read: `charset=ISO-8859-1` got UTF-8.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import {
  ledgerHead,
  postStow,
  startTestServer,
  stopThenCleanUp,
  type TestServer,
} from './support/test-server.js';

describe.each(backends())('DICOMweb charset query parameter, on %s', (backend) => {
  let s: TestServer;
  const study = uid(1);
  const series = uid(2);
  const sop = uid(3);

  beforeAll(async () => {
    s = await startTestServer(backend);
    const stored = await postStow(s, [
      makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: sop, patientId: 'CHARSET-1' }),
    ]);
    expect(stored.status, await stored.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const get = (path: string) =>
    fetch(`${s.dicomweb}${path}`, { headers: { Authorization: `Bearer ${s.token}` } });

  it.each([
    '/studies?PatientID=CHARSET-1&charset=ISO-8859-1',
    '/studies?PatientID=CHARSET-1&charset=utf-8;q=0,ISO-8859-1',
    `/studies/${study}/metadata?charset=%22ISO_IR%20100%22`,
    '/studies?PatientID=CHARSET-1&charset=*;q=0',
  ])('refuses %s with a 400 naming the parameter, recording nothing', async (path) => {
    const before = await ledgerHead(s);
    const res = await get(path);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ code: 'dicomweb.bad-parameter', parameter: 'charset' });
    expect(await ledgerHead(s)).toBe(before);
  });

  it.each([
    '/studies?PatientID=CHARSET-1&charset=utf-8',
    '/studies?PatientID=CHARSET-1&charset=UTF-8',
    '/studies?PatientID=CHARSET-1&charset=ISO-8859-1;q=0.9,utf-8;q=0.5',
    '/studies?PatientID=CHARSET-1&charset=%22ISO_IR%20192%22',
    '/studies?PatientID=CHARSET-1&charset=*',
  ])('answers %s in UTF-8', async (path) => {
    const res = await get(path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/dicom+json; charset=utf-8');
    expect(await res.json()).toHaveLength(1);
  });
});
