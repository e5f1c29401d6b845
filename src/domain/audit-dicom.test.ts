import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { toDicomAuditXml, STUDY_ROOT_FIND, xmlEscape } from './audit-dicom.js';
import type { AuditRecord } from './audit-record.js';
import { sampleRecord } from '../../test/support/audit-records.js';

const REPEATED = new Set([
  'ActiveParticipant',
  'ParticipantObjectIdentification',
  'EventTypeCode',
  'RoleIDCode',
  'ParticipantObjectDetail',
  'SOPClass',
  'Instance',
]);

interface Coded {
  '@csd-code': string;
  '@codeSystemName': string;
  '@originalText': string;
}
type Node = Record<string, unknown>;

/** Checks well-formedness with an independent parser, then returns the AuditMessage element. */
function parse(xml: string): Node {
  expect(XMLValidator.validate(xml)).toBe(true);
  expect(xml).not.toMatch(/[\n\r]/);
  const doc = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    parseAttributeValue: false,
    parseTagValue: false,
    htmlEntities: true,
    isArray: (name) => REPEATED.has(name),
  }).parse(xml) as Node;
  return doc.AuditMessage as Node;
}

const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

function message(over: Partial<AuditRecord>) {
  const m = parse(toDicomAuditXml(sampleRecord(over)));
  const ei = m.EventIdentification as Node;
  return {
    m,
    ei,
    eventId: (ei.EventID as Coded)['@csd-code'],
    types: ((ei.EventTypeCode as Coded[] | undefined) ?? []).map(
      (c) => `${c['@codeSystemName']}:${c['@csd-code']}`,
    ),
    action: ei['@EventActionCode'],
    outcome: ei['@EventOutcomeIndicator'],
    participants: m.ActiveParticipant as Node[],
    objects: (m.ParticipantObjectIdentification as Node[] | undefined) ?? [],
  };
}

const objectOfType = (objects: Node[], code: string) =>
  objects.find((o) => (o.ParticipantObjectIDTypeCode as Coded)['@csd-code'] === code);

