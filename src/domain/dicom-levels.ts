/**
 * Which attributes belong to which information-model level (PS3.3 Patient/Study/Series modules), and which
 * a QIDO-RS response returns by default (PS3.18 Tables 10.6.3-3/-4/-5). Tags are DICOM JSON keys.
 */
export const PATIENT_STUDY_TAGS: readonly string[] = [
  '00080005', // SpecificCharacterSet
  '00080020', // StudyDate
  '00080030', // StudyTime
  '00080050', // AccessionNumber
  '00080051', // IssuerOfAccessionNumberSequence
  '00080090', // ReferringPhysicianName
  '00080201', // TimezoneOffsetFromUTC
  '00081030', // StudyDescription
  '00081032', // ProcedureCodeSequence
  '00081060', // NameOfPhysiciansReadingStudy
  '00100010', // PatientName
  '00100020', // PatientID
  '00100021', // IssuerOfPatientID
  '00100030', // PatientBirthDate
  '00100032', // PatientBirthTime
  '00100040', // PatientSex
  '00101000', // OtherPatientIDs (retired, still sent)
  '00101002', // OtherPatientIDsSequence
  '00101010', // PatientAge
  '00101020', // PatientSize
  '00101030', // PatientWeight
  '00102160', // EthnicGroup
  '00104000', // PatientComments
  '0020000D', // StudyInstanceUID
  '00200010', // StudyID
];

export const SERIES_TAGS: readonly string[] = [
  '00080005', // SpecificCharacterSet
  '00080021', // SeriesDate
  '00080031', // SeriesTime
  '00080060', // Modality
  '00080070', // Manufacturer
  '00080080', // InstitutionName
  '00081010', // StationName
  '0008103E', // SeriesDescription
  '00081040', // InstitutionalDepartmentName
  '00081050', // PerformingPhysicianName
  '00081070', // OperatorsName
  '00081090', // ManufacturerModelName
  '00180015', // BodyPartExamined
  '00181030', // ProtocolName
  '0020000E', // SeriesInstanceUID
  '00200011', // SeriesNumber
  '00200052', // FrameOfReferenceUID
  '00200060', // Laterality
  '00400244', // PerformedProcedureStepStartDate
  '00400245', // PerformedProcedureStepStartTime
  '00400253', // PerformedProcedureStepID
  '00400275', // RequestAttributesSequence
];

export const STUDY_DEFAULT_RETURN: readonly string[] = [
  '00080005',
  '00080020',
  '00080030',
  '00080050',
  '00080056', // InstanceAvailability
  '00080061', // ModalitiesInStudy
  '00080090',
  '00080201',
  '00081030',
  '00081190', // RetrieveURL
  '00100010',
  '00100020',
  '00100030',
  '00100040',
  '0020000D',
  '00200010',
  '00201206', // NumberOfStudyRelatedSeries
  '00201208', // NumberOfStudyRelatedInstances
];

export const SERIES_DEFAULT_RETURN: readonly string[] = [
  '00080005',
  '00080060',
  '00080201',
  '0008103E',
  '00081190',
  '0020000D',
  '0020000E',
  '00200011',
  '00201209', // NumberOfSeriesRelatedInstances
  '00400244',
  '00400245',
  '00400275',
];

export const INSTANCE_DEFAULT_RETURN: readonly string[] = [
  '00080005',
  '00080016', // SOPClassUID
  '00080018', // SOPInstanceUID
  '00080056',
  '00080201',
  '00081190',
  '0020000D',
  '0020000E',
  '00200013', // InstanceNumber
  '00280008', // NumberOfFrames
  '00280010', // Rows
  '00280011', // Columns
  '00280100', // BitsAllocated
];

export type DicomJsonObject = Record<
  string,
  { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }
>;

/** Pick the given tags from a DICOM JSON object (keys kept in tag order). */
export function pickTags(source: DicomJsonObject, tags: Iterable<string>): DicomJsonObject {
  const out: DicomJsonObject = {};
  for (const t of tags) {
    const v = source[t];
    if (v !== undefined) out[t] = v;
  }
  return out;
}

export function sortByTag(obj: DicomJsonObject): DicomJsonObject {
  const out: DicomJsonObject = {};
  for (const k of Object.keys(obj).sort()) out[k] = obj[k]!;
  return out;
}
