// Mutation fuzzing: thousands of corrupted objects through the streaming parser. Each must parse or fail with a
// dicom.* CustosError — never another exception, never a hang.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CustosError } from '../domain/errors.js';
import { parsePart10 } from './part10-parser.js';
import { writePart10, type WriteElement } from './part10-writer.js';
import { Tags, TransferSyntax, tag } from './tags.js';

const elements: WriteElement[] = [
  { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 100' },
  { tag: Tags.SOPClassUID, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.2' },
  { tag: Tags.SOPInstanceUID, vr: 'UI', value: '1.2.3.4.5' },
  { tag: Tags.PatientName, vr: 'PN', value: 'Fuzz^Frieda' },
  { tag: Tags.StudyInstanceUID, vr: 'UI', value: '1.2.3' },
  {
    tag: Tags.RequestAttributesSequence,
    vr: 'SQ',
    value: [
      [{ tag: tag(0x0040, 0x0009), vr: 'SH', value: 'SPS' }],
      [{ tag: tag(0x0040, 0x0007), vr: 'LO', value: 'x' }],
    ],
  },
  { tag: Tags.Rows, vr: 'US', value: 4 },
  { tag: Tags.Columns, vr: 'US', value: 4 },
  { tag: Tags.PixelData, vr: 'OW', value: Buffer.alloc(32, 7) },
];

/** Hand-made explicit VR LE pieces for structures the writer does not emit (UN of undefined length). */
function imp(t: number, value: Buffer, length = value.length): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(t >>> 16, 0);
  h.writeUInt16LE(t & 0xffff, 2);
  h.writeUInt32LE(length >>> 0, 4);
  return Buffer.concat([h, value]);
}
const unSequence = (() => {
  const h = Buffer.alloc(12);
  h.writeUInt16LE(0x0009, 0);
  h.writeUInt16LE(0x1001, 2);
  h.write('UN', 4, 'latin1');
  h.writeUInt32LE(0xffffffff, 8);
  return Buffer.concat([
    h,
    imp(Tags.Item, Buffer.alloc(0), 0xffffffff),
    imp(Tags.PatientID, Buffer.from('ID42')),
    imp(Tags.ItemDelimitationItem, Buffer.alloc(0)),
    imp(Tags.SequenceDelimitationItem, Buffer.alloc(0)),
  ]);
})();

const nested: WriteElement = {
  tag: Tags.ReferencedSeriesSequence,
  vr: 'SQ',
  value: [
    [
      { tag: Tags.SpecificCharacterSet, vr: 'CS', value: 'ISO_IR 192' },
      { tag: Tags.SeriesInstanceUID, vr: 'UI', value: '1.2.3.9' },
      {
        tag: Tags.ReferencedSOPSequence,
        vr: 'SQ',
        value: [[{ tag: Tags.ReferencedSOPInstanceUID, vr: 'UI', value: '1.2.3.9.1' }], []],
      },
    ],
  ],
};

const seeds = [
  writePart10(elements, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian }),
  writePart10([...elements, nested], { transferSyntaxUid: TransferSyntax.ImplicitVRLittleEndian }),
  writePart10([...elements, nested], {
    transferSyntaxUid: TransferSyntax.ExplicitVRBigEndian,
    undefinedLengthSequences: true,
  }),
  writePart10([...elements, nested], {
    transferSyntaxUid: TransferSyntax.DeflatedExplicitVRLittleEndian,
    undefinedLengthSequences: true,
  }),
  writePart10([...elements.filter((e) => e.tag !== Tags.PixelData), nested], {
    transferSyntaxUid: TransferSyntax.JPEGBaseline,
    encapsulatedPixelData: { fragments: [Buffer.alloc(10, 1), Buffer.alloc(6, 2)], basicOffsetTable: [0] },
    undefinedLengthSequences: true,
  }),
  Buffer.concat([
    writePart10(
      elements.filter((e) => e.tag === Tags.SOPClassUID || e.tag === Tags.SOPInstanceUID),
      { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian },
    ),
    unSequence,
  ]),
];

const VRS = new Set([
  'AE',
  'AS',
  'AT',
  'CS',
  'DA',
  'DS',
  'DT',
  'FD',
  'FL',
  'IS',
  'LO',
  'LT',
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'PN',
  'SH',
  'SL',
  'SQ',
  'SS',
  'ST',
  'SV',
  'TM',
  'UC',
  'UI',
  'UL',
  'UN',
  'UR',
  'US',
  'UT',
  'UV',
]);
const LONG = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);

