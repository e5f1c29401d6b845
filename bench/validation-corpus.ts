// A deterministic corpus for comparing Custos header validation with dciodvfy (bench/validation-agreement.ts):
// one valid object per SOP class, and copies of each with one injected defect.
import { tagForKeyword } from '../src/dicom/dictionary.js';
import { writePart10, type WriteElement } from '../src/dicom/part10-writer.js';

type Value = WriteElement['value'];
type Attrs = [keyword: string, vr: string, value: Value][];

const code = (value: string, scheme: string, meaning: string): WriteElement[] => [
  el('CodeValue', 'SH', value),
  el('CodingSchemeDesignator', 'SH', scheme),
  el('CodeMeaning', 'LO', meaning),
];

function el(keyword: string, vr: string, value: Value): WriteElement {
  const tag = tagForKeyword(keyword);
  if (tag === undefined) throw new Error(`unknown keyword ${keyword}`);
  return { tag, vr, value };
}

const pixels16 = (n: number) => Buffer.alloc(n * 2, 0x11);

export const COMMON: Attrs = [
  ['SpecificCharacterSet', 'CS', 'ISO_IR 100'],
  ['StudyDate', 'DA', '20240115'],
  ['StudyTime', 'TM', '101500'],
  ['AccessionNumber', 'SH', 'ACC0001'],
  ['ReferringPhysicianName', 'PN', 'House^Gregory'],
  ['Manufacturer', 'LO', 'Custos Bench'],
  ['PatientName', 'PN', 'Doe^Jane'],
  ['PatientID', 'LO', 'PID-1'],
  ['PatientBirthDate', 'DA', '19700101'],
  ['PatientSex', 'CS', 'F'],
  ['StudyInstanceUID', 'UI', '2.25.1001'],
  ['SeriesInstanceUID', 'UI', '2.25.1002'],
  ['StudyID', 'SH', 'S1'],
  ['SeriesNumber', 'IS', '1'],
  ['InstanceNumber', 'IS', '1'],
  // Type 2C (General Series): present, empty, since no paired body part is named.
  ['Laterality', 'CS', ''],
];

const IMAGE16: Attrs = [
  ['SamplesPerPixel', 'US', 1],
  ['PhotometricInterpretation', 'CS', 'MONOCHROME2'],
  ['Rows', 'US', 4],
  ['Columns', 'US', 4],
  ['BitsAllocated', 'US', 16],
  ['BitsStored', 'US', 12],
  ['HighBit', 'US', 11],
  ['PixelRepresentation', 'US', 0],
  ['PixelData', 'OW', pixels16(16)],
];

const PLANE: Attrs = [
  ['FrameOfReferenceUID', 'UI', '2.25.1003'],
  ['PositionReferenceIndicator', 'LO', ''],
  ['ImagePositionPatient', 'DS', ['0', '0', '0']],
  ['ImageOrientationPatient', 'DS', ['1', '0', '0', '0', '1', '0']],
  ['PixelSpacing', 'DS', ['0.5', '0.5']],
  ['SliceThickness', 'DS', '1'],
];

/** Digital X-Ray (For Presentation); Mammography refines it (later entries override). */
const DX_ATTRS: Attrs = [
  ...COMMON,
  ...IMAGE16,
  ['Modality', 'CS', 'DX'],
  ['PresentationIntentType', 'CS', 'FOR PRESENTATION'],
  ['ImageType', 'CS', ['ORIGINAL', 'PRIMARY']],
  ['ImageLaterality', 'CS', 'U'],
  ['PatientOrientation', 'CS', ['A', 'F']],
  ['PixelIntensityRelationship', 'CS', 'LIN'],
  ['PixelIntensityRelationshipSign', 'SS', 1],
  ['RescaleIntercept', 'DS', '0'],
  ['RescaleSlope', 'DS', '1'],
  ['RescaleType', 'LO', 'US'],
  ['PresentationLUTShape', 'CS', 'IDENTITY'],
  ['LossyImageCompression', 'CS', '00'],
  ['BurnedInAnnotation', 'CS', 'NO'],
  ['ImagerPixelSpacing', 'DS', ['0.1', '0.1']],
  ['DetectorType', 'CS', 'DIRECT'],
  ['WindowCenter', 'DS', '2048'],
  ['WindowWidth', 'DS', '4096'],
];

