/** Tags are numbers: (group << 16 | element) >>> 0. */
export const tag = (group: number, element: number): number => ((group << 16) | element) >>> 0;

export const tagGroup = (t: number) => t >>> 16;
export const tagElement = (t: number) => t & 0xffff;

/** A tag of a private group: odd, other than 0001, 0003, 0005, 0007 and FFFF, which are not allowed (PS3.5 §7.8.1). */
export const isPrivateTag = (t: number): boolean => {
  const group = t >>> 16;
  return group % 2 === 1 && group > 0x0008 && group !== 0xffff;
};
/** A Private Creator element (gggg,0010-00FF): it reserves the block (gggg,xx00-xxFF) for the creator it names. */
export const isPrivateCreatorTag = (t: number): boolean =>
  isPrivateTag(t) && (t & 0xffff) >= 0x0010 && (t & 0xffff) <= 0x00ff;
/** A private data element (gggg,xxee), xx from 10 to FF: it belongs to the block of (gggg,00xx). */
export const isPrivateDataTag = (t: number): boolean => isPrivateTag(t) && (t & 0xffff) >= 0x1000;

/** 'GGGGEEEE' upper-case, the DICOM JSON key form. */
export const tagToHex = (t: number): string => t.toString(16).toUpperCase().padStart(8, '0');

/** '(0010,0010)', '0010,0010' or '00100010' to a tag; undefined when malformed. */
export function parseTagHex(s: string): number | undefined {
  const m = /^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$/.exec(s.trim());
  return m ? tag(Number.parseInt(m[1]!, 16), Number.parseInt(m[2]!, 16)) : undefined;
}

