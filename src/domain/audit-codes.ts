import type { AuditOutcome, AuditRecord } from './audit-record.js';

/**
 * The one mapping from Custos audit actions to the standard event codes that both exports use: DICOM PS3.15
 * Annex A.5 audit messages (DCM coding scheme, PS3.16 CID 400/401) and FHIR R4 AuditEvent (IHE BALP uses the
 * same DCM codes for AuditEvent.type and subtype). Codes checked against PS3.16 / the FHIR audit-event-sub-type
 * value set; a second copy of this table in an exporter would be a bug waiting for its twin to change.
 */
export interface CodedValue {
  code: string;
  system: 'DCM' | 'RFC-3881' | 'urn:custos:audit-action';
  display: string;
}

export type EventActionCode = 'C' | 'R' | 'U' | 'D' | 'E';

/** PS3.15 A.5.3 event messages (PS3.16 CID 400 "Audit Event ID"). */
export const EVENT_ID = {
  applicationActivity: { code: '110100', system: 'DCM', display: 'Application Activity' },
  auditLogUsed: { code: '110101', system: 'DCM', display: 'Audit Log Used' },
  instancesAccessed: { code: '110103', system: 'DCM', display: 'DICOM Instances Accessed' },
  instancesTransferred: { code: '110104', system: 'DCM', display: 'DICOM Instances Transferred' },
  studyDeleted: { code: '110105', system: 'DCM', display: 'DICOM Study Deleted' },
  export: { code: '110106', system: 'DCM', display: 'Export' },
  query: { code: '110112', system: 'DCM', display: 'Query' },
  securityAlert: { code: '110113', system: 'DCM', display: 'Security Alert' },
  userAuthentication: { code: '110114', system: 'DCM', display: 'User Authentication' },
} as const satisfies Record<string, CodedValue>;

/** PS3.16 CID 401 "Audit Event Type Code". */
export const EVENT_TYPE = {
  login: { code: '110122', system: 'DCM', display: 'Login' },
  logout: { code: '110123', system: 'DCM', display: 'Logout' },
  nodeAuthentication: { code: '110126', system: 'DCM', display: 'Node Authentication' },
  emergencyOverrideStarted: { code: '110127', system: 'DCM', display: 'Emergency Override Started' },
  securityConfiguration: { code: '110129', system: 'DCM', display: 'Security Configuration' },
  softwareConfiguration: { code: '110131', system: 'DCM', display: 'Software Configuration' },
  objectSecurityAttributesChanged: {
    code: '110135',
    system: 'DCM',
    display: 'Object Security Attributes Changed',
  },
  userSecurityAttributesChanged: {
    code: '110137',
    system: 'DCM',
    display: 'User security Attributes Changed',
  },
} as const satisfies Record<string, CodedValue>;

/** PS3.16 CID 402 "Audit Active Participant Role ID Code". */
export const ROLE_ID = {
  destination: { code: '110152', system: 'DCM', display: 'Destination Role ID' },
  source: { code: '110153', system: 'DCM', display: 'Source Role ID' },
  destinationMedia: { code: '110154', system: 'DCM', display: 'Destination Media' },
} as const satisfies Record<string, CodedValue>;

/** How one Custos action is told in the standards. */
export interface StandardEvent {
  eventId: CodedValue;
  action: EventActionCode;
  /** PS3.15 EventTypeCode(s); for User Authentication and Security Alert the standard requires one. */
  types: CodedValue[];
  /** FHIR restful-interaction subtype, when the action is one (IHE BALP subtype pattern). */
  restful?: 'read' | 'search-type' | 'create' | 'update' | 'delete';
}

/** Security Alert subject for actions PS3.15 has no message of their own for: the Custos action as a code. */
const custosType = (action: string): CodedValue => ({
  code: action,
  system: 'urn:custos:audit-action',
  display: action,
});

const E = EVENT_ID;
const T = EVENT_TYPE;