export interface CorpusClass {
  name: string;
  sopClassUid: string;
  attrs: Attrs;
  /** Extra elements that are not simple (sequences with items). */
  extra?: WriteElement[];
  /** Common attributes this class must not carry. */
  drop?: string[];
  /** Attributes of the class's own modules to remove, with the defect class that makes. */
  own: [DefectClass, string][];
}

export const CLASSES: CorpusClass[] = [
  {
    name: 'CT',
    own: [
      ['missing Type 1', 'RescaleSlope'],
      ['missing Type 1', 'ImageType'],
      ['missing Type 2', 'KVP'],
    ],
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    attrs: [
      ...COMMON,
      ...IMAGE16,
      ...PLANE,
      ['Modality', 'CS', 'CT'],
      ['PatientPosition', 'CS', 'HFS'],
      ['ImageType', 'CS', ['ORIGINAL', 'PRIMARY', 'AXIAL']],
      ['KVP', 'DS', '120'],
      ['AcquisitionNumber', 'IS', '1'],
      ['RescaleIntercept', 'DS', '-1024'],
      ['RescaleSlope', 'DS', '1'],
    ],
  },
  {
    name: 'MR',
    own: [
      ['missing Type 1', 'ScanningSequence'],
      ['missing Type 2', 'EchoTime'],
    ],
    sopClassUid: '1.2.840.10008.5.1.4.1.1.4',
    attrs: [
      ...COMMON,
      ...IMAGE16,
      ...PLANE,
      ['Modality', 'CS', 'MR'],
      ['PatientPosition', 'CS', 'HFS'],
      ['ImageType', 'CS', ['ORIGINAL', 'PRIMARY', 'M']],
      ['ScanningSequence', 'CS', 'SE'],
      ['SequenceVariant', 'CS', 'NONE'],
      ['ScanOptions', 'CS', ''],
      ['MRAcquisitionType', 'CS', '2D'],
      ['RepetitionTime', 'DS', '500'],
      ['EchoTime', 'DS', '10'],
      ['EchoTrainLength', 'IS', '1'],
    ],
  },
  {
    name: 'CR',
    own: [
      ['missing Type 2', 'ViewPosition'],
      ['missing Type 2', 'BodyPartExamined'],
    ],
    // Laterality (General Series, 2C) may not be present when Image Laterality is, or for an unpaired part.
    drop: ['Laterality'],
    sopClassUid: '1.2.840.10008.5.1.4.1.1.1',
    attrs: [
      ...COMMON,
      ...IMAGE16,
      ['Modality', 'CS', 'CR'],
      ['BodyPartExamined', 'CS', 'CHEST'],
      ['ViewPosition', 'CS', 'PA'],
      ['PatientOrientation', 'CS', ['A', 'F']],
    ],
  },
  {
    name: 'DX',
    own: [
      ['missing Type 1', 'PresentationLUTShape'],
      ['missing Type 1', 'ImageLaterality'],
      ['missing Type 2', 'DetectorType'],
    ],
    // Laterality (General Series, 2C) may not be present when Image Laterality is, or for an unpaired part.
    drop: ['Laterality'],
    sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
    attrs: DX_ATTRS,
    extra: [
      el('AnatomicRegionSequence', 'SQ', [code('51185008', 'SCT', 'Chest')]),
      el('AcquisitionContextSequence', 'SQ', []),
    ],
  },
  {
    name: 'MG',
    own: [
      ['missing Type 1', 'OrganExposed'],
      ['missing Type 1', 'PositionerType'],
    ],
    // Laterality (General Series, 2C) may not be present when Image Laterality is, or for an unpaired part.
    drop: ['Laterality'],
    sopClassUid: '1.2.840.10008.5.1.4.1.1.1.2',
    attrs: [
      ...DX_ATTRS,
      ['Modality', 'CS', 'MG'],
      ['ImageLaterality', 'CS', 'L'],
      ['PatientOrientation', 'CS', ['A', 'R']],
      ['PositionerType', 'CS', 'MAMMOGRAPHIC'],
      ['OrganExposed', 'CS', 'BREAST'],
    ],
    extra: [
      el('AnatomicRegionSequence', 'SQ', [code('76752008', 'SCT', 'Breast')]),
      el('ViewCodeSequence', 'SQ', [
        [...code('399162004', 'SCT', 'cranio-caudal'), el('ViewModifierCodeSequence', 'SQ', [])],
      ]),
      el('AcquisitionContextSequence', 'SQ', []),
    ],
  },
  {
    name: 'US',
    own: [
      ['missing Type 1', 'BitsStored'],
      ['missing Type 2', 'ImageType'],
    ],
    sopClassUid: '1.2.840.10008.5.1.4.1.1.6.1',
    attrs: [
      ...COMMON,
      ['Modality', 'CS', 'US'],
      ['PatientOrientation', 'CS', ''],
      ['ImageType', 'CS', ['ORIGINAL', 'PRIMARY', 'ABDOMINAL']],
      ['SamplesPerPixel', 'US', 1],
      ['PhotometricInterpretation', 'CS', 'MONOCHROME2'],
      ['Rows', 'US', 4],
      ['Columns', 'US', 4],
      ['BitsAllocated', 'US', 8],
      ['BitsStored', 'US', 8],
      ['HighBit', 'US', 7],
      ['PixelRepresentation', 'US', 0],
      ['LossyImageCompression', 'CS', '00'],
      ['PixelData', 'OB', Buffer.alloc(16, 0x22)],
    ],
  },
  {
    name: 'PET',
    own: [
      ['missing Type 1', 'Units'],
      ['missing Type 1', 'FrameReferenceTime'],
      ['missing Type 2', 'CorrectedImage'],
    ],
    sopClassUid: '1.2.840.10008.5.1.4.1.1.128',
    attrs: [
      ...COMMON,
      ...IMAGE16,
      ...PLANE,
      ['Modality', 'CS', 'PT'],
      // PET Image Module: Bits Stored and High Bit are enumerated (16 and 15).
      ['BitsStored', 'US', 16],
      ['HighBit', 'US', 15],
      ['SeriesDate', 'DA', '20240115'],
      ['SeriesTime', 'TM', '101500'],
      ['Units', 'CS', 'BQML'],
      ['CountsSource', 'CS', 'EMISSION'],
      ['SeriesType', 'CS', ['STATIC', 'IMAGE']],
      ['NumberOfSlices', 'US', 1],
      ['DecayCorrection', 'CS', 'NONE'],
      ['CorrectedImage', 'CS', ['ATTN']],
      ['CollimatorType', 'CS', 'NONE'],
      ['ImageType', 'CS', ['ORIGINAL', 'PRIMARY']],
      ['RescaleIntercept', 'DS', '0'],
      ['RescaleSlope', 'DS', '1'],
      ['FrameReferenceTime', 'DS', '0'],
      ['ImageIndex', 'US', 1],
      ['AcquisitionDate', 'DA', '20240115'],
      ['AcquisitionTime', 'TM', '101500'],
      ['ActualFrameDuration', 'IS', '1000'],
      ['SliceSensitivityFactor', 'DS', '1'],
    ],
    extra: [
      el('RadiopharmaceuticalInformationSequence', 'SQ', []),
      el('PatientOrientationCodeSequence', 'SQ', []),
      el('PatientGantryRelationshipCodeSequence', 'SQ', []),
    ],
  },
  {
    name: 'NM',
    own: [
      ['missing Type 1', 'NumberOfDetectors'],
      ['missing Type 2', 'CountsAccumulated'],
    ],
    sopClassUid: '1.2.840.10008.5.1.4.1.1.20',
    attrs: [
      ...COMMON,
      ['Modality', 'CS', 'NM'],
      ['CountsAccumulated', 'IS', '1000'],
      ['ActualFrameDuration', 'IS', '1000'],
      ['ImageType', 'CS', ['ORIGINAL', 'PRIMARY', 'STATIC', 'EMISSION']],
      ['SamplesPerPixel', 'US', 1],
      ['PhotometricInterpretation', 'CS', 'MONOCHROME2'],
      ['Rows', 'US', 4],
      ['Columns', 'US', 4],
      ['BitsAllocated', 'US', 16],
      ['BitsStored', 'US', 16],
      ['HighBit', 'US', 15],
      ['PixelRepresentation', 'US', 0],
      ['PixelSpacing', 'DS', ['1', '1']],
      ['NumberOfFrames', 'IS', '1'],
      ['FrameIncrementPointer', 'AT', [((0x0054 << 16) | 0x0010) >>> 0, ((0x0054 << 16) | 0x0020) >>> 0]],
      ['EnergyWindowVector', 'US', [1]],
      ['NumberOfEnergyWindows', 'US', 1],
      ['DetectorVector', 'US', [1]],
      ['NumberOfDetectors', 'US', 1],
      ['PixelData', 'OW', pixels16(16)],
    ],
    extra: [
      el('EnergyWindowInformationSequence', 'SQ', []),
      el('RadiopharmaceuticalInformationSequence', 'SQ', []),
      el('DetectorInformationSequence', 'SQ', [
        [
          el('CollimatorType', 'CS', 'PARA'),
          el('ImagePositionPatient', 'DS', ['0', '0', '0']),
          el('ImageOrientationPatient', 'DS', ['1', '0', '0', '0', '1', '0']),
        ],
      ]),
      el('PatientOrientationCodeSequence', 'SQ', []),
      el('PatientGantryRelationshipCodeSequence', 'SQ', []),
    ],
  },
  {
    name: 'XA',
    own: [
      ['missing Type 1', 'RadiationSetting'],
      ['missing Type 2', 'PositionerPrimaryAngle'],
    ],
    sopClassUid: '1.2.840.10008.5.1.4.1.1.12.1',
    attrs: [
      ...COMMON,
      ...IMAGE16,
      ['Modality', 'CS', 'XA'],
      ['PatientOrientation', 'CS', ''],
      ['XRayTubeCurrent', 'IS', '100'],
      ['ExposureTime', 'IS', '10'],
      ['Exposure', 'IS', '1'],
      ['ImageType', 'CS', ['ORIGINAL', 'PRIMARY', 'SINGLE PLANE']],
      ['PixelIntensityRelationship', 'CS', 'LIN'],
      ['RadiationSetting', 'CS', 'GR'],
      ['KVP', 'DS', '80'],
      ['PositionerPrimaryAngle', 'DS', '0'],
      ['PositionerSecondaryAngle', 'DS', '0'],
      ['LossyImageCompression', 'CS', '00'],
    ],
  },
  {
    name: 'SC',
    own: [['missing Type 1', 'ConversionType']],
    sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
    attrs: [
      ...COMMON,
      ...IMAGE16,
      ['Modality', 'CS', 'OT'],
      ['ConversionType', 'CS', 'WSD'],
      ['PatientOrientation', 'CS', ''],
    ],
  },
  {
    name: 'PDF',
    own: [
      ['missing Type 1', 'MIMETypeOfEncapsulatedDocument'],
      ['missing Type 2', 'DocumentTitle'],
    ],
    sopClassUid: '1.2.840.10008.5.1.4.1.1.104.1',
    attrs: [
      ...COMMON,
      ['Modality', 'CS', 'DOC'],
      ['ConversionType', 'CS', 'SD'],
      ['BurnedInAnnotation', 'CS', 'YES'],
      ['ContentDate', 'DA', '20240115'],
      ['ContentTime', 'TM', '101500'],
      ['AcquisitionDateTime', 'DT', '20240115101500'],
      ['DocumentTitle', 'ST', 'Report'],
      ['MIMETypeOfEncapsulatedDocument', 'LO', 'application/pdf'],
      ['EncapsulatedDocumentLength', 'UL', 8],
      ['EncapsulatedDocument', 'OB', Buffer.from('%PDF-1.4')],
    ],
    extra: [el('ConceptNameCodeSequence', 'SQ', [])],
  },
];

