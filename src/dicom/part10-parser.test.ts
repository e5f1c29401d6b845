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

  it('reads nested sequences of defined and undefined length', async () => {
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

  it('keeps the first file meta header when the data set repeats one, and says so', async () => {
    // A sender that writes its file's meta group into the data set of a C-STORE: Custos's header comes first,
    // the sender's copy (here naming another transfer syntax) follows it. Until 4 Dec 2026 the copy silently
    // replaced the header's values and no warning was given.
    const file = writePart10(base(), { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian });
    const metaEnd = 132 + 12 + file.readUInt32LE(140);
    const copy = writePart10(base(), { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian });
    const copyMeta = copy.subarray(132, metaEnd);
    const uidAt = copyMeta.indexOf(TransferSyntax.ExplicitVRLittleEndian);
    copyMeta.write('1.2.840.10008.1.2.2\0', uidAt, 'latin1'); // Big Endian, same length with padding
    const twice = Buffer.concat([file.subarray(0, metaEnd), copyMeta, file.subarray(metaEnd)]);
    const parsed = await parsePart10(twice);
    expect(parsed.transferSyntaxUid).toBe(TransferSyntax.ExplicitVRLittleEndian);
    expect(getString(parsed.dataset, Tags.PatientName)).toBe('Doe^John');
    expect([...parsed.dataset.keys()].filter((t) => t >>> 16 === 2)).toEqual([]);
    expect(parsed.warnings).toHaveLength(1);
    expect(parsed.warnings[0]).toMatch(
      /^file meta elements repeated in the data set: \(0002,0000\), \(0002,0001\), \(0002,0002\), \(0002,0003\), \(0002,0010\)/,
    );
  });

  it('reads a group 0002 element past the header in the data set’s implicit VR, and sets it aside', async () => {
    // Orthanc 1.10's IMAGE-level C-FIND identifier, on an implicit VR context: an empty (0002,0003) first. Until
    // 5 Dec 2026 it was read as the header's explicit VR ("invalid VR") and the whole identifier failed.
    const file = writePart10(base(), { transferSyntaxUid: TransferSyntax.ImplicitVRLittleEndian });
    const metaEnd = 132 + 12 + file.readUInt32LE(140);
    const stray = Buffer.from([0x02, 0x00, 0x03, 0x00, 0, 0, 0, 0]); // (0002,0003), implicit VR, length 0
    const parsed = await parsePart10(
      Buffer.concat([file.subarray(0, metaEnd), stray, file.subarray(metaEnd)]),
    );
    expect(parsed.transferSyntaxUid).toBe(TransferSyntax.ImplicitVRLittleEndian);
    expect(getString(parsed.dataset, Tags.PatientName)).toBe('Doe^John');
    expect(getString(parsed.fileMeta, Tags.MediaStorageSOPInstanceUID)).not.toBe('');
    expect([...parsed.dataset.keys()].filter((t) => t >>> 16 === 2)).toEqual([]);
    expect(parsed.warnings).toEqual([
      expect.stringMatching(/^file meta elements repeated in the data set: \(0002,0003\)/),
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

  it('reads "US or SS" pixel values in implicit VR as SS where Pixel Representation is 1, item by item', async () => {
    // Written in explicit VR with the VRs the standard gives them; read from implicit VR, they must come out the same.
    const elements: WriteElement[] = [
      { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.2' },
      { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2.3.4' },
      { tag: Tags.PixelRepresentation, vr: 'US', value: 1 },
      { tag: tag(0x0028, 0x0106), vr: 'SS', value: -2000 },
      { tag: tag(0x0028, 0x0107), vr: 'SS', value: [3000, -1] },
      { tag: tag(0x0028, 0x0120), vr: 'SS', value: -2000 },
      {
        // An item with no Pixel Representation of its own takes the data set's.
        tag: tag(0x0040, 0x9096),
        vr: 'SQ',
        value: [[{ tag: tag(0x0040, 0x9216), vr: 'SS', value: -1024 }]],
      },
      {
        // An icon image has its own, unsigned.
        tag: Tags.IconImageSequence,
        vr: 'SQ',
        value: [
          [
            { tag: Tags.PixelRepresentation, vr: 'US', value: 0 },
            { tag: tag(0x0028, 0x0106), vr: 'US', value: 63536 },
          ],
        ],
      },
    ];
    const explicit = await parsePart10(
      writePart10(elements, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian }),
    );
    const implicit = await parsePart10(
      writePart10(elements, { transferSyntaxUid: TransferSyntax.ImplicitVRLittleEndian }),
    );
    const json = datasetToJson(implicit.dataset);
    expect(json['00280106']).toEqual({ vr: 'SS', Value: [-2000] });
    expect(json['00280107']).toEqual({ vr: 'SS', Value: [3000, -1] });
    expect(json['00280120']).toEqual({ vr: 'SS', Value: [-2000] });
    expect(json['00409096']!.Value).toEqual([{ '00409216': { vr: 'SS', Value: [-1024] } }]);
    expect((json['00880200']!.Value![0] as Record<string, unknown>)['00280106']).toEqual({
      vr: 'US',
      Value: [63536],
    });
    expect(json).toEqual(datasetToJson(explicit.dataset));

    // Pixel Representation 0: US, as the dictionary has it.
    const unsigned = await parsePart10(
      writePart10(
        [
          { tag: Tags.PixelRepresentation, vr: 'US', value: 0 },
          { tag: tag(0x0028, 0x0120), vr: 'US', value: 63536 },
        ],
        { transferSyntaxUid: TransferSyntax.ImplicitVRLittleEndian },
      ),
    );
    expect(datasetToJson(unsigned.dataset)['00280120']).toEqual({ vr: 'US', Value: [63536] });
  });
});

/** Explicit VR LE element bytes, for structures the writer does not produce. */
function el(t: number, vr: string, value: Buffer, length = value.length): Buffer {
  const long = ['OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'SQ', 'UC', 'UR', 'UT', 'UN', 'SV', 'UV'].includes(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(t >>> 16, 0);
  h.writeUInt16LE(t & 0xffff, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(length >>> 0, 8);
  else h.writeUInt16LE(length, 6);
  return Buffer.concat([h, value]);
}
/** Implicit VR LE element (also item and delimiter tags). */
function imp(t: number, value: Buffer, length = value.length): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(t >>> 16, 0);
  h.writeUInt16LE(t & 0xffff, 2);
  h.writeUInt32LE(length >>> 0, 4);
  return Buffer.concat([h, value]);
}
const U = 0xffffffff;
/** A Part 10 file around hand-made explicit VR LE dataset bytes. */
function fileWith(dataset: Buffer, ts: string = TransferSyntax.ExplicitVRLittleEndian): Buffer {
  const head = writePart10(
    [
      { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
      { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2.3' },
    ],
    { transferSyntaxUid: ts },
  );
  return Buffer.concat([head, dataset]);
}

describe('Part10Parser structures', () => {
  it('reads an element whose explicit VR it does not know as UN with the long header, and says so (PS3.5 §6.2)', async () => {
    const xx = el(tag(0x0009, 0x1001), 'UN', Buffer.from([1, 2, 3, 4]));
    xx.write('XX', 4, 'latin1');
    const ds = Buffer.concat([
      el(tag(0x0009, 0x0010), 'LO', Buffer.from('ACME')),
      xx,
      el(Tags.PatientName, 'PN', Buffer.from('After^Xx')),
    ]);
    const p = await parsePart10(chunked(fileWith(ds), 5));
    expect(p.dataset.get(tag(0x0009, 0x1001))).toMatchObject({
      vr: 'UN',
      kind: 'bytes',
      data: Buffer.from([1, 2, 3, 4]),
    });
    expect(getString(p.dataset, Tags.PatientName)).toBe('After^Xx');
    expect(p.warnings).toContainEqual(
      expect.stringContaining(
        'the VR "XX", which this archive does not know: read as UN (PS3.5 section 6.2)',
      ),
    );
  });

  it('still refuses a VR that is not two upper-case letters, where it stands', async () => {
    for (const garbage of ['xx', 'X1', '\x01\x00']) {
      const bad = el(Tags.PatientID, 'LO', Buffer.from('P1'));
      bad.write(garbage, 4, 'latin1');
      const file = fileWith(bad);
      const err = await parsePart10(file).then(
        () => undefined,
        (e: unknown) => e as CustosError,
      );
      expect(err?.code, garbage).toBe('dicom.bad-vr');
      expect(err?.detail).toEqual({ offset: file.length - bad.length + 4 });
    }
  });

  it('reads an explicit UN of undefined length as an implicit VR little endian sequence (PS3.5 §6.2.2)', async () => {
    const inner = imp(Tags.PatientID, Buffer.from('ID42'));
    const un = Buffer.concat([
      el(tag(0x0009, 0x0010), 'LO', Buffer.from('ACME')),
      el(tag(0x0009, 0x1001), 'UN', Buffer.alloc(0), U),
      imp(Tags.Item, Buffer.alloc(0), U),
      inner,
      imp(Tags.ItemDelimitationItem, Buffer.alloc(0)),
      imp(Tags.SequenceDelimitationItem, Buffer.alloc(0)),
      el(Tags.PatientName, 'PN', Buffer.from('After^Un')),
    ]);
    const p = await parsePart10(chunked(fileWith(un), 7));
    const seq = p.dataset.get(tag(0x0009, 0x1001));
    expect(seq?.kind).toBe('sequence');
    expect(getString((seq as { items: Dataset[] }).items[0]!, Tags.PatientID)).toBe('ID42');
    // Back in explicit VR after the sequence.
    expect(getString(p.dataset, Tags.PatientName)).toBe('After^Un');
  });

  it('decodes a standard attribute sent as UN as its dictionary VR, little endian in any syntax (PS3.5 §6.2.2)', async () => {
    const un = (t: number, value: Buffer): WriteElement => ({ tag: t, vr: 'UN', value });
    for (const ts of [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ExplicitVRBigEndian]) {
      const file = writePart10(
        [
          { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 192' },
          { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
          { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2.3' },
          { tag: Tags.PatientName, vr: 'UN', value: Buffer.from('Müller^Jörg ') },
          { tag: tag(0x0009, 0x0010), vr: 'LO', value: 'ACME' },
          un(tag(0x0009, 0x1001), Buffer.from('CHEST ')),
          un(Tags.BodyPartExamined, Buffer.from('CHEST ')),
          un(Tags.Rows, Buffer.from([0x00, 0x02])), // 512, little endian as UN always is
          un(tag(0x0018, 0x9087), Buffer.from([1, 2, 3, 4, 5, 6])), // DiffusionBValue, not a whole FD: stays UN
          un(tag(0x0028, 0x0106), Buffer.from([0x30, 0xf8])), // "US or SS": stays UN
          un(Tags.ReferencedImageSequence, Buffer.from([1, 2, 3, 4])), // SQ: stays UN
        ],
        { transferSyntaxUid: ts },
      );
      const p = await parsePart10(chunked(file, 5));
      expect(p.warnings, ts).toEqual([]);
      const json = datasetToJson(p.dataset);
      expect(json['00100010'], ts).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Müller^Jörg' }] });
      expect(json['00180015'], ts).toEqual({ vr: 'CS', Value: ['CHEST'] });
      expect(json['00280010'], ts).toEqual({ vr: 'US', Value: [512] });
      expect(json['00091001'], ts).toEqual({
        vr: 'UN',
        InlineBinary: Buffer.from('CHEST ').toString('base64'),
      });
      expect(json['00189087'], ts).toEqual({ vr: 'UN', InlineBinary: 'AQIDBAUG' });
      expect(json['00280106'], ts).toEqual({ vr: 'UN', InlineBinary: 'MPg=' });
      expect(json['00081140'], ts).toEqual({ vr: 'UN', InlineBinary: 'AQIDBA==' });
    }
  });

  it('reads encapsulated pixel data nested in an icon image sequence and reports only the top-level one', async () => {
    const frag = (b: Buffer) => imp(Tags.Item, b);
    const iconItem = Buffer.concat([
      el(Tags.Rows, 'US', Buffer.from([1, 0])),
      el(Tags.PixelData, 'OB', Buffer.alloc(0), U),
      frag(Buffer.alloc(0)),
      frag(Buffer.from('icon')),
      imp(Tags.SequenceDelimitationItem, Buffer.alloc(0)),
    ]);
    const ds = Buffer.concat([
      el(Tags.IconImageSequence, 'SQ', Buffer.concat([imp(Tags.Item, iconItem)])),
      el(Tags.PixelData, 'OB', Buffer.alloc(0), U),
      frag(Buffer.alloc(0)),
      frag(Buffer.from('main-frame')),
      imp(Tags.SequenceDelimitationItem, Buffer.alloc(0)),
    ]);
    const file = fileWith(ds, TransferSyntax.JPEGBaseline);
    const p = await parsePart10(chunked(file, 3));
    const icon = (p.dataset.get(Tags.IconImageSequence) as { items: Dataset[] }).items[0]!;
    const iconPx = icon.get(Tags.PixelData);
    expect(iconPx?.kind).toBe('encapsulated');
    expect(
      p.pixelData?.fragments?.map((f) => file.toString('latin1', f.offset, f.offset + f.length)),
    ).toEqual(['main-frame']);
    expect(p.pixelData?.basicOffsetTable).toEqual([]);
  });

  it('accepts odd value lengths with a warning in printable ASCII (it goes into Warning headers)', async () => {
    const ds = Buffer.concat([
      el(Tags.PatientID, 'LO', Buffer.from('ODD')),
      el(Tags.PatientSex, 'CS', Buffer.from('F ')),
    ]);
    const p = await parsePart10(fileWith(ds));
    expect(getString(p.dataset, Tags.PatientID)).toBe('ODD');
    expect(getString(p.dataset, Tags.PatientSex)).toBe('F');
    expect(p.warnings).toContain('element (0010,0020) PatientID has an odd length 3 (PS3.5 section 7.1.1)');
  });

  it('reads zero-length items, sequences and values without looping', async () => {
    const ds = Buffer.concat([
      el(
        Tags.OtherPatientIDsSequence,
        'SQ',
        Buffer.concat([imp(Tags.Item, Buffer.alloc(0)), imp(Tags.Item, Buffer.alloc(0))]),
      ),
      el(Tags.PatientComments, 'LT', Buffer.alloc(0)),
      el(Tags.ReferencedSeriesSequence, 'SQ', Buffer.alloc(0), U),
      imp(Tags.SequenceDelimitationItem, Buffer.alloc(0)),
    ]);
    const p = await parsePart10(fileWith(ds));
    expect((p.dataset.get(Tags.OtherPatientIDsSequence) as { items: Dataset[] }).items).toEqual([
      new Map(),
      new Map(),
    ]);
    expect((p.dataset.get(Tags.ReferencedSeriesSequence) as { items: Dataset[] }).items).toEqual([]);
    expect(getStrings(p.dataset, Tags.PatientComments)).toEqual(['']);
  });

  it('applies a Specific Character Set given inside an item to that item only', async () => {
    const item = Buffer.concat([
      el(Tags.SpecificCharacterSet, 'CS', Buffer.from('ISO_IR 144')),
      el(Tags.PatientName, 'PN', Buffer.from([0xb8, 0xd2, 0xd0, 0xdd])),
    ]);
    const ds = Buffer.concat([
      el(Tags.SpecificCharacterSet, 'CS', Buffer.from('ISO_IR 100')),
      el(Tags.PatientName, 'PN', Buffer.from([0x4d, 0xfc])),
      el(Tags.OtherPatientIDsSequence, 'SQ', Buffer.alloc(0), U),
      imp(Tags.Item, Buffer.alloc(0), U),
      item,
      imp(Tags.ItemDelimitationItem, Buffer.alloc(0)),
      imp(Tags.Item, el(Tags.PatientID, 'LO', Buffer.from([0x4d, 0xfc]))),
      imp(Tags.SequenceDelimitationItem, Buffer.alloc(0)),
      el(Tags.StudyDescription, 'LO', Buffer.from([0x4d, 0xfc])),
    ]);
    const p = await parsePart10(fileWith(ds));
    const items = (p.dataset.get(Tags.OtherPatientIDsSequence) as { items: Dataset[] }).items;
    expect(getString(items[0]!, Tags.PatientName)).toBe('Иван');
    expect(getString(items[1]!, Tags.PatientID)).toBe('Mü');
    expect(getString(p.dataset, Tags.PatientName)).toBe('Mü');
    expect(getString(p.dataset, Tags.StudyDescription)).toBe('Mü');
  });

  it('reads a bare dataset without preamble only when allowed, guessing explicit or implicit VR', async () => {
    const explicit = Buffer.concat([
      el(Tags.PatientID, 'LO', Buffer.from('P1')),
      el(Tags.PatientSex, 'CS', Buffer.from('M ')),
    ]);
    const implicit = Buffer.concat([
      imp(Tags.PatientID, Buffer.from('P2')),
      imp(Tags.PatientSex, Buffer.from('F ')),
    ]);
    await expectCode(parsePart10(explicit), 'dicom.bad-preamble');
    const a = await parsePart10(explicit, { allowNoPreamble: true });
    expect(getString(a.dataset, Tags.PatientID)).toBe('P1');
    expect(a.transferSyntaxUid).toBe(TransferSyntax.ExplicitVRLittleEndian);
    const b = await parsePart10(implicit, { allowNoPreamble: true });
    expect(getString(b.dataset, Tags.PatientSex)).toBe('F');
    expect(b.transferSyntaxUid).toBe(TransferSyntax.ImplicitVRLittleEndian);
  });

  it('reads values past maxInlineValueBytes as bulk references with their file offsets', async () => {
    const big = Buffer.alloc(5000, 9);
    const file = writePart10(base([{ tag: tag(0x0019, 0x1001), vr: 'OB', value: big }]), {
      transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
    });
    const p = await parsePart10(chunked(file, 999), { maxInlineValueBytes: 4096 });
    const e = p.dataset.get(tag(0x0019, 0x1001));
    expect(e?.kind).toBe('bulk');
    const { offset, length } = e as { offset: number; length: number };
    expect(file.subarray(offset, offset + length)).toEqual(big);
  });

  it('keeps memory bounded when a small deflated input inflates to hundreds of megabytes', async () => {
    const { createDeflateRaw } = await import('node:zlib');
    const header = writePart10(base([{ tag: Tags.PixelData, vr: 'OW', value: Buffer.alloc(0) }]), {
      transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
    });
    const size = 256 * 1024 * 1024;
    const ds = header.subarray(header.indexOf(Buffer.from([0x08, 0x00, 0x05, 0x00])));
    const lenAt = ds.length - 4;
    const dsHead = Buffer.from(ds);
    dsHead.writeUInt32LE(size, lenAt);
    // Deflate the dataset with a 256 MiB zero pixel value, streaming so the test holds only the compressed bytes.
    const deflater = createDeflateRaw({ level: 9 });
    const compressed: Buffer[] = [];
    deflater.on('data', (d: Buffer) => compressed.push(d));
    const done = new Promise((r) => deflater.on('end', r));
    deflater.write(dsHead);
    const zeros = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < size / zeros.length; i++) {
      if (!deflater.write(zeros)) await new Promise((r) => deflater.once('drain', r));
    }
    deflater.end();
    await done;
    const body = Buffer.concat(compressed);
    expect(body.length).toBeLessThan(2 * 1024 * 1024);
    const meta = writePart10(base(), { transferSyntaxUid: TransferSyntax.DeflatedExplicitVRLittleEndian });
    const metaEnd = meta.indexOf(Buffer.from('1.2.840.10008.1.2.1.99', 'latin1')) + 22;
    const file = Buffer.concat([meta.subarray(0, metaEnd), body]);

    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 1);
    const p = await parsePart10(file); // one write: the whole compressed object at once
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    expect(p.deflated).toBe(true);
    expect(p.pixelData?.length).toBe(size);
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
  });
});

describe('Part10Parser refuses malformed structure', () => {
  it('an unknown transfer syntax', () => {
    const file = fileWith(el(Tags.PatientID, 'LO', Buffer.from('P1')));
    // A private transfer syntax UID of the same length, so the meta group stays consistent.
    const at = file.indexOf(Buffer.from(TransferSyntax.ExplicitVRLittleEndian, 'latin1'));
    file.write('1.2.840.11361.5.2.1', at, 'latin1');
    return expectCode(parsePart10(file), 'dicom.unsupported-transfer-syntax');
  });

  it('a defined-length item whose undefined-length sequence runs past the item end', async () => {
    const nested = Buffer.concat([
      el(Tags.ReferencedSOPSequence, 'SQ', Buffer.alloc(0), U),
      imp(Tags.Item, el(Tags.ReferencedSOPInstanceUID, 'UI', Buffer.from('1.2.3.4\0'))),
      imp(Tags.SequenceDelimitationItem, Buffer.alloc(0)),
    ]);
    // The item claims 20 bytes; its content is longer.
    const item = imp(Tags.Item, nested, 20);
    const ds = el(Tags.ReferencedSeriesSequence, 'SQ', item, item.length);
    const err = await parsePart10(fileWith(ds)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CustosError);
    expect((err as CustosError).code).toBe('dicom.bad-length');
    expect((err as CustosError).message).toMatch(/\(0008,1199\) ReferencedSOPSequence|\(0008,1155\)/);
    expect((err as CustosError).message).toMatch(/at byte \d+/);
  });

  it('an item tag where an element should be, and a delimiter at the top level', async () => {
    await expectCode(parsePart10(fileWith(imp(Tags.Item, Buffer.alloc(0)))), 'dicom.bad-structure');
    await expectCode(
      parsePart10(fileWith(imp(Tags.ItemDelimitationItem, Buffer.alloc(0)))),
      'dicom.bad-structure',
    );
  });

  it('a fragment that is not an item, and a Basic Offset Table not a multiple of 4', async () => {
    const notItem = Buffer.concat([
      el(Tags.PixelData, 'OB', Buffer.alloc(0), U),
      el(Tags.PatientID, 'LO', Buffer.from('xx')),
    ]);
    await expectCode(parsePart10(fileWith(notItem, TransferSyntax.JPEGBaseline)), 'dicom.bad-structure');
    const badBot = Buffer.concat([
      el(Tags.PixelData, 'OB', Buffer.alloc(0), U),
      imp(Tags.Item, Buffer.alloc(6)),
    ]);
    await expectCode(parsePart10(fileWith(badBot, TransferSyntax.JPEGBaseline)), 'dicom.bad-length');
  });

  it('a numeric value whose length is not a multiple of its size', () =>
    expectCode(parsePart10(fileWith(el(Tags.Rows, 'US', Buffer.from([1, 0, 2])))), 'dicom.bad-length'));

  it('a truncated pixel data value, naming the element and where the bytes ran out', async () => {
    const file = fileWith(el(Tags.PixelData, 'OW', Buffer.alloc(10), 1000));
    const err = (await parsePart10(file).catch((e: unknown) => e)) as CustosError;
    expect(err.code).toBe('dicom.truncated');
    expect(err.message).toContain('(7FE0,0010) PixelData');
    expect(err.message).toContain(`at byte ${file.length}`);
    expect(err.httpStatus).toBe(400);
  });

  it('a corrupt deflate stream', async () => {
    const file = writePart10(base(), { transferSyntaxUid: TransferSyntax.DeflatedExplicitVRLittleEndian });
    const metaEnd = file.indexOf(Buffer.from('1.2.840.10008.1.2.1.99', 'latin1')) + 22;
    const corrupt = Buffer.concat([file.subarray(0, metaEnd), Buffer.alloc(40, 0xff)]);
    await expectCode(parsePart10(corrupt), 'dicom.bad-deflate');
  });

  it('sequences nested deeper than maxDepth', async () => {
    let inner = el(Tags.PatientID, 'LO', Buffer.from('xx'));
    for (let i = 0; i < 5; i++) inner = el(Tags.OtherPatientIDsSequence, 'SQ', imp(Tags.Item, inner));
    await expectCode(parsePart10(fileWith(inner), { maxDepth: 3 }), 'dicom.too-deep');
    expect((await parsePart10(fileWith(inner), { maxDepth: 5 })).dataset.size).toBeGreaterThan(0);
  });

  it('a declared length near 4 GiB on a header value, without allocating it', async () => {
    const file = fileWith(el(Tags.PatientComments, 'UT', Buffer.alloc(0), 0xfffffff0));
    await expectCode(parsePart10(file), 'dicom.truncated');
  });
});
