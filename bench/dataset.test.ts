import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { getNumber, getString } from '../src/dicom/dataset.js';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { Tags } from '../src/dicom/tags.js';
import {
  FAMILY_NAMES,
  generateInstances,
  multiframeFrame,
  multiframeHeader,
  uidRoot,
  type SetName,
} from './dataset.js';

function digest(set: SetName, seed: number, n: number): string {
  const h = createHash('sha256');
  let i = 0;
  for (const inst of generateInstances(set, seed)) {
    h.update(inst.path).update(inst.bytes);
    if (++i >= n) break;
  }
  return h.digest('hex');
}

function take(set: SetName, seed: number, n: number) {
  const out = [];
  for (const inst of generateInstances(set, seed)) {
    out.push(inst);
    if (out.length >= n) break;
  }
  return out;
}

describe('benchmark dataset generator', () => {
  it('is deterministic: the same seed gives the same bytes, another seed other bytes', () => {
    expect(digest('tiny', 42, 50)).toBe(digest('tiny', 42, 50));
    expect(digest('tiny', 42, 50)).not.toBe(digest('tiny', 43, 50));
    expect(digest('large', 42, 3)).toBe(digest('large', 42, 3));
    expect(digest('large', 42, 3)).not.toBe(digest('large', 43, 3));
  });

  it('writes objects that parse back with realistic headers at the path they are filed under', async () => {
    for (const inst of [...take('tiny', 42, 20), ...take('large', 42, 2)]) {
      const { dataset, pixelData } = await parsePart10(inst.bytes);
      const [patient, study, series, file] = inst.path.split('/');
      expect(getString(dataset, Tags.PatientID)).toBe(patient);
      expect(getString(dataset, Tags.StudyInstanceUID)).toBe(study);
      expect(getString(dataset, Tags.SeriesInstanceUID)).toBe(series);
      expect(file).toBe(`${getString(dataset, Tags.InstanceNumber)}.dcm`);
      expect(getString(dataset, Tags.StudyDate)).toMatch(/^202[1-4](0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/);
      expect(getString(dataset, Tags.SOPClassUID)).toMatch(/^1\.2\.840\.10008\.5\.1\.4\.1\.1\./);
      const rows = getNumber(dataset, Tags.Rows)!;
      const columns = getNumber(dataset, Tags.Columns)!;
      expect(pixelData?.length).toBe(rows * columns * 2);
    }
    const [ct] = take('large', 42, 1);
    const { dataset } = await parsePart10(ct!.bytes);
    expect(getString(dataset, Tags.Modality)).toBe('CT');
    expect(getString(dataset, Tags.SOPClassUID)).toBe('1.2.840.10008.5.1.4.1.1.2');
    expect([getNumber(dataset, Tags.Rows), getNumber(dataset, Tags.Columns)]).toEqual([512, 512]);
  });

  it('declares the character set of non-ASCII names, in Latin-1 and UTF-8, and they decode back', async () => {
    const seen = new Map<string, string>();
    for (const inst of take('tiny', 42, 400)) {
      const { dataset } = await parsePart10(inst.bytes);
      const charset = getString(dataset, Tags.SpecificCharacterSet) ?? 'default';
      const name = getString(dataset, Tags.PatientName)!;
      expect(FAMILY_NAMES).toContain(name.split('^')[0]);
      if (charset === 'default') expect(name).toMatch(/^[\x20-\x7e]+$/);
      else expect(name).toMatch(/[^\x20-\x7e]/);
      seen.set(charset, name);
    }
    expect([...seen.keys()].sort()).toEqual(['ISO_IR 100', 'ISO_IR 192', 'default']);
  });

  it('gives the tiny set 10,000 instances in 5,000 studies, and no UID shared with the large set', () => {
    const studies = new Set<string>();
    const patients = new Set<string>();
    let instances = 0;
    for (const inst of generateInstances('tiny', 42)) {
      const [patient, study] = inst.path.split('/');
      patients.add(patient!);
      studies.add(study!);
      instances++;
    }
    expect(instances).toBe(10_000);
    expect(studies.size).toBe(5_000);
    expect(patients.size).toBeGreaterThan(1_000);
    expect(uidRoot('tiny', 42)).not.toBe(uidRoot('large', 42));
    for (const inst of take('large', 42, 5)) expect(studies.has(inst.path.split('/')[1]!)).toBe(false);
  });

  it('gives the warm-up set 2,110 instances in 21 studies of patients and UIDs no measured set uses', async () => {
    const studies = new Set<string>();
    const patients = new Set<string>();
    let instances = 0;
    let fullSize = 0;
    for (const inst of generateInstances('warmup', 42)) {
      const [patient, study] = inst.path.split('/');
      patients.add(patient!);
      studies.add(study!);
      instances++;
      if (inst.bytes.length > 512 * 512 * 2) fullSize++;
    }
    expect(instances).toBe(2_110);
    expect(studies.size).toBe(21);
    expect(fullSize).toBe(110);
    expect([...patients].every((p) => /^W\d{6}$/.test(p))).toBe(true);
    for (const set of ['large', 'tiny'] as const) {
      expect(uidRoot('warmup', 42)).not.toBe(uidRoot(set, 42));
      const [first] = take(set, 42, 1);
      expect(patients.has(first!.path.split('/')[0]!)).toBe(false);
    }
    const [one] = take('warmup', 42, 1);
    const { dataset } = await parsePart10(one!.bytes);
    expect(getString(dataset, Tags.StudyInstanceUID)).toBe(`${uidRoot('warmup', 42)}.1`);
  });

  it('streams a multi-frame object whose declared pixel length matches the frames that follow', async () => {
    const frames = 3;
    const { header, pixelBytes, sopInstanceUid } = multiframeHeader(frames, 8, 4);
    async function* stream() {
      yield header;
      for (let i = 0; i < frames; i++) yield multiframeFrame(8, 4, i);
    }
    const p = await parsePart10(stream());
    expect(getString(p.dataset, Tags.SOPInstanceUID)).toBe(sopInstanceUid);
    expect(getString(p.dataset, Tags.NumberOfFrames)).toBe('3');
    expect(p.pixelData?.length).toBe(pixelBytes);
    expect(p.byteLength).toBe(header.length + pixelBytes);
  });
});
