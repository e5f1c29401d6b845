// An empty value asks for an attribute without a condition (universal matching, PS3.4 C.2.2.2.3): for a key
// Custos does not match on, that is what the answer gives, so no Warning says the key was ignored. Until 7 Dec 2026
// `PatientAge=` was answered with 'the query key PatientAge is not supported and was ignored'.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

describe.each(backends())('QIDO-RS keys Custos does not match on, given empty, on %s', (backend) => {
  let s: TestServer;
  const studyUid = uid(1);

  beforeAll(async () => {
    s = await startTestServer(backend);
    const stored = await postStow(s, [
      makeInstance({
        studyUid,
        seriesUid: uid(2),
        sopInstanceUid: uid(3),
        patientId: 'EMPTY-KEY',
        extra: [{ tag: 0x00101010, vr: 'AS', value: '054Y' }],
      }),
    ]);
    expect(stored.status, await stored.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const search = async (query: string) => {
    const res = await fetch(`${s.dicomweb}/studies?StudyInstanceUID=${studyUid}&${query}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const rows = (await res.json()) as Record<string, { Value?: unknown[] }>[];
    return { warning: res.headers.get('warning'), rows };
  };

  it.each(['PatientAge=', '00101010=', 'PatientAge=%20'])('returns %s with no Warning', async (query) => {
    const { warning, rows } = await search(query);
    expect(warning).toBeNull();
    expect(rows).toHaveLength(1);
    expect(rows[0]!['00101010']?.Value).toEqual(['054Y']);
  });

  it('returns an empty attribute path with no Warning', async () => {
    const { warning, rows } = await search('RequestAttributesSequence.RequestedProcedureID=');
    expect(warning).toBeNull();
    expect(rows).toHaveLength(1);
  });

  it('still says a key with a value was not matched', async () => {
    const { warning, rows } = await search('PatientAge=030Y');
    expect(warning).toBe(`299 ${s.dicomweb} "the query key PatientAge is not supported and was ignored"`);
    expect(rows).toHaveLength(1);
  });
});
