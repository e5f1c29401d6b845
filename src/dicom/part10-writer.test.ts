import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CustosError } from '../domain/errors.js';
import { getNumbers, getString, getStrings, type Dataset, type Element } from './dataset.js';
import { parsePart10 } from './part10-parser.js';
import { inCharacterSet, writeDataset, writePart10, type WriteElement } from './part10-writer.js';
import { Tags, TransferSyntax, tag } from './tags.js';

const every: WriteElement[] = [
  { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 192' },
  { tag: Tags.ImageType, vr: 'CS', value: ['ORIGINAL', 'PRIMARY'] },
  { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
  { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2.3.4.5' },
  { tag: Tags.StudyDate, vr: 'DA', value: '20240229' },
  { tag: Tags.StudyTime, vr: 'TM', value: '235959.5' },
  { tag: Tags.PatientName, vr: 'PN', value: 'Ωμέγα^Σοφία' },
  { tag: Tags.PatientAge, vr: 'AS', value: '042Y' },
  { tag: Tags.PatientComments, vr: 'LT', value: ' leading space kept\\no split' },
  { tag: Tags.SeriesNumber, vr: 'IS', value: 7 },
  { tag: Tags.PixelSpacing, vr: 'DS', value: ['0.5', '0.25'] },
  { tag: Tags.RetrieveURL, vr: 'UR', value: 'https://example.org/wado' },
  { tag: tag(0x0018, 0x9219), vr: 'SS', value: [-2, 3] },
  { tag: tag(0x0018, 0x1310), vr: 'US', value: [0, 256, 256, 0] },
  { tag: tag(0x0018, 0x6020), vr: 'SL', value: -70000 },
  { tag: tag(0x0020, 0x9228), vr: 'UL', value: 4000000000 },
  { tag: tag(0x0018, 0x9089), vr: 'FD', value: [0.1, -1e300] },
  { tag: tag(0x0018, 0x0013), vr: 'FL', value: 1.5 },
  { tag: tag(0x0072, 0x0082), vr: 'SV', value: [-(2n ** 62n), 5n] },
  { tag: tag(0x0072, 0x0083), vr: 'UV', value: [2n ** 64n - 1n] },
  { tag: tag(0x0020, 0x9165), vr: 'AT', value: [Tags.PatientName, Tags.PixelData] },
  { tag: tag(0x0028, 0x1201), vr: 'OW', value: Buffer.from([1, 2, 3, 4]) },
  { tag: tag(0x0066, 0x0016), vr: 'OF', value: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]) },
  { tag: tag(0x0066, 0x0040), vr: 'OL', value: Buffer.from([9, 8, 7, 6]) },
  { tag: tag(0x0066, 0x0022), vr: 'OD', value: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]) },
  { tag: tag(0x0019, 0x0010), vr: 'LO', value: 'PRIVATE CREATOR' },
  { tag: tag(0x0019, 0x1001), vr: 'OB', value: Buffer.from([0xde, 0xad, 0xbe]) },
  {
    tag: Tags.ReferencedSeriesSequence,
    vr: 'SQ',
    value: [
      [
        { tag: Tags.SeriesInstanceUID, vr: 'UI', value: '1.2.3.9' },
        {
          tag: Tags.ReferencedSOPSequence,
          vr: 'SQ',
          value: [[{ tag: Tags.ReferencedSOPInstanceUID, vr: 'UI', value: '1.2.3.9.1' }], []],
        },
      ],
    ],
  },
  { tag: Tags.PixelData, vr: 'OW', value: Buffer.from([1, 0, 2, 0, 3, 0, 4, 0]) },
];

/** The values a reader sees, independent of encoding: what the round trip must preserve. */
function values(ds: Dataset): unknown {
  const out: Record<string, unknown> = {};
  for (const [t, e] of [...ds].sort((a, b) => a[0] - b[0])) out[t.toString(16)] = valueOf(e);
  return out;
}
function valueOf(e: Element): unknown {
  switch (e.kind) {
    case 'text':
    case 'numbers':
    case 'bigints':
    case 'tags':
      return e.values;
    case 'bytes':
      return e.data.toString('hex');
    case 'sequence':
      return e.items.map(values);
    default:
      return e.kind;
  }
}

