// The transfer-syntax query parameter (PS3.18 §8.7.3.7) names one transfer syntax: given twice it is a 400 naming
// it, before anything is decided or recorded, as WADO-URI's transferSyntax given twice is. Until 7 Dec 2026 the
// first counted without a word, so the same two values in the other order got another answer (a 406, or the
// object).
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

describe.each(backends())('WADO-RS transfer-syntax query parameter given twice, on %s', (backend) => {
  let s: TestServer;
  const study = uid(1);
  const series = uid(2);
  const sop = uid(3);

  beforeAll(async () => {
    s = await startTestServer(backend);
    const stored = await postStow(s, [
      makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: sop }),
    ]);
    expect(stored.status, await stored.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const get = (path: string) =>
    fetch(`${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}${path}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });

  it.each([
    '?accept=application/dicom&transfer-syntax=1.2.840.10008.1.2.4.50&transfer-syntax=*',
    '?accept=application/dicom&transfer-syntax=*&transfer-syntax=1.2.840.10008.1.2.4.50',
    '/frames/1?accept=application/octet-stream&transfer-syntax=*&transfer-syntax=*',
  ])('refuses %s with a 400 naming it, recording nothing', async (path) => {
    const before = await ledgerHead(s);
    const res = await get(path);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: 'wado.bad-parameter',
      parameter: 'transfer-syntax',
      detail: 'transfer-syntax is given more than once; give it once',
    });
    expect(await ledgerHead(s)).toBe(before);
  });

  it('takes it once', async () => {
    const res = await get('?accept=application/dicom&transfer-syntax=*');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
  });
});