/** Defect classes the corpus injects; each names the attribute it breaks. */
export type DefectClass =
  | 'missing Type 1'
  | 'empty Type 1'
  | 'missing Type 2'
  | 'bad DA'
  | 'bad TM'
  | 'bad UI'
  | 'wrong VM'
  | 'missing Type 1C/2C'
  | 'sequence item';

export interface CorpusObject {
  name: string;
  sopClass: string;
  /** `path`: dotted hex tags of the broken attribute when it sits inside a sequence item. */
  defect?: { class: DefectClass; keyword: string; path?: string };
  bytes: Buffer;
}

/**
 * Objects whose defect needs more than one attribute changed: a condition that holds (Type 1C/2C), or an item of
 * a sequence with an attribute missing. Each starts from a valid object of its class.
 */
interface Variant {
  base: string;
  class: DefectClass;
  /** The broken attribute, and its path when inside an item. */
  keyword: string;
  path?: string;
  set?: Attrs;
  extra?: WriteElement[];
  remove?: string[];
}

const at = (keyword: string) => tagForKeyword(keyword)!;
const item = (...els: WriteElement[]) => els;
const RGB8: Attrs = [
  ['SamplesPerPixel', 'US', 3],
  ['PhotometricInterpretation', 'CS', 'RGB'],
  ['BitsAllocated', 'US', 8],
  ['BitsStored', 'US', 8],
  ['HighBit', 'US', 7],
  ['PixelData', 'OB', Buffer.alloc(4 * 4 * 3, 0x33)],
];
const PALETTE8: Attrs = [
  ['PhotometricInterpretation', 'CS', 'PALETTE COLOR'],
  ['BitsAllocated', 'US', 8],
  ['BitsStored', 'US', 8],
  ['HighBit', 'US', 7],
  ['PixelData', 'OB', Buffer.alloc(16, 0x01)],
  ['RedPaletteColorLookupTableDescriptor', 'US', [256, 0, 16]],
  ['GreenPaletteColorLookupTableDescriptor', 'US', [256, 0, 16]],
  ['BluePaletteColorLookupTableDescriptor', 'US', [256, 0, 16]],
  ['RedPaletteColorLookupTableData', 'OW', Buffer.alloc(512, 0x10)],
  ['GreenPaletteColorLookupTableData', 'OW', Buffer.alloc(512, 0x20)],
  ['BluePaletteColorLookupTableData', 'OW', Buffer.alloc(512, 0x30)],
];
const XA_CINE: Attrs = [
  ['NumberOfFrames', 'IS', '2'],
  ['FrameIncrementPointer', 'AT', [at('FrameTime')]],
  ['FrameTime', 'DS', '33.3'],
  ['PixelData', 'OW', pixels16(2 * 16)],
];
const REF_IMAGE = (withInstance: boolean) =>
  el('ReferencedImageSequence', 'SQ', [
    item(
      el('ReferencedSOPClassUID', 'UI', '1.2.840.10008.5.1.4.1.1.2'),
      ...(withInstance ? [el('ReferencedSOPInstanceUID', 'UI', '2.25.3001')] : []),
    ),
  ]);

