import { describe, expect, it } from 'vitest';
import type { Dataset, Element } from '../../dicom/dataset.js';
import { tagForKeyword } from '../../dicom/dictionary.js';
import { validateHeader } from './validate-header.js';
import { decide, dispositionOf, levelFor } from './validation-policy.js';

const text = (vr: string, ...values: string[]): Element => ({ vr, kind: 'text', values });
const num = (vr: string, ...values: number[]): Element => ({ vr, kind: 'numbers', values });

function ds(entries: Record<string, Element>, omit: string[] = []): Dataset {
  const m: Dataset = new Map();
  for (const [kw, el] of Object.entries(entries)) if (!omit.includes(kw)) m.set(tagForKeyword(kw)!, el);
  return m;
}

/** A CT image header with every unconditional Type 1 and Type 2 attribute of its modules. */
const CT: Record<string, Element> = {
  SOPClassUID: text('UI', '1.2.840.10008.5.1.4.1.1.2'),
  SOPInstanceUID: text('UI', '1.2.3.4'),
  ImageType: text('CS', 'ORIGINAL', 'PRIMARY', 'AXIAL'),
  StudyDate: text('DA', '20240115'),
  StudyTime: text('TM', '101500'),
  AccessionNumber: text('SH', 'ACC1'),
  Modality: text('CS', 'CT'),
  Manufacturer: text('LO', 'Custos'),
  ReferringPhysicianName: text('PN', ''),
  PatientName: text('PN', 'Doe^Jane'),
  PatientID: text('LO', 'PID-1'),
  PatientBirthDate: text('DA', ''),
  PatientSex: text('CS', 'F'),
  KVP: text('DS', '120'),
  SliceThickness: text('DS', '1'),
  StudyInstanceUID: text('UI', '1.2.3'),
  SeriesInstanceUID: text('UI', '1.2.3.5'),
  StudyID: text('SH', 'S1'),
  SeriesNumber: text('IS', '1'),
  AcquisitionNumber: text('IS', '1'),
  InstanceNumber: text('IS', '1'),
  ImagePositionPatient: text('DS', '0', '0', '0'),
  ImageOrientationPatient: text('DS', '1', '0', '0', '0', '1', '0'),
  FrameOfReferenceUID: text('UI', '1.2.3.6'),
  PositionReferenceIndicator: text('LO', ''),
  SamplesPerPixel: num('US', 1),
  PhotometricInterpretation: text('CS', 'MONOCHROME2'),
  Rows: num('US', 2),
  Columns: num('US', 2),
  PixelSpacing: text('DS', '0.5', '0.5'),
  BitsAllocated: num('US', 16),
  BitsStored: num('US', 12),
  HighBit: num('US', 11),
  PixelRepresentation: num('US', 0),
  RescaleIntercept: text('DS', '-1024'),
  RescaleSlope: text('DS', '1'),
  PixelData: { vr: 'OW', kind: 'bytes', data: Buffer.alloc(8) },
};