/** Offsets and widths of the length fields of a seed (explicit VR headers and item tags), for targeted mutations. */
function lengthFields(b: Buffer): { at: number; width: 2 | 4 }[] {
  const out: { at: number; width: 2 | 4 }[] = [];
  for (let i = 132; i + 8 <= b.length; i++) {
    const vr = b.toString('latin1', i + 4, i + 6);
    if (VRS.has(vr)) out.push(LONG.has(vr) ? { at: i + 8, width: 4 } : { at: i + 6, width: 2 });
    const g = b.readUInt16LE(i);
    const gBE = b.readUInt16BE(i);
    if (g === 0xfffe || gBE === 0xfffe) out.push({ at: i + 4, width: 4 });
  }
  return out.filter((f) => f.at + f.width <= b.length);
}
const fields = seeds.map(lengthFields);

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    kind: fc.constant('length' as const),
    at: fc.nat(),
    value: fc.constantFrom(0xffffffff, 0xfffffffe, 0x7fffffff, 0x10001, 1, 3, 0),
  }),
  fc.record({
    kind: fc.constant('field' as const),
    at: fc.nat(),
    value: fc.oneof(
      fc.constantFrom(0xffffffff, 0xfffffffe, 0x7fffffff, 0xffff, 0x10001, 0, 1, 3, 7),
      fc.integer({ min: -16, max: 16 }),
    ),
  }),
);

function mutate(
  seed: number,
  ms: { kind: string; at: number; value?: number; bytes?: Uint8Array }[],
): Buffer {
  let b = Buffer.from(seeds[seed]!);
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === 'field') {
      // A real length field of the seed: set to an extreme, or nudged from its value (odd, +-2...).
      const f = fields[seed]![m.at % fields[seed]!.length];
      if (!f || f.at + f.width > b.length) continue;
      const max = f.width === 2 ? 0xffff : 0xffffffff;
      const old = f.width === 2 ? b.readUInt16LE(f.at) : b.readUInt32LE(f.at);
      const v = m.value! < 0 || m.value! <= 16 ? old + m.value! : m.value!;
      const clamped = Math.min(max, Math.max(0, v > max ? max : v));
      if (f.width === 2) b.writeUInt16LE(clamped, f.at);
      else b.writeUInt32LE(clamped, f.at);
    } else if (m.kind === 'flip') b[at] = m.value!;
    else if (m.kind === 'truncate') b = b.subarray(0, at);
    else if (m.kind === 'insert')
      b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes!), b.subarray(at)]);
    else if (at + 4 <= b.length) b.writeUInt32LE(m.value!, at);
  }
  return b;
}

async function* split(b: Buffer, sizes: number[]) {
  let i = 0;
  let k = 0;
  while (i < b.length) {
    const n = Math.max(1, sizes[k++ % sizes.length]!);
    yield b.subarray(i, i + n);
    i += n;
  }
}

describe('parser fuzzing', () => {
  it('never throws anything but a dicom.* CustosError, and never hangs', async () => {
    let failures = 0;
    let successes = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: seeds.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 5 }),
        async (seed, ms, sizes) => {
          const input = mutate(seed, ms);
          const timeout = new Promise<'hang'>((r) => setTimeout(() => r('hang'), 2000).unref());
          const outcome = await Promise.race([
            parsePart10(split(input, sizes)).then(
              () => 'ok' as const,
              (e: unknown) => e,
            ),
            timeout,
          ]);
          expect(outcome).not.toBe('hang');
          if (outcome === 'ok') successes++;
          else {
            failures++;
            expect(outcome).toBeInstanceOf(CustosError);
            expect((outcome as CustosError).code).toMatch(/^dicom\./);
            // dicom.parser-fault means an exception escaped the parser's own checks: a defect, not bad input.
            expect((outcome as CustosError).code).not.toBe('dicom.parser-fault');
          }
        },
      ),
      { numRuns: 30_000, seed: 20261123 },
    );
    // The corpus must really exercise both paths.
    expect(failures).toBeGreaterThan(500);
    expect(successes).toBeGreaterThan(100);
  });
});
