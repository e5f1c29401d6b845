// What a C-FIND answer holds besides the keys asked for (PS3.4 C.4.1.1.3.2), as dcmtk's findscu receives it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { Tags } from '../src/dicom/tags.js';
import { backends } from './support/backends.js';
import { findscuWith } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

describe.each(backends())('C-FIND response identifiers, on %s', (backend) => {
  let s: TestServer;
  const study = uid(1);
  const series = uid(2);
  const sop = uid(3);
  /** A study whose object names its time zone (+0100). */
  const zoned = uid(4);

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
    const zonedObject = makeInstance({
      studyUid: zoned,
      seriesUid: uid(5),
      sopInstanceUid: uid(6),
      patientId: 'PID-RSP',
      patientName: 'Answer^Anna',
      extra: [{ tag: Tags.TimezoneOffsetFromUTC, vr: 'SH', value: '+0100' }],
    });
    expect((await postStow(s, [object, zonedObject])).status).toBe(200);
  });
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  /** findscu -v in this model at this level with these keys (each a `-k`): what it printed. */
  const findscu = async (model: '-P' | '-S', level: string, keys: string[]) => {
    const r = await findscuWith(s.dicomPort, 'FINDSCU', [`QueryRetrieveLevel=${level}`, ...keys], { model });
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

  it('gives Timezone Offset From UTC (0008,0201) with the dates and times it applies to, never at zero length', async () => {
    // PS3.4 C.4.1.1.3.2: present where the answer's dates and times are in the time zone it names, not otherwise
    // ("it shall not be sent with a zero-length value"). Until 7 Dec 2026 it came at zero length when asked for of
    // an object that has none, and not at all when not asked for of one that has one.
    const asked = await findscu('-S', 'STUDY', [
      `StudyInstanceUID=${study}`,
      'StudyDate',
      'TimezoneOffsetFromUTC',
    ]);
    expect(asked).toMatch(/\(0008,0020\) DA \[20240115\]/);
    expect(asked).not.toMatch(/\(0008,0201\)/);
    for (const keys of [
      [`StudyInstanceUID=${zoned}`, 'StudyDate', 'StudyTime'],
      [`StudyInstanceUID=${zoned}`, 'StudyTime', 'TimezoneOffsetFromUTC'],
    ]) {
      const answer = await findscu('-S', 'STUDY', keys);
      expect(answer.match(/\(0008,0201\) SH \[\+0100 ?\]/g), keys.join(' ')).toHaveLength(1);
    }
    // An answer with no date or time holds no time zone.
    const undated = await findscu('-S', 'STUDY', [`StudyInstanceUID=${zoned}`, 'AccessionNumber']);
    expect(undated).not.toMatch(/\(0008,0201\)/);
  });
});
