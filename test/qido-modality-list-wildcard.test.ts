// A modality list is matched value for value; a wildcard can be a modality key's only value, not one of a list, and
// such a list is refused naming the key (QIDO-RS 400, C-FIND 0xA900). Until 7 Dec 2026 `ModalitiesInStudy=MR,C*`
// matched 'C*' as a literal, which no modality is: a CT study was left out without a word.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { findscuWith } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

describe.each(backends())('a wildcard in a list of modalities, on %s', (backend) => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'MODSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    const stored = await postStow(s, [
      makeInstance({
        studyUid: uid(1),
        seriesUid: uid(2),
        sopInstanceUid: uid(3),
        patientId: 'MOD-W',
        modality: 'CT',
      }),
    ]);
    expect(stored.status, await stored.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const qido = async (path: string) => {
    const res = await fetch(`${s.dicomweb}${path}`, { headers: { Authorization: `Bearer ${s.token}` } });
    return { status: res.status, body: (await res.json()) as unknown };
  };

  it.each([
    ['/studies?PatientID=MOD-W&ModalitiesInStudy=MR,C*', 'ModalitiesInStudy', "'MR,C*': a wildcard ('C*')"],
    ['/series?PatientID=MOD-W&Modality=C?,MR', 'Modality', "'C?,MR': a wildcard ('C?')"],
  ])('refuses %s with a 400 naming the key', async (path, parameter, detail) => {
    const r = await qido(path);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({
      code: 'qido.bad-parameter',
      parameter,
      detail: expect.stringContaining(detail),
    });
  });

  it('still matches a wildcard given alone, and a list without one', async () => {
    for (const query of ['ModalitiesInStudy=C*', 'ModalitiesInStudy=MR,CT']) {
      const r = await qido(`/studies?PatientID=MOD-W&${query}`);
      expect(r.status, query).toBe(200);
      expect(r.body, query).toHaveLength(1);
    }
  });

  it('refuses the same by C-FIND with 0xA900', async () => {
    const r = await findscuWith(
      s.dicomPort,
      'MODSCU',
      ['QueryRetrieveLevel=STUDY', 'PatientID=MOD-W', 'ModalitiesInStudy=MR\\C*'],
      { debug: true },
    );
    expect(r.stderr).not.toMatch(/\(Pending\)/);
    expect(r.stderr).toMatch(/DIMSE Status +: 0xa900/);
    expect(r.stderr).toMatch(/\[ModalitiesInStudy 'MR,C\*': a wildcard/);
  });
});
