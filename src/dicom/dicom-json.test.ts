import { describe, expect, it } from 'vitest';
import type { Dataset, Element } from './dataset.js';
import { datasetToJson, DicomJsonError, jsonToWriteElements } from './dicom-json.js';
import { nativeDicomXml } from './dicom-xml.js';
import { parsePart10 } from './part10-parser.js';
import { part10Pieces, writePart10, type ExternalValue } from './part10-writer.js';
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

describe('jsonToWriteElements (DICOM JSON back to a data set, for STOW-RS)', () => {
  const noBulk = (): never => {
    throw new Error('no bulk data expected');
  };

  it('writes back what datasetToJson made of an object, value for value', async () => {
    const json = {
      '00080005': { vr: 'CS', Value: ['ISO_IR 192'] },
      '00080008': { vr: 'CS', Value: ['ORIGINAL', 'PRIMARY'] },
      '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] },
      '00080018': { vr: 'UI', Value: ['1.2.3.4'] },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎' }, null] },
      '00181030': { vr: 'LO' },
      '00200013': { vr: 'IS', Value: [7] },
      '00280030': { vr: 'DS', Value: [0.5, '3.14159265358979323'] },
      '00280010': { vr: 'US', Value: [2] },
      '00189219': { vr: 'FD', Value: [1.5, 'NaN'] },
      '00209165': { vr: 'AT', Value: ['00100020'] },
      '0040A124': { vr: 'UI' },
      '00081032': {
        vr: 'SQ',
        Value: [{ '00080100': { vr: 'SH', Value: ['X1'] }, '00080104': { vr: 'LO', Value: ['Ω'] } }],
      },
      '00091010': { vr: 'OB', InlineBinary: Buffer.from([1, 2, 3]).toString('base64') },
    };
    const elements = jsonToWriteElements(json, noBulk);
    const bytes = writePart10(elements, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian });
    const back = datasetToJson((await parsePart10(bytes)).dataset);
    // Odd-length binary values are padded to even length (PS3.5 7.1.1).
    expect(back).toEqual({
      ...json,
      '00091010': { vr: 'OB', InlineBinary: Buffer.from([1, 2, 3, 0]).toString('base64') },
    });
  });

  it('hands each BulkDataURI to the resolver with its tag path, and writes what it answers in its place', async () => {
    const seen: [string, number[], string][] = [];
    const pixels = Buffer.from([1, 0, 2, 0, 3, 0, 4, 0]);
    const elements = jsonToWriteElements(
      {
        '00080016': { vr: 'UI', Value: ['1.2.3'] },
        '00080018': { vr: 'UI', Value: ['1.2.3.4'] },
        '00880200': { vr: 'SQ', Value: [{ '7FE00010': { vr: 'OB', BulkDataURI: 'icon' } }] },
        '7FE00010': { vr: 'OW', BulkDataURI: 'pixels' },
      },
      (uri, path, vr) => {
        seen.push([uri, path, vr]);
        if (uri === 'icon') return Buffer.from([9, 9]);
        const external: ExternalValue = {
          external: true,
          length: pixels.length,
          read: async function* () {
            yield pixels.subarray(0, 3);
            yield pixels.subarray(3);
          },
        };
        return external;
      },
    );
    expect(seen).toEqual([
      ['icon', [0x00880200, 0, Tags.PixelData], 'OB'],
      ['pixels', [Tags.PixelData], 'OW'],
    ]);
    const chunks: Buffer[] = [];
    for (const piece of part10Pieces(elements, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian }))
      if (Buffer.isBuffer(piece)) chunks.push(piece);
      else for await (const c of piece.read()) chunks.push(c);
    const parsed = await parsePart10(Buffer.concat(chunks));
    expect(parsed.pixelData).toMatchObject({ vr: 'OW', length: 8 });
    const px = parsed.pixelData!;
    expect(Buffer.concat(chunks).subarray(px.offset, px.offset + px.length)).toEqual(pixels);
    const icon = (parsed.dataset.get(0x00880200) as { items: Dataset[] }).items[0]!.get(Tags.PixelData);
    expect(icon).toMatchObject({ kind: 'bytes', data: Buffer.from([9, 9]) });
  });

  it.each([
    [{ '0010,0010': { vr: 'PN' } }, "data set: '0010,0010' is not a tag"],
    [{ '00100010': { vr: 'XX' } }, '(0010,0010) PatientName: "vr" "XX" is not a VR'],
    [{ '00100010': 'Doe' }, '(0010,0010) PatientName: an attribute must be a JSON object'],
    [{ '00280010': { vr: 'US', Value: ['two'] } }, '(0028,0010) Rows: a US value must be a number'],
    [{ '00091010': { vr: 'OB', InlineBinary: 'not base64!' } }, '(0009,1010): InlineBinary must be base64'],
    [
      { '00091010': { vr: 'OB', InlineBinary: 'AAAA', BulkDataURI: 'x' } },
      '(0009,1010): has more than one of Value, BulkDataURI and InlineBinary',
    ],
    [
      { '00081032': { vr: 'SQ', Value: [{ '00080104': { vr: 'LO', Value: [3] } }] } },
      '(0008,1032) ProcedureCodeSequence[0] (0008,0104) CodeMeaning: a LO value must be a string',
    ],
    [[], 'data set: a data set must be a JSON object'],
    [
      Array.from({ length: 40 }).reduce<object>(
        (inner) => ({ '00081032': { vr: 'SQ', Value: [inner] } }),
        {},
      ),
      'sequences are nested deeper than 32 levels',
    ],
  ])('refuses %j naming the attribute', (json, message) => {
    let error: unknown;
    try {
      jsonToWriteElements(json, noBulk);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DicomJsonError);
    expect((error as DicomJsonError).message).toContain(message);
    expect((error as DicomJsonError).dicomStatus).toBe(0xc000);
  });
});
