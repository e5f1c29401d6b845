/**
 * Which attributes belong to which information-model level (PS3.3 Patient/Study/Series modules), and which
 * a QIDO-RS response returns by default (PS3.18 Tables 10.6.3-3/-4/-5). Tags are DICOM JSON keys.
 */
/**
 * The patient's attributes: the top-level attributes of the Patient and Clinical Trial Subject modules (PS3.3
 * C.7.1.1, C.7.1.3), typed from the module tables (../shared/data/dicom-standard has the modules but not their
 * attributes) and checked against the data dictionary by dicom-levels.test.ts. What a PATIENT-level C-FIND answers
 * with its values.
 */
export const PATIENT_MODULE_TAGS: readonly string[] = [
  // Patient (C.7.1.1)
  '00100010', // PatientName
  '00100020', // PatientID
  '00100021', // IssuerOfPatientID
  '00100024', // IssuerOfPatientIDQualifiersSequence
  '00100022', // TypeOfPatientID
  '00100030', // PatientBirthDate
  '00100033', // PatientBirthDateInAlternativeCalendar
  '00100034', // PatientDeathDateInAlternativeCalendar
  '00100035', // PatientAlternativeCalendar
  '00100040', // PatientSex
  '00101100', // ReferencedPatientPhotoSequence
  '00100200', // QualityControlSubject
  '00081120', // ReferencedPatientSequence
  '00100032', // PatientBirthTime
  '00101000', // OtherPatientIDs (retired)
  '00101002', // OtherPatientIDsSequence
  '00101001', // OtherPatientNames
  '00102160', // EthnicGroup
  '00104000', // PatientComments
  '00102201', // PatientSpeciesDescription
  '00102202', // PatientSpeciesCodeSequence
  '00102292', // PatientBreedDescription
  '00102293', // PatientBreedCodeSequence
  '00102294', // BreedRegistrationSequence
  '00100212', // StrainDescription
  '00100213', // StrainNomenclature
  '00100216', // StrainStockSequence
  '00100218', // StrainAdditionalInformation
  '00100219', // StrainCodeSequence
  '00100221', // GeneticModificationsSequence
  '00102297', // ResponsiblePerson
  '00102298', // ResponsiblePersonRole
  '00102299', // ResponsibleOrganization
  '00120062', // PatientIdentityRemoved
  '00120063', // DeidentificationMethod
  '00120064', // DeidentificationMethodCodeSequence
  '00100026', // SourcePatientGroupIdentificationSequence
  '00100027', // GroupOfPatientsIdentificationSequence
  // Clinical Trial Subject (C.7.1.3)
  '00120010', // ClinicalTrialSponsorName
  '00120020', // ClinicalTrialProtocolID
  '00120021', // ClinicalTrialProtocolName
  '00120022', // IssuerOfClinicalTrialProtocolID
  '00120023', // OtherClinicalTrialProtocolIDsSequence
  '00120030', // ClinicalTrialSiteID
  '00120031', // ClinicalTrialSiteName
  '00120032', // IssuerOfClinicalTrialSiteID
  '00120040', // ClinicalTrialSubjectID
  '00120041', // IssuerOfClinicalTrialSubjectID
  '00120042', // ClinicalTrialSubjectReadingID
  '00120043', // IssuerOfClinicalTrialSubjectReadingID
  '00120081', // ClinicalTrialProtocolEthicsCommitteeName
  '00120082', // ClinicalTrialProtocolEthicsCommitteeApprovalNumber
];

/** The study's own attributes: the General Study, Patient Study and Clinical Trial Study modules (PS3.3 C.7.2.1-3). */
export const STUDY_MODULE_TAGS: readonly string[] = [
  // General Study (C.7.2.1)
  '0020000D', // StudyInstanceUID
  '00080020', // StudyDate
  '00080030', // StudyTime
  '00080090', // ReferringPhysicianName
  '00080096', // ReferringPhysicianIdentificationSequence
  '0008009C', // ConsultingPhysicianName
  '0008009D', // ConsultingPhysicianIdentificationSequence
  '00200010', // StudyID
  '00080050', // AccessionNumber
  '00080051', // IssuerOfAccessionNumberSequence
  '00081030', // StudyDescription
  '00081048', // PhysiciansOfRecord
  '00081049', // PhysiciansOfRecordIdentificationSequence
  '00081060', // NameOfPhysiciansReadingStudy
  '00081062', // PhysiciansReadingStudyIdentificationSequence
  '00321034', // RequestingServiceCodeSequence
  '00081110', // ReferencedStudySequence
  '00081032', // ProcedureCodeSequence
  '00401012', // ReasonForPerformedProcedureCodeSequence
  // Patient Study (C.7.2.2)
  '00081080', // AdmittingDiagnosesDescription
  '00081084', // AdmittingDiagnosesCodeSequence
  '00101010', // PatientAge
  '00101020', // PatientSize
  '00101021', // PatientSizeCodeSequence
  '00101022', // PatientBodyMassIndex
  '00101023', // MeasuredAPDimension
  '00101024', // MeasuredLateralDimension
  '00101030', // PatientWeight
  '00102000', // MedicalAlerts
  '00102110', // Allergies
  '00102180', // Occupation
  '001021A0', // SmokingStatus
  '001021B0', // AdditionalPatientHistory
  '001021C0', // PregnancyStatus
  '001021D0', // LastMenstrualDate
  '00102203', // PatientSexNeutered
  '00321066', // ReasonForVisit
  '00321067', // ReasonForVisitCodeSequence
  '00380010', // AdmissionID
  '00380014', // IssuerOfAdmissionIDSequence
  '00380060', // ServiceEpisodeID
  '00380064', // IssuerOfServiceEpisodeIDSequence
  '00380062', // ServiceEpisodeDescription
  '00380500', // PatientState
  // Clinical Trial Study (C.7.2.3)
  '00120050', // ClinicalTrialTimePointID
  '00120055', // IssuerOfClinicalTrialTimePointID
  '00120051', // ClinicalTrialTimePointDescription
  '00120052', // LongitudinalTemporalOffsetFromEvent
  '00120053', // LongitudinalTemporalEventType
  '00120054', // ClinicalTrialTimePointTypeCodeSequence
  '00120083', // ConsentForClinicalTrialUseSequence
];

/**
 * What a study row keeps of its first instance (attrs_json): the patient and study modules, with the character set
 * and time zone their values are in. Until 6 Dec 2026 it was a hand-picked part of these modules (Referenced Study
 * Sequence, Physicians of Record, Admitting Diagnoses and the clinical trial attributes, among others, were not
 * kept): studies stored before then hold only that part.
 */
export const PATIENT_STUDY_TAGS: readonly string[] = [
  '00080005', // SpecificCharacterSet
  '00080201', // TimezoneOffsetFromUTC
  ...PATIENT_MODULE_TAGS,
  ...STUDY_MODULE_TAGS,
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
