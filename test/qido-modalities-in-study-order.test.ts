// A study query by ModalitiesInStudy alone is answered from the matching series when few match, and by walking the
// studies in date order when many do (QueryService.fewSeriesOf, on SQLite). Either way the answer is the same: each
// matching study once, newest first, paged by limit and offset. The archive here is small enough that both ways are
// taken: a rare modality (NM, XA) and a list of rare ones go by the series, a common one (CT) with a small page by
// the walk. The choice itself is weighed in bench/run.ts (QIDO by a modality no study holds).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

// Study n is dated 2020-01-(n+1), so newest first is descending n. Each study has a CT, MR or NM series; study 4
// has an NM series as well as its CT one, and study 11 two NM series.
const modalities: string[][] = [
  ['CT'],
  ['CT'],
  ['MR'],
  ['CT'],
  ['CT', 'NM'],
  ['CT'],
  ['MR'],
  ['CT'],
  ['CT'],
  ['MR'],
  ['CT'],
  ['NM', 'NM'],
  ['CT'],
  ['MR'],
];
const studyUids = modalities.map((_, n) => uid(5000 + n));
const studyUid = (n: number) => studyUids[n]!;
const newestFirst = (modality: string[]) =>
  modalities
    .map((mods, n) => ({ n, mods }))
    .filter(({ mods }) => mods.some((m) => modality.includes(m)))
    .map(({ n }) => studyUid(n))
    .reverse();

describe.each(backends())('studies by ModalitiesInStudy alone, on %s', (backend) => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startTestServer(backend);
    const instances = modalities.flatMap((mods, n) =>
      mods.map((modality, k) =>
        makeInstance({
          studyUid: studyUid(n),
          seriesUid: uid(6000 + n * 10 + k),
          sopInstanceUid: uid(7000 + n * 10 + k),
          patientId: `MIS-${n % 3}`,
          studyDate: `202001${String(n + 1).padStart(2, '0')}`,
          modality,
        }),
      ),
    );
    const stored = await postStow(s, instances);
    expect(stored.status, await stored.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const studies = async (query: string): Promise<string[]> => {
    const res = await fetch(`${s.dicomweb}/studies?${query}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(res.status, query).toBe(200);
    const body = (await res.json()) as { '0020000D': { Value: [string] } }[];
    return body.map((r) => r['0020000D'].Value[0]);
  };

  it('answers a rare modality with each of its studies once, newest first', async () => {
    expect(await studies('ModalitiesInStudy=NM')).toEqual([studyUid(11), studyUid(4)]);
    expect(newestFirst(['NM'])).toEqual([studyUid(11), studyUid(4)]);
  });

  it('answers a modality no study holds with nothing', async () => {
    expect(await studies('ModalitiesInStudy=XA')).toEqual([]);
  });

  it('answers a list of modalities with the studies of any, newest first', async () => {
    expect(await studies('ModalitiesInStudy=MR,NM')).toEqual(newestFirst(['MR', 'NM']));
    expect(await studies('ModalitiesInStudy=MR,NM')).toHaveLength(6);
  });

  it('answers a common modality whole and page by page in the same order', async () => {
    const all = newestFirst(['CT']);
    expect(all).toHaveLength(9);
    expect(await studies('ModalitiesInStudy=CT')).toEqual(all);
    const pages: string[] = [];
    for (let offset = 0; offset < all.length; offset += 2)
      pages.push(...(await studies(`ModalitiesInStudy=CT&limit=2&offset=${offset}`)));
    expect(pages).toEqual(all);
  });

  it('pages a rare modality list in the same order as its whole answer', async () => {
    const all = newestFirst(['MR', 'NM']);
    const pages: string[] = [];
    for (let offset = 0; offset < all.length; offset += 1)
      pages.push(...(await studies(`ModalitiesInStudy=MR,NM&limit=1&offset=${offset}`)));
    expect(pages).toEqual(all);
  });
});
