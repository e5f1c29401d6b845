import { describe, expect, it } from 'vitest';
import { CustosError } from '../domain/errors.js';
import { explicitPart10, toExplicitVrLittleEndian, toImplicitVrLittleEndian } from './implicit-vr.js';
import { datasetToJson } from './dicom-json.js';
import { getString, parsePart10 } from './part10-parser.js';
import { writeDataset, writePart10, type WriteElement } from './part10-writer.js';
import { tag, Tags } from './tags.js';

const EXPLICIT = '1.2.840.10008.1.2.1';
const IMPLICIT = '1.2.840.10008.1.2';

async function convertWith(
  converter: (source: AsyncIterable<Buffer>) => AsyncIterable<Buffer>,
  bytes: Buffer,
  piece = bytes.length,
): Promise<Buffer> {
  async function* source() {
    for (let i = 0; i < bytes.length; i += piece) yield bytes.subarray(i, i + piece);
  }
  const out: Buffer[] = [];
  for await (const b of converter(source())) out.push(b);
  return Buffer.concat(out);
}

const convert = (bytes: Buffer, piece = bytes.length) => convertWith(toImplicitVrLittleEndian, bytes, piece);

const pixels = Buffer.alloc(70_000);
for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7) & 0xff;

/** Short and long header forms, nested sequences with long-form values inside, an empty sequence, pixel data. */
const elements: WriteElement[] = [
  { tag: tag(0x0008, 0x0016), vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
  { tag: tag(0x0008, 0x0018), vr: 'UI', value: '2.25.1' },
  {
    tag: tag(0x0008, 0x1115),
    vr: 'SQ',
    value: [
      [
        { tag: tag(0x0008, 0x1150), vr: 'UI', value: '1.2.3' },
        {
          tag: tag(0x0008, 0x114a),
          vr: 'SQ',
          value: [[{ tag: tag(0x0040, 0xa160), vr: 'UT', value: 'a long text '.repeat(20) }], []],
        },
        { tag: tag(0x0009, 0x1001), vr: 'OB', value: Buffer.from([1, 2, 3, 4]) },
      ],
    ],
  },
  { tag: tag(0x0010, 0x0010), vr: 'PN', value: 'Doe^Jane' },
  { tag: tag(0x0018, 0x0050), vr: 'DS', value: '1.25' },
  { tag: tag(0x0020, 0x1209), vr: 'SQ', value: [] },
  { tag: tag(0x0028, 0x0010), vr: 'US', value: 100 },
  { tag: tag(0x0028, 0x0011), vr: 'US', value: 1000 },
  { tag: tag(0x7fe0, 0x0010), vr: 'OW', value: pixels },
];

describe('toImplicitVrLittleEndian', () => {
  it('writes what an implicit VR writer writes (sequences of undefined length), in any piece sizes', async () => {
    const want = writeDataset(elements, IMPLICIT, { undefinedLengthSequences: true });
    for (const undefinedLengthSequences of [false, true]) {
      const explicit = writeDataset(elements, EXPLICIT, { undefinedLengthSequences });
      for (const piece of [explicit.length, 65536, 4096, 7, 1])
        expect(await convert(explicit, piece), `${undefinedLengthSequences} ${piece}`).toEqual(want);
    }
  });

  it('leaves out group lengths, whose values would be wrong', async () => {
    const withLength: WriteElement[] = [{ tag: tag(0x0008, 0x0000), vr: 'UL', value: 1234 }, ...elements];
    const explicit = writeDataset(withLength, EXPLICIT);
    expect(await convert(explicit, 1000)).toEqual(
      writeDataset(elements, IMPLICIT, { undefinedLengthSequences: true }),
    );
  });

  it('fails with dicom.cannot-convert on a cut data set, or a value of undefined length', async () => {
    const explicit = writeDataset(elements, EXPLICIT);
    for (const cut of [explicit.subarray(0, explicit.length - 10), explicit.subarray(0, 5)]) {
      const err = await convert(cut, 4096).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CustosError);
      expect((err as CustosError).code).toBe('dicom.cannot-convert');
    }
    // Encapsulated pixel data (undefined length) has no implicit VR form.
    const encapsulated = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    const err = await convert(encapsulated).catch((e: unknown) => e);
    expect((err as CustosError).message).toMatch(/\(7FE00010\) OB has undefined length/);
  });

  it('takes a VR it does not know as UN with the long header, as the parser does', async () => {
    const explicit = writeDataset(
      [
        { tag: tag(0x0009, 0x0010), vr: 'LO', value: 'ACME' },
        { tag: tag(0x0009, 0x1001), vr: 'UN', value: Buffer.from([1, 2, 3, 4]) },
        { tag: tag(0x0010, 0x0010), vr: 'PN', value: 'Doe^Jane' },
      ],
      EXPLICIT,
    );
    explicit.write('XX', explicit.indexOf(Buffer.from([0x09, 0, 0x01, 0x10])) + 4, 'latin1');
    const implicit = await convert(explicit, 3);
    const parsed = await parsePart10(
      Buffer.concat([writePart10([], { transferSyntaxUid: IMPLICIT }), implicit]),
    );
    expect(parsed.dataset.get(tag(0x0009, 0x1001))).toMatchObject({
      vr: 'UN',
      data: Buffer.from([1, 2, 3, 4]),
    });
    expect(getString(parsed.dataset, Tags.PatientName)).toBe('Doe^Jane');
  });

  it('copies a UN value of undefined length, already implicit VR inside (PS3.5 §6.2.2)', async () => {
    // (0009,1010) UN, undefined length: an item of undefined length holding (0009,1011) LO "AB" and a nested
    // sequence of undefined length with one item of defined length; then the delimiters; then (0010,0010).
    const le32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(n >>> 0);
      return b;
    };
    const el = (g: number, e: number, length: number) =>
      Buffer.concat([Buffer.from([g & 0xff, g >> 8, e & 0xff, e >> 8]), le32(length)]);
    const inner = Buffer.concat([
      el(0xfffe, 0xe000, 0xffffffff),
      el(0x0009, 0x1011, 2),
      Buffer.from('AB'),
      el(0x0009, 0x1012, 0xffffffff),
      el(0xfffe, 0xe000, 10),
      el(0x0009, 0x1013, 2),
      Buffer.from('CD'),
      el(0xfffe, 0xe0dd, 0),
      el(0xfffe, 0xe00d, 0),
      el(0xfffe, 0xe0dd, 0),
    ]);
    const name = writeDataset([{ tag: tag(0x0010, 0x0010), vr: 'PN', value: 'Doe^Jane' }], EXPLICIT);
    const explicit = Buffer.concat([
      Buffer.from([0x09, 0x00, 0x10, 0x10, 0x55, 0x4e, 0, 0]),
      le32(0xffffffff),
      inner,
      name,
    ]);
    const want = Buffer.concat([
      el(0x0009, 0x1010, 0xffffffff),
      inner,
      writeDataset([{ tag: tag(0x0010, 0x0010), vr: 'PN', value: 'Doe^Jane' }], IMPLICIT),
    ]);
    for (const piece of [explicit.length, 3]) expect(await convert(explicit, piece)).toEqual(want);
  });
});