describe('DICOM audit message (PS3.15 A.5)', () => {
  it('puts the elements in schema order with the event time, source and outcome', () => {
    const xml = toDicomAuditXml(sampleRecord());
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?><AuditMessage>')).toBe(true);
    const order = [
      ...xml.matchAll(
        /<(EventIdentification|ActiveParticipant|AuditSourceIdentification|ParticipantObjectIdentification)[ >]/g,
      ),
    ].map((x) => x[1]);
    expect(order).toEqual([
      'EventIdentification',
      'ActiveParticipant',
      'ActiveParticipant',
      'AuditSourceIdentification',
      'ParticipantObjectIdentification',
      'ParticipantObjectIdentification',
    ]);
    const { ei, m } = message({});
    expect(ei['@EventDateTime']).toBe('2026-11-23T08:49:20.123Z');
    const src = m.AuditSourceIdentification as Node;
    expect(src['@AuditSourceID']).toBe('custos-a.example.org');
    expect((src.AuditSourceTypeCode as Coded)['@csd-code']).toBe('4');
  });

  it('maps login and logout to User Authentication with the Login / Logout event types', () => {
    const login = message({ action: 'login', patientId: undefined, studyUid: undefined, objects: undefined });
    expect([login.eventId, login.action, login.types]).toEqual(['110114', 'E', ['DCM:110122']]);
    expect(login.objects).toEqual([]);
    const logout = message({
      action: 'logout',
      patientId: undefined,
      studyUid: undefined,
      objects: undefined,
    });
    expect([logout.eventId, logout.types]).toEqual(['110114', ['DCM:110123']]);
    const failed = message({
      action: 'login',
      outcome: 'failure',
      detail: { reason: 'bad username or password' },
    });
    expect(failed.outcome).toBe('8');
    expect(failed.ei.EventOutcomeDescription).toBe('failed: bad username or password');
  });

  it('reports a second factor and a token use as User Authentication logins', () => {
    for (const action of ['mfa', 'token-use']) {
      const a = message({ action, patientId: undefined, studyUid: undefined, objects: undefined });
      expect([action, a.eventId, a.action, a.types]).toEqual([action, '110114', 'E', ['DCM:110122']]);
    }
  });

  it('maps correct-header to DICOM Instances Accessed with action U (amendment)', () => {
    const c = message({ action: 'correct-header' });
    expect([c.eventId, c.action]).toEqual(['110103', 'U']);
    expect(objectOfType(c.objects, '110180')!['@ParticipantObjectDataLifeCycle']).toBe('3');
  });

  it('describes the requestor with user id, requestor flag, IP access point and role; the archive as non-requestor', () => {
    const { participants } = message({});
    const [user, archive] = participants;
    expect(user).toMatchObject({
      '@UserID': 'dr.house',
      '@AlternativeUserID': '7',
      '@UserName': 'dr.house',
      '@UserIsRequestor': 'true',
      '@NetworkAccessPointID': '10.1.2.3',
      '@NetworkAccessPointTypeCode': '2',
    });
    expect((user!.RoleIDCode as Coded[]).map((c) => c['@csd-code'])).toEqual(['radiologist']);
    expect(archive).toMatchObject({
      '@UserID': 'CUSTOS',
      '@UserIsRequestor': 'false',
      '@NetworkAccessPointID': 'custos-a.example.org',
      '@NetworkAccessPointTypeCode': '1',
    });
  });

  it('names a DICOM AE by its title and leaves out the access point of a local command', () => {
    const ae = message({
      actor: { kind: 'ae', id: 'ae:3', name: 'MODALITY1', role: 'modality', aeTitle: 'MODALITY1' },
    });
    expect(ae.participants[0]).toMatchObject({ '@UserID': 'MODALITY1', '@AlternativeUserID': 'ae:3' });
    expect(ae.participants[0]!['@UserName']).toBeUndefined();
    const cli = message({ source: 'cli' });
    expect(cli.participants[0]!['@NetworkAccessPointID']).toBeUndefined();
  });

  it('maps query to Query (110112, E) with the query SOP class and the query in base64', () => {
    const q = message({
      action: 'query',
      patientId: undefined,
      studyUid: undefined,
      objects: {
        level: 'study',
        matches: [{ tag: '00100020', value: 'PAT-001' }],
        count: 3,
        studies: ['1.2.3'],
      },
    });
    expect([q.eventId, q.action, q.outcome]).toEqual(['110112', 'E', '0']);
    expect((q.participants[0]!.RoleIDCode as Coded[])[0]!['@csd-code']).toBe('110153');
    expect((q.participants[1]!.RoleIDCode as Coded[])[0]!['@csd-code']).toBe('110152');
    const query = objectOfType(q.objects, '110181')!;
    expect(query['@ParticipantObjectID']).toBe(STUDY_ROOT_FIND);
    expect(query['@ParticipantObjectTypeCode']).toBe('2');
    expect(query['@ParticipantObjectTypeCodeRole']).toBe('24');
    expect(JSON.parse(b64(query.ParticipantObjectQuery as string))).toEqual({
      level: 'study',
      matches: [{ tag: '00100020', value: 'PAT-001' }],
    });
    const details = Object.fromEntries(
      (query.ParticipantObjectDetail as Node[]).map((d) => [d['@type'], b64(d['@value'] as string)]),
    );
    expect(details).toMatchObject({
      QueryLevel: 'study',
      NumberOfMatches: '3',
      QueryEncoding: 'application/json',
    });
  });

  it('maps view-metadata and view-pixels to DICOM Instances Accessed (110103, R) with patient and study objects', () => {
    for (const action of ['view-metadata', 'view-pixels']) {
      const v = message({ action });
      expect([v.eventId, v.action]).toEqual(['110103', 'R']);
      const patient = objectOfType(v.objects, '2')!;
      expect(patient).toMatchObject({
        '@ParticipantObjectID': 'PAT-001',
        '@ParticipantObjectTypeCode': '1',
        '@ParticipantObjectTypeCodeRole': '1',
      });
      const study = objectOfType(v.objects, '110180')!;
      expect(study).toMatchObject({
        '@ParticipantObjectID': '1.2.826.0.1.3680043.8.498.1',
        '@ParticipantObjectTypeCode': '2',
        '@ParticipantObjectTypeCodeRole': '3',
      });
      const details = (study.ParticipantObjectDetail as Node[]).map((d) => [
        d['@type'],
        b64(d['@value'] as string),
      ]);
      expect(details).toEqual([
        ['SeriesInstanceUID', '1.2.826.0.1.3680043.8.498.1.1'],
        ['SOPInstanceUID', '1.2.826.0.1.3680043.8.498.1.1.1'],
        ['SOPInstanceUID', '1.2.826.0.1.3680043.8.498.1.1.2'],
      ]);
    }
  });

  it('maps store to DICOM Instances Transferred (110104, C) with SOP class and instance detail', () => {
    const s = message({
      action: 'store',
      actor: { kind: 'ae', id: 'ae:1', name: 'CT1', role: 'modality', aeTitle: 'CT1' },
      objects: {
        seriesUid: '1.2.3.4',
        sopInstanceUid: '1.2.3.4.5',
        sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
        channel: 'dimse',
      },
    });
    expect([s.eventId, s.action]).toEqual(['110104', 'C']);
    expect((s.participants[0]!.RoleIDCode as Coded[])[0]!['@csd-code']).toBe('110153');
    expect((s.participants[1]!.RoleIDCode as Coded[])[0]!['@csd-code']).toBe('110152');
    const study = objectOfType(s.objects, '110180')!;
    expect(study['@ParticipantObjectDataLifeCycle']).toBe('1');
    const [cls] = study.SOPClass as Node[];
    expect(cls).toMatchObject({ '@UID': '1.2.840.10008.5.1.4.1.1.2', '@NumberOfInstances': '1' });
    expect((cls!.Instance as Node[]).map((i) => i['@UID'])).toEqual(['1.2.3.4.5']);
  });

  it('maps export-clinical, export-deidentified and print to Export (110106, R) with a destination media participant', () => {
    for (const action of ['export-clinical', 'export-deidentified', 'print']) {
      const e = message({ action, detail: { destination: 'research-share' } });
      expect([e.eventId, e.action]).toEqual(['110106', 'R']);
      expect(e.participants).toHaveLength(3);
      expect((e.participants[1]!.RoleIDCode as Coded[])[0]!['@csd-code']).toBe('110153');
      expect(e.participants[2]!['@UserID']).toBe('research-share');
      expect((e.participants[2]!.RoleIDCode as Coded[])[0]!['@csd-code']).toBe('110154');
    }
  });

  it('maps delete to DICOM Study Deleted (110105, D)', () => {
    const d = message({ action: 'delete' });
    expect([d.eventId, d.action]).toEqual(['110105', 'D']);
    expect(objectOfType(d.objects, '110180')!['@ParticipantObjectDataLifeCycle']).toBe('14');
  });

  it('maps read-audit to Audit Log Used (110101, R) with the ledger as a security resource', () => {
    const r = message({
      action: 'read-audit',
      patientId: undefined,
      studyUid: undefined,
      objects: { patient: 'PAT-001' },
    });
    expect([r.eventId, r.action]).toEqual(['110101', 'R']);
    const log = objectOfType(r.objects, '12')!;
    expect(log).toMatchObject({
      '@ParticipantObjectID': 'urn:custos:audit-ledger:custos-a.example.org',
      '@ParticipantObjectTypeCodeRole': '13',
      ParticipantObjectName: 'Security Audit Log',
    });
  });

  it('maps configuration, policy, account, break-glass and association events to Security Alert with their event type', () => {
    const cases: [string, string][] = [
      ['policy-apply', 'DCM:110129'],
      ['config-change', 'DCM:110131'],
      ['account-create', 'DCM:110137'],
      ['account-change', 'DCM:110137'],
      ['token-create', 'DCM:110137'],
      ['token-revoke', 'DCM:110137'],
      ['administer', 'DCM:110131'],
      ['request-deletion', 'DCM:110135'],
      ['approve-deletion', 'DCM:110135'],
      ['break-glass', 'DCM:110127'],
      ['dicom-associate', 'DCM:110126'],
      ['alert', 'urn:custos:audit-action:alert'],
      ['something-new', 'urn:custos:audit-action:something-new'],
    ];
    for (const [action, type] of cases) {
      const a = message({ action, objects: undefined, studyUid: undefined, patientId: undefined });
      expect([action, a.eventId, a.action, a.types]).toEqual([action, '110113', 'E', [type]]);
      expect(a.objects).toHaveLength(1);
    }
    const account = message({
      action: 'account-create',
      objects: { user: 'alice', role: 'radiologist' },
      studyUid: undefined,
      patientId: undefined,
    });
    expect(objectOfType(account.objects, '11')).toMatchObject({
      '@ParticipantObjectID': 'alice',
      '@ParticipantObjectTypeCodeRole': '11',
    });
  });

  it('gives outcome 0 for success, 4 for a policy refusal and 8 for a failure', () => {
    expect(message({ outcome: 'success' }).outcome).toBe('0');
    const denied = message({ outcome: 'denied', detail: { reason: 'outside scope' } });
    expect(denied.outcome).toBe('4');
    expect(denied.ei.EventOutcomeDescription).toBe('denied by cedar:radiologist-read: outside scope');
    expect(message({ outcome: 'failure' }).outcome).toBe('8');
  });

  it('carries purpose of use and the break-glass reason', () => {
    const m = message({ purpose: 'ETREAT', breakGlassReason: 'trauma bay, patient unconscious' });
    const pou = m.ei.PurposeOfUse as Coded;
    expect(pou['@csd-code']).toBe('ETREAT');
    expect(pou['@codeSystemName']).toBe('2.16.840.1.113883.5.8');
    const study = objectOfType(m.objects, '110180')!;
    const reason = (study.ParticipantObjectDetail as Node[]).find((d) => d['@type'] === 'BreakGlassReason')!;
    expect(b64(reason['@value'] as string)).toBe('trauma bay, patient unconscious');
  });

  it('stays well-formed with markup, quotes, newlines and characters XML forbids in the values', () => {
    const nasty = 'a<b>&"c\'\n\r\t\u0001\uD800z';
    const m = message({
      actor: { kind: 'user', id: nasty, name: nasty, role: nasty },
      patientId: nasty,
      detail: { reason: nasty },
      outcome: 'failure',
    });
    expect(m.participants[0]!['@UserName']).toBe('a<b>&"c\'\n\r\t\uFFFD\uFFFDz');
    expect(objectOfType(m.objects, '2')!['@ParticipantObjectID']).toBe('a<b>&"c\'\n\r\t\uFFFD\uFFFDz');
    expect(xmlEscape('ok')).toBe('ok');
  });
});