describe('validateHeader', () => {
  it('finds nothing wrong with a complete CT image and names the modules of the CT Image IOD', () => {
    const v = validateHeader(ds(CT));
    expect(v.defects).toEqual([]);
    expect(v.iod).toBe('ct-image');
    expect(v.modules).toEqual(expect.arrayContaining(['patient', 'ct-image', 'image-plane', 'sop-common']));
  });
  it('names a missing Type 2 attribute with its module table', () => {
    const [d] = validateHeader(ds(CT, ['PatientID'])).defects;
    expect(d).toMatchObject({ kind: 'type2-missing', tag: '00100020' });
    expect(d!.message).toMatch(/^\(0010,0020\) PatientID Type 2 missing \(C\.7\.1\.1 Table C\.7-1/);
  });
  it('tells a missing Type 1 attribute from an empty one', () => {
    expect(validateHeader(ds(CT, ['Modality'])).defects[0]).toMatchObject({
      kind: 'type1-missing',
      tag: '00080060',
    });
    expect(validateHeader(ds({ ...CT, Modality: text('CS', '') })).defects[0]).toMatchObject({
      kind: 'type1-empty',
      tag: '00080060',
    });
  });
  it('allows an empty Type 2 attribute', () => {
    expect(validateHeader(ds({ ...CT, PatientName: text('PN', '') })).defects).toEqual([]);
  });
  it('reports a bad date, time and UID', () => {
    const kinds = validateHeader(
      ds({
        ...CT,
        StudyDate: text('DA', '20241341'),
        StudyTime: text('TM', '25'),
        FrameOfReferenceUID: text('UI', '1.02'),
      }),
    ).defects.map((d) => [d.kind, d.tag]);
    expect(kinds).toEqual(
      expect.arrayContaining([
        ['invalid-value', '00080020'],
        ['invalid-value', '00080030'],
        ['invalid-value', '00200052'],
      ]),
    );
  });
  it('reports a value multiplicity the dictionary does not allow', () => {
    const d = validateHeader(ds({ ...CT, PatientID: text('LO', 'A', 'B') })).defects;
    expect(d).toEqual([expect.objectContaining({ kind: 'invalid-vm', tag: '00100020' })]);
  });
  it('checks values inside sequences', () => {
    const item: Dataset = new Map([
      [tagForKeyword('ReferencedSOPClassUID')!, text('UI', '1.2.840.10008.5.1.4.1.1.2')],
      [tagForKeyword('ReferencedSOPInstanceUID')!, text('UI', 'x.y')],
    ]);
    const d = validateHeader(
      ds({ ...CT, ReferencedImageSequence: { vr: 'SQ', kind: 'sequence', items: [item] } }),
    ).defects;
    expect(d).toEqual([
      expect.objectContaining({
        kind: 'invalid-value',
        tag: '00081140.00081155',
        attribute: 'ReferencedImageSequence[0].ReferencedSOPInstanceUID (0008,1155)',
      }),
    ]);
  });
  it('requires the attributes of sequence items, naming the path', () => {
    const ok: Dataset = new Map([
      [tagForKeyword('ReferencedSOPClassUID')!, text('UI', '1.2.840.10008.5.1.4.1.1.2')],
      [tagForKeyword('ReferencedSOPInstanceUID')!, text('UI', '1.2.3')],
    ]);
    const broken: Dataset = new Map([
      [tagForKeyword('ReferencedSOPClassUID')!, text('UI', '1.2.840.10008.5.1.4.1.1.2')],
    ]);
    const d = validateHeader(
      ds({ ...CT, ReferencedImageSequence: { vr: 'SQ', kind: 'sequence', items: [ok, broken] } }),
    ).defects;
    expect(d).toEqual([
      expect.objectContaining({
        kind: 'type1-missing',
        tag: '00081140.00081155',
        attribute: 'ReferencedImageSequence[1].ReferencedSOPInstanceUID (0008,1155)',
        message: expect.stringMatching(
          /^ReferencedImageSequence\[1\]\.ReferencedSOPInstanceUID \(0008,1155\) Type 1 missing \(C\.7\.6\.1 .*Table 10-3 Image SOP Instance Reference Macro\)$/,
        ),
      }),
    ]);
    // A code item: Code Meaning is Type 1; Coding Scheme Designator 1C once a Code Value is given.
    const code: Dataset = new Map([[tagForKeyword('CodeValue')!, text('SH', 'T-D0010')]]);
    const nested = validateHeader(
      ds({ ...CT, ProcedureCodeSequence: { vr: 'SQ', kind: 'sequence', items: [code] } }),
    ).defects;
    expect(nested.map((x) => [x.kind, x.attribute])).toEqual([
      ['type1-missing', 'ProcedureCodeSequence[0].CodeMeaning (0008,0104)'],
      ['type1c-missing', 'ProcedureCodeSequence[0].CodingSchemeDesignator (0008,0102)'],
    ]);
  });
  it('evaluates Type 1C conditions of the Image Pixel module', () => {
    const rgb = validateHeader(
      ds({
        ...CT,
        SamplesPerPixel: { vr: 'US', kind: 'numbers', values: [3] },
        PhotometricInterpretation: text('CS', 'RGB'),
        PixelData: { vr: 'OW', kind: 'bytes', data: Buffer.alloc(24) },
      }),
    ).defects;
    expect(rgb).toEqual([
      expect.objectContaining({
        kind: 'type1c-missing',
        tag: '00280006',
        message: expect.stringMatching(
          /PlanarConfiguration Type 1C missing .*Samples per Pixel .* greater than 1/,
        ),
      }),
    ]);
    const palette = validateHeader(
      ds({
        ...CT,
        SOPClassUID: text('UI', '1.2.840.10008.5.1.4.1.1.7'),
        ConversionType: text('CS', 'WSD'),
        PhotometricInterpretation: text('CS', 'PALETTE COLOR'),
        RedPaletteColorLookupTableDescriptor: { vr: 'US', kind: 'numbers', values: [256, 0, 8] },
      }),
    ).defects.filter((x) => x.kind === 'type1c-missing' && /Palette/.test(x.attribute!));
    expect(palette.map((x) => x.attribute)).toEqual([
      '(0028,1102) GreenPaletteColorLookupTableDescriptor',
      '(0028,1103) BluePaletteColorLookupTableDescriptor',
      '(0028,1201) RedPaletteColorLookupTableData',
      '(0028,1202) GreenPaletteColorLookupTableData',
      '(0028,1203) BluePaletteColorLookupTableData',
    ]);
  });
  it('requires Specific Character Set once text leaves the default repertoire', () => {
    const latin = { ...CT, PatientName: text('PN', 'Müller^Jürgen') };
    expect(validateHeader(ds(latin)).defects).toEqual([
      expect.objectContaining({ kind: 'type1c-missing', tag: '00080005' }),
    ]);
    expect(validateHeader(ds({ ...latin, SpecificCharacterSet: text('CS', 'ISO_IR 100') })).defects).toEqual(
      [],
    );
  });
  it('requires Number of Frames when the pixel data holds more than one frame', () => {
    const xa = {
      ...CT,
      SOPClassUID: text('UI', '1.2.840.10008.5.1.4.1.1.12.1'),
    };
    const oneFrame = validateHeader(
      ds({ ...xa, PixelData: { vr: 'OW', kind: 'bulk', offset: 0, length: 8 } }),
    );
    expect(oneFrame.modules).not.toContain('multi-frame');
    const twoFrames = validateHeader(
      ds({ ...xa, PixelData: { vr: 'OW', kind: 'bulk', offset: 0, length: 16 } }),
    );
    expect(twoFrames.modules).toContain('multi-frame');
    expect(twoFrames.defects.filter((x) => x.tag === '00280008')).toEqual([
      expect.objectContaining({ kind: 'type1-missing' }),
    ]);
  });
  it('finds native pixel data shorter than the Image Pixel module describes, and only that', () => {
    const px = (length: number) => ({ vr: 'OW', kind: 'bulk' as const, offset: 0, length });
    // 2 × 2 × 16 bits = 8 bytes a frame.
    expect(validateHeader(ds({ ...CT, PixelData: px(7) })).defects).toEqual([
      {
        kind: 'pixel-data-short',
        tag: '7FE00010',
        attribute: '(7FE0,0010) PixelData',
        message:
          '(7FE0,0010) PixelData holds 7 bytes; the Image Pixel module describes 1 frame(s) of 8 bytes (8), so only 0 whole frame(s) (PS3.5 section 8.1.1)',
      },
    ]);
    const short = (entries: Record<string, Element>) =>
      validateHeader(ds({ ...CT, ...entries })).defects.filter((d) => d.kind === 'pixel-data-short');
    expect(short({ NumberOfFrames: text('IS', '3'), PixelData: px(20) })[0]!.message).toContain(
      'holds 20 bytes; the Image Pixel module describes 3 frame(s) of 8 bytes (24), so only 2 whole frame(s)',
    );
    expect(short({ NumberOfFrames: text('IS', '3'), PixelData: px(24) })).toEqual([]);
    // YBR_FULL_422 holds two samples a pixel: 2 × 2 × 2 × 8 bits.
    const ybr = {
      SamplesPerPixel: num('US', 3),
      PhotometricInterpretation: text('CS', 'YBR_FULL_422'),
      BitsAllocated: num('US', 8),
    };
    expect(short({ ...ybr, PixelData: px(8) })).toEqual([]);
    expect(short({ ...ybr, PixelData: px(7) })).toHaveLength(1);
    // Encapsulated pixel data has no length to compare; a missing Rows is reported as missing, not as short.
    expect(
      short({
        PixelData: { vr: 'OB', kind: 'encapsulated', fragments: [], offsets: [] } as unknown as Element,
      }),
    ).toEqual([]);
    expect(validateHeader(ds(CT, ['Rows'])).defects.map((d) => d.kind)).toEqual(['type1-missing']);
    // Quarantined by default: the data steward looks before a reader does; rejected under strict.
    const [d] = short({ PixelData: px(4) });
    expect(dispositionOf('standard', d!)).toBe('quarantine');
    expect(dispositionOf('strict', d!)).toBe('reject');
    expect(dispositionOf('lenient', d!)).toBe('warn');
  });
  it('requires a conditional module when its PS3.3 Annex A condition is mechanical and holds', () => {
    // Frame of Reference: "Required if Image Position (Patient) or Image Orientation (Patient) are present".
    const sc = {
      ...CT,
      SOPClassUID: text('UI', '1.2.840.10008.5.1.4.1.1.7'),
      ConversionType: text('CS', 'WSD'),
    };
    expect(validateHeader(ds(sc)).modules).toContain('frame-of-reference');
    const v = validateHeader(ds(sc, ['FrameOfReferenceUID']));
    expect(v.defects.filter((x) => x.tag === '00200052')).toEqual([
      expect.objectContaining({ kind: 'type1-missing' }),
    ]);
    const flat = validateHeader(
      ds(sc, ['FrameOfReferenceUID', 'ImagePositionPatient', 'ImageOrientationPatient']),
    );
    expect(flat.modules).not.toContain('frame-of-reference');
  });
  it('checks a conditional module only when its key attribute is present', () => {
    expect(validateHeader(ds(CT)).modules).not.toContain('contrast-bolus');
    const withAgent = validateHeader(
      ds({
        ...CT,
        ContrastBolusRoute: text('LO', 'IV'),
        ContrastBolusAgentSequence: { vr: 'SQ', kind: 'sequence', items: [] },
      }),
    );
    expect(withAgent.modules).toContain('contrast-bolus');
    expect(withAgent.defects).toEqual([expect.objectContaining({ kind: 'type2-missing', tag: '00180010' })]);
  });
  it('checks an unknown SOP class against the modules every composite IOD has, with a warning', () => {
    const v = validateHeader(ds({ ...CT, SOPClassUID: text('UI', '1.2.3.999') }, ['PatientSex']));
    expect(v.iod).toBeUndefined();
    expect(v.defects.map((d) => d.kind)).toEqual(['unknown-sop-class', 'type2-missing']);
  });
  it('requires the Encapsulated Document attributes of an encapsulated PDF', () => {
    const v = validateHeader(ds({ ...CT, SOPClassUID: text('UI', '1.2.840.10008.5.1.4.1.1.104.1') }));
    expect(v.iod).toBe('encapsulated-pdf');
    expect(v.defects.map((d) => d.attribute)).toEqual(
      expect.arrayContaining(['(0042,0012) MIMETypeOfEncapsulatedDocument', '(0008,0064) ConversionType']),
    );
  });
});

describe('validation policy', () => {
  const missingPid = validateHeader(ds(CT, ['PatientID'])).defects;
  const missingKvp = validateHeader(ds(CT, ['KVP'])).defects;
  const missingModality = validateHeader(ds(CT, ['Modality'])).defects;
  it('strict rejects any missing attribute', () => {
    expect(decide('strict', missingKvp).outcome).toBe('rejected');
    expect(decide('strict', missingPid).outcome).toBe('rejected');
  });
  it('standard quarantines missing Type 1 and identity defects, warns on other Type 2', () => {
    expect(decide('standard', missingModality).outcome).toBe('quarantined');
    expect(decide('standard', missingPid).outcome).toBe('quarantined');
    expect(decide('standard', missingKvp).outcome).toBe('warning');
    expect(decide('standard', []).outcome).toBe('accepted');
  });
  it('lenient warns, but never files a study under a second patient', () => {
    expect(decide('lenient', missingModality).outcome).toBe('warning');
    expect(decide('lenient', [{ kind: 'study-patient-conflict', message: 'x' }]).outcome).toBe('quarantined');
    expect(decide('strict', [{ kind: 'study-patient-conflict', message: 'x' }]).outcome).toBe('rejected');
  });
  it('an accession number with no order quarantines unless lenient', () => {
    expect(decide('standard', [{ kind: 'unknown-accession', message: 'x' }]).outcome).toBe('quarantined');
    expect(decide('lenient', [{ kind: 'unknown-accession', message: 'x' }]).outcome).toBe('warning');
  });
  it('takes the level of the sending AE, then the channel, then the default', () => {
    const s = {
      default: 'standard' as const,
      byAe: { CT01: 'strict' as const },
      byChannel: { import: 'lenient' as const },
    };
    expect(levelFor(s, { aeTitle: 'CT01', channel: 'c-store' })).toBe('strict');
    expect(levelFor(s, { aeTitle: 'OTHER', channel: 'import' })).toBe('lenient');
    expect(levelFor(s, { channel: 'stow-rs' })).toBe('standard');
  });
});

describe('patient index mismatch disposition', () => {
  it('warns at standard and lenient, and quarantines under strict', () => {
    const d = {
      kind: 'patient-index-mismatch' as const,
      tag: '00100010',
      attribute: '(0010,0010) PatientName',
      message: 'differs from the patient index',
    };
    expect(dispositionOf('standard', d)).toBe('warn');
    expect(dispositionOf('lenient', d)).toBe('warn');
    expect(dispositionOf('strict', d)).toBe('quarantine');
  });
});
