import type { Condition } from './conditions.js';

/**
 * Required attributes of the PS3.3 modules Custos validates, curated by hand from the module tables of PS3.3
 * (the machine-readable copy in ../shared/data/dicom-standard has no module-to-attribute table, see its
 * SOURCE.md). Type 1 (present, not empty) and Type 2 (present, may be empty); Type 1C/2C where the condition
 * can be decided from the dataset (`conditional`, with the condition in the standard's words); the required
 * attributes of the items of sequences the module defines (`sequences`, from the macro tables of PS3.3 §10).
 * Type 3 is not checked. Each entry cites its table; the lists were cross-checked against dciodvfy
 * (dicom3tools) on the corpus of bench/validation-agreement.ts. docs/validation.md lists every condition that
 * is evaluated and those that are not.
 *
 * `keys`: for modules an IOD uses conditionally (C) or optionally (U), the attributes whose presence shows
 * the module is there; such a module is checked when one of its keys is present, or when its PS3.3 Annex A
 * condition (ciod_to_modules.json) can be evaluated and holds. `appliesWhen`: a further mechanical condition
 * under which the module is required.
 */
export interface ConditionalAttribute {
  keyword: string;
  type: 1 | 2;
  when: Condition;
  /** The condition as PS3.3 states it. */
  text: string;
}

/** Required attributes of each item of a sequence (the item's macro or module sub-table). */
export interface SequenceRequirement {
  keyword: string;
  /** The macro or table that defines the items, e.g. 'Table 10-3 Image SOP Instance Reference Macro'. */
  macro: string;
  type1: readonly string[];
  type2?: readonly string[];
  conditional?: readonly ConditionalAttribute[];
  sequences?: readonly SequenceRequirement[];
}

export interface ModuleRequirement {
  /** Module id as in ciod_to_modules.json. */
  id: string;
  /** PS3.3 section and table, e.g. 'C.7.1.1 Table C.7-1'. */
  source: string;
  type1: readonly string[];
  type2: readonly string[];
  keys?: readonly string[];
  appliesWhen?: Condition;
  conditional?: readonly ConditionalAttribute[];
  sequences?: readonly SequenceRequirement[];
}

/** PS3.3 Table 8.8-1 Code Sequence Macro (Basic Code Sequence Macro attributes). */
const codeItem = (keyword: string, nested: readonly SequenceRequirement[] = []): SequenceRequirement => ({
  keyword,
  macro: 'Table 8.8-1 Code Sequence Macro',
  type1: ['CodeMeaning'],
  conditional: [
    {
      keyword: 'CodeValue',
      type: 1,
      when: { kind: 'absent', all: ['LongCodeValue', 'URNCodeValue'] },
      text: 'Required if the value of Code Value is not a URN or URL and its length is 16 characters or less (i.e. neither Long Code Value nor URN Code Value is present)',
    },
    {
      keyword: 'CodingSchemeDesignator',
      type: 1,
      when: { kind: 'present', any: ['CodeValue', 'LongCodeValue'] },
      text: 'Required if Code Value or Long Code Value is present',
    },
  ],
  ...(nested.length ? { sequences: nested } : {}),
});

/** PS3.3 Table 10-11 SOP Instance Reference Macro. */
const sopReference = (keyword: string): SequenceRequirement => ({
  keyword,
  macro: 'Table 10-11 SOP Instance Reference Macro',
  type1: ['ReferencedSOPClassUID', 'ReferencedSOPInstanceUID'],
});

/** PS3.3 Table 10-3 Image SOP Instance Reference Macro. */
const imageReference = (keyword: string): SequenceRequirement => ({
  keyword,
  macro: 'Table 10-3 Image SOP Instance Reference Macro',
  type1: ['ReferencedSOPClassUID', 'ReferencedSOPInstanceUID'],
});

const PALETTE: Condition = { kind: 'value', keyword: 'PhotometricInterpretation', in: ['PALETTE COLOR'] };
const PALETTE_TEXT = 'Required if Photometric Interpretation (0028,0004) has a value of PALETTE COLOR';
const paletteDescriptors = (['Red', 'Green', 'Blue'] as const).map((c): ConditionalAttribute => ({
  keyword: `${c}PaletteColorLookupTableDescriptor`,
  type: 1,
  when: PALETTE,
  text: PALETTE_TEXT,
}));
const paletteData = (when: Condition, text: string) =>
  (['Red', 'Green', 'Blue'] as const).map((c): ConditionalAttribute => ({
    keyword: `${c}PaletteColorLookupTableData`,
    type: 1,
    when,
    text,
  }));