describe('toExplicitVrLittleEndian and explicitPart10', () => {
  const pixelsOf = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 13) & 0xff));
  /** VRs as the dictionary and the pixel description give them: what the converter must write. */
  const image: WriteElement[] = [
    { tag: tag(0x0008, 0x0016), vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.2' },
    { tag: tag(0x0008, 0x0018), vr: 'UI', value: '2.25.7' },
    {
      tag: tag(0x0008, 0x1115),
      vr: 'SQ',
      value: [[{ tag: tag(0x0008, 0x1150), vr: 'UI', value: '1.2.3' }], []],
    },
    { tag: tag(0x0009, 0x0010), vr: 'LO', value: 'ACME 1.0' },
    { tag: tag(0x0010, 0x0010), vr: 'PN', value: 'Doe^Jane' },
    { tag: tag(0x0028, 0x0010), vr: 'US', value: 10 },
    { tag: tag(0x0028, 0x0011), vr: 'US', value: 3500 },
    { tag: tag(0x0028, 0x0100), vr: 'US', value: 16 },
    { tag: tag(0x0028, 0x0103), vr: 'US', value: 1 },
    { tag: tag(0x0028, 0x0106), vr: 'SS', value: -5 },
    { tag: tag(0x0040, 0xa160), vr: 'UT', value: 'text '.repeat(30) },
    { tag: tag(0x7fe0, 0x0010), vr: 'OW', value: pixelsOf(70_000) },
  ];

  it('writes what an explicit VR writer writes, VRs from the dictionary and the pixel description', async () => {
    const want = writeDataset(image, EXPLICIT, { undefinedLengthSequences: true });
    for (const undefinedLengthSequences of [false, true]) {
      const implicit = writeDataset(image, IMPLICIT, { undefinedLengthSequences });
      for (const piece of [implicit.length, 4096, 7])
        expect(await convertWith(toExplicitVrLittleEndian, implicit, piece)).toEqual(want);
    }
  });

  it('gives private and unknown values UN, and a value too long for its VR UN too', async () => {
    const implicit = writeDataset(
      [
        { tag: tag(0x0009, 0x1001), vr: 'OB', value: Buffer.from([1, 2, 3, 4]) },
        { tag: tag(0x0010, 0x4000), vr: 'LT', value: 'x'.repeat(70_000) },
      ],
      IMPLICIT,
    );
    const out = await convertWith(toExplicitVrLittleEndian, implicit);
    expect(out.subarray(0, 16)).toEqual(
      Buffer.from([0x09, 0, 0x01, 0x10, 0x55, 0x4e, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4]),
    );
    // (0010,4000) LT, 70,000 bytes: no 16-bit length holds it.
    expect(out.toString('latin1', 20, 22)).toBe('UN');
    expect(out.readUInt32LE(24)).toBe(70_000);
  });

  it('turns a whole implicit VR object into an explicit VR one that parses to the same data set', async () => {
    const implicit = writePart10(image, { transferSyntaxUid: IMPLICIT });
    const out = await convertWith(explicitPart10, implicit, 100);
    // The same as the object written in explicit VR to begin with.
    const before = await parsePart10(writePart10(image, { transferSyntaxUid: EXPLICIT }));
    const after = await parsePart10(out);
    expect(after.transferSyntaxUid).toBe(EXPLICIT);
    expect(after.warnings).toEqual([]);
    expect(datasetToJson(after.dataset)).toEqual(datasetToJson(before.dataset));
    expect(getString(after.fileMeta, Tags.MediaStorageSOPInstanceUID)).toBe('2.25.7');
  });

  it('names Custos, not the sender, as the implementation that wrote the converted object (PS3.10 section 7.1)', async () => {
    // A file meta information as dcmtk writes it, with its implementation's class UID and version name.
    const metaBody = writeDataset(
      [
        { tag: tag(0x0002, 0x0001), vr: 'OB', value: Buffer.from([0, 1]) },
        { tag: tag(0x0002, 0x0002), vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
        { tag: tag(0x0002, 0x0003), vr: 'UI', value: '2.25.7' },
        { tag: tag(0x0002, 0x0010), vr: 'UI', value: IMPLICIT },
        { tag: tag(0x0002, 0x0012), vr: 'UI', value: '1.2.276.0.7230010.3.0.3.6.7' },
        { tag: tag(0x0002, 0x0013), vr: 'SH', value: 'OFFIS_DCMTK_367' },
        { tag: tag(0x0002, 0x0016), vr: 'AE', value: 'MODALITY' },
      ],
      EXPLICIT,
    );
    const groupLength = writeDataset(
      [{ tag: tag(0x0002, 0x0000), vr: 'UL', value: metaBody.length }],
      EXPLICIT,
    );
    const implicit = Buffer.concat([
      Buffer.alloc(128),
      Buffer.from('DICM'),
      groupLength,
      metaBody,
      writeDataset(image, IMPLICIT),
    ]);
    const after = await parsePart10(await convertWith(explicitPart10, implicit, 50));
    expect(after.warnings).toEqual([]);
    expect(datasetToJson(after.fileMeta)).toEqual({
      '00020001': { vr: 'OB', InlineBinary: 'AAE=' },
      '00020002': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] },
      '00020003': { vr: 'UI', Value: ['2.25.7'] },
      '00020010': { vr: 'UI', Value: [EXPLICIT] },
      // Until 6 Dec 2026 the sender's: 1.2.276.0.7230010.3.0.3.6.7, OFFIS_DCMTK_367.
      '00020012': { vr: 'UI', Value: ['1.2.826.0.1.3680043.10.1483.1'] },
      '00020013': { vr: 'SH', Value: ['CUSTOS_0_1'] },
      '00020016': { vr: 'AE', Value: ['MODALITY'] },
    });
  });

  it('gives "US or SS" values SS by the Pixel Representation of their own item or, without one, the enclosing one', async () => {
    const signed: WriteElement[] = [
      { tag: tag(0x0028, 0x0103), vr: 'US', value: 1 },
      { tag: tag(0x0028, 0x0120), vr: 'SS', value: -2000 },
      { tag: tag(0x0040, 0x9096), vr: 'SQ', value: [[{ tag: tag(0x0040, 0x9216), vr: 'SS', value: -1024 }]] },
      {
        tag: tag(0x0088, 0x0200),
        vr: 'SQ',
        value: [
          [
            { tag: tag(0x0028, 0x0103), vr: 'US', value: 0 },
            { tag: tag(0x0028, 0x0106), vr: 'US', value: 63536 },
          ],
          [{ tag: tag(0x0028, 0x0106), vr: 'SS', value: -3 }],
        ],
      },
    ];
    const want = writeDataset(signed, EXPLICIT, { undefinedLengthSequences: true });
    for (const undefinedLengthSequences of [false, true]) {
      const implicit = writeDataset(signed, IMPLICIT, { undefinedLengthSequences });
      for (const piece of [implicit.length, 5])
        expect(await convertWith(toExplicitVrLittleEndian, implicit, piece)).toEqual(want);
    }
  });

  it('gives Overlay Data and Waveform Data OW, as PS3.5 A.1 does in implicit VR, with 8 bits allocated too', async () => {
    const withOverlay: WriteElement[] = [
      { tag: tag(0x0028, 0x0100), vr: 'US', value: 8 },
      {
        tag: tag(0x5400, 0x0100),
        vr: 'SQ',
        value: [
          [
            { tag: tag(0x5400, 0x0110), vr: 'OB', value: Buffer.from([1, 0]) },
            { tag: tag(0x5400, 0x1004), vr: 'US', value: 16 },
            { tag: tag(0x5400, 0x1010), vr: 'OW', value: Buffer.from([1, 0, 2, 0]) },
          ],
        ],
      },
      { tag: tag(0x6000, 0x3000), vr: 'OW', value: Buffer.from([0x0f, 0xf0, 0, 0]) },
      { tag: tag(0x601e, 0x3000), vr: 'OW', value: Buffer.from([1, 2]) },
      { tag: tag(0x7fe0, 0x0010), vr: 'OB', value: Buffer.from([9, 8, 7, 6]) },
    ];
    const want = writeDataset(withOverlay, EXPLICIT, { undefinedLengthSequences: true });
    const implicit = writeDataset(withOverlay, IMPLICIT, { undefinedLengthSequences: true });
    // Until 6 Dec 2026 both went out OB (the dictionary's first of "OB or OW").
    expect(await convertWith(toExplicitVrLittleEndian, implicit, 5)).toEqual(want);
    // The parser reads them so too, for metadata.
    const parsed = await parsePart10(writePart10(withOverlay, { transferSyntaxUid: IMPLICIT }));
    const json = datasetToJson(parsed.dataset);
    expect([json['60003000']?.vr, json['601E3000']?.vr, json['7FE00010']?.vr]).toEqual(['OW', 'OW', 'OB']);
    const item = (json['54000100']?.Value as Record<string, { vr: string }>[])[0]!;
    expect([item['54001010']?.vr, item['54000110']?.vr]).toEqual(['OW', 'OB']);
  });

  it('comes back to the same explicit VR bytes from implicit VR', async () => {
    const explicit = writeDataset(image, EXPLICIT, { undefinedLengthSequences: true });
    const implicit = await convert(explicit, 1000);
    expect(await convertWith(toExplicitVrLittleEndian, implicit, 1000)).toEqual(explicit);
  });
});