export const VARIANTS: Variant[] = [
  // Image Pixel Module: Planar Configuration 1C when Samples per Pixel > 1.
  { base: 'SC', class: 'missing Type 1C/2C', keyword: 'PlanarConfiguration', set: RGB8 },
  // Image Pixel Module: palette descriptors 1C when Photometric Interpretation is PALETTE COLOR.
  {
    base: 'SC',
    class: 'missing Type 1C/2C',
    keyword: 'RedPaletteColorLookupTableDescriptor',
    set: PALETTE8,
    remove: ['RedPaletteColorLookupTableDescriptor'],
  },
  // VOI LUT Module (DX: required FOR PRESENTATION): Window Width 1C when Window Center is present.
  { base: 'DX', class: 'missing Type 1C/2C', keyword: 'WindowWidth', remove: ['WindowWidth'] },
  // MR Image Module: Inversion Time 2C when Scanning Sequence includes IR.
  {
    base: 'MR',
    class: 'missing Type 1C/2C',
    keyword: 'InversionTime',
    set: [['ScanningSequence', 'CS', 'IR']],
  },
  // Cine Module (XA: required when Frame Increment Pointer is Frame Time): Frame Time 1C.
  {
    base: 'XA',
    class: 'missing Type 1C/2C',
    keyword: 'FrameTime',
    set: XA_CINE,
    remove: ['FrameTime'],
  },
  // Multi-frame Module: the pixel data holds two frames and Number of Frames is missing.
  {
    base: 'XA',
    class: 'missing Type 1C/2C',
    keyword: 'NumberOfFrames',
    set: XA_CINE,
    remove: ['NumberOfFrames'],
  },
  // Frame of Reference Module (SC: required if Image Position/Orientation (Patient) are present).
  {
    base: 'SC',
    class: 'missing Type 1C/2C',
    keyword: 'FrameOfReferenceUID',
    set: PLANE.filter(([k]) => k !== 'FrameOfReferenceUID'),
  },
  // Items: Image SOP Instance Reference Macro in General Image's Referenced Image Sequence.
  {
    base: 'CT',
    class: 'sequence item',
    keyword: 'ReferencedSOPInstanceUID',
    path: '00081140.00081155',
    extra: [REF_IMAGE(false)],
  },
  // Items: SOP Instance Reference Macro in General Study's Referenced Study Sequence.
  {
    base: 'CR',
    class: 'sequence item',
    keyword: 'ReferencedSOPClassUID',
    path: '00081110.00081150',
    extra: [el('ReferencedStudySequence', 'SQ', [item(el('ReferencedSOPInstanceUID', 'UI', '2.25.3002'))])],
  },
  // Items: Code Sequence Macro (Code Meaning 1) in DX Anatomy Imaged's Anatomic Region Sequence.
  {
    base: 'DX',
    class: 'sequence item',
    keyword: 'CodeMeaning',
    path: '00082218.00080104',
    extra: [
      el('AnatomicRegionSequence', 'SQ', [
        item(el('CodeValue', 'SH', '51185008'), el('CodingSchemeDesignator', 'SH', 'SCT')),
      ]),
    ],
  },
  // Items: Code Sequence Macro (Coding Scheme Designator 1C) in Mammography's View Code Sequence.
  {
    base: 'MG',
    class: 'sequence item',
    keyword: 'CodingSchemeDesignator',
    path: '00540220.00080102',
    extra: [
      el('ViewCodeSequence', 'SQ', [
        item(
          el('CodeValue', 'SH', '399162004'),
          el('CodeMeaning', 'LO', 'cranio-caudal'),
          el('ViewModifierCodeSequence', 'SQ', []),
        ),
      ]),
    ],
  },
  // Items: Other Patient IDs Sequence (Patient Module): Type of Patient ID 1.
  {
    base: 'MR',
    class: 'sequence item',
    keyword: 'TypeOfPatientID',
    path: '00101002.00100022',
    extra: [el('OtherPatientIDsSequence', 'SQ', [item(el('PatientID', 'LO', 'OTHER-1'))])],
  },
  // Items: Code Sequence Macro in the Encapsulated Document's Concept Name Code Sequence.
  {
    base: 'PDF',
    class: 'sequence item',
    keyword: 'CodeMeaning',
    path: '0040A043.00080104',
    extra: [
      el('ConceptNameCodeSequence', 'SQ', [
        item(el('CodeValue', 'SH', '18748-4'), el('CodingSchemeDesignator', 'SH', 'LN')),
      ]),
    ],
  },
];

