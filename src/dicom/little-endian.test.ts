import { describe, expect, it } from 'vitest';
import { datasetToJson } from './dicom-json.js';
import {
  bigEndianDataSetToLittle,
  bigEndianWordSize,
  inflatedPart10,
  littleEndianFromBigEndian,
} from './little-endian.js';
import { parsePart10 } from './part10-parser.js';
import { writeDataset, writePart10, type WriteElement } from './part10-writer.js';
import { TransferSyntax } from './tags.js';

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
const pixels = Buffer.from(Array.from({ length: 4 * 5 * 2 }, (_, i) => (i * 37) & 0xff));
const elements: WriteElement[] = [
  { tag: t(0x0008, 0x0016), vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
  { tag: t(0x0008, 0x0018), vr: 'UI', value: '1.2.3.4' },
  { tag: t(0x0010, 0x0010), vr: 'PN', value: 'Doe^Jane' },
  { tag: t(0x0018, 0x1310), vr: 'US', value: [0, 5, 4, 0] },
  { tag: t(0x0020, 0x0032), vr: 'DS', value: ['1', '2', '3'] },
  { tag: t(0x0028, 0x0010), vr: 'US', value: 4 },
  { tag: t(0x0028, 0x0011), vr: 'US', value: 5 },
  { tag: t(0x0028, 0x0100), vr: 'US', value: 16 },
  { tag: t(0x0028, 0x1052), vr: 'DS', value: '-1024' },
  { tag: t(0x0040, 0xa730), vr: 'SQ', value: [[{ tag: t(0x0040, 0xa30a), vr: 'FD', value: 1.5 }]] },
  { tag: t(0x7fe0, 0x0010), vr: 'OW', value: pixels },
];

async function* chunked(bytes: Buffer, size = 7): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}
async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of source) out.push(b);
  return Buffer.concat(out);
}
const json = async (bytes: Buffer) => datasetToJson((await parsePart10(bytes)).dataset);

describe('littleEndianFromBigEndian', () => {
  it('writes a big endian object as the explicit VR little endian one it encodes, pixel words swapped back', async () => {
    const little = writePart10(elements, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian });
    const big = writePart10(elements, { transferSyntaxUid: TransferSyntax.ExplicitVRBigEndian });
    const parsed = await parsePart10(big, { maxInlineValueBytes: 0 });
    const px = parsed.pixelData!;
    const out = await collect(
      littleEndianFromBigEndian(
        chunked(big),
        {
          start: px.offset - 12,
          tag: px.tag,
          vr: 'OW',
          length: px.length,
          word: bigEndianWordSize('OW', 16),
        },
        1 << 20,
      ),
    );
    const p = await parsePart10(out, { maxInlineValueBytes: 0 });
    expect(p.transferSyntaxUid).toBe(TransferSyntax.ExplicitVRLittleEndian);
    expect(out.subarray(p.pixelData!.offset, p.pixelData!.offset + p.pixelData!.length)).toEqual(pixels);
    expect(await json(out)).toEqual(await json(little));
    // Without native pixel data at the top level (a report, a waveform): the whole object rewritten, within a limit.
    const noPixels = elements.filter((e) => e.tag !== t(0x7fe0, 0x0010));
    const bigReport = writePart10(noPixels, { transferSyntaxUid: TransferSyntax.ExplicitVRBigEndian });
    const littleReport = writePart10(noPixels, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian });
    expect(
      await json(await collect(littleEndianFromBigEndian(chunked(bigReport), undefined, 1 << 20))),
    ).toEqual(await json(littleReport));
    await expect(collect(littleEndianFromBigEndian(chunked(bigReport), undefined, 100))).rejects.toThrow(
      /larger than 100 bytes/,
    );
  });
});

