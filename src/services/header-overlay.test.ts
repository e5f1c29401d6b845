import { describe, expect, it } from 'vitest';
import { getString } from '../dicom/dataset.js';
import { parsePart10 } from '../dicom/part10-parser.js';
import { Tags } from '../dicom/tags.js';
import { datasetToJson } from '../dicom/dicom-json.js';
import { makeInstance } from '../../test/support/fixtures.js';
import { headerEnd, mergeCorrections, parseCorrections, rewriteHeader } from '../dicom/header-rewrite.js';
import { applyToJson, asHeaderCorrections, patientCorrections } from './header-overlay.js';

const patient = { patientId: 'NEW-1', issuer: '', name: 'Everyman^Adam', birthDate: '19610616', sex: 'M' };

async function stored(bytes: Buffer) {
  const p = await parsePart10(bytes);
  return { json: datasetToJson(p.dataset) };
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

  it('compares and corrects a name with all its component groups (alphabetic, ideographic, phonetic)', async () => {
    const o = await stored(
      makeInstance({
        studyUid: '1.2.3',
        seriesUid: '1.2.3.4',
        sopInstanceUid: '1.2.3.4.5',
        patientId: 'NEW-1',
        patientName: 'Yamada^Tarou=山田^太郎=やまだ^たろう',
        birthDate: '19610616',
        sex: 'M',
      }),
    );
    const index = { ...patient, name: 'Yamada^Tarou=山田^太郎=やまだ^たろう' };
    // The index holds the whole name; comparing the Alphabetic group alone made a "correction" of every such name.
    expect(patientCorrections(o.json, index)).toEqual([]);
    const renamed = applyToJson(
      o.json,
      patientCorrections(o.json, { ...index, name: 'Yamada^Taro=山田^太郎' }),
    );
    expect(renamed['00100010']?.Value).toEqual([{ Alphabetic: 'Yamada^Taro', Ideographic: '山田^太郎' }]);
  });

  for (const [label, ts] of [
    ['explicit VR little endian', '1.2.840.10008.1.2.1'],
    ['implicit VR little endian', '1.2.840.10008.1.2'],
    ['explicit VR big endian', '1.2.840.10008.1.2.2'],
  ] as const) {
    it(`rewrites the header of a ${label} object with steward and patient-index corrections, patient index winning`, async () => {
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
      const p = await parsePart10(bytes);
      const bulk = {
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
      const end = headerEnd(bulk, ts, bytes.length);
      // The steward corrected the study description and (before the ADT merge) the patient ID.
      const steward = parseCorrections({ StudyDescription: 'CT CHEST', PatientID: 'STEWARD-1' });
      const merged = mergeCorrections(
        steward,
        asHeaderCorrections(patientCorrections(o.json, { ...patient, name: 'Everyman-Smith^Adam' })),
      );
      const header = await rewriteHeader(bytes.subarray(0, end.offset), merged);
      const out = Buffer.concat([header, bytes.subarray(end.offset)]);
      const before = await parsePart10(bytes);
      const after = await parsePart10(out);
      expect(after.transferSyntaxUid).toBe(ts);
      expect(getString(after.dataset, Tags.PatientID)).toBe('NEW-1');
      expect(getString(after.dataset, Tags.PatientName)).toBe('Everyman-Smith^Adam');
      expect(getString(after.dataset, Tags.PatientBirthDate)).toBe('19610616');
      expect(getString(after.dataset, Tags.StudyDescription)).toBe('CT CHEST');
      expect(getString(after.dataset, Tags.StudyInstanceUID)).toBe('1.2.3');
      expect(after.dataset.get(0x00081140)).toEqual(before.dataset.get(0x00081140));
      // File meta information as stored, byte for byte (DIMSE sends the bytes after the stored dataset start).
      expect(after.datasetStart).toBe(before.datasetStart);
      expect(out.subarray(0, before.datasetStart).equals(bytes.subarray(0, before.datasetStart))).toBe(true);
      const px = (b: Buffer, q: typeof after) =>
        b.subarray(q.pixelData!.offset, q.pixelData!.offset + q.pixelData!.length);
      expect(px(out, after).equals(px(bytes, before))).toBe(true);
    });
  }

  it('declines a deflated object with a reason', () => {
    expect(() =>
      headerEnd({ datasetStart: 200, deflated: true, elements: {} }, '1.2.840.10008.1.2.1.99', 1000),
    ).toThrow(/deflated/);
  });
});