function buildVariant(v: Variant, n: number): Buffer {
  const c = CLASSES.find((x) => x.name === v.base)!;
  return build(
    { ...c, attrs: [...c.attrs, ...(v.set ?? [])], extra: [...(c.extra ?? []), ...(v.extra ?? [])] },
    n,
    undefined,
    v.remove,
  );
}

/** The attribute each defect class breaks, per SOP class (a Type 1 attribute every class has: Modality). */
const INJECTIONS: { class: DefectClass; keyword: string; value?: [string, Value] | null }[] = [
  { class: 'missing Type 1', keyword: 'Modality', value: null },
  { class: 'missing Type 1', keyword: 'SeriesInstanceUID', value: null },
  { class: 'empty Type 1', keyword: 'Modality', value: ['CS', ''] },
  { class: 'empty Type 1', keyword: 'StudyInstanceUID', value: ['UI', ''] },
  { class: 'missing Type 2', keyword: 'PatientID', value: null },
  { class: 'missing Type 2', keyword: 'StudyDate', value: null },
  { class: 'bad DA', keyword: 'StudyDate', value: ['DA', '20241341'] },
  { class: 'bad DA', keyword: 'PatientBirthDate', value: ['DA', '1970-01-01'] },
  { class: 'bad TM', keyword: 'StudyTime', value: ['TM', '256000'] },
  { class: 'bad UI', keyword: 'SeriesInstanceUID', value: ['UI', '2.25.01002'] },
  { class: 'bad UI', keyword: 'StudyInstanceUID', value: ['UI', '2.25.1001.x'] },
  { class: 'wrong VM', keyword: 'PatientID', value: ['LO', ['PID-1', 'PID-2']] },
  { class: 'wrong VM', keyword: 'Modality', value: ['CS', ['CT', 'MR']] },
];