describe('bigEndianDataSetToLittle', () => {
  const text = (s: string) => Buffer.from(s, 'latin1');
  /** Values as a sender wrote them: text with leading spaces, a standard attribute as UN, every binary VR. */
  const sent: WriteElement[] = [
    { tag: t(0x0008, 0x0000), vr: 'UL', value: 0 },
    { tag: t(0x0008, 0x0060), vr: 'CS', value: text('CT') },
    { tag: t(0x0009, 0x0010), vr: 'LO', value: text('ACME 1.0') },
    { tag: t(0x0009, 0x1002), vr: 'SS', value: [-2, 3] },
    { tag: t(0x0009, 0x1003), vr: 'OW', value: Buffer.from([0, 1, 0, 2, 0xab, 0xcd]) },
    {
      tag: t(0x0009, 0x1004),
      vr: 'SQ',
      value: [
        [
          { tag: t(0x0009, 0x0000), vr: 'UL', value: 30 },
          { tag: t(0x0009, 0x1001), vr: 'FL', value: 1.5 },
          { tag: t(0x0028, 0x0106), vr: 'SS', value: -5 },
        ],
        [],
      ],
    },
    { tag: t(0x0018, 0x0015), vr: 'UN', value: text('CHEST ') },
    { tag: t(0x0018, 0x9089), vr: 'FD', value: [0.1, 0.2, 0.3] },
    { tag: t(0x0020, 0x0013), vr: 'IS', value: text(' 9') },
    { tag: t(0x0020, 0x5000), vr: 'AT', value: [t(0x0010, 0x0010), t(0x7fe0, 0x0010)] },
    { tag: t(0x0028, 0x0030), vr: 'DS', value: text(' 1.50\\-1.0E2') },
    { tag: t(0x0028, 0x1052), vr: 'DS', value: text('-1.0E2\\2.5\\ +3 ') },
    { tag: t(0x0072, 0x0082), vr: 'SV', value: [-(2n ** 40n)] },
    { tag: t(0x0028, 0x1054), vr: 'LO', value: text('HU') },
  ];
  const withoutGroupLengths = (list: WriteElement[]): WriteElement[] =>
    list
      .filter((e) => (e.tag & 0xffff) !== 0)
      .map((e) =>
        e.vr === 'SQ' ? { ...e, value: (e.value as WriteElement[][]).map(withoutGroupLengths) } : e,
      );

  it('keeps every value byte for byte, turning only the byte order: no text trimmed, UN stays UN', async () => {
    for (const undefinedLengthSequences of [false, true]) {
      const big = writeDataset(sent, TransferSyntax.ExplicitVRBigEndian, { undefinedLengthSequences });
      // What an Explicit VR Little Endian writer writes from the same values, group lengths left out. Until 6 Dec
      // 2026 " 1.50" came out "1.50", "\\ +3 " as "\\+3" and BodyPartExamined as CS.
      const want = writeDataset(withoutGroupLengths(sent), TransferSyntax.ExplicitVRLittleEndian, {
        undefinedLengthSequences,
      });
      expect(bigEndianDataSetToLittle(big)).toEqual(want);
    }
    // The whole object, as WADO-RS serves it.
    const image = [
      ...sent,
      ...elements.filter((e) => e.tag >= t(0x0028, 0x0010) && e.tag !== t(0x0028, 0x1052)),
    ];
    const big = writePart10(image, { transferSyntaxUid: TransferSyntax.ExplicitVRBigEndian });
    const px = (await parsePart10(big, { maxInlineValueBytes: 0 })).pixelData!;
    const out = await collect(
      littleEndianFromBigEndian(
        chunked(big, 11),
        { start: px.offset - 12, tag: px.tag, vr: 'OW', length: px.length, word: 2 },
        1 << 20,
      ),
    );
    const little = writePart10(withoutGroupLengths(image), {
      transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian,
    });
    const start = (bytes: Buffer) => 132 + 12 + bytes.readUInt32LE(140);
    expect(out.subarray(start(out))).toEqual(little.subarray(start(little)));
  });

  it('copies a UN value of undefined length, implicit VR little endian inside (PS3.5 section 6.2.2)', () => {
    const le = (g: number, e: number, length: number) => {
      const b = Buffer.alloc(8);
      b.writeUInt16LE(g, 0);
      b.writeUInt16LE(e, 2);
      b.writeUInt32LE(length >>> 0, 4);
      return b;
    };
    const inner = Buffer.concat([
      le(0xfffe, 0xe000, 0xffffffff),
      le(0x0009, 0x1011, 2),
      text('AB'),
      le(0x0009, 0x1012, 0xffffffff),
      le(0xfffe, 0xe000, 10),
      le(0x0009, 0x1013, 2),
      text('CD'),
      le(0xfffe, 0xe0dd, 0),
      le(0xfffe, 0xe00d, 0),
      le(0xfffe, 0xe0dd, 0),
    ]);
    const before: WriteElement[] = [{ tag: t(0x0009, 0x0010), vr: 'LO', value: text('ACME') }];
    const after: WriteElement[] = [{ tag: t(0x0010, 0x0010), vr: 'PN', value: text('Doe^Jane') }];
    const unHeader = (little: boolean) => {
      const b = Buffer.from([0, 0, 0, 0, 0x55, 0x4e, 0, 0, 0xff, 0xff, 0xff, 0xff]);
      // (0009,1010): group then element, each in the byte order of the syntax.
      b.set(little ? [0x09, 0x00, 0x10, 0x10] : [0x00, 0x09, 0x10, 0x10]);
      return b;
    };
    const big = Buffer.concat([
      writeDataset(before, TransferSyntax.ExplicitVRBigEndian),
      unHeader(false),
      inner,
      writeDataset(after, TransferSyntax.ExplicitVRBigEndian),
    ]);
    expect(bigEndianDataSetToLittle(big)).toEqual(
      Buffer.concat([
        writeDataset(before, TransferSyntax.ExplicitVRLittleEndian),
        unHeader(true),
        inner,
        writeDataset(after, TransferSyntax.ExplicitVRLittleEndian),
      ]),
    );
  });

  it('fails with dicom.cannot-convert on a header cut inside an element', () => {
    const big = writeDataset(sent, TransferSyntax.ExplicitVRBigEndian);
    expect(() => bigEndianDataSetToLittle(big.subarray(0, big.length - 3))).toThrow(
      /cannot send as Explicit VR/,
    );
  });
});

describe('inflatedPart10', () => {
  it('inflates a deflated object into explicit VR little endian, its file meta information saying so', async () => {
    const little = writePart10(elements, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian });
    const deflated = writePart10(elements, {
      transferSyntaxUid: TransferSyntax.DeflatedExplicitVRLittleEndian,
    });
    const out = await collect(inflatedPart10(chunked(deflated, 5)));
    const p = await parsePart10(out);
    expect(p.transferSyntaxUid).toBe(TransferSyntax.ExplicitVRLittleEndian);
    expect(p.deflated).toBe(false);
    expect(out.subarray(p.datasetStart)).toEqual(little.subarray((await parsePart10(little)).datasetStart));
  });
});
