// Deterministic synthetic DICOM datasets for benchmarks (and small ones for tests): same seed, same bytes.
import { writePart10, type WriteElement } from '../src/dicom/part10-writer.js';
import { Tags, TransferSyntax, tag } from '../src/dicom/tags.js';

export type SetName = 'large' | 'tiny';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FAMILY = [
  'Smith',
  'Johnson',
  'Müller',
  'García',
  'Nguyen',
  'Kowalski',
  'Dubois',
  'Rossi',
  'Jensen',
  'Núñez',
  'Smithers',
  'Smyth',
  'Brown',
  'Tanaka',
  'Okafor',
  'Lindqvist',
  'Søren',
  'Ivanova',
  'Papadopoulos',
  'Walsh',
];
const GIVEN = [
  'Anna',
  'John',
  'Jürgen',
  'María',
  'Minh',
  'Piotr',
  'Chloé',
  'Luca',
  'Freja',
  'José',
  'Wei',
  'Amara',
  'Olof',
  'Ingrid',
  'Yuki',
  'Sean',
];
const PHYS = ['House^Gregory', 'Grey^Meredith', 'Carter^John', 'Quinn^Michaela', 'Welby^Marcus'];
const BODY = {
  CT: ['HEAD', 'CHEST', 'ABDOMEN'],
  MR: ['BRAIN', 'KNEE', 'SPINE'],
  CR: ['CHEST', 'HAND'],
  MG: ['BREAST'],
  US: ['ABDOMEN'],
} as const;
const SOP_CLASS = {
  CT: '1.2.840.10008.5.1.4.1.1.2',
  MR: '1.2.840.10008.5.1.4.1.1.4',
  CR: '1.2.840.10008.5.1.4.1.1.1',
  MG: '1.2.840.10008.5.1.4.1.1.1.2',
  US: '1.2.840.10008.5.1.4.1.1.6.1',
} as const;
type Modality = keyof typeof SOP_CLASS;

export interface GeneratedInstance {
  /** Relative path: patient/study/series/n.dcm */
  path: string;
  bytes: Buffer;
}

interface StudyPlan {
  modality: Modality;
  series: number;
  perSeries: number;
  rows: number;
  columns: number;
}

const root = (seed: number) => `2.25.${1000 + (seed % 9000)}`;

function pixels(rows: number, columns: number, rand: () => number, bits16 = true): Buffer {
  const n = rows * columns;
  const buf = Buffer.allocUnsafe(n * (bits16 ? 2 : 1));
  const noise = Math.floor(rand() * 65536);
  if (bits16) {
    const v = new Uint16Array(buf.buffer, buf.byteOffset, n);
    for (let r = 0, i = 0; r < rows; r++) {
      const rowBase = (r * 4) & 0x0fff;
      for (let c = 0; c < columns; c++, i++)
        v[i] = (rowBase + c * 2 + ((Math.imul(i, -1640531535) + noise) >>> 24)) & 0x0fff;
    }
  }
  return buf;
}

function plan(set: SetName, rand: () => number): { patients: number; studies: StudyPlan[] } {
  if (set === 'tiny') {
    const mods: Modality[] = ['CT', 'MR', 'CR', 'MG', 'US'];
    return {
      patients: 2000,
      studies: Array.from({ length: 5000 }, (_, i) => ({
        modality: mods[i % mods.length]!,
        series: 1,
        perSeries: 2,
        rows: 16,
        columns: 16,
      })),
    };
  }
  const studies: StudyPlan[] = [];
  for (let i = 0; i < 6; i++)
    studies.push({ modality: 'CT', series: 1, perSeries: 120, rows: 512, columns: 512 });
  for (let i = 0; i < 4; i++)
    studies.push({ modality: 'MR', series: 3, perSeries: 20, rows: 256, columns: 256 });
  for (let i = 0; i < 8; i++)
    studies.push({ modality: 'CR', series: 2, perSeries: 1, rows: 2500, columns: 2048 });
  studies.push({ modality: 'MG', series: 1, perSeries: 2, rows: 2394, columns: 1914 });
  for (let i = 0; i < 2; i++)
    studies.push({ modality: 'MR', series: 1, perSeries: 6, rows: 256, columns: 256 });
  void rand;
  return { patients: 12, studies };
}

