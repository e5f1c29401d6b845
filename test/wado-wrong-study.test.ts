// A series or instance asked for under a study it is not in (`/studies/A/series/B` where B is in study C) is a
// 404 that says so: not "not in the archive" (until 7 Dec 2026), which is false when B is stored under C. The words
// are the same whether B is elsewhere or nowhere, so they tell a caller who may not see study C nothing about it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, type TestServer } from './support/test-server.js';

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;

describe.each(backends())('WADO-RS of a series or instance under another study, on %s', (backend) => {
  let s: TestServer;
  let radToken: string;
  const operator = systemPrincipal('test');
  // Study A is Radiology's; study C, holding series B and instance I, is Cardiology's.
  const a = { study: uid(1), series: uid(2), sop: uid(3) };
  const c = { study: uid(4), series: uid(5), sop: uid(6) };
  const make = (x: typeof a, department: string) =>
    makeInstance({
      studyUid: x.study,
      seriesUid: x.series,
      sopInstanceUid: x.sop,
      patientId: `WRONG-${department}`,
      extra: [{ tag: t(0x0008, 0x1040), vr: 'LO', value: department }],
    });
  const problem = async (token: string, path: string) => {
    const res = await fetch(`${s.dicomweb}${path}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status, path).toBe(404);
    return (await res.json()) as { code: string; detail: string };
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    const stored = await postStow(s, [make(a, 'Radiology'), make(c, 'Cardiology')]);
    expect(stored.status, await stored.clone().text()).toBe(200);
    await s.app.accounts.add(operator, { username: 'rad', role: 'radiologist', department: 'radiology' });
    radToken = (await s.app.auth.createToken(operator, 'rad')).token;
  });
  afterAll(async () => {
    await s.stop();
  });

  it("says that the series is not in the study asked for, for each of the series' resources", async () => {
    for (const suffix of ['', '/metadata', '/rendered', '/thumbnail']) {
      expect(await problem(s.token, `/studies/${a.study}/series/${c.series}${suffix}`), suffix).toEqual(
        expect.objectContaining({
          code: 'wado.not-found',
          detail: `series ${c.series} is not in study ${a.study}`,
        }),
      );
    }
    expect(
      await problem(s.token, `/studies/${a.study}/series/${c.series}/instances/${c.sop}/metadata`),
    ).toMatchObject({ detail: `instance ${c.sop} is not in series ${c.series} of study ${a.study}` });
    expect(
      await problem(s.token, `/studies/${a.study}/series/${a.series}/instances/${c.sop}/frames/1`),
    ).toMatchObject({ detail: `instance ${c.sop} is not in series ${a.series} of study ${a.study}` });
  });

  it('tells a caller who may not see the other study exactly what it tells of a series that does not exist', async () => {
    // rad may read study A but not study C.
    expect(
      (
        await fetch(`${s.dicomweb}/studies/${a.study}/metadata`, {
          headers: { Authorization: `Bearer ${radToken}` },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await fetch(`${s.dicomweb}/studies/${c.study}/metadata`, {
          headers: { Authorization: `Bearer ${radToken}` },
        })
      ).status,
    ).toBe(403);
    const nowhere = uid(7);
    const paths = (series: string, sop: string) => [
      `/studies/${a.study}/series/${series}`,
      `/studies/${a.study}/series/${series}/metadata`,
      `/studies/${a.study}/series/${series}/instances/${sop}/metadata`,
      `/studies/${a.study}/series/${a.series}/instances/${sop}`,
    ];
    const elsewhere = paths(c.series, c.sop);
    const missing = paths(nowhere, nowhere);
    for (const [i, path] of elsewhere.entries()) {
      const seen = await problem(radToken, path);
      const unknown = await problem(radToken, missing[i]!);
      expect(seen.code).toBe(unknown.code);
      expect(seen.detail.replaceAll(c.series, 'X').replaceAll(c.sop, 'X'), path).toBe(
        unknown.detail.replaceAll(nowhere, 'X'),
      );
      expect(seen.detail).not.toContain(c.study);
    }
  });
});
