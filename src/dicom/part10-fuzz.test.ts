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

const seeds = [
  writePart10(elements, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian }),
  writePart10(elements, { transferSyntaxUid: TransferSyntax.ImplicitVRLittleEndian }),
  writePart10(elements, {
    transferSyntaxUid: TransferSyntax.ExplicitVRBigEndian,
    undefinedLengthSequences: true,
  }),
  writePart10(elements, { transferSyntaxUid: TransferSyntax.DeflatedExplicitVRLittleEndian }),
  writePart10(
    elements.filter((e) => e.tag !== Tags.PixelData),
    {
      transferSyntaxUid: TransferSyntax.JPEGBaseline,
      encapsulatedPixelData: { fragments: [Buffer.alloc(10, 1), Buffer.alloc(6, 2)], basicOffsetTable: [0] },
      undefinedLengthSequences: true,
    },
  ),
];

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
);

function mutate(src: Buffer, ms: { kind: string; at: number; value?: number; bytes?: Uint8Array }[]): Buffer {
  let b = Buffer.from(src);
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === 'flip') b[at] = m.value!;
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
          const input = mutate(seeds[seed]!, ms);
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
          }
        },
      ),
      { numRuns: 10_000, seed: 20261123 },
    );
    // The corpus must really exercise both paths.
    expect(failures).toBeGreaterThan(500);
    expect(successes).toBeGreaterThan(100);
  });
});