const native = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.ExplicitVRBigEndian,
  TransferSyntax.DeflatedExplicitVRLittleEndian,
];

describe('writePart10', () => {
  it('writes a preamble, DICM and a file meta group naming the SOP instance and transfer syntax', async () => {
    const file = writePart10(every, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian });
    expect(file.subarray(0, 128).every((b) => b === 0)).toBe(true);
    expect(file.toString('latin1', 128, 132)).toBe('DICM');
    const p = await parsePart10(file);
    expect(getString(p.fileMeta, Tags.MediaStorageSOPClassUID)).toBe('1.2.840.10008.5.1.4.1.1.7');
    expect(getString(p.fileMeta, Tags.MediaStorageSOPInstanceUID)).toBe('1.2.3.4.5');
    expect(getString(p.fileMeta, Tags.TransferSyntaxUID)).toBe(TransferSyntax.ExplicitVRLittleEndian);
    // PS3.10 §7.1: the group length counts the bytes of the rest of group 0002.
    const groupLength = getNumbers(p.fileMeta, Tags.FileMetaInformationGroupLength)![0]!;
    expect(132 + 12 + groupLength).toBe(p.datasetStart);
    expect(p.warnings).toEqual([]);
  });

  it('pads a deflated data set to an even length with one 00H (PS3.5 A.5), and reads it back', async () => {
    let odd = 0;
    for (let i = 0; i < 16; i++) {
      const elements = every.map((e) =>
        e.tag === Tags.PatientComments ? { ...e, value: `comment ${'x'.repeat(i * 3)}${i}` } : e,
      );
      const file = writePart10(elements, {
        transferSyntaxUid: TransferSyntax.DeflatedExplicitVRLittleEndian,
      });
      const p = await parsePart10(file, { maxInlineValueBytes: 1 << 20 });
      const deflated = file.subarray(p.datasetStart);
      expect(deflated.length % 2, `comment of ${i * 3 + 1} characters`).toBe(0);
      // The stream itself, without the pad, when it was odd: the pad is there only then.
      const stream = deflateRawSync(inflateRawSync(deflated));
      if (stream.length % 2 === 1) {
        odd++;
        expect(deflated.subarray(0, -1).equals(stream)).toBe(true);
        expect(deflated[deflated.length - 1]).toBe(0);
      } else expect(deflated.equals(stream)).toBe(true);
      expect(getStrings(p.dataset, Tags.PatientComments)).toEqual([`comment ${'x'.repeat(i * 3)}${i}`]);
    }
    // Both lengths came up, so both branches were checked.
    expect(odd).toBeGreaterThan(0);
    expect(odd).toBeLessThan(16);
  });

  for (const ts of native) {
    it(`round-trips every VR, nested sequences and big values through ${ts}`, async () => {
      const reference = await parsePart10(
        writePart10(every, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian }),
      );
      for (const undefinedLengthSequences of [false, true]) {
        const file = writePart10(every, { transferSyntaxUid: ts, undefinedLengthSequences });
        const p = await parsePart10(file, { maxInlineValueBytes: 1 << 20 });
        const got = values(p.dataset) as Record<string, unknown>;
        const want = values(reference.dataset) as Record<string, unknown>;
        expect(got).toEqual(want);
        expect(getString(p.dataset, Tags.PatientName)).toBe('Ωμέγα^Σοφία');
        expect(getStrings(p.dataset, Tags.PatientComments)).toEqual([' leading space kept\\no split']);
        expect(p.dataset.get(Tags.PixelData)?.kind).toBe('bulk');
        expect(p.pixelData?.length).toBe(8);
      }
    });
  }

  it('pads odd values: text with a space, UI with NUL, bytes with 0', () => {
    const file = writePart10(
      [
        { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.3' },
        { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2' },
        { tag: Tags.PatientID, vr: 'LO', value: 'ABC' },
        { tag: tag(0x0019, 0x1001), vr: 'OB', value: Buffer.from([7]) },
      ],
      { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian },
    );
    expect(file.includes(Buffer.from('1.2.3\0', 'latin1'))).toBe(true);
    expect(file.includes(Buffer.from('ABC ', 'latin1'))).toBe(true);
    expect(file.subarray(-2)).toEqual(Buffer.from([7, 0]));
  });

  it('writes a binary element without a value at zero length, not as a made-up 0', () => {
    const file = writePart10(
      [
        { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.3' },
        { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2' },
        { tag: tag(0x0009, 0x1001), vr: 'UN', value: '' },
        { tag: tag(0x0018, 0x9073), vr: 'FD', value: [] },
        { tag: tag(0x0028, 0x0006), vr: 'US', value: '' },
      ],
      { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian },
    );
    // US: tag, 'US', 16-bit length 0, and the file ends there.
    expect(file.subarray(-8)).toEqual(Buffer.from([0x28, 0, 0x06, 0, 0x55, 0x53, 0, 0]));
    // UN: tag, 'UN', two reserved bytes, 32-bit length 0.
    expect(file.includes(Buffer.from([0x09, 0, 0x01, 0x10, 0x55, 0x4e, 0, 0, 0, 0, 0, 0]))).toBe(true);
    expect(file.includes(Buffer.from([0x18, 0, 0x73, 0x90, 0x46, 0x44, 0, 0]))).toBe(true);
  });

  it('encodes text in the Specific Character Set of the dataset and of each item', async () => {
    const file = writePart10(
      [
        { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 100' },
        { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2' },
        { tag: Tags.PatientName, vr: 'PN', value: 'Müller^Jürgen' },
        {
          tag: Tags.OtherPatientIDsSequence,
          vr: 'SQ',
          value: [
            [
              { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 192' },
              { tag: Tags.PatientID, vr: 'LO', value: '山田' },
            ],
          ],
        },
      ],
      { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian },
    );
    expect(file.includes(Buffer.from('Müller^Jürgen', 'latin1'))).toBe(true);
    expect(file.includes(Buffer.from('山田', 'utf8'))).toBe(true);
    const p = await parsePart10(file);
    expect(getString(p.dataset, Tags.PatientName)).toBe('Müller^Jürgen');
    const item = (p.dataset.get(Tags.OtherPatientIDsSequence) as { items: Dataset[] }).items[0]!;
    expect(getString(item, Tags.PatientID)).toBe('山田');
  });

  it('refuses text its character set cannot encode, so nothing is written garbled', () => {
    const attempt = () =>
      writePart10(
        [
          { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 100' },
          { tag: Tags.PatientName, vr: 'PN', value: '山田' },
        ],
        { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian },
      );
    expect(attempt).toThrow(CustosError);
    expect(attempt).toThrow(/Specific Character Set/);
  });

  it('writes encapsulated pixel data with an undefined length, a Basic Offset Table and padded fragments', async () => {
    const file = writePart10(every, {
      transferSyntaxUid: TransferSyntax.JPEG2000Lossless,
      encapsulatedPixelData: { fragments: [Buffer.from('abc'), Buffer.from('defg')], basicOffsetTable: [0] },
    });
    const p = await parsePart10(file);
    const px = p.pixelData!;
    expect(px.encapsulated).toBe(true);
    expect(px.length).toBe(-1);
    expect(px.basicOffsetTable).toEqual([0]);
    expect(px.fragments!.map((f) => file.subarray(f.offset, f.offset + f.length).toString('latin1'))).toEqual(
      ['abc\0', 'defg'],
    );
    // The value starts with the Basic Offset Table item tag (FFFE,E000).
    expect(file.readUInt16LE(px.offset)).toBe(0xfffe);
    expect(file.subarray(-8)).toEqual(Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]));
  });

  it('writes a value longer than its 16-bit length field holds as UN in explicit VR (PS3.5 §6.2.2, CP-1066)', () => {
    const comments = { tag: Tags.PatientComments, vr: 'LT', value: 'x'.repeat(70_000) };
    const lut = { tag: tag(0x0028, 0x3006), vr: 'US', value: Array.from({ length: 40_000 }, (_, i) => i) };
    const le = writeDataset([comments, lut], TransferSyntax.ExplicitVRLittleEndian);
    // (0010,4000) 'UN', two reserved bytes, a 32-bit length, the text as it is.
    expect(le.readUInt16LE(0)).toBe(0x0010);
    expect(le.toString('latin1', 4, 6)).toBe('UN');
    expect(le.readUInt32LE(8)).toBe(70_000);
    expect(le.toString('latin1', 12, 12 + 70_000)).toBe('x'.repeat(70_000));
    // (0028,3006) US, 80,000 bytes: UN too, its words little endian as in Implicit VR Little Endian.
    const at = 12 + 70_000;
    expect(le.readUInt16LE(at)).toBe(0x0028);
    expect(le.toString('latin1', at + 4, at + 6)).toBe('UN');
    expect(le.readUInt32LE(at + 8)).toBe(80_000);
    expect(le.readUInt16LE(at + 12 + 2 * 39_999)).toBe(39_999);
    expect(le.length).toBe(at + 12 + 80_000);
    // Big endian: text goes as UN (its bytes have no order), binary words would be ambiguous and are refused.
    const be = writeDataset([comments], TransferSyntax.ExplicitVRBigEndian);
    expect(be.toString('latin1', 4, 6)).toBe('UN');
    expect(be.readUInt32BE(8)).toBe(70_000);
    expect(() => writeDataset([lut], TransferSyntax.ExplicitVRBigEndian)).toThrow(
      /too long for a 16-bit length/,
    );
    // Implicit VR has a 32-bit length for every element: nothing changes there.
    const implicit = writeDataset([comments], TransferSyntax.ImplicitVRLittleEndian);
    expect(implicit.readUInt32LE(4)).toBe(70_000);
  });

  it('refuses a transfer syntax it cannot encode', () => {
    expect(() => writePart10(every, { transferSyntaxUid: '1.2.3.4' })).toThrow(CustosError);
  });
});

describe('inCharacterSet', () => {
  const item: WriteElement[] = [
    { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 144' },
    { tag: 0x00080104, vr: 'LO', value: 'Müller' },
  ];
  const elements: WriteElement[] = [
    { tag: 0x00100010, vr: 'PN', value: 'Renée' },
    { tag: 0x00081032, vr: 'SQ', value: [item] },
  ];

  it('writes the data set and every item naming its own set in the one set given', () => {
    const bytes = writeDataset(inCharacterSet(elements, 'ISO_IR 100'), TransferSyntax.ExplicitVRLittleEndian);
    expect(bytes.includes(Buffer.from('Renée', 'latin1'))).toBe(true);
    expect(bytes.includes(Buffer.from('Müller', 'latin1'))).toBe(true);
    expect(bytes.toString('latin1').match(/ISO_IR 100/g)).toHaveLength(2);
    expect(bytes.includes(Buffer.from('ISO_IR 144'))).toBe(false);
  });

  it('leaves Specific Character Set out for the default repertoire, and refuses what it cannot hold', () => {
    const ascii = writeDataset(
      inCharacterSet([{ tag: 0x00100010, vr: 'PN', value: 'Smith' }], ''),
      TransferSyntax.ExplicitVRLittleEndian,
    );
    expect(ascii.includes(Buffer.from([0x08, 0x00, 0x05, 0x00]))).toBe(false);
    expect(() => writeDataset(inCharacterSet(elements, ''), TransferSyntax.ExplicitVRLittleEndian)).toThrow(
      CustosError,
    );
  });
});