function build(
  c: CorpusClass,
  n: number,
  change?: { keyword: string; value: [string, Value] | null },
  remove: string[] = [],
): Buffer {
  // Later entries override earlier ones of the same attribute (a class refining the common set).
  const byTag = new Map<number, WriteElement>();
  for (const e of [
    el('SOPClassUID', 'UI', c.sopClassUid),
    el('SOPInstanceUID', 'UI', `2.25.2${n}`),
    ...c.attrs.map(([k, vr, v]) => el(k, vr, v)),
    ...(c.extra ?? []),
  ])
    byTag.set(e.tag, e);
  for (const k of [...(c.drop ?? []), ...remove]) byTag.delete(tagForKeyword(k)!);
  const els = [...byTag.values()];
  if (!change) return writePart10(els, { transferSyntaxUid: '1.2.840.10008.1.2.1' });
  const tag = tagForKeyword(change.keyword)!;
  const kept = els.filter((e) => e.tag !== tag);
  if (change.value) kept.push({ tag, vr: change.value[0], value: change.value[1] });
  return writePart10(kept, { transferSyntaxUid: '1.2.840.10008.1.2.1' });
}

export function corpus(): CorpusObject[] {
  const out: CorpusObject[] = [];
  let n = 0;
  for (const c of CLASSES) {
    out.push({ name: `${c.name}-valid`, sopClass: c.name, bytes: build(c, n++) });
    for (const [cls, keyword] of c.own) {
      out.push({
        name: `${c.name}-${cls.replace(/ /g, '-')}-${keyword}`,
        sopClass: c.name,
        defect: { class: cls, keyword },
        bytes: build(c, n++, { keyword, value: null }),
      });
    }
    for (const inj of INJECTIONS) {
      out.push({
        name: `${c.name}-${inj.class.replace(/ /g, '-')}-${inj.keyword}`,
        sopClass: c.name,
        defect: { class: inj.class, keyword: inj.keyword },
        bytes: build(c, n++, { keyword: inj.keyword, value: inj.value ?? null }),
      });
    }
  }
  for (const v of VARIANTS) {
    out.push({
      name: `${v.base}-${v.class.replace(/[ /]/g, '-')}-${v.path ? `${v.path}-` : ''}${v.keyword}`,
      sopClass: v.base,
      defect: { class: v.class, keyword: v.keyword, ...(v.path ? { path: v.path } : {}) },
      bytes: buildVariant(v, n++),
    });
  }
  return out;
}
