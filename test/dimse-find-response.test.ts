// What a C-FIND answer holds besides the keys asked for (PS3.4 C.4.1.1.3.2), as dcmtk's findscu receives it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

describe.each(backends())('C-FIND response identifiers, on %s', (backend) => {
  let s: TestServer;
  const study = uid(1);
  const series = uid(2);
  const sop = uid(3);

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'FINDSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    const object = makeInstance({
      studyUid: study,
      seriesUid: series,
      sopInstanceUid: sop,
      patientId: 'PID-RSP',
      patientName: 'Answer^Anna',
    });
    expect((await postStow(s, [object])).status).toBe(200);
  });
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  /** findscu -v in this model at this level with these keys (each a `-k`): what it printed. */
  const findscu = async (model: '-P' | '-S', level: string, keys: string[]) => {
    const r = await dcmtk('findscu', [
      '-v',
      '-aet',
      'FINDSCU',
      '-aec',
      'CUSTOS',
      model,
      '127.0.0.1',
      String(s.dicomPort),
      '-k',
      `QueryRetrieveLevel=${level}`,
      ...keys.flatMap((k) => ['-k', k]),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Received Final Find Response \(Success\)/);
    return r.stderr.slice(r.stderr.indexOf('Find Response: 1 (Pending)'));
  };

  it('names itself in Retrieve AE Title (0008,0054) in every answer at every level, asked for or not', async () => {
    // PS3.4 C.4.1.1.3.2: Retrieve AE Title shall be present where Storage Media File-Set ID and UID are not.
    // Until 7 Dec 2026 an answer had it only when the request held the key.
    for (const [model, level, keys] of [
      ['-P', 'PATIENT', ['PatientID=PID-RSP', 'PatientName']],
      ['-S', 'STUDY', [`StudyInstanceUID=${study}`, 'StudyDate']],
      ['-S', 'SERIES', [`StudyInstanceUID=${study}`, 'SeriesInstanceUID', 'Modality']],
      ['-S', 'IMAGE', [`StudyInstanceUID=${study}`, `SeriesInstanceUID=${series}`, 'SOPInstanceUID']],
    ] as const) {
      const answers = await findscu(model, level, [...keys]);
      expect(answers.match(/Find Response: \d+ \(Pending\)/g), level).toHaveLength(1);
      expect(answers, level).toMatch(/\(0008,0054\) AE \[CUSTOS\]/);
    }
    // Asked for, it comes once.
    const asked = await findscu('-S', 'STUDY', [`StudyInstanceUID=${study}`, 'RetrieveAETitle']);
    expect(asked.match(/\(0008,0054\) AE \[CUSTOS\]/g)).toHaveLength(1);
  });
});
