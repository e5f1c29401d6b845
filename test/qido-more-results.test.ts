// A QIDO-RS answer cut by `limit` or by the server's maximum says that more can be asked for in the words of
// PS3.18 §8.3.4.4.1, which clients test for. Until 7 Dec 2026 the Warning was Custos's own ("there are more results
// than the limit; use offset to page").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, type TestServer } from './support/test-server.js';

describe.each(backends())('QIDO-RS paging Warning on %s', (backend) => {
  let s: TestServer;
  const patientId = 'MORE-1';
  const studies = [uid(1), uid(2), uid(3)];

  beforeAll(async () => {
    s = await startTestServer(backend, { limits: { maxQueryResults: 2 } });
    const stored = await postStow(
      s,
      studies.map((studyUid) =>
        makeInstance({ studyUid, seriesUid: uid(4), sopInstanceUid: uid(5), patientId }),
      ),
    );
    expect(stored.status, await stored.clone().text()).toBe(200);
  });
  afterAll(async () => {
    await s.stop();
  });

  const search = async (query: string, accept = 'application/dicom+json') => {
    const res = await fetch(`${s.dicomweb}/studies?PatientID=${patientId}${query}`, {
      headers: { Authorization: `Bearer ${s.token}`, Accept: accept },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const text = await res.text();
    return {
      warning: res.headers.get('warning'),
      count: accept.includes('xml')
        ? text.split('<NativeDicomModel').length - 1
        : (JSON.parse(text) as unknown[]).length,
    };
  };

  it("uses the standard's words when the limit or the server's maximum cuts the answer, and none on the last page", async () => {
    const more = `299 ${s.dicomweb} "There are additional results that can be requested"`;
    // The client's limit; the server's maximum (2) with no limit, and with a larger one that it lowers.
    expect(await search('&limit=1')).toEqual({ warning: more, count: 1 });
    expect(await search('')).toEqual({ warning: more, count: 2 });
    expect(await search('&limit=50')).toEqual({ warning: more, count: 2 });
    expect(await search('', 'multipart/related; type="application/dicom+xml"')).toEqual({
      warning: more,
      count: 2,
    });
    // The last page: nothing more to ask for.
    expect(await search('&offset=2')).toEqual({ warning: null, count: 1 });
    expect(await search('&limit=3&offset=1')).toEqual({ warning: null, count: 2 });
  });
});
