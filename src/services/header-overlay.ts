import { CustosError } from '../domain/errors.js';
import type { DicomJsonObject } from '../domain/dicom-levels.js';
import { personName } from '../dicom/dicom-json.js';
import type { HeaderCorrections } from '../dicom/header-rewrite.js';
import { firstString } from '../domain/index-record.js';

/**
 * Served headers follow the archive's knowledge (IHE Patient Information Reconciliation; issue 6 quarantine
 * corrections): what a retrieve serves may differ from the stored object in a few top-level attributes. The
 * stored bytes never change. The patient-index correction set is computed here and applied to DICOM JSON here;
 * served bytes are rewritten by the one header rewrite, src/dicom/header-rewrite.ts (through
 * CorrectionOverlay), together with a data steward's corrections.
 */
export interface HeaderCorrection {
  /** Tag as 8 upper-case hex digits (DICOM JSON key). */
  tag: string;
  vr: string;
  /** New value; '' leaves the attribute present and empty. */
  value: string;
}

/** The patient module values the patient index holds for a study's patient. */
export interface PatientIndexValues {
  patientId: string;
  issuer: string;
  name: string;
  birthDate: string;
  sex: string;
}

/** The corrections that make a header agree with the patient index (only attributes that differ). */
export function patientCorrections(
  metadata: DicomJsonObject,
  patient: PatientIndexValues,
): HeaderCorrection[] {
  const wanted: HeaderCorrection[] = [
    { tag: '00100010', vr: 'PN', value: patient.name },
    { tag: '00100020', vr: 'LO', value: patient.patientId },
    { tag: '00100030', vr: 'DA', value: patient.birthDate },
    { tag: '00100040', vr: 'CS', value: patient.sex },
  ];
  // An index row without an issuer says nothing about IssuerOfPatientID; one with an issuer is the authority.
  if (patient.issuer !== '') wanted.push({ tag: '00100021', vr: 'LO', value: patient.issuer });
  // The header's value in the string form the index keeps (a PN with all its component groups joined by '='):
  // comparing only the Alphabetic group called every multi-group name ("Yamada^Tarou=山田^太郎") a change.
  return wanted.filter((c) => firstString(metadata, c.tag) !== c.value);
}

/** DICOM JSON with the corrections applied (a new object; the input is not changed). */
export function applyToJson(
  json: DicomJsonObject,
  corrections: readonly HeaderCorrection[],
): DicomJsonObject {
  if (corrections.length === 0) return json;
  const out: DicomJsonObject = { ...json };
  for (const c of corrections) {
    if (c.value === '') out[c.tag] = { vr: c.vr };
    else if (c.vr === 'PN') out[c.tag] = { vr: 'PN', Value: [personName(c.value)] };
    else out[c.tag] = { vr: c.vr, Value: [c.value] };
  }
  return out;
}

/** Why a deflated object with corrections is not served as bytes. */
export const cannotCorrectDeflated = (sopInstanceUid: string) =>
  new CustosError({
    code: 'overlay.deflated',
    message: `instance ${sopInstanceUid} is stored in the deflated transfer syntax and its header has corrections (the patient index changed since it was stored); Custos does not re-deflate objects to serve corrected headers: retrieve its metadata instead`,
    httpStatus: 406,
  });

/** The patient-index corrections in the form the one header rewrite (src/dicom/header-rewrite.ts) takes. */
export function asHeaderCorrections(corrections: readonly HeaderCorrection[]): HeaderCorrections {
  return Object.fromEntries(corrections.map((c) => [c.tag, c.value === '' ? [] : [c.value]]));
}