/** All instances of a set, generated lazily in a deterministic order. */
export function* generateInstances(set: SetName, seed = 42): Generator<GeneratedInstance> {
  const rand = mulberry32(seed);
  const { patients, studies } = plan(set, rand);
  const uidRoot = root(seed);
  const patientInfo = Array.from({ length: patients }, (_, p) => {
    const fam = FAMILY[Math.floor(rand() * FAMILY.length)]!;
    const giv = GIVEN[Math.floor(rand() * GIVEN.length)]!;
    return {
      id: `${set === 'tiny' ? 'T' : 'L'}${String(p + 1).padStart(6, '0')}`,
      name: `${fam}^${giv}`,
      birth: `${1935 + Math.floor(rand() * 80)}${String(1 + Math.floor(rand() * 12)).padStart(2, '0')}${String(1 + Math.floor(rand() * 28)).padStart(2, '0')}`,
      sex: rand() < 0.5 ? 'F' : 'M',
    };
  });
  for (let s = 0; s < studies.length; s++) {
    const st = studies[s]!;
    const pat = patientInfo[s % patients]!;
    const studyUid = `${uidRoot}.1.${s + 1}`;
    // Study dates spread over 2021-2024, times over the working day.
    const day = Math.floor(rand() * 4 * 365);
    const date = new Date(Date.UTC(2021, 0, 1) + day * 86_400_000);
    const studyDate = date.toISOString().slice(0, 10).replace(/-/g, '');
    const studyTime = `${String(7 + Math.floor(rand() * 11)).padStart(2, '0')}${String(Math.floor(rand() * 60)).padStart(2, '0')}${String(Math.floor(rand() * 60)).padStart(2, '0')}`;
    const accession = `A${String(100000 + s)}`;
    const body = BODY[st.modality][Math.floor(rand() * BODY[st.modality].length)]!;
    const physician = PHYS[Math.floor(rand() * PHYS.length)]!;
    for (let se = 0; se < st.series; se++) {
      const seriesUid = `${studyUid}.${se + 1}`;
      for (let n = 0; n < st.perSeries; n++) {
        const sop = `${seriesUid}.${n + 1}`;
        const els: WriteElement[] = [
          { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 192' },
          {
            tag: Tags.ImageType,
            vr: 'CS',
            value: ['ORIGINAL', 'PRIMARY', st.modality === 'CT' ? 'AXIAL' : 'OTHER'],
          },
          { tag: Tags.SOPClassUID, vr: 'UI', value: SOP_CLASS[st.modality] },
          { tag: Tags.SOPInstanceUID, vr: 'UI', value: sop },
          { tag: Tags.StudyDate, vr: 'DA', value: studyDate },
          { tag: Tags.SeriesDate, vr: 'DA', value: studyDate },
          { tag: Tags.StudyTime, vr: 'TM', value: studyTime },
          { tag: Tags.AccessionNumber, vr: 'SH', value: accession },
          { tag: Tags.Modality, vr: 'CS', value: st.modality },
          { tag: Tags.Manufacturer, vr: 'LO', value: 'Custos Synthetic' },
          { tag: Tags.InstitutionName, vr: 'LO', value: 'General Hospital' },
          { tag: Tags.ReferringPhysicianName, vr: 'PN', value: physician },
          { tag: Tags.StationName, vr: 'SH', value: `${st.modality}01` },
          { tag: Tags.StudyDescription, vr: 'LO', value: `${st.modality} ${body}` },
          { tag: Tags.SeriesDescription, vr: 'LO', value: `${body} series ${se + 1}` },
          { tag: Tags.InstitutionalDepartmentName, vr: 'LO', value: 'Radiology' },
          { tag: Tags.ManufacturerModelName, vr: 'LO', value: 'Model 1' },
          { tag: Tags.PatientName, vr: 'PN', value: pat.name },
          { tag: Tags.PatientID, vr: 'LO', value: pat.id },
          { tag: Tags.PatientBirthDate, vr: 'DA', value: pat.birth },
          { tag: Tags.PatientSex, vr: 'CS', value: pat.sex },
          { tag: Tags.BodyPartExamined, vr: 'CS', value: body },
          ...(st.modality === 'CT'
            ? [
                { tag: Tags.SliceThickness, vr: 'DS', value: '1.25' },
                { tag: Tags.KVP, vr: 'DS', value: '120' },
              ]
            : []),
          { tag: Tags.ProtocolName, vr: 'LO', value: `${body} routine` },
          { tag: Tags.StudyInstanceUID, vr: 'UI', value: studyUid },
          { tag: Tags.SeriesInstanceUID, vr: 'UI', value: seriesUid },
          { tag: Tags.StudyID, vr: 'SH', value: String(s + 1) },
          { tag: Tags.SeriesNumber, vr: 'IS', value: String(se + 1) },
          { tag: Tags.InstanceNumber, vr: 'IS', value: String(n + 1) },
          { tag: Tags.ImagePositionPatient, vr: 'DS', value: ['-125', '-125', String(n * 1.25)] },
          { tag: Tags.ImageOrientationPatient, vr: 'DS', value: ['1', '0', '0', '0', '1', '0'] },
          { tag: Tags.FrameOfReferenceUID, vr: 'UI', value: `${seriesUid}.0` },
          { tag: Tags.SamplesPerPixel, vr: 'US', value: 1 },
          { tag: Tags.PhotometricInterpretation, vr: 'CS', value: 'MONOCHROME2' },
          { tag: Tags.Rows, vr: 'US', value: st.rows },
          { tag: Tags.Columns, vr: 'US', value: st.columns },
          { tag: Tags.PixelSpacing, vr: 'DS', value: ['0.5', '0.5'] },
          { tag: Tags.BitsAllocated, vr: 'US', value: 16 },
          { tag: Tags.BitsStored, vr: 'US', value: 12 },
          { tag: Tags.HighBit, vr: 'US', value: 11 },
          { tag: Tags.PixelRepresentation, vr: 'US', value: 0 },
          { tag: Tags.WindowCenter, vr: 'DS', value: '40' },
          { tag: Tags.WindowWidth, vr: 'DS', value: '400' },
          {
            tag: Tags.RequestAttributesSequence,
            vr: 'SQ',
            value: [
              [
                { tag: tag(0x0040, 0x0009), vr: 'SH', value: `SPS${s}` },
                { tag: tag(0x0040, 0x1001), vr: 'SH', value: `RP${s}` },
              ],
            ],
          },
          { tag: Tags.PixelData, vr: 'OW', value: pixels(st.rows, st.columns, rand) },
        ];
        yield {
          path: `${pat.id}/${studyUid}/${seriesUid}/${n + 1}.dcm`,
          bytes: writePart10(els, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian }),
        };
      }
    }
  }
}