const TABLE: Record<string, StandardEvent> = {
  // PS3.15 A.5.3.12 User Authentication: login / logout are the two event types the standard defines; a
  // token or a second factor is a step of authenticating, so it is reported as a Login attempt.
  login: { eventId: E.userAuthentication, action: 'E', types: [T.login] },
  mfa: { eventId: E.userAuthentication, action: 'E', types: [T.login] },
  'token-use': { eventId: E.userAuthentication, action: 'E', types: [T.login] },
  logout: { eventId: E.userAuthentication, action: 'E', types: [T.logout] },
  // A.5.3.10 Query: EventActionCode E.
  query: { eventId: E.query, action: 'E', types: [], restful: 'search-type' },
  // A.5.3.6 DICOM Instances Accessed: R for a read, U for a header correction.
  'view-metadata': { eventId: E.instancesAccessed, action: 'R', types: [], restful: 'read' },
  'view-pixels': { eventId: E.instancesAccessed, action: 'R', types: [], restful: 'read' },
  'correct-header': { eventId: E.instancesAccessed, action: 'U', types: [], restful: 'update' },
  // A.5.3.7 DICOM Instances Transferred with action C: the archive received and stored the instances
  // (IHE calls this "Instances Stored"; PS3.15 has one message for both).
  store: { eventId: E.instancesTransferred, action: 'C', types: [], restful: 'create' },
  // A.5.3.4 Export (Data Export): EventActionCode R, the exported data is read.
  'export-clinical': { eventId: E.export, action: 'R', types: [] },
  'export-deidentified': { eventId: E.export, action: 'R', types: [] },
  print: { eventId: E.export, action: 'R', types: [] },
  // A.5.3.8 DICOM Study Deleted: action D. Requests and approvals change a study's governance state.
  delete: { eventId: E.studyDeleted, action: 'D', types: [], restful: 'delete' },
  'request-deletion': { eventId: E.securityAlert, action: 'E', types: [T.objectSecurityAttributesChanged] },
  'approve-deletion': { eventId: E.securityAlert, action: 'E', types: [T.objectSecurityAttributesChanged] },
  // A.5.3.2 Audit Log Used: action R.
  'read-audit': { eventId: E.auditLogUsed, action: 'R', types: [], restful: 'search-type' },
  // A.5.3.11 Security Alert, with the event type the standard defines for each kind of change.
  'policy-apply': { eventId: E.securityAlert, action: 'E', types: [T.securityConfiguration] },
  'config-change': { eventId: E.securityAlert, action: 'E', types: [T.softwareConfiguration] },
  administer: { eventId: E.securityAlert, action: 'E', types: [T.softwareConfiguration] },
  'account-create': { eventId: E.securityAlert, action: 'E', types: [T.userSecurityAttributesChanged] },
  'account-change': { eventId: E.securityAlert, action: 'E', types: [T.userSecurityAttributesChanged] },
  'token-create': { eventId: E.securityAlert, action: 'E', types: [T.userSecurityAttributesChanged] },
  'token-revoke': { eventId: E.securityAlert, action: 'E', types: [T.userSecurityAttributesChanged] },
  'break-glass': { eventId: E.securityAlert, action: 'E', types: [T.emergencyOverrideStarted] },
  // A DICOM association is a node authenticating (by AE title, host and, with TLS, certificate).
  'dicom-associate': { eventId: E.securityAlert, action: 'E', types: [T.nodeAuthentication] },
  alert: { eventId: E.securityAlert, action: 'E', types: [custosType('alert')] },
};

/** The standard event for a record's action; an action outside the vocabulary becomes a Security Alert. */
export function standardEvent(action: string): StandardEvent {
  return TABLE[action] ?? { eventId: E.securityAlert, action: 'E', types: [custosType(action)] };
}

/** Every action of the vocabulary whose EventActionCode is `code` (for searching by FHIR `action`). */
export function actionsWithCode(code: EventActionCode): string[] {
  return Object.entries(TABLE)
    .filter(([, ev]) => ev.action === code)
    .map(([action]) => action);
}

/**
 * PS3.15 A.5.1 EventOutcomeIndicator: 0 success, 4 minor failure, 8 serious failure. A refusal by policy is a
 * minor failure (the request was refused, nothing broke, the user may retry with rights); a failure (bad
 * password, invalid object, error) is serious: the action did not happen.
 */
export function outcomeIndicator(outcome: AuditOutcome): '0' | '4' | '8' {
  return outcome === 'success' ? '0' : outcome === 'denied' ? '4' : '8';
}

/** A short, non-sensitive description of a non-success outcome (PS3.15 EventOutcomeDescription). */
export function outcomeDescription(record: AuditRecord): string | undefined {
  if (record.outcome === 'success') return undefined;
  const reason = record.detail?.reason;
  const head = record.outcome === 'denied' ? `denied by ${record.policy}` : 'failed';
  return typeof reason === 'string' && reason ? `${head}: ${reason}` : head;
}

/** HL7 v3 ActReason (purpose of use), the code system PS3.15 PurposeOfUse and FHIR purposeOfEvent use. */
export const PURPOSE_OF_USE_SYSTEM_OID = '2.16.840.1.113883.5.8';
export const PURPOSE_OF_USE_SYSTEM_URI = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