export const Tags = {
  FileMetaInformationGroupLength: tag(0x0002, 0x0000),
  FileMetaInformationVersion: tag(0x0002, 0x0001),
  MediaStorageSOPClassUID: tag(0x0002, 0x0002),
  MediaStorageSOPInstanceUID: tag(0x0002, 0x0003),
  TransferSyntaxUID: tag(0x0002, 0x0010),
  ImplementationClassUID: tag(0x0002, 0x0012),
  ImplementationVersionName: tag(0x0002, 0x0013),
  SourceApplicationEntityTitle: tag(0x0002, 0x0016),
  SpecificCharacterSet: tag(0x0008, 0x0005),
  ImageType: tag(0x0008, 0x0008),
  InstanceCreationDate: tag(0x0008, 0x0012),
  InstanceCreationTime: tag(0x0008, 0x0013),
  SOPClassUID: tag(0x0008, 0x0016),
  SOPInstanceUID: tag(0x0008, 0x0018),
  StudyDate: tag(0x0008, 0x0020),
  SeriesDate: tag(0x0008, 0x0021),
  AcquisitionDate: tag(0x0008, 0x0022),
  ContentDate: tag(0x0008, 0x0023),
  AcquisitionDateTime: tag(0x0008, 0x002a),
  StudyTime: tag(0x0008, 0x0030),
  SeriesTime: tag(0x0008, 0x0031),
  AcquisitionTime: tag(0x0008, 0x0032),
  ContentTime: tag(0x0008, 0x0033),
  AccessionNumber: tag(0x0008, 0x0050),
  Modality: tag(0x0008, 0x0060),
  ModalitiesInStudy: tag(0x0008, 0x0061),
  SOPClassesInStudy: tag(0x0008, 0x0062),
  Manufacturer: tag(0x0008, 0x0070),
  InstitutionName: tag(0x0008, 0x0080),
  ReferringPhysicianName: tag(0x0008, 0x0090),
  TimezoneOffsetFromUTC: tag(0x0008, 0x0201),
  StationName: tag(0x0008, 0x1010),
  StudyDescription: tag(0x0008, 0x1030),
  SeriesDescription: tag(0x0008, 0x103e),
  InstitutionalDepartmentName: tag(0x0008, 0x1040),
  ManufacturerModelName: tag(0x0008, 0x1090),
  ReferencedSOPClassUID: tag(0x0008, 0x1150),
  ReferencedSOPInstanceUID: tag(0x0008, 0x1155),
  ReferencedStudySequence: tag(0x0008, 0x1110),
  ReferencedSeriesSequence: tag(0x0008, 0x1115),
  ReferencedImageSequence: tag(0x0008, 0x1140),
  RetrieveURL: tag(0x0008, 0x1190),
  FailedSOPSequence: tag(0x0008, 0x1198),
  ReferencedSOPSequence: tag(0x0008, 0x1199),
  OtherPatientIDsSequence: tag(0x0010, 0x1002),
  DerivationDescription: tag(0x0008, 0x2111),
  PatientIdentityRemoved: tag(0x0012, 0x0062),
  DeidentificationMethod: tag(0x0012, 0x0063),
  PatientName: tag(0x0010, 0x0010),
  PatientID: tag(0x0010, 0x0020),
  IssuerOfPatientID: tag(0x0010, 0x0021),
  PatientBirthDate: tag(0x0010, 0x0030),
  PatientSex: tag(0x0010, 0x0040),
  OtherPatientNames: tag(0x0010, 0x1001),
  PatientAge: tag(0x0010, 0x1010),
  PatientComments: tag(0x0010, 0x4000),
  BurnedInAnnotation: tag(0x0028, 0x0301),
  BodyPartExamined: tag(0x0018, 0x0015),
  SliceThickness: tag(0x0018, 0x0050),
  KVP: tag(0x0018, 0x0060),
  DeviceSerialNumber: tag(0x0018, 0x1000),
  SoftwareVersions: tag(0x0018, 0x1020),
  ProtocolName: tag(0x0018, 0x1030),
  StudyInstanceUID: tag(0x0020, 0x000d),
  SeriesInstanceUID: tag(0x0020, 0x000e),
  StudyID: tag(0x0020, 0x0010),
  SeriesNumber: tag(0x0020, 0x0011),
  AcquisitionNumber: tag(0x0020, 0x0012),
  InstanceNumber: tag(0x0020, 0x0013),
  NumberOfStudyRelatedSeries: tag(0x0020, 0x1206),
  NumberOfStudyRelatedInstances: tag(0x0020, 0x1208),
  NumberOfSeriesRelatedInstances: tag(0x0020, 0x1209),
  ImagePositionPatient: tag(0x0020, 0x0032),
  ImageOrientationPatient: tag(0x0020, 0x0037),
  FrameOfReferenceUID: tag(0x0020, 0x0052),
  SamplesPerPixel: tag(0x0028, 0x0002),
  PhotometricInterpretation: tag(0x0028, 0x0004),
  PlanarConfiguration: tag(0x0028, 0x0006),
  NumberOfFrames: tag(0x0028, 0x0008),
  Rows: tag(0x0028, 0x0010),
  Columns: tag(0x0028, 0x0011),
  PixelSpacing: tag(0x0028, 0x0030),
  LossyImageCompression: tag(0x0028, 0x2110),
  LossyImageCompressionMethod: tag(0x0028, 0x2114),
  BitsAllocated: tag(0x0028, 0x0100),
  BitsStored: tag(0x0028, 0x0101),
  HighBit: tag(0x0028, 0x0102),
  PixelRepresentation: tag(0x0028, 0x0103),
  WindowCenter: tag(0x0028, 0x1050),
  WindowWidth: tag(0x0028, 0x1051),
  RescaleIntercept: tag(0x0028, 0x1052),
  RescaleSlope: tag(0x0028, 0x1053),
  PerformedProcedureStepStartDate: tag(0x0040, 0x0244),
  PerformedProcedureStepStartTime: tag(0x0040, 0x0245),
  RequestedProcedureID: tag(0x0040, 0x1001),
  RequestAttributesSequence: tag(0x0040, 0x0275),
  EncapsulatedDocument: tag(0x0042, 0x0011),
  MIMETypeOfEncapsulatedDocument: tag(0x0042, 0x0012),
  IconImageSequence: tag(0x0088, 0x0200),
  OriginalAttributesSequence: tag(0x0400, 0x0561),
  ExtendedOffsetTable: tag(0x7fe0, 0x0001),
  ExtendedOffsetTableLengths: tag(0x7fe0, 0x0002),
  FloatPixelData: tag(0x7fe0, 0x0008),
  DoubleFloatPixelData: tag(0x7fe0, 0x0009),
  PixelData: tag(0x7fe0, 0x0010),
  Item: tag(0xfffe, 0xe000),
  ItemDelimitationItem: tag(0xfffe, 0xe00d),
  SequenceDelimitationItem: tag(0xfffe, 0xe0dd),
} as const;

export const TransferSyntax = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
  DeflatedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.99',
  ExplicitVRBigEndian: '1.2.840.10008.1.2.2',
  EncapsulatedUncompressedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.98',
  JPEGBaseline: '1.2.840.10008.1.2.4.50',
  JPEGExtended: '1.2.840.10008.1.2.4.51',
  JPEGLossless: '1.2.840.10008.1.2.4.70',
  JPEGLosslessSV1: '1.2.840.10008.1.2.4.70',
  JPEGLSLossless: '1.2.840.10008.1.2.4.80',
  JPEGLSNearLossless: '1.2.840.10008.1.2.4.81',
  JPEG2000Lossless: '1.2.840.10008.1.2.4.90',
  JPEG2000: '1.2.840.10008.1.2.4.91',
  HTJ2KLossless: '1.2.840.10008.1.2.4.201',
  HTJ2K: '1.2.840.10008.1.2.4.203',
  RLELossless: '1.2.840.10008.1.2.5',
} as const;