/** Header of a multi-frame object whose pixel data (declared length `pixelBytes`) the caller streams after it. */
export function multiframeHeader(
  frames: number,
  rows: number,
  columns: number,
  seed = 7,
): { header: Buffer; pixelBytes: number } {
  const uidRoot = root(seed);
  const pixelBytes = frames * rows * columns * 2;
  const els: WriteElement[] = [
    { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 192' },
    { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.4.1' },
    { tag: Tags.SOPInstanceUID, vr: 'UI', value: `${uidRoot}.9.1.1.1` },
    { tag: Tags.StudyDate, vr: 'DA', value: '20240601' },
    { tag: Tags.Modality, vr: 'CS', value: 'MR' },
    { tag: Tags.PatientName, vr: 'PN', value: 'Large^Object' },
    { tag: Tags.PatientID, vr: 'LO', value: 'BIG-1' },
    { tag: Tags.StudyInstanceUID, vr: 'UI', value: `${uidRoot}.9.1` },
    { tag: Tags.SeriesInstanceUID, vr: 'UI', value: `${uidRoot}.9.1.1` },
    { tag: Tags.SamplesPerPixel, vr: 'US', value: 1 },
    { tag: Tags.PhotometricInterpretation, vr: 'CS', value: 'MONOCHROME2' },
    { tag: Tags.NumberOfFrames, vr: 'IS', value: String(frames) },
    { tag: Tags.Rows, vr: 'US', value: rows },
    { tag: Tags.Columns, vr: 'US', value: columns },
    { tag: Tags.BitsAllocated, vr: 'US', value: 16 },
    { tag: Tags.BitsStored, vr: 'US', value: 16 },
    { tag: Tags.HighBit, vr: 'US', value: 15 },
    { tag: Tags.PixelRepresentation, vr: 'US', value: 0 },
    { tag: Tags.PixelData, vr: 'OW', value: Buffer.alloc(0) },
  ];
  const header = writePart10(els, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian });
  // The empty PixelData is the last element: set its 32-bit length to the real size.
  header.writeUInt32LE(pixelBytes, header.length - 4);
  return { header, pixelBytes };
}