/**
 * The codes a caller may declare as its purpose of use: the HL7 v3 PurposeOfUse value set
 * (http://terminology.hl7.org/ValueSet/v3-PurposeOfUse, OID 2.16.840.1.113883.1.11.20448, version 2014-03-26 as
 * shipped in the FHIR R4 core package hl7.fhir.r4.core@4.0.1), the value set FHIR R4 binds AuditEvent.purposeOfEvent
 * and AuditEvent.agent.purposeOfUse to. All 60 concepts except its abstract root `PurposeOfUse`. Any other word
 * would be exported as a v3-ActReason code that the code system does not have.
 */
export const PURPOSE_OF_USE_CODES: ReadonlySet<string> = new Set([
  'HMARKT',
  'HOPERAT',
  'CAREMGT',
  'DONAT',
  'FRAUD',
  'GOV',
  'HACCRED',
  'HCOMPL',
  'HDECD',
  'HDIRECT',
  'HDM',
  'HLEGAL',
  'HOUTCOMS',
  'HPRGRP',
  'HQUALIMP',
  'HSYSADMIN',
  'LABELING',
  'METAMGT',
  'MEMADMIN',
  'MILCDM',
  'PATADMIN',
  'PATSFTY',
  'PERFMSR',
  'RECORDMGT',
  'SYSDEV',
  'HTEST',
  'TRAIN',
  'HPAYMT',
  'CLMATTCH',
  'COVAUTH',
  'COVERAGE',
  'ELIGDTRM',
  'ELIGVER',
  'ENROLLM',
  'MILDCRG',
  'REMITADV',
  'HRESCH',
  'BIORCH',
  'CLINTRCH',
  'CLINTRCHNPC',
  'CLINTRCHPC',
  'PRECLINTRCH',
  'DSRCH',
  'POARCH',
  'TRANSRCH',
  'PATRQT',
  'FAMRQT',
  'PWATRNY',
  'SUPNWK',
  'PUBHLTH',
  'DISASTER',
  'THREAT',
  'TREAT',
  'CLINTRL',
  'COC',
  'ETREAT',
  'BTG',
  'ERTREAT',
  'POPHLTH',
]);

/** SOP instances a record names, grouped by SOP class where the record says the class. */
export interface RecordInstances {
  studyUid?: string;
  seriesUids: string[];
  byClass: { sopClassUid: string; instances: string[] }[];
  /** Instances whose SOP class the record does not name. */
  unclassified: string[];
  count?: number;
}

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0) : [];
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * Reads the objects of a record whatever shape the recording service used (`sopInstanceUid` or
 * `sopInstanceUids`, `seriesUid`, `series` or `seriesUids`, `sopClassUid`, or `sopClasses` as
 * `{ uid, instances }` entries).
 */
export function recordInstances(record: AuditRecord): RecordInstances {
  const o = (record.objects ?? {}) as Record<string, unknown>;
  const seriesUids = [
    ...new Set([...strings(o.seriesUids), ...strings(o.series), ...strings([o.seriesUid])]),
  ];
  const byClass: RecordInstances['byClass'] = [];
  if (Array.isArray(o.sopClasses)) {
    for (const c of o.sopClasses as unknown[]) {
      const cls = c as { uid?: unknown; instances?: unknown };
      const uid = str(cls?.uid);
      if (uid) byClass.push({ sopClassUid: uid, instances: strings(cls.instances) });
    }
  }
  const listed = [...new Set([...strings(o.sopInstanceUids), ...strings([o.sopInstanceUid])])];
  const cls = str(o.sopClassUid);
  let unclassified: string[] = [];
  if (cls && listed.length) byClass.push({ sopClassUid: cls, instances: listed });
  else unclassified = listed;
  const count = typeof o.count === 'number' && Number.isFinite(o.count) ? o.count : undefined;
  return {
    ...(record.studyUid ? { studyUid: record.studyUid } : {}),
    seriesUids,
    byClass,
    unclassified,
    ...(count !== undefined ? { count } : {}),
  };
}

/** What a query record asked: the recorded query attributes, without the result bookkeeping. */
export function recordQuery(record: AuditRecord): Record<string, unknown> | undefined {
  if (!record.objects) return undefined;
  const { count: _count, studies: _studies, ...asked } = record.objects as Record<string, unknown>;
  return Object.keys(asked).length ? asked : undefined;
}

/** Network access point type: PS3.15 / RFC 3881: 1 machine name, 2 IP address. */
export function networkAccessPoint(source: string): { id: string; type: '1' | '2' } | undefined {
  if (!source || source === 'cli' || source === 'unknown') return undefined;
  const bare = source.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(bare) || (bare.includes(':') && /^[0-9a-fA-F:.]+$/.test(bare));
  return { id: bare, type: isIp ? '2' : '1' };
}
