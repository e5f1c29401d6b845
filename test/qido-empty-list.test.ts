// A UID or modality list of separators alone (`StudyInstanceUID=,`, a C-FIND value `\`) names nothing to match: it
// is refused naming the key (QIDO-RS 400, C-FIND 0xA900). Until 7 Dec 2026 it became an empty SQL list, which found
// nothing on SQLite and was a 500 (C-FIND 0xC000) on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { findscuWith } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

describe.each(backends())('a value list with no value, on %s', (backend) => {
  let s: TestServer;
  const studyUid = uid(1);

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'LISTSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    const stored = await postStow(s, [
      makeInstance({
        studyUid,
        seriesUid: uid(2),
        sopInstanceUid: uid(3),
        patientId: 'EMPTY-LIST',
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
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as unknown };
  };

  it.each([
    ['/studies?StudyInstanceUID=,', 'StudyInstanceUID', "StudyInstanceUID ',' lists no UID"],
    ['/studies?StudyInstanceUID=%5C', 'StudyInstanceUID', "StudyInstanceUID '\\' lists no UID"],
    ['/series?SeriesInstanceUID=,%20,', 'SeriesInstanceUID', "SeriesInstanceUID ', ,' lists no UID"],
    ['/instances?SOPInstanceUID=,', 'SOPInstanceUID', "SOPInstanceUID ',' lists no UID"],
    ['/studies?ModalitiesInStudy=,', 'ModalitiesInStudy', "ModalitiesInStudy ',' lists no value"],
    ['/series?Modality=,', 'Modality', "Modality ',' lists no value"],
  ])('refuses %s with a 400 naming the key', async (path, parameter, detail) => {
    const r = await qido(path);
    expect(r.status).toBe(400);
    expect(r.type).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({
      code: 'qido.bad-parameter',
      parameter,
      detail: expect.stringContaining(detail),
    });
  });

  it('still reads a list with an empty value among UIDs, and a trailing comma', async () => {
    for (const list of [`${studyUid},`, `,${studyUid}`, `${studyUid},,${uid(9)}`]) {
      const r = await qido(`/studies?StudyInstanceUID=${list}`);
      expect(r.status, list).toBe(200);
      expect(r.body, list).toHaveLength(1);
    }
  });

  it('refuses a C-FIND whose Study Instance UID is a backslash alone with 0xA900 naming it', async () => {
    const r = await findscuWith(s.dicomPort, 'LISTSCU', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID=\\'], {
      debug: true,
    });
    expect(r.stderr).not.toMatch(/\(Pending\)/);
    expect(r.stderr).toMatch(/DIMSE Status +: 0xa900/);
    expect(r.stderr).toMatch(/\[StudyInstanceUID '.' lists no UID/);
  });
});
