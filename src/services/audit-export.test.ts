import { XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../domain/audit-record.js';
import { sampleRecord } from '../../test/support/audit-records.js';
import { exportRecords, type AuditExportFormat } from './audit-export.js';

async function* some(): AsyncIterable<AuditRecord> {
  yield sampleRecord({ seq: 1, action: 'login', detail: { reason: 'line\nbreak' }, outcome: 'failure' });
  yield sampleRecord({ seq: 2, action: 'query', objects: { level: 'study', note: 'a\nb' } });
  yield sampleRecord({ seq: 3, action: 'store' });
}

async function lines(format: AuditExportFormat): Promise<string[]> {
  const out: string[] = [];
  for await (const l of exportRecords(some(), format)) out.push(l);
  return out;
}

describe('audit export in standard formats', () => {
  it('writes one well-formed DICOM audit message per line', async () => {
    const out = await lines('dicom');
    expect(out).toHaveLength(3);
    for (const l of out) {
      expect(l.endsWith('\n')).toBe(true);
      expect(l.slice(0, -1)).not.toContain('\n');
      expect(XMLValidator.validate(l.slice(0, -1))).toBe(true);
    }
    expect(out.map((l) => /<EventID csd-code="(\d+)"/.exec(l)![1])).toEqual(['110114', '110112', '110104']);
  });

  it('writes CSV with a header after the first record, quoting, and no spreadsheet formulas', async () => {
    async function* tricky(): AsyncIterable<AuditRecord> {
      yield sampleRecord({
        seq: 7,
        action: 'view-pixels',
        breakGlassReason: '=HYPERLINK("x"), "urgent"\nsee',
      });
    }
    const out: string[] = [];
    for await (const l of exportRecords(tricky(), 'csv')) out.push(l);
    expect(out).toHaveLength(1);
    const [header, row] = out[0]!.split('\r\n');
    expect(header).toBe(
      'seq,ts,actor,role,kind,action,outcome,policy,patientId,studyUid,source,channel,purpose,breakGlassReason',
    );
    expect(row!.startsWith('7,')).toBe(true);
    expect(out[0]).toContain(`"'=HYPERLINK(""x""), ""urgent""\nsee"`);
    const empty: string[] = [];
    for await (const l of exportRecords((async function* () {})(), 'csv')) empty.push(l);
    expect(empty).toEqual([`${header}\r\n`]);
  });

  it('writes FHIR AuditEvent NDJSON', async () => {
    const out = await lines('fhir');
    const parsed = out.map(
      (l) => JSON.parse(l) as { resourceType: string; id: string; type: { code: string } },
    );
    expect(parsed.map((p) => [p.resourceType, p.id, p.type.code])).toEqual([
      ['AuditEvent', '1', '110114'],
      ['AuditEvent', '2', '110112'],
      ['AuditEvent', '3', '110104'],
    ]);
  });

  it('refuses an unknown format naming the parameter', async () => {
    await expect(lines('xml' as AuditExportFormat)).rejects.toMatchObject({
      httpStatus: 400,
      detail: { parameter: 'format' },
    });
  });
});
