import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { getString } from '../src/dicom/dataset.js';
import { Tags } from '../src/dicom/tags.js';
import { generateInstances, multiframeHeader } from './dataset.js';

const digest = (n: number, seed: number) => {
  const h = createHash('sha256');
  let i = 0;
  for (const inst of generateInstances('tiny', seed)) {
    h.update(inst.path).update(inst.bytes);
    if (++i >= n) break;
  }
  return h.digest('hex');
};

describe('benchmark dataset generator', () => {
  it('is deterministic: the same seed gives the same bytes, another seed other bytes', () => {
    expect(digest(50, 42)).toBe(digest(50, 42));
    expect(digest(50, 42)).not.toBe(digest(50, 43));
  });
  it('writes objects that parse back with realistic headers', async () => {
    const first = generateInstances('tiny', 42).next().value!;
    const p = await parsePart10(first.bytes);
    expect(getString(p.dataset, Tags.PatientID)).toMatch(/^T\d{6}$/);
    expect(getString(p.dataset, Tags.PatientName)).toMatch(/\^/);
    expect(getString(p.dataset, Tags.StudyDate)).toMatch(/^202[1-5]\d{4}$/);
    expect(p.pixelData?.length).toBe(16 * 16 * 2);
  });
  it('declares the multi-frame pixel length it will stream', async () => {
    const { header, pixelBytes } = multiframeHeader(3, 4, 4);
    const p = await parsePart10(Buffer.concat([header, Buffer.alloc(pixelBytes)]));
    expect(p.pixelData?.length).toBe(96);
  });
});
