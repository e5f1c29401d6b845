import { describe, expect, it } from 'vitest';
import { CustosError } from './errors.js';
import { parseListSort } from './list-sort.js';

const KEYS = ['PatientName', 'StudyDate'] as const;
const refusal = (sort: string | null, dir: string | null) => {
  try {
    parseListSort(KEYS, sort, dir, 'studies.bad-parameter');
  } catch (err) {
    return err as CustosError;
  }
  throw new Error('accepted');
};

describe('parseListSort', () => {
  it('takes a sortable column, ascending unless dir=desc, and nothing when no sort is asked', () => {
    expect(parseListSort(KEYS, 'StudyDate', null, 'x')).toEqual({ key: 'StudyDate', desc: false });
    expect(parseListSort(KEYS, 'StudyDate', 'asc', 'x')).toEqual({ key: 'StudyDate', desc: false });
    expect(parseListSort(KEYS, 'PatientName', 'desc', 'x')).toEqual({ key: 'PatientName', desc: true });
    expect(parseListSort(KEYS, null, null, 'x')).toBeUndefined();
  });

  it('refuses an unknown column, another direction, or a direction without a column, naming the parameter', () => {
    for (const [sort, dir, parameter, text] of [
      [
        'patient_name',
        null,
        'sort',
        /'patient_name' is not a sortable column \(sortable: PatientName, StudyDate\)/,
      ],
      ['StudyDate', 'up', 'dir', /must be asc or desc, got 'up'/],
      [null, 'desc', 'dir', /given without sort/],
    ] as const) {
      const err = refusal(sort, dir);
      expect(err).toBeInstanceOf(CustosError);
      expect(err).toMatchObject({ code: 'studies.bad-parameter', httpStatus: 400, detail: { parameter } });
      expect(err.message).toMatch(text);
    }
  });
});
