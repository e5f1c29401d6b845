import { describe, expect, it } from 'vitest';
import { getString } from '../dicom/dataset.js';
import { parsePart10 } from '../dicom/part10-parser.js';
import { Tags } from '../dicom/tags.js';
import { datasetToJson } from '../dicom/dicom-json.js';
import { makeInstance } from '../../test/support/fixtures.js';
import { applyToJson, patientCorrections, rewriteHeader, type StoredObject } from './header-overlay.js';

const patient = { patientId: 'NEW-1', issuer: '', name: 'Everyman^Adam', birthDate: '19610616', sex: 'M' };

async function stored(bytes: Buffer): Promise<StoredObject & { json: ReturnType<typeof datasetToJson> }> {
  const p = await parsePart10(bytes);
  return {
    sopInstanceUid: getString(p.dataset, Tags.SOPInstanceUID)!,
    transferSyntaxUid: p.transferSyntaxUid,
    size: bytes.length,
    bulk: {
      datasetStart: p.datasetStart,
      deflated: p.deflated,
      ...(p.pixelData
        ? { pixel: { offset: p.pixelData.offset, encapsulated: p.pixelData.encapsulated } }
        : {}),
    },
    json: datasetToJson(p.dataset),
  };
}

const reader = (bytes: Buffer) =>
  async function* (start: number, end: number) {
    // Small reads, as a chunked store delivers them.
    for (let i = start; i < end; i += 100) yield bytes.subarray(i, Math.min(end, i + 100));
  };

async function collect(it: AsyncIterable<Buffer>) {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(b);
  return Buffer.concat(parts);
}

describe('header overlay', () => {
  it('corrects only what differs from the patient index, in DICOM JSON', async () => {
    const o = await stored(
      makeInstance({
        studyUid: '1.2.3',
        seriesUid: '1.2.3.4',
        sopInstanceUid: '1.2.3.4.5',
        patientId: 'OLD-1',
        patientName: 'Everyman^Adam',
        birthDate: '19610615',
        sex: 'M',
      }),
    );
    const c = patientCorrections(o.json, patient);
    expect(c.map((x) => x.tag)).toEqual(['00100020', '00100030']);
    const json = applyToJson(o.json, c);
    expect(json['00100020']?.Value).toEqual(['NEW-1']);
    expect(o.json['00100020']?.Value).toEqual(['OLD-1']);
    expect(patientCorrections(json, patient)).toEqual([]);
  });

  for (const [label, ts] of [
    ['explicit VR little endian', '1.2.840.10008.1.2.1'],
    ['implicit VR little endian', '1.2.840.10008.1.2'],
    ['explicit VR big endian', '1.2.840.10008.1.2.2'],
  ] as const) {
    it(`rewrites the header of a ${label} object and keeps its meta, pixel data and transfer syntax`, async () => {
      const bytes = makeInstance({
        studyUid: '1.2.3',
        seriesUid: '1.2.3.4',
        sopInstanceUid: '1.2.3.4.5',
        patientId: 'OLD-1',
        patientName: 'Duplicate^Adam',
        transferSyntaxUid: ts,
        extra: [{ tag: 0x00081140, vr: 'SQ', value: [[{ tag: 0x00081155, vr: 'UI', value: '1.2.3.9' }]] }],
      });
      const o = await stored(bytes);
      const served = await rewriteHeader(
        o,
        patientCorrections(o.json, { ...patient, name: 'Everyman-Smith^Adam' }),
        reader(bytes),
      );
      const out = await collect(served.body);
      expect(out.length).toBe(served.size);
      const before = await parsePart10(bytes);
      const after = await parsePart10(out);
      expect(after.transferSyntaxUid).toBe(ts);
      expect(getString(after.dataset, Tags.PatientID)).toBe('NEW-1');
      expect(getString(after.dataset, Tags.PatientName)).toBe('Everyman-Smith^Adam');
      expect(getString(after.dataset, Tags.PatientBirthDate)).toBe('19610616');
      expect(getString(after.dataset, Tags.StudyInstanceUID)).toBe('1.2.3');
      expect(after.dataset.get(0x00081140)).toEqual(before.dataset.get(0x00081140));
      // File meta information as stored, byte for byte.
      expect(out.subarray(0, before.datasetStart).equals(bytes.subarray(0, before.datasetStart))).toBe(true);
      const px = (b: Buffer, p: typeof after) =>
        b.subarray(p.pixelData!.offset, p.pixelData!.offset + p.pixelData!.length);
      expect(px(out, after).equals(px(bytes, before))).toBe(true);
    });
  }

  it('declines a deflated object with a reason', async () => {
    const bytes = makeInstance({
      studyUid: '1.2.3',
      seriesUid: '1.2.3.4',
      sopInstanceUid: '1.2.3.4.5',
      patientId: 'OLD-1',
      transferSyntaxUid: '1.2.840.10008.1.2.1.99',
    });
    const o = await stored(bytes);
    await expect(rewriteHeader(o, patientCorrections(o.json, patient), reader(bytes))).rejects.toThrow(
      /deflated/,
    );
  });
});
