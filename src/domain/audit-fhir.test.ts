import { describe, expect, it } from 'vitest';
import { auditSearchset, DCM_SYSTEM, DICOM_UID_SYSTEM, toFhirAuditEvent } from './audit-fhir.js';
import type { AuditRecord } from './audit-record.js';
import { sampleRecord } from '../../test/support/audit-records.js';

const ev = (over: Partial<AuditRecord> = {}) => toFhirAuditEvent(sampleRecord(over));
const codes = (cs: { system: string; code: string }[] | undefined) =>
  (cs ?? []).map((c) => `${c.system}|${c.code}`);
const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

describe('FHIR R4 AuditEvent (IHE BALP)', () => {
  it('uses the ledger sequence as id and carries recorded time, DCM type, action and outcome', () => {
    const e = ev();
    expect(e.resourceType).toBe('AuditEvent');
    expect(e.id).toBe('42');
    expect(e.recorded).toBe('2026-11-23T08:49:20.123Z');
    expect(e.type).toEqual({ system: DCM_SYSTEM, code: '110103', display: 'DICOM Instances Accessed' });
    expect(e.action).toBe('R');
    expect(e.outcome).toBe('0');
    expect(codes(e.subtype)).toEqual([
      'http://hl7.org/fhir/restful-interaction|read',
      'urn:custos:audit-action|view-pixels',
    ]);
  });

  it('maps each action to its DCM type, subtype and CRUDE action', () => {
    const cases: [string, string, string, string[]][] = [
      ['login', '110114', 'E', [`${DCM_SYSTEM}|110122`]],
      ['logout', '110114', 'E', [`${DCM_SYSTEM}|110123`]],
      ['query', '110112', 'E', ['http://hl7.org/fhir/restful-interaction|search-type']],
      ['view-metadata', '110103', 'R', ['http://hl7.org/fhir/restful-interaction|read']],
      ['store', '110104', 'C', ['http://hl7.org/fhir/restful-interaction|create']],
      ['export-deidentified', '110106', 'R', []],
      ['print', '110106', 'R', []],
      ['delete', '110105', 'D', ['http://hl7.org/fhir/restful-interaction|delete']],
      ['read-audit', '110101', 'R', ['http://hl7.org/fhir/restful-interaction|search-type']],
      ['policy-apply', '110113', 'E', [`${DCM_SYSTEM}|110129`]],
      ['config-change', '110113', 'E', [`${DCM_SYSTEM}|110131`]],
      ['account-change', '110113', 'E', [`${DCM_SYSTEM}|110137`]],
      ['break-glass', '110113', 'E', [`${DCM_SYSTEM}|110127`]],
      ['dicom-associate', '110113', 'E', [`${DCM_SYSTEM}|110126`]],
      ['alert', '110113', 'E', []],
    ];
    for (const [action, type, crude, sub] of cases) {
      const e = ev({ action });
      expect([action, e.type.code, e.action, codes(e.subtype)]).toEqual([
        action,
        type,
        crude,
        [...sub, `urn:custos:audit-action|${action}`],
      ]);
    }
  });

  it('gives outcome 4 for a refusal and 8 for a failure, with a description', () => {
    const d = ev({ outcome: 'denied', detail: { reason: 'outside scope' } });
    expect([d.outcome, d.outcomeDesc]).toEqual(['4', 'denied by cedar:radiologist-read: outside scope']);
    expect(ev({ outcome: 'failure' }).outcome).toBe('8');
  });

  it('describes the requestor (who, role, network) and the archive as agents, the node as observer', () => {
    const e = ev({ purpose: 'TREAT' });
    const [client, server] = e.agent;
    expect(client).toMatchObject({
      requestor: true,
      who: { type: 'Practitioner', identifier: { value: 'dr.house' }, display: 'dr.house' },
      altId: '7',
      network: { address: '10.1.2.3', type: '2' },
    });
    expect(codes(client!.type!.coding)).toEqual([`${DCM_SYSTEM}|110153`]);
    expect(codes(client!.role![0]!.coding)).toEqual(['urn:custos:role|radiologist']);
    expect(codes(client!.purposeOfUse![0]!.coding)).toEqual([
      'http://terminology.hl7.org/CodeSystem/v3-ActReason|TREAT',
    ]);
    expect(codes(e.purposeOfEvent![0]!.coding)).toEqual([
      'http://terminology.hl7.org/CodeSystem/v3-ActReason|TREAT',
    ]);
    expect(server).toMatchObject({
      requestor: false,
      network: { address: 'custos-a.example.org', type: '1' },
    });
    expect(codes(server!.type!.coding)).toEqual([`${DCM_SYSTEM}|110152`]);
    expect(e.source.observer).toMatchObject({ identifier: { value: 'custos-a.example.org' } });
    expect(e.source.type[0]!.code).toBe('4');
  });

  it('names the patient by identifier and the study by UID, with series and instances as detail', () => {
    const e = ev({
      action: 'store',
      objects: {
        seriesUid: '1.2.3.4',
        sopInstanceUid: '1.2.3.4.5',
        sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      },
    });
    const [patient, study] = e.entity!;
    expect(patient).toEqual({
      what: { type: 'Patient', identifier: { value: 'PAT-001' } },
      type: {
        system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
        code: '1',
        display: 'Person',
      },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
    });
    expect(study!.what).toEqual({
      type: 'ImagingStudy',
      identifier: { system: DICOM_UID_SYSTEM, value: 'urn:oid:1.2.826.0.1.3680043.8.498.1' },
    });
    expect(study!.lifecycle!.code).toBe('1');
    expect(study!.detail).toEqual([
      { type: 'SeriesInstanceUID', valueString: '1.2.3.4' },
      { type: 'SOPInstanceUID', valueString: '1.2.840.10008.5.1.4.1.1.2|1.2.3.4.5' },
    ]);
  });

  it('carries a query as a base64 query entity with role Query', () => {
    const e = ev({
      action: 'query',
      patientId: undefined,
      studyUid: undefined,
      objects: { level: 'study', matches: [{ tag: '00100010', value: 'DOE^*' }], count: 5 },
    });
    expect(e.entity).toHaveLength(1);
    const q = e.entity![0]!;
    expect(q.role!.code).toBe('24');
    expect(JSON.parse(b64(q.query!))).toEqual({
      level: 'study',
      matches: [{ tag: '00100010', value: 'DOE^*' }],
    });
    expect(q.detail).toEqual([{ type: 'NumberOfMatches', valueString: '5' }]);
  });

  it('names an account change by the user it changed', () => {
    const e = ev({
      action: 'account-create',
      patientId: undefined,
      studyUid: undefined,
      objects: { user: 'alice' },
    });
    expect(e.entity).toEqual([
      expect.objectContaining({
        what: { identifier: { value: 'alice' } },
        role: expect.objectContaining({ code: '11' }),
      }),
    ]);
  });

  it('builds a searchset Bundle with self and next links and full URLs', () => {
    const events = [ev({ seq: 9 }), ev({ seq: 8 })];
    const b = auditSearchset({
      events,
      baseUrl: 'http://h/fhir/r4',
      selfUrl: 'http://h/fhir/r4/AuditEvent?_count=2',
      nextUrl: 'http://h/fhir/r4/AuditEvent?_count=2&_cursor=8',
    });
    expect(b).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });
    expect(b.link).toEqual([
      { relation: 'self', url: 'http://h/fhir/r4/AuditEvent?_count=2' },
      { relation: 'next', url: 'http://h/fhir/r4/AuditEvent?_count=2&_cursor=8' },
    ]);
    expect(b.entry.map((x) => [x.fullUrl, x.search.mode])).toEqual([
      ['http://h/fhir/r4/AuditEvent/9', 'match'],
      ['http://h/fhir/r4/AuditEvent/8', 'match'],
    ]);
    expect(auditSearchset({ events: [], baseUrl: 'b', selfUrl: 's' }).link).toHaveLength(1);
  });
});
