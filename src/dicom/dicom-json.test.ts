import { describe, expect, it } from 'vitest';
import type { Dataset, Element } from './dataset.js';
import { datasetToJson } from './dicom-json.js';
import { nativeDicomXml } from './dicom-xml.js';
import { parsePart10 } from './part10-parser.js';
import { writePart10 } from './part10-writer.js';
import { Tags, TransferSyntax, tag } from './tags.js';

const ds = (entries: [number, Element][]): Dataset => new Map(entries);

describe('datasetToJson (PS3.18 F.2)', () => {
  it('keys by 8 upper-case hex digits and sorts by tag', () => {
    const json = datasetToJson(
      ds([
        [Tags.StudyInstanceUID, { vr: 'UI', kind: 'text', values: ['1.2.3'] }],
        [Tags.Modality, { vr: 'CS', kind: 'text', values: ['CT'] }],
      ]),
    );
    expect(Object.keys(json)).toEqual(['00080060', '0020000D']);
    expect(json['0020000D']).toEqual({ vr: 'UI', Value: ['1.2.3'] });
  });

  it('leaves out group length elements (gggg,0000), inside sequence items too', () => {
    const json = datasetToJson(
      ds([
        [tag(0x0008, 0x0000), { vr: 'UL', kind: 'numbers', values: [0] }],
        [Tags.Modality, { vr: 'CS', kind: 'text', values: ['CT'] }],
        [
          Tags.OtherPatientIDsSequence,
          {
            vr: 'SQ',
            kind: 'sequence',
            items: [
              ds([
                [tag(0x0010, 0x0000), { vr: 'UL', kind: 'numbers', values: [12] }],
                [Tags.PatientID, { vr: 'LO', kind: 'text', values: ['P2'] }],
              ]),
            ],
          },
        ],
      ]),
    );
    expect(json).toEqual({
      '00080060': { vr: 'CS', Value: ['CT'] },
      '00101002': { vr: 'SQ', Value: [{ '00100020': { vr: 'LO', Value: ['P2'] } }] },
    });
  });

  it('splits PN into component groups, IS and DS into numbers, AT into hex', () => {
    const json = datasetToJson(
      ds([
        [
          Tags.PatientName,
          { vr: 'PN', kind: 'text', values: ['Yamada^Tarou=山田^太郎=やまだ^たろう', 'Doe^J'] },
        ],
        [Tags.ReferringPhysicianName, { vr: 'PN', kind: 'text', values: ['=山田'] }],
        [Tags.SeriesNumber, { vr: 'IS', kind: 'text', values: ['7'] }],
        [Tags.PixelSpacing, { vr: 'DS', kind: 'text', values: ['0.5', '1e-3', ''] }],
        [tag(0x0020, 0x9165), { vr: 'AT', kind: 'tags', values: [Tags.PixelData] }],
        [Tags.Rows, { vr: 'US', kind: 'numbers', values: [512] }],
        [tag(0x0072, 0x0083), { vr: 'UV', kind: 'bigints', values: [5n, 2n ** 63n] }],
      ]),
    );
    expect(json['00100010']!.Value).toEqual([
      { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
      { Alphabetic: 'Doe^J' },
    ]);
    expect(json['00080090']!.Value).toEqual([{ Ideographic: '山田' }]);
    expect(json['00200011']!.Value).toEqual([7]);
    expect(json['00280030']!.Value).toEqual([0.5, 0.001, null]);
    expect(json['00209165']!.Value).toEqual(['7FE00010']);
    expect(json['00280010']!.Value).toEqual([512]);
    // Beyond 2^53 a JSON number would lose digits.
    expect(json['00720083']!.Value).toEqual([5, '9223372036854775808']);
  });

  it('writes FL and FD NaN and infinities as the strings "NaN", "Infinity", "-Infinity", in JSON text and DICOM XML', () => {
    const json = datasetToJson(
      ds([
        [tag(0x0018, 0x9087), { vr: 'FD', kind: 'numbers', values: [NaN, Infinity, -Infinity, 1.5] }],
        [tag(0x0028, 0x0122), { vr: 'FL', kind: 'numbers', values: [NaN] }],
      ]),
    );
    // As stored and served: through JSON text, where a NaN number would become null (an empty value).
    const served = JSON.parse(JSON.stringify(json)) as typeof json;
    expect(served['00189087']!.Value).toEqual(['NaN', 'Infinity', '-Infinity', 1.5]);
    expect(served['00280122']!.Value).toEqual(['NaN']);
    expect(nativeDicomXml(served)).toContain(
      '<Value number="1">NaN</Value><Value number="2">Infinity</Value><Value number="3">-Infinity</Value>' +
        '<Value number="4">1.5</Value>',
    );
  });

  it('makes numbers only of IS and DS values that are numbers by their grammar and that a double holds exactly', () => {
    const json = datasetToJson(
      ds([
        [
          Tags.SeriesNumber,
          { vr: 'IS', kind: 'text', values: ['0x10', '+7', '007', '9007199254740993', '1e3', ''] },
        ],
        [
          Tags.PixelSpacing,
          {
            vr: 'DS',
            kind: 'text',
            values: [
              '0x10',
              '1e-3',
              '-0.0150',
              '.5',
              '0.30000000000000004',
              '9007199254740993',
              '9999999999999999',
              '1e400',
              'NaN',
              'Infinity',
              '',
            ],
          },
        ],
      ]),
    );
    // '0x10' is not an IS or DS: Number() read it as 16. Past 2^53, or past a double's 15-17 digits, the number
    // would say another value than the text.
    expect(json['00200011']!.Value).toEqual(['0x10', 7, 7, '9007199254740993', '1e3', null]);
    expect(json['00280030']!.Value).toEqual([
      '0x10',
      0.001,
      -0.015,
      0.5,
      0.30000000000000004,
      '9007199254740993',
      '9999999999999999',
      '1e400',
      'NaN',
      'Infinity',
      null,
    ]);
  });

  it('leaves Value out of empty elements and empty sequences', () => {
    const json = datasetToJson(
      ds([
        [Tags.PatientBirthDate, { vr: 'DA', kind: 'text', values: [''] }],
        [Tags.ReferencedSeriesSequence, { vr: 'SQ', kind: 'sequence', items: [] }],
        [tag(0x0019, 0x1001), { vr: 'OB', kind: 'bytes', data: Buffer.alloc(0) }],
      ]),
    );
    expect(json['00100030']).toEqual({ vr: 'DA' });
    expect(json['00081115']).toEqual({ vr: 'SQ' });
    expect(json['00191001']).toEqual({ vr: 'OB' });
  });

  it('inlines small binary values, asks for a BulkDataURI for large ones and for pixel data, with the tag path', () => {
    const paths: string[] = [];
    const json = datasetToJson(
      ds([
        [tag(0x0019, 0x1001), { vr: 'OB', kind: 'bytes', data: Buffer.from([1, 2, 3, 4]) }],
        [tag(0x0019, 0x1002), { vr: 'OB', kind: 'bytes', data: Buffer.alloc(2000) }],
        [
          Tags.ReferencedSeriesSequence,
          {
            vr: 'SQ',
            kind: 'sequence',
            items: [ds([[tag(0x0019, 0x1003), { vr: 'UN', kind: 'bulk', offset: 10, length: 5000 }]])],
          },
        ],
        [Tags.PixelData, { vr: 'OW', kind: 'bytes', data: Buffer.from([0, 1]) }],
      ]),
      {
        inlineBinaryMax: 1024,
        bulkDataUri: (path) => {
          paths.push(path.map((t) => t.toString(16)).join('/'));
          return `bulk/${path.length}`;
        },
      },
    );
    expect(json['00191001']).toEqual({ vr: 'OB', InlineBinary: 'AQIDBA==' });
    expect(json['00191002']).toEqual({ vr: 'OB', BulkDataURI: 'bulk/1' });
    expect((json['00081115']!.Value as Record<string, unknown>[])[0]!['00191003']).toEqual({
      vr: 'UN',
      BulkDataURI: 'bulk/3',
    });
    expect(json['7FE00010']).toEqual({ vr: 'OW', BulkDataURI: 'bulk/1' });
    // Nested: the sequence's tag, the item's index, the value's tag.
    expect(paths).toEqual(['81115/0/191003', '191002', '7fe00010']);
  });

  it('without a callback, inlines what it holds and drops bulk references to bare VRs', () => {
    const json = datasetToJson(
      ds([
        [Tags.PixelData, { vr: 'OW', kind: 'bulk', offset: 300, length: 1 << 20 }],
        [tag(0x0019, 0x1002), { vr: 'OB', kind: 'bytes', data: Buffer.alloc(2000, 1) }],
      ]),
    );
    expect(json['7FE00010']).toEqual({ vr: 'OW' });
    expect(json['00191002']!.InlineBinary).toBe(Buffer.alloc(2000, 1).toString('base64'));
  });

  it('renders a parsed object end to end', async () => {
    const file = writePart10(
      [
        { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 192' },
        { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2.3' },
        { tag: Tags.PatientName, vr: 'PN', value: 'Γιώργος^Π' },
        { tag: Tags.InstanceNumber, vr: 'IS', value: '12' },
      ],
      { transferSyntaxUid: TransferSyntax.ImplicitVRLittleEndian },
    );
    const json = datasetToJson((await parsePart10(file)).dataset);
    expect(json).toEqual({
      '00080005': { vr: 'CS', Value: ['ISO_IR 192'] },
      '00080018': { vr: 'UI', Value: ['1.2.3'] },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Γιώργος^Π' }] },
      '00200013': { vr: 'IS', Value: [12] },
    });
  });
});
