import { describe, expect, it } from 'vitest';
import type { BulkMap } from '../domain/frames.js';
import { getString } from './dataset.js';
import {
  applyToJson,
  assertCorrectable,
  headerEnd,
  parseCorrections,
  rewriteHeader,
} from './header-rewrite.js';
import { parsePart10 } from './part10-parser.js';
import { writePart10, type WriteElement } from './part10-writer.js';
import { Tags, TransferSyntax } from './tags.js';
import { YAMADA_ISO_2022_IR_87 } from '../../test/support/fixtures.js';

const pixels = Buffer.from(Array.from({ length: 64 }, (_, i) => i));

function object(ts: string): Buffer {
  const els: WriteElement[] = [
    { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 192' },
    { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
    { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2.3.4' },
    { tag: Tags.PatientName, vr: 'PN', value: 'Müller^Anna' },
    { tag: Tags.PatientID, vr: 'LO', value: 'OLD' },
    { tag: Tags.StudyInstanceUID, vr: 'UI', value: '1.2.3' },
    {
      tag: Tags.ReferencedImageSequence,
      vr: 'SQ',
      value: [[{ tag: Tags.ReferencedSOPInstanceUID, vr: 'UI', value: '1.2.9' }]],
    },
    { tag: Tags.Rows, vr: 'US', value: 8 },
    { tag: Tags.PixelData, vr: 'OW', value: pixels },
  ];
  return writePart10(els, { transferSyntaxUid: ts });
}

async function bulkOf(bytes: Buffer): Promise<BulkMap> {
  const p = await parsePart10(bytes);
  return {
    datasetStart: p.datasetStart,
    deflated: false,
    elements: {},
    pixel: {
      tagPath: '7FE00010',
      offset: p.pixelData!.offset,
      length: p.pixelData!.length,
      encapsulated: false,
    },
  };
}

describe('header rewrite', () => {
  for (const ts of [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian]) {
    it(`replaces corrected attributes and keeps everything after the header byte for byte (${ts})`, async () => {
      const bytes = object(ts);
      const end = headerEnd(await bulkOf(bytes), ts, bytes.length);
      expect(end.tag).toBe(Tags.PixelData);
      const corrections = parseCorrections({ '(0010,0020)': 'NEW-ID', PatientName: 'Müller^Änne' });
      assertCorrectable(corrections, end);
      const header = await rewriteHeader(bytes.subarray(0, end.offset), corrections);
      const served = Buffer.concat([header, bytes.subarray(end.offset)]);
      const p = await parsePart10(served);
      expect(p.transferSyntaxUid).toBe(ts);
      expect(getString(p.dataset, Tags.PatientID)).toBe('NEW-ID');
      expect(getString(p.dataset, Tags.PatientName)).toBe('Müller^Änne');
      expect(getString(p.dataset, Tags.SOPInstanceUID)).toBe('1.2.3.4');
      const seq = p.dataset.get(Tags.ReferencedImageSequence);
      expect(seq?.kind === 'sequence' && getString(seq.items[0]!, Tags.ReferencedSOPInstanceUID)).toBe(
        '1.2.9',
      );
      expect(served.subarray(served.length - pixels.length)).toEqual(pixels);
    });
  }

  it('serves a header whose text its character set cannot take back in UTF-8 (ISO 2022 IR 87, GB18030, a correction)', async () => {
    const cases: [string[], Buffer, string, Record<string, string>][] = [
      [['', 'ISO 2022 IR 87'], YAMADA_ISO_2022_IR_87, 'Yamada^Tarou=山田^太郎', { '(0010,0020)': 'NEW-ID' }],
      [['GB18030'], Buffer.from('cdf55ed0a1c3f7', 'hex'), '王^小明', { '(0010,0020)': 'NEW-ID' }],
      [['ISO_IR 100'], Buffer.from('M\xfcller^Anna', 'latin1'), 'Müller^Anna', { PatientName: '山田^太郎' }],
    ];
    for (const [charset, name, decoded, wanted] of cases) {
      const padded = name.length % 2 ? Buffer.concat([name, Buffer.from(' ')]) : name;
      const bytes = writePart10(
        [
          { tag: Tags.SpecificCharacterSet, vr: 'CS', value: charset },
          { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
          { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2.3.4' },
          { tag: Tags.PatientName, vr: 'PN', value: padded },
          { tag: Tags.PatientID, vr: 'LO', value: 'OLD' },
          { tag: Tags.StudyInstanceUID, vr: 'UI', value: '1.2.3' },
          { tag: Tags.PixelData, vr: 'OW', value: pixels },
        ],
        { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian },
      );
      expect(getString((await parsePart10(bytes)).dataset, Tags.PatientName)).toBe(decoded);
      const end = headerEnd(await bulkOf(bytes), TransferSyntax.ExplicitVRLittleEndian, bytes.length);
      const header = await rewriteHeader(bytes.subarray(0, end.offset), parseCorrections(wanted));
      const p = await parsePart10(Buffer.concat([header, bytes.subarray(end.offset)]));
      expect(getString(p.dataset, Tags.SpecificCharacterSet)).toBe('ISO_IR 192');
      expect(getString(p.dataset, Tags.PatientName)).toBe(wanted.PatientName ?? decoded);
      expect(getString(p.dataset, Tags.PatientID)).toBe(wanted['(0010,0020)'] ?? 'OLD');
    }
  });

  it('writes in UTF-8 the items that name their own character set, and a header that names none', async () => {
    const item: WriteElement[] = [
      { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 144' },
      { tag: 0x00080104, vr: 'LO', value: Buffer.from('c0d5dde2d3d5dd20', 'hex') },
    ];
    const cases: [WriteElement[], string][] = [
      [
        [
          { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 192' },
          { tag: 0x00081032, vr: 'SQ', value: [item] },
        ],
        'Петров^Пётр',
      ],
      [[], 'Müller^Jürgen'],
    ];
    for (const [elements, name] of cases) {
      const bytes = writePart10(
        [
          ...elements,
          { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
          { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2.3.4' },
          { tag: Tags.PatientName, vr: 'PN', value: 'Old^Name' },
          { tag: Tags.StudyInstanceUID, vr: 'UI', value: '1.2.3' },
          { tag: Tags.PixelData, vr: 'OW', value: pixels },
        ],
        { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian },
      );
      const end = headerEnd(await bulkOf(bytes), TransferSyntax.ExplicitVRLittleEndian, bytes.length);
      const header = await rewriteHeader(
        bytes.subarray(0, end.offset),
        parseCorrections({ PatientName: name }),
      );
      const p = await parsePart10(Buffer.concat([header, bytes.subarray(end.offset)]));
      expect(getString(p.dataset, Tags.SpecificCharacterSet)).toBe('ISO_IR 192');
      expect(getString(p.dataset, Tags.PatientName)).toBe(name);
      expect(header.includes(Buffer.from(name, 'utf8'))).toBe(true);
      const seq = p.dataset.get(0x00081032);
      if (seq?.kind === 'sequence') {
        expect(getString(seq.items[0]!, Tags.SpecificCharacterSet)).toBe('ISO_IR 192');
        expect(getString(seq.items[0]!, 0x00080104)).toBe('Рентген');
      } else expect(elements).toEqual([]);
    }
  });

  it('refuses corrections of the study UID, of binary attributes, of unknown tags and of backslash-joined values', () => {
    expect(() => parseCorrections({ StudyInstanceUID: '1.2' })).toThrow(/cannot be corrected/);
    expect(() => parseCorrections({ Rows: '2' })).toThrow(/only text attributes/);
    expect(() => parseCorrections({ NoSuchKeyword: 'x' })).toThrow(/not a tag/);
    expect(() => parseCorrections({ '(0009,0010)': 'x' })).toThrow(/not a standard attribute/);
    expect(() => parseCorrections({ PatientID: 'a\\b' })).toThrow(/array/);
    expect(parseCorrections({ '00080008': ['ORIGINAL', 'PRIMARY'] })).toEqual({
      '00080008': ['ORIGINAL', 'PRIMARY'],
    });
  });

  it('refuses a correction behind the first bulk value', () => {
    expect(() => assertCorrectable({ '7FE00010': ['x'] }, { tag: Tags.PixelData })).toThrow(/bulk data/);
  });

  it('encodes corrected values in DICOM JSON as PS3.18 Annex F does', () => {
    const json = applyToJson(
      { '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Old' }] } },
      { '00100010': ['New^Name'], '00201041': ['1.5'], '00100020': [] },
    );
    expect(json['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'New^Name' }] });
    expect(json['00201041']).toEqual({ vr: 'DS', Value: [1.5] });
    expect(json['00100020']).toEqual({ vr: 'LO' });
  });
});
