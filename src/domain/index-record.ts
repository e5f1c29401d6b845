import { foldCase } from './case-fold.js';
import { inIsRange } from './validation/vr-rules.js';
import { PATIENT_STUDY_TAGS, SERIES_TAGS, pickTags, type DicomJsonObject } from './dicom-levels.js';

/**
 * The index's view of one instance, derived from its header as DICOM JSON. Pure: the ingest service
 * persists it.
 */
export interface InstanceIndexRecord {
  patient: {
    patientId: string;
    issuer: string;
    name: string;
    nameNorm: string;
    birthDate: string;
    sex: string;
  };
  study: {
    studyUid: string;
    date: string;
    time: string;
    accessionNumber: string;
    referringPhysician: string;
    referringPhysicianNorm: string;
    /** Code values of Referring Physician Identification Sequence (0008,0096) > Person Identification Code Sequence (0040,1101). */
    referringPhysicianIds: string[];
    /** InstitutionalDepartmentName (0008,1040): the study's department for access scopes, '' when absent. */
    department: string;
    description: string;
    studyId: string;
    attrs: DicomJsonObject;
  };
  series: {
    seriesUid: string;
    modality: string;
    seriesNumber: number | null;
    description: string;
    bodyPart: string;
    ppsStartDate: string;
    ppsStartTime: string;
    attrs: DicomJsonObject;
  };
  instance: {
    sopInstanceUid: string;
    sopClassUid: string;
    instanceNumber: number | null;
    rows: number | null;
    columns: number | null;
    numberOfFrames: number | null;
  };
}

type PnValue = { Alphabetic?: string; Ideographic?: string; Phonetic?: string };

/**
 * The first value as the index keeps it. NULs are left out: PostgreSQL's text takes none (an object with one
 * inside a LO failed to store there, and stored on SQLite); a query's values lose theirs alike (qido-query.ts). The
 * object keeps its value.
 */
export function firstString(json: DicomJsonObject, tag: string): string {
  const v = json[tag]?.Value?.[0];
  if (v === undefined || v === null) return '';
  const s = typeof v === 'object' ? pnToString(v as PnValue) : String(v);
  return s.includes('\0') ? s.replaceAll('\0', '') : s;
}

/**
 * The first value as an integer for the index, or null. A value outside IS's 32-bit range (seen in the wild:
 * SeriesNumber 99999999999) is not indexed, on either dialect: the index's integer columns are 32-bit on
 * PostgreSQL. The object keeps the value as sent.
 */
function firstNumber(json: DicomJsonObject, tag: string): number | null {
  const v = json[tag]?.Value?.[0];
  const n =
    typeof v === 'number' && Number.isFinite(v)
      ? Math.trunc(v)
      : typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v)
        ? Number.parseInt(v, 10)
        : null;
  return n !== null && inIsRange(n) ? n : null;
}

/** A PN value back in its DICOM string form (component groups joined by '='). */
export function pnToString(pn: PnValue): string {
  const groups = [pn.Alphabetic ?? '', pn.Ideographic ?? '', pn.Phonetic ?? ''];
  while (groups.length > 1 && groups[groups.length - 1] === '') groups.pop();
  return groups.join('=');
}

function referringPhysicianIds(json: DicomJsonObject): string[] {
  const ids: string[] = [];
  for (const person of (json['00080096']?.Value ?? []) as DicomJsonObject[]) {
    if (typeof person !== 'object' || person === null) continue;
    for (const code of (person['00401101']?.Value ?? []) as DicomJsonObject[]) {
      if (typeof code !== 'object' || code === null) continue;
      const value = firstString(code, '00080100').trim();
      if (value && !ids.includes(value)) ids.push(value);
    }
  }
  return ids;
}

/**
 * Case-insensitive form used for PN matching (PS3.18 requires case-insensitive PatientName matching): one character
 * for each character (case-fold.ts), so that the '?' wildcard still matches one. Stored in patient_name_norm and
 * referring_physician_norm (migration 0014-name-fold recomputed the names folded otherwise before 6 Dec 2026).
 * Trailing empty components and component groups are left out with their delimiters, which PS3.5 §6.2.1.1 and
 * §6.2.1.2 let a sender leave out or keep: `DOE^JOHN^^^`, as many modalities write a name, is `Doe^John`, both
 * stored and asked for (migration 0017-name-trailing-delimiters; until 7 Dec 2026 neither found the other).
 */
export const normalisePersonName = (pn: string) => foldCase(withoutTrailingEmpties(pn));

function withoutTrailingEmpties(pn: string): string {
  if (!pn.includes('^') && !pn.includes('=')) return pn;
  const groups = pn.split('=').map((g) => g.replace(/\^+$/, ''));
  while (groups.length > 1 && groups[groups.length - 1] === '') groups.pop();
  return groups.join('=');
}

/** TM normalised to HHMMSS(.FFFFFF) so that time ranges compare as strings. */
export function normaliseStoredTime(tm: string): string {
  const t = tm.replace(/:/g, '').trim();
  if (!/^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/.test(t)) return t;
  const [hms = '', frac] = t.split('.');
  const base = (hms + '000000'.slice(hms.length)).slice(0, 6);
  return frac !== undefined ? `${base}.${frac}` : base;
}

export function toIndexRecord(json: DicomJsonObject): InstanceIndexRecord {
  const patientName = firstString(json, '00100010');
  const refPhys = firstString(json, '00080090');
  return {
    patient: {
      patientId: firstString(json, '00100020'),
      issuer: firstString(json, '00100021'),
      name: patientName,
      nameNorm: normalisePersonName(patientName),
      birthDate: firstString(json, '00100030'),
      sex: firstString(json, '00100040'),
    },
    study: {
      studyUid: firstString(json, '0020000D'),
      date: firstString(json, '00080020'),
      time: normaliseStoredTime(firstString(json, '00080030')),
      accessionNumber: firstString(json, '00080050'),
      referringPhysician: refPhys,
      referringPhysicianNorm: normalisePersonName(refPhys),
      referringPhysicianIds: referringPhysicianIds(json),
      department: firstString(json, '00081040').trim(),
      description: firstString(json, '00081030'),
      studyId: firstString(json, '00200010'),
      attrs: pickTags(json, PATIENT_STUDY_TAGS),
    },
    series: {
      seriesUid: firstString(json, '0020000E'),
      modality: firstString(json, '00080060'),
      seriesNumber: firstNumber(json, '00200011'),
      description: firstString(json, '0008103E'),
      bodyPart: firstString(json, '00180015'),
      ppsStartDate: firstString(json, '00400244'),
      ppsStartTime: normaliseStoredTime(firstString(json, '00400245')),
      attrs: pickTags(json, SERIES_TAGS),
    },
    instance: {
      sopInstanceUid: firstString(json, '00080018'),
      sopClassUid: firstString(json, '00080016'),
      instanceNumber: firstNumber(json, '00200013'),
      rows: firstNumber(json, '00280010'),
      columns: firstNumber(json, '00280011'),
      numberOfFrames: firstNumber(json, '00280008'),
    },
  };
}
