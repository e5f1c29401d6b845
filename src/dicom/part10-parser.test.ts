import { describe, expect, it } from 'vitest';
import { CustosError } from '../domain/errors.js';
import { getNumber, getString, getStrings, type Dataset } from './dataset.js';
import { datasetToJson } from './dicom-json.js';
import { Part10Parser, parsePart10 } from './part10-parser.js';
import { writePart10, type WriteElement } from './part10-writer.js';
import { Tags, TransferSyntax, tag } from './tags.js';

const base = (extra: WriteElement[] = []): WriteElement[] => [
  { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 192' },
  { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.2' },
  { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2.3.4' },
  { tag: Tags.PatientName, vr: 'PN', value: 'Doe^John' },
  { tag: Tags.StudyInstanceUID, vr: 'UI', value: '1.2.3' },
  { tag: Tags.Rows, vr: 'US', value: 2 },
  { tag: Tags.Columns, vr: 'US', value: 2 },
  { tag: Tags.BitsAllocated, vr: 'US', value: 16 },
  ...extra,
];

async function* chunked(b: Buffer, size: number) {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function expectCode(p: Promise<unknown>, code: string) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(CustosError);
  expect((err as CustosError).code).toBe(code);
  expect((err as CustosError).dicomStatus === 0xc000 || (err as CustosError).httpStatus === 413).toBe(true);
}

const pixels = Buffer.from([1, 0, 2, 0, 3, 0, 4, 0]);

describe('Part10Parser', () => {
  for (const ts of [
    TransferSyntax.ExplicitVRLittleEndian,
    TransferSyntax.ImplicitVRLittleEndian,
    TransferSyntax.ExplicitVRBigEndian,
    TransferSyntax.DeflatedExplicitVRLittleEndian,
  ]) {
    it(`reads ${ts} in any chunking, with pixel data located and not buffered`, async () => {
      const file = writePart10(base([{ tag: Tags.PixelData, vr: 'OW', value: pixels }]), {
        transferSyntaxUid: ts,
      });
      for (const size of [1, 3, 64, file.length]) {
        const p = await parsePart10(chunked(file, size));
        expect(p.transferSyntaxUid).toBe(ts);
        expect(getString(p.dataset, Tags.PatientName)).toBe('Doe^John');
        expect(getNumber(p.dataset, Tags.Rows)).toBe(2);
        expect(p.pixelData?.length).toBe(8);
        expect(p.dataset.get(Tags.PixelData)?.kind).toBe('bulk');
        if (ts === TransferSyntax.ExplicitVRLittleEndian || ts === TransferSyntax.ImplicitVRLittleEndian) {
          expect(file.subarray(p.pixelData!.offset, p.pixelData!.offset + 8)).toEqual(pixels);
        }
        expect(p.deflated).toBe(ts === TransferSyntax.DeflatedExplicitVRLittleEndian);
      }
    });
  }

  it('reads nested sequences of undefined length, and items overriding the character set', async () => {
    const seq: WriteElement = {
      tag: Tags.RequestAttributesSequence,
      vr: 'SQ',
      value: [
        [
          { tag: tag(0x0040, 0x0009), vr: 'SH', value: 'SPS1' },
          {
            tag: tag(0x0040, 0x0275),
            vr: 'SQ',
            value: [[{ tag: tag(0x0040, 0x0007), vr: 'LO', value: 'inner' }]],
          },
        ],
        [],
      ],
    };
    for (const undefinedLengthSequences of [false, true]) {
      const file = writePart10(base([seq]), {
        transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
        undefinedLengthSequences,
      });
      const p = await parsePart10(chunked(file, 5));
      const el = p.dataset.get(Tags.RequestAttributesSequence);
      expect(el?.kind).toBe('sequence');
      const items = (el as { items: Dataset[] }).items;
      expect(items.length).toBe(2);
      expect(getString(items[0]!, tag(0x0040, 0x0009))).toBe('SPS1');
      const inner = (items[0]!.get(tag(0x0040, 0x0275)) as { items: Dataset[] }).items;
      expect(getString(inner[0]!, tag(0x0040, 0x0007))).toBe('inner');
    }
  });

  it('decodes ISO_IR 100, ISO_IR 192, ISO_IR 144 and ISO 2022 IR 87 text', async () => {
    const cases: [string, string, Buffer][] = [
      ['ISO_IR 100', 'Müller^Jürgen', Buffer.from('Müller^Jürgen', 'latin1')],
      ['ISO_IR 192', 'Γιώργος^Παπαδόπουλος', Buffer.from('Γιώργος^Παπαδόπουλος', 'utf8')],
      [
        'ISO_IR 144',
        'Иванов^Иван',
        Buffer.from([0xb8, 0xd2, 0xd0, 0xdd, 0xde, 0xd2, 0x5e, 0xb8, 0xd2, 0xd0, 0xdd]),
      ],
    ];
    for (const [cs, expected, raw] of cases) {
      const file = writePart10(
        [
          ...base().filter((e) => e.tag !== Tags.SpecificCharacterSet && e.tag !== Tags.PatientName),
          { tag: Tags.SpecificCharacterSet, vr: 'CS', value: cs },
          { tag: Tags.PatientName, vr: 'PN', value: raw },
        ],
        {
          transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
        },
      );
      const p = await parsePart10(file);
      expect(getString(p.dataset, Tags.PatientName)).toBe(expected);
      expect(p.warnings).toEqual([]);
    }
    // ISO 2022 IR 87: JIS X 0208 kanji behind ESC $ B, back to ASCII with ESC ( B (PS3.5 Annex H example).
    const jis = Buffer.from([
      0x59, 0x61, 0x6d, 0x61, 0x64, 0x61, 0x5e, 0x54, 0x61, 0x72, 0x6f, 0x75, 0x3d, 0x1b, 0x24, 0x42, 0x3b,
      0x33, 0x45, 0x44, 0x1b, 0x28, 0x42, 0x5e, 0x1b, 0x24, 0x42, 0x42, 0x40, 0x4f, 0x3a, 0x1b, 0x28, 0x42,
    ]);
    const file = writePart10(
      [
        ...base().filter((e) => e.tag !== Tags.SpecificCharacterSet && e.tag !== Tags.PatientName),
        { tag: Tags.SpecificCharacterSet, vr: 'CS', value: ['', 'ISO 2022 IR 87'] },
        { tag: Tags.PatientName, vr: 'PN', value: jis },
      ],
      {
        transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
      },
    );
    const p = await parsePart10(file);
    expect(getString(p.dataset, Tags.PatientName)).toBe('Yamada^Tarou=山田^太郎');
    expect(datasetToJson(p.dataset)['00100010']!.Value).toEqual([
      { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎' },
    ]);
  });

  it('reports an unknown character set as a warning and still decodes', async () => {
    const file = writePart10(
      [
        ...base().filter((e) => e.tag !== Tags.SpecificCharacterSet),
        { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 999' },
      ],
      { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian },
    );
    const p = await parsePart10(file);
    expect(p.warnings.join()).toMatch(/ISO_IR 999/);
    expect(getString(p.dataset, Tags.PatientName)).toBe('Doe^John');
  });

  it('locates encapsulated fragments and the Basic Offset Table', async () => {
    const fragments = [Buffer.from('frame-one!'), Buffer.from('f2a'), Buffer.from('f2b-')];
    const file = writePart10(base(), {
      transferSyntaxUid: TransferSyntax.JPEGBaseline,
      encapsulatedPixelData: { fragments, basicOffsetTable: [0, 18] },
    });
    const p = await parsePart10(chunked(file, 11));
    expect(p.pixelData?.encapsulated).toBe(true);
    expect(p.pixelData?.basicOffsetTable).toEqual([0, 18]);
    const got = p.pixelData!.fragments!.map((f) => file.subarray(f.offset, f.offset + f.length).toString());
    expect(got).toEqual(['frame-one!', 'f2a\0', 'f2b-']);
  });

  it('keeps memory bounded on a 1 GB pixel data value', async () => {
    const header = writePart10(base([{ tag: Tags.PixelData, vr: 'OW', value: Buffer.alloc(0) }]), {
      transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
    });
    const size = 1024 * 1024 * 1024;
    // Rewrite the (empty) pixel data length to 1 GiB and stream zeros.
    header.writeUInt32LE(size, header.length - 4);
    const parser = new Part10Parser();
    await parser.write(header);
    const zeros = Buffer.alloc(4 * 1024 * 1024);
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    for (let sent = 0; sent < size; sent += zeros.length) {
      await parser.write(zeros);
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }
    const p = await parser.end();
    expect(p.pixelData?.length).toBe(size);
    expect(p.byteLength).toBe(header.length + size);
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('knows when a tag has been passed, so a missing UID is known before the end', async () => {
    const file = writePart10(
      base([{ tag: Tags.PixelData, vr: 'OW', value: pixels }]).filter((e) => e.tag !== Tags.StudyInstanceUID),
      { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian },
    );
    const parser = new Part10Parser();
    await parser.write(file.subarray(0, file.length - 4));
    expect(parser.peekString(Tags.StudyInstanceUID)).toBeUndefined();
    expect(parser.passed(Tags.StudyInstanceUID)).toBe(true);
    expect(parser.peekString(Tags.SOPInstanceUID)).toBe('1.2.3.4');
  });

  describe('refuses malformed input with a precise code', () => {
    const good = writePart10(base([{ tag: Tags.PixelData, vr: 'OW', value: pixels }]), {
      transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
    });
    it('wrong preamble', () =>
      expectCode(
        parsePart10(Buffer.concat([Buffer.alloc(128), Buffer.from('DICX'), good.subarray(132)])),
        'dicom.bad-preamble',
      ));
    it('too short', () => expectCode(parsePart10(Buffer.from('hello')), 'dicom.bad-preamble'));
    it('truncated', () => expectCode(parsePart10(good.subarray(0, good.length - 3)), 'dicom.truncated'));
    it('missing transfer syntax', () => {
      const noTs = Buffer.from(good);
      const i = noTs.indexOf(Buffer.from([0x02, 0x00, 0x10, 0x00]));
      noTs.writeUInt16LE(0x0011, i + 2); // (0002,0011) instead of (0002,0010)
      return expectCode(parsePart10(noTs), 'dicom.missing-transfer-syntax');
    });
    it('bad VR', () => {
      const b = Buffer.from(good);
      const i = b.indexOf(Buffer.from('PN', 'latin1'));
      b.write('p!', i, 'latin1');
      return expectCode(parsePart10(b), 'dicom.bad-vr');
    });
    it('impossible length inside an item', async () => {
      const file = writePart10(
        base([
          {
            tag: Tags.RequestAttributesSequence,
            vr: 'SQ',
            value: [[{ tag: tag(0x0040, 0x0009), vr: 'SH', value: 'AB' }]],
          },
        ]),
        { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian },
      );
      const i = file.indexOf(Buffer.from([0x40, 0x00, 0x09, 0x00, 0x53, 0x48]));
      file.writeUInt16LE(0x4000, i + 6);
      await expectCode(parsePart10(file), 'dicom.bad-length');
    });
    it('undefined length on a non-sequence', async () => {
      const file = writePart10(base([{ tag: tag(0x0018, 0x9999), vr: 'UT', value: 'xx' }]), {
        transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
      });
      const i = file.indexOf(Buffer.from([0x18, 0x00, 0x99, 0x99, 0x55, 0x54]));
      file.writeUInt32LE(0xffffffff, i + 8);
      await expectCode(parsePart10(file), 'dicom.bad-length');
    });
    it('a header over the limit', () =>
      expectCode(parsePart10(good, { maxHeaderBytes: 10 }), 'dicom.header-too-large'));
  });

  it('reads multi-valued strings and numbers', async () => {
    const file = writePart10(
      base([
        { tag: Tags.ImageType, vr: 'CS', value: ['ORIGINAL', 'PRIMARY', 'AXIAL'] },
        { tag: Tags.PixelSpacing, vr: 'DS', value: ['0.5', '0.25'] },
      ]),
      { transferSyntaxUid: TransferSyntax.ImplicitVRLittleEndian },
    );
    const p = await parsePart10(file);
    expect(getStrings(p.dataset, Tags.ImageType)).toEqual(['ORIGINAL', 'PRIMARY', 'AXIAL']);
    expect(datasetToJson(p.dataset)['00280030']!.Value).toEqual([0.5, 0.25]);
  });
});
