import { describe, expect, it } from 'vitest';
import { datasetToJson } from './dicom-json.js';
import { bigEndianWordSize, inflatedPart10, littleEndianFromBigEndian } from './little-endian.js';
import { parsePart10 } from './part10-parser.js';
import { writePart10, type WriteElement } from './part10-writer.js';
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
