import { describe, expect, it } from 'vitest';
import { lookupTag } from '../dicom/dictionary.js';
import { PATIENT_MODULE_TAGS, PATIENT_STUDY_TAGS, STUDY_MODULE_TAGS } from './dicom-levels.js';

describe('the patient and study module attribute lists', () => {
  it('name attributes of the data dictionary, each once', () => {
    for (const hex of PATIENT_STUDY_TAGS)
      expect(lookupTag(Number.parseInt(hex, 16))?.keyword, hex).toBeDefined();
    expect(new Set(PATIENT_STUDY_TAGS).size).toBe(PATIENT_STUDY_TAGS.length);
  });

  it('keep the study attributes a study-level answer is asked for (Referenced Study Sequence among them)', () => {
    expect(STUDY_MODULE_TAGS).toContain('00081110');
    expect(PATIENT_MODULE_TAGS).toContain('00101000');
    expect(PATIENT_MODULE_TAGS.every((t) => !STUDY_MODULE_TAGS.includes(t))).toBe(true);
  });
});