const IMAGE_PIXEL_DESCRIPTION = ['SamplesPerPixel', 'PhotometricInterpretation', 'BitsAllocated'] as const;

export const MODULE_REQUIREMENTS: readonly ModuleRequirement[] = [
  {
    id: 'patient',
    source: 'C.7.1.1 Table C.7-1 Patient Module',
    type1: [],
    type2: ['PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex'],
    sequences: [
      sopReference('ReferencedPatientSequence'),
      {
        keyword: 'OtherPatientIDsSequence',
        macro: 'Table C.7-1 Other Patient IDs Sequence',
        type1: ['PatientID', 'TypeOfPatientID'],
      },
    ],
  },
  {
    id: 'general-study',
    source: 'C.7.2.1 Table C.7-3 General Study Module',
    type1: ['StudyInstanceUID'],
    type2: ['StudyDate', 'StudyTime', 'ReferringPhysicianName', 'StudyID', 'AccessionNumber'],
    sequences: [sopReference('ReferencedStudySequence'), codeItem('ProcedureCodeSequence')],
  },
  {
    id: 'general-series',
    source: 'C.7.3.1 Table C.7-5a General Series Module',
    type1: ['Modality', 'SeriesInstanceUID'],
    type2: ['SeriesNumber'],
    sequences: [sopReference('ReferencedPerformedProcedureStepSequence')],
  },
  {
    id: 'frame-of-reference',
    source: 'C.7.4.1 Table C.7-6 Frame of Reference Module',
    type1: ['FrameOfReferenceUID'],
    type2: ['PositionReferenceIndicator'],
    keys: ['FrameOfReferenceUID'],
  },
  {
    id: 'synchronization',
    source: 'C.7.4.2 Table C.7-7 Synchronization Module',
    type1: ['SynchronizationFrameOfReferenceUID', 'SynchronizationTrigger', 'AcquisitionTimeSynchronized'],
    type2: [],
    keys: ['SynchronizationFrameOfReferenceUID'],
  },
  {
    id: 'general-equipment',
    source: 'C.7.5.1 Table C.7-8 General Equipment Module',
    type1: [],
    type2: ['Manufacturer'],
  },
  {
    id: 'general-image',
    source: 'C.7.6.1 Table C.7-9 General Image Module',
    type1: [],
    type2: ['InstanceNumber'],
    sequences: [
      imageReference('ReferencedImageSequence'),
      imageReference('SourceImageSequence'),
      codeItem('DerivationCodeSequence'),
    ],
  },
  {
    id: 'image-plane',
    source: 'C.7.6.2 Table C.7-10 Image Plane Module',
    type1: ['PixelSpacing', 'ImageOrientationPatient', 'ImagePositionPatient'],
    type2: ['SliceThickness'],
    keys: ['ImagePositionPatient', 'ImageOrientationPatient'],
  },
  {
    id: 'image-pixel',
    source: 'C.7.6.3 Table C.7-11a Image Pixel Module (with Table C.7-11c Image Pixel Description Macro)',
    type1: [
      ...IMAGE_PIXEL_DESCRIPTION,
      'Rows',
      'Columns',
      'BitsStored',
      'HighBit',
      'PixelRepresentation',
      // Type 1C: required unless Pixel Data Provider URL is given (never, for objects stored in Custos).
      'PixelData',
    ],
    type2: [],
    conditional: [
      {
        keyword: 'PlanarConfiguration',
        type: 1,
        when: { kind: 'greater', keyword: 'SamplesPerPixel', than: 1 },
        text: 'Required if Samples per Pixel (0028,0002) has a value greater than 1',
      },
      ...paletteDescriptors,
      // The Image Pixel Module has no segmented LUTs; an object that sends them (Palette Color Lookup Table
      // Module) instead of the plain data is not flagged here.
      ...paletteData(
        { kind: 'all', of: [PALETTE, { kind: 'absent', all: ['SegmentedRedPaletteColorLookupTableData'] }] },
        `${PALETTE_TEXT} (and no segmented palette data is sent)`,
      ),
    ],
  },
  {
    id: 'contrast-bolus',
    source: 'C.7.6.4 Table C.7-12 Contrast/Bolus Module',
    type1: [],
    type2: ['ContrastBolusAgent'],
    keys: ['ContrastBolusAgent', 'ContrastBolusAgentSequence'],
    sequences: [codeItem('ContrastBolusAgentSequence')],
  },
  {
    id: 'cine',
    source: 'C.7.6.5 Table C.7-13 Cine Module',
    type1: [],
    type2: [],
    keys: ['FrameTime', 'FrameTimeVector'],
    // Annex A (US Multi-frame, and the sense of "Multi-frame Cine data" elsewhere): required if Frame Increment
    // Pointer is Frame Time or Frame Time Vector.
    appliesWhen: { kind: 'value', keyword: 'FrameIncrementPointer', in: ['FrameTime', 'FrameTimeVector'] },
    conditional: [
      {
        keyword: 'FrameTime',
        type: 1,
        when: { kind: 'value', keyword: 'FrameIncrementPointer', in: ['FrameTime'] },
        text: 'Required if Frame Increment Pointer (0028,0009) points to Frame Time',
      },
      {
        keyword: 'FrameTimeVector',
        type: 1,
        when: { kind: 'value', keyword: 'FrameIncrementPointer', in: ['FrameTimeVector'] },
        text: 'Required if Frame Increment Pointer (0028,0009) points to Frame Time Vector',
      },
    ],
  },
  {
    id: 'multi-frame',
    source: 'C.7.6.6 Table C.7-14 Multi-frame Module',
    type1: ['NumberOfFrames', 'FrameIncrementPointer'],
    type2: [],
    keys: ['NumberOfFrames'],
    // Annex A: "Required if pixel data is Multi-frame Cine data"; what can be decided is that the pixel data
    // holds more than one frame (its length), which needs Number of Frames whatever else it is.
    appliesWhen: { kind: 'multi-frame-pixel-data' },
  },
  {
    id: 'acquisition-context',
    source: 'C.7.6.14 Table C.7.6.14-1 Acquisition Context Module',
    type1: [],
    type2: ['AcquisitionContextSequence'],
    sequences: [
      {
        keyword: 'AcquisitionContextSequence',
        macro: 'Table C.7.6.14-1 Acquisition Context Sequence',
        type1: ['ConceptNameCodeSequence'],
        sequences: [codeItem('ConceptNameCodeSequence')],
      },
    ],
  },
  {
    id: 'cr-series',
    source: 'C.8.1.1 Table C.8-1 CR Series Module',
    type1: [],
    type2: ['BodyPartExamined', 'ViewPosition'],
  },
  {
    id: 'cr-image',
    source: 'C.8.1.2 Table C.8-2 CR Image Module',
    type1: ['PhotometricInterpretation'],
    type2: [],
  },
  {
    id: 'ct-image',
    source: 'C.8.2.1 Table C.8-3 CT Image Module',
    type1: [
      'ImageType',
      ...IMAGE_PIXEL_DESCRIPTION,
      'BitsStored',
      'HighBit',
      'RescaleIntercept',
      'RescaleSlope',
    ],
    type2: ['KVP', 'AcquisitionNumber'],
  },
  {
    id: 'mr-image',
    source: 'C.8.3.1 Table C.8-4 MR Image Module',
    type1: ['ImageType', ...IMAGE_PIXEL_DESCRIPTION, 'ScanningSequence', 'SequenceVariant'],
    type2: ['ScanOptions', 'MRAcquisitionType', 'EchoTime', 'EchoTrainLength'],
    conditional: [
      {
        keyword: 'InversionTime',
        type: 2,
        when: { kind: 'value', keyword: 'ScanningSequence', in: ['IR'] },
        text: 'Required if Scanning Sequence (0018,0020) has values of IR',
      },
    ],
  },
  {
    id: 'nm-pet-patient-orientation',
    source: 'C.8.4.6 Table C.8-5 NM/PET Patient Orientation Module',
    type1: [],
    type2: ['PatientOrientationCodeSequence', 'PatientGantryRelationshipCodeSequence'],
    sequences: [
      codeItem('PatientOrientationCodeSequence', [codeItem('PatientOrientationModifierCodeSequence')]),
      codeItem('PatientGantryRelationshipCodeSequence'),
    ],
  },
  {
    id: 'nm-image-pixel',
    source: 'C.8.4.7 Table C.8-6 NM Image Pixel Module',
    type1: [...IMAGE_PIXEL_DESCRIPTION, 'BitsStored', 'HighBit'],
    type2: ['PixelSpacing'],
  },
  {
    id: 'nm-multi-frame',
    source: 'C.8.4.8 Table C.8-7 NM Multi-frame Module',
    type1: ['FrameIncrementPointer', 'NumberOfEnergyWindows', 'NumberOfDetectors'],
    type2: [],
  },
  {
    id: 'nm-image',
    source: 'C.8.4.9 Table C.8-9 NM Image Module',
    type1: ['ImageType'],
    // CountsAccumulated was missing from the first curated list; dciodvfy's NMImage module has it as Type 2.
    type2: ['CountsAccumulated'],
  },
  {
    id: 'nm-isotope',
    source: 'C.8.4.10 Table C.8-10 NM Isotope Module',
    type1: [],
    type2: ['EnergyWindowInformationSequence', 'RadiopharmaceuticalInformationSequence'],
  },
  {
    id: 'nm-detector',
    source: 'C.8.4.11 Table C.8-11 NM Detector Module',
    type1: [],
    type2: ['DetectorInformationSequence'],
  },
  {
    id: 'us-image',
    source: 'C.8.5.6 Table C.8-18 US Image Module',
    type1: [...IMAGE_PIXEL_DESCRIPTION, 'BitsStored', 'HighBit', 'PixelRepresentation'],
    type2: ['ImageType'],
  },
  {
    id: 'sc-equipment',
    source: 'C.8.6.1 Table C.8-24 SC Equipment Module',
    type1: ['ConversionType'],
    type2: [],
  },
  {
    id: 'x-ray-image',
    source: 'C.8.7.1 Table C.8-26 X-Ray Image Module',
    type1: [
      'ImageType',
      'PixelIntensityRelationship',
      ...IMAGE_PIXEL_DESCRIPTION,
      'BitsStored',
      'HighBit',
      'PixelRepresentation',
    ],
    type2: [],
  },
  {
    id: 'x-ray-acquisition',
    source: 'C.8.7.2 Table C.8-27 X-Ray Acquisition Module',
    type1: ['RadiationSetting'],
    type2: ['KVP'],
  },
  {
    id: 'xa-positioner',
    source: 'C.8.7.5 Table C.8-30 XA Positioner Module',
    type1: [],
    type2: ['PositionerPrimaryAngle', 'PositionerSecondaryAngle'],
  },
  {
    id: 'pet-series',
    source: 'C.8.9.1 Table C.8-60 PET Series Module',
    type1: [
      'SeriesDate',
      'SeriesTime',
      'Units',
      'CountsSource',
      'SeriesType',
      'NumberOfSlices',
      'DecayCorrection',
    ],
    type2: ['CorrectedImage'],
  },
  {
    id: 'pet-isotope',
    source: 'C.8.9.2 Table C.8-61 PET Isotope Module',
    type1: [],
    type2: ['RadiopharmaceuticalInformationSequence'],
  },
  {
    id: 'pet-image',
    source: 'C.8.9.4 Table C.8-63 PET Image Module',
    type1: [
      'ImageType',
      ...IMAGE_PIXEL_DESCRIPTION,
      'BitsStored',
      'HighBit',
      'RescaleIntercept',
      'RescaleSlope',
      'FrameReferenceTime',
      'ImageIndex',
    ],
    type2: ['AcquisitionDate', 'AcquisitionTime', 'ActualFrameDuration'],
  },
  {
    id: 'dx-series',
    source: 'C.8.11.1 Table C.8-68 DX Series Module',
    type1: ['Modality', 'PresentationIntentType'],
    type2: [],
  },
  {
    id: 'dx-anatomy-imaged',
    source: 'C.8.11.2 Table C.8-69 DX Anatomy Imaged Module (with Table 10-6 General Anatomy Required Macro)',
    type1: ['ImageLaterality'],
    type2: ['AnatomicRegionSequence'],
    sequences: [codeItem('AnatomicRegionSequence', [codeItem('AnatomicRegionModifierSequence')])],
  },
  {
    id: 'dx-image',
    source: 'C.8.11.3 Table C.8-70 DX Image Module',
    type1: [
      'ImageType',
      'SamplesPerPixel',
      'PhotometricInterpretation',
      'BitsAllocated',
      'BitsStored',
      'HighBit',
      'PixelRepresentation',
      'PixelIntensityRelationship',
      'PixelIntensityRelationshipSign',
      'RescaleIntercept',
      'RescaleSlope',
      'RescaleType',
      'PresentationLUTShape',
      'LossyImageCompression',
    ],
    type2: [],
  },
  {
    id: 'dx-detector',
    source: 'C.8.11.4 Table C.8-71 DX Detector Module',
    type1: ['ImagerPixelSpacing'],
    type2: ['DetectorType'],
  },
  {
    id: 'mammography-series',
    source: 'C.8.11.6 Table C.8-73 Mammography Series Module',
    type1: ['Modality'],
    type2: [],
  },
  {
    id: 'mammography-image',
    source: 'C.8.11.7 Table C.8-74 Mammography Image Module',
    type1: ['ImageType', 'ImageLaterality', 'PositionerType', 'OrganExposed', 'ViewCodeSequence'],
    type2: [],
    sequences: [codeItem('ViewCodeSequence', [codeItem('ViewModifierCodeSequence')])],
  },
  {
    id: 'encapsulated-document-series',
    source: 'C.24.1 Table C.24-1 Encapsulated Document Series Module',
    type1: ['Modality', 'SeriesInstanceUID'],
    type2: ['SeriesNumber'],
  },
  {
    id: 'encapsulated-document',
    source: 'C.24.2 Table C.24-2 Encapsulated Document Module',
    type1: ['InstanceNumber', 'BurnedInAnnotation', 'MIMETypeOfEncapsulatedDocument', 'EncapsulatedDocument'],
    type2: ['ContentDate', 'ContentTime', 'AcquisitionDateTime', 'DocumentTitle', 'ConceptNameCodeSequence'],
    sequences: [codeItem('ConceptNameCodeSequence')],
  },
  {
    id: 'palette-color-lookup-table',
    source: 'C.7.9 Table C.7-23 Palette Color Lookup Table Module',
    type1: [
      'RedPaletteColorLookupTableDescriptor',
      'GreenPaletteColorLookupTableDescriptor',
      'BluePaletteColorLookupTableDescriptor',
    ],
    type2: [],
    keys: ['RedPaletteColorLookupTableDescriptor'],
    conditional: paletteData(
      { kind: 'absent', all: ['SegmentedRedPaletteColorLookupTableData'] },
      'Required if segmented data is not present (Segmented Red Palette Color Lookup Table Data (0028,1221))',
    ),
  },
  {
    id: 'modality-lut',
    source: 'C.11.1 Table C.11-1 Modality LUT Module',
    type1: [],
    type2: [],
    keys: ['ModalityLUTSequence', 'RescaleIntercept'],
    conditional: (['RescaleIntercept', 'RescaleSlope', 'RescaleType'] as const).map((keyword) => ({
      keyword,
      type: 1 as const,
      when: { kind: 'absent' as const, all: ['ModalityLUTSequence'] },
      text: 'Required if Modality LUT Sequence (0028,3000) is not present',
    })),
  },
  {
    id: 'voi-lut',
    source: 'C.11.2 Table C.11-2b VOI LUT Module (VOI LUT Macro, Table C.11-2b)',
    type1: [],
    type2: [],
    keys: ['WindowCenter', 'VOILUTSequence'],
    conditional: [
      {
        keyword: 'WindowCenter',
        type: 1,
        when: { kind: 'absent', all: ['VOILUTSequence'] },
        text: 'Required if VOI LUT Sequence (0028,3010) is not present',
      },
      {
        keyword: 'WindowWidth',
        type: 1,
        when: { kind: 'present', any: ['WindowCenter'] },
        text: 'Required if Window Center (0028,1050) is present',
      },
    ],
  },
  {
    id: 'sop-common',
    source: 'C.12.1 Table C.12-1 SOP Common Module',
    type1: ['SOPClassUID', 'SOPInstanceUID'],
    type2: [],
    conditional: [
      {
        keyword: 'SpecificCharacterSet',
        type: 1,
        when: { kind: 'non-default-repertoire' },
        text: 'Required if an expanded or replacement character set is used',
      },
    ],
  },
];

export const MODULE_BY_ID: ReadonlyMap<string, ModuleRequirement> = new Map(
  MODULE_REQUIREMENTS.map((m) => [m.id, m]),
);
