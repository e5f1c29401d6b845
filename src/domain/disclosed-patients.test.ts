import { describe, expect, it } from 'vitest';
import {
  disclosedPatient,
  disclosedPatientIds,
  disclosedPatients,
  matchesText,
} from './disclosed-patients.js';

const row = (patientId: string, studyUid: string, seriesUid?: string, sopInstanceUid?: string) => ({
  patientId,
  studyUid,
  ...(seriesUid ? { seriesUid } : {}),
  ...(sopInstanceUid ? { sopInstanceUid } : {}),
});

describe('the patients a search disclosed', () => {
  it('counts each patient’s studies at study level, one entry per patient, sorted by ID', () => {
    expect(disclosedPatients('study', [row('P2', 's1'), row('P1', 's2'), row('P2', 's3')])).toEqual([
      { patientId: 'P1', studies: 1 },
      { patientId: 'P2', studies: 2 },
    ]);
  });

  it('counts studies and series at series level, and instances at instance level', () => {
    expect(
      disclosedPatients('series', [row('P', 's1', 'a'), row('P', 's1', 'b'), row('P', 's2', 'c')]),
    ).toEqual([{ patientId: 'P', studies: 2, series: 3 }]);
    expect(
      disclosedPatients('instance', [
        row('P', 's1', 'a', '1'),
        row('P', 's1', 'a', '2'),
        row('Q', 's9', 'z', '3'),
      ]),
    ).toEqual([
      { patientId: 'P', studies: 1, series: 1, instances: 2 },
      { patientId: 'Q', studies: 1, series: 1, instances: 1 },
    ]);
  });

  it('stays one entry for 10,000 rows of one patient', () => {
    const rows = Array.from({ length: 10_000 }, (_, i) => row('P', `s${i % 7}`, `se${i % 70}`, `i${i}`));
    expect(disclosedPatients('instance', rows)).toEqual([
      { patientId: 'P', studies: 7, series: 70, instances: 10_000 },
    ]);
  });

  it('reads the IDs back from a record, and nothing from a record without them (older records)', () => {
    const objects = {
      patients: [
        { patientId: 'P2', studies: 1 },
        { patientId: 'P1', studies: 3 },
      ],
    };
    expect(disclosedPatientIds({ objects })).toEqual(['P1', 'P2']);
    expect(disclosedPatient({ objects }, 'P1')).toEqual({ patientId: 'P1', studies: 3 });
    expect(disclosedPatient({ objects }, 'P3')).toBeUndefined();
    expect(disclosedPatientIds({ objects: { level: 'study', count: 4, studies: ['1.2'] } })).toEqual([]);
    expect(disclosedPatientIds({})).toEqual([]);
    expect(disclosedPatientIds({ objects: { patients: 'P1' as never } })).toEqual([]);
  });

  it('writes the matching keys of a recorded search as one line', () => {
    expect(
      matchesText([
        { key: 'PatientName', type: 'wildcard', pattern: 'DOE^J*', caseInsensitive: true },
        { key: 'StudyDate', type: 'range', from: '20260101' },
        { key: 'ModalitiesInStudy', type: 'list', values: ['CT', 'MR'] },
        { key: 'InstanceNumber', type: 'int', value: 3 },
        { key: 'PatientID', type: 'equals', value: 'P1', caseInsensitive: false },
      ]),
    ).toBe('PatientName=DOE^J* StudyDate=20260101- ModalitiesInStudy=CT\\MR InstanceNumber=3 PatientID=P1');
    expect(matchesText(undefined)).toBe('');
    expect(matchesText([{ odd: 1 }])).toBe('{"odd":1}');
  });
});
