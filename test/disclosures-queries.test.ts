// The accounting of disclosures counts the queries whose results showed a patient (QIDO-RS, C-FIND), not only
// the records about the patient: a privacy officer asking who has seen anything of a patient (their name, ID,
// study descriptions in a result list) gets them too. Until 7 Dec 2026 a query record named no patient and was
// left out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { findscuTo } from './support/dcmtk.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/test-server.js';

interface Disclosure {
  actor: string;
  kind: string;
  actions: string[];
  count: number;
}

describe.each(backends())('accounting of disclosures of query results on %s', (backend) => {
  let s: TestServer;
  const operator = systemPrincipal('test');
  const run = uid(9).slice(-6);
  const [a, b, c] = [`DISC-A-${run}`, `DISC-B-${run}`, `DISC-C-${run}`];
  let steward: string;

  beforeAll(async () => {
    s = await startTestServer(backend);
    const { body, contentType } = stowBody(
      [a, b, c].map((patientId, i) => ({
        bytes: makeInstance({
          studyUid: uid(10 + i),
          seriesUid: uid(20 + i),
          sopInstanceUid: uid(30 + i),
          patientId,
          patientName: `Disclosed^Patient${i}`,
        }),
      })),
    );
    const stow = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    expect(stow.status, await stow.text()).toBe(200);
    await s.app.accounts.add(operator, { username: 'rlist', role: 'data-steward' });
    steward = (await s.app.auth.createToken(operator, 'rlist')).token;
    await s.app.aes.add(operator, { title: 'LISTER', host: '127.0.0.1', port: 104, user: 'rlist' });
  });

  afterAll(async () => {
    await s?.stop();
    expect(s.unexpected).toEqual([]);
  });

  const disclosures = async (patientId: string) => {
    const res = await fetch(`${s.url}/api/audit/disclosures?patient=${patientId}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { disclosures: Disclosure[] }).disclosures
      .map((d) => ({ actor: d.actor, kind: d.kind, actions: d.actions, count: d.count }))
      .sort((x, y) => (x.actor < y.actor ? -1 : 1));
  };

  it('counts a QIDO-RS search and a C-FIND for each patient their results showed, and no other', async () => {
    // A list of every patient whose name starts so: A, B and C are shown.
    const listed = await fetch(`${s.dicomweb}/studies?PatientName=Disclosed*`, {
      headers: { Authorization: `Bearer ${steward}` },
    });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as unknown[]).length).toBe(3);
    // A C-FIND by B's ID: only B is shown.
    const found = await findscuTo(
      s.dicomPort,
      'LISTER',
      'QueryRetrieveLevel=STUDY',
      `PatientID=${b}`,
      'PatientName',
      'StudyDescription',
    );
    expect(found.code, found.stderr).toBe(0);
    expect(found.stderr).toContain(b);
    // A search that shows nobody discloses nothing.
    const none = await fetch(`${s.dicomweb}/studies?PatientID=NOBODY-${run}`, {
      headers: { Authorization: `Bearer ${steward}` },
    });
    expect(await none.json()).toEqual([]);

    expect(await disclosures(a)).toEqual([{ actor: 'rlist', kind: 'user', actions: ['query'], count: 1 }]);
    expect(await disclosures(b)).toEqual([
      { actor: 'LISTER', kind: 'ae', actions: ['query'], count: 1 },
      { actor: 'rlist', kind: 'user', actions: ['query'], count: 1 },
    ]);
    expect(await disclosures(`NOBODY-${run}`)).toEqual([]);

    // The query's record names the patients it showed, in the hash chain, which still verifies.
    const [record] = await s.app.auditStore.search({ action: ['query'], actor: 'rlist', limit: 1 });
    expect(record?.objects?.patients).toBeUndefined();
    const [listing] = (await s.app.auditStore.search({ action: ['query'], actor: 'rlist', limit: 2 })).slice(
      1,
    );
    expect([...(listing?.objects?.patients ?? [])].sort()).toEqual([a, b, c]);
    const verify = await fetch(`${s.url}/api/audit/verify`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(verify.status).toBe(200);
  });
});
