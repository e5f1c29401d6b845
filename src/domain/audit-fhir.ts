import {
  networkAccessPoint,
  outcomeDescription,
  outcomeIndicator,
  PURPOSE_OF_USE_SYSTEM_URI,
  recordInstances,
  recordQuery,
  ROLE_ID,
  standardEvent,
  type CodedValue,
} from './audit-codes.js';
import type { AuditRecord } from './audit-record.js';

/**
 * An audit record as a FHIR R4 AuditEvent, following the IHE Basic Audit Log Patterns (BALP): the DICOM event
 * code as `type` (the same DCM code the PS3.15 message carries), DCM event types and the RESTful interaction as
 * `subtype`, the requesting client and the archive as agents with DCM source / destination roles, the archive as
 * `source.observer`, the patient as an entity of type Person / role Patient, the study by its UID, a query as a
 * base64 `query` entity. `id` is the ledger sequence number, so `AuditEvent/{seq}` reads one record.
 */

export const DCM_SYSTEM = 'http://dicom.nema.org/resources/ontology/DCM';
const RESTFUL_INTERACTION = 'http://hl7.org/fhir/restful-interaction';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const OBJECT_LIFECYCLE = 'http://terminology.hl7.org/CodeSystem/dicom-audit-lifecycle';
const SOURCE_TYPE = 'http://terminology.hl7.org/CodeSystem/security-source-type';
/** Custos codes: our action vocabulary and roles, as their own code systems. */
export const CUSTOS_ACTION_SYSTEM = 'urn:custos:audit-action';
export const CUSTOS_ROLE_SYSTEM = 'urn:custos:role';
/** RFC 3986 URN for DICOM UIDs, the identifier system FHIR ImagingStudy uses. */
export const DICOM_UID_SYSTEM = 'urn:dicom:uid';

export interface Coding {
  system: string;
  code: string;
  display?: string;
}
export interface Identifier {
  system?: string;
  value: string;
}
export interface Reference {
  reference?: string;
  type?: string;
  identifier?: Identifier;
  display?: string;
}

export interface FhirAuditEvent {
  resourceType: 'AuditEvent';
  id: string;
  type: Coding;
  subtype?: Coding[];
  action: 'C' | 'R' | 'U' | 'D' | 'E';
  recorded: string;
  outcome: '0' | '4' | '8';
  outcomeDesc?: string;
  purposeOfEvent?: { coding: Coding[]; text?: string }[];
  agent: {
    type?: { coding: Coding[] };
    role?: { coding: Coding[] }[];
    who?: Reference;
    altId?: string;
    name?: string;
    requestor: boolean;
    network?: { address: string; type: '1' | '2' };
    purposeOfUse?: { coding: Coding[]; text?: string }[];
  }[];
  source: { site?: string; observer: Reference; type: Coding[] };
  entity?: {
    what?: Reference;
    type?: Coding;
    role?: Coding;
    lifecycle?: Coding;
    name?: string;
    description?: string;
    query?: string;
    detail?: { type: string; valueString?: string; valueBase64Binary?: string }[];
  }[];
}

export interface FhirAuditOptions {
  /** AuditEvent.source.site, e.g. the hospital. */
  site?: string;
}

const coding = (c: CodedValue): Coding =>
  c.system === 'DCM'
    ? { system: DCM_SYSTEM, code: c.code, display: c.display }
    : { system: c.system, code: c.code, display: c.display };

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export function toFhirAuditEvent(record: AuditRecord, opts: FhirAuditOptions = {}): FhirAuditEvent {
  const ev = standardEvent(record.action);
  const subtype: Coding[] = [
    ...ev.types.filter((t) => t.system !== CUSTOS_ACTION_SYSTEM).map(coding),
    ...(ev.restful ? [{ system: RESTFUL_INTERACTION, code: ev.restful, display: ev.restful }] : []),
    // The Custos action itself, so nothing is lost in translation and `action` searches can be answered.
    { system: CUSTOS_ACTION_SYSTEM, code: record.action, display: record.action },
  ];
  const nap = networkAccessPoint(record.source);
  const actor = record.actor;
  const purpose = record.purpose
    ? [{ coding: [{ system: PURPOSE_OF_USE_SYSTEM_URI, code: record.purpose }] }]
    : undefined;
  const agent: FhirAuditEvent['agent'] = [
    {
      // BALP: the client is the Source (110153), the server the Destination (110152).
      type: { coding: [coding(ROLE_ID.source)] },
      role: [{ coding: [{ system: CUSTOS_ROLE_SYSTEM, code: actor.role, display: actor.role }] }],
      who: {
        ...(actor.kind === 'user' ? { type: 'Practitioner' } : actor.kind === 'ae' ? { type: 'Device' } : {}),
        identifier: { value: actor.kind === 'ae' ? (actor.aeTitle ?? actor.name) : actor.name },
        display: actor.name,
      },
      ...(actor.id !== actor.name ? { altId: actor.id } : {}),
      name: actor.name,
      requestor: true,
      ...(nap ? { network: { address: nap.id, type: nap.type } } : {}),
      ...(purpose ? { purposeOfUse: purpose } : {}),
    },
    {
      type: { coding: [coding(ROLE_ID.destination)] },
      who: { type: 'Device', identifier: { value: record.node }, display: `custos@${record.node}` },
      requestor: false,
      network: { address: record.node, type: networkAccessPoint(record.node)?.type ?? '1' },
    },
  ];
  const entity: NonNullable<FhirAuditEvent['entity']> = [];
  if (record.patientId) {
    entity.push({
      what: { type: 'Patient', identifier: { value: record.patientId } },
      type: { system: ENTITY_TYPE, code: '1', display: 'Person' },
      role: { system: OBJECT_ROLE, code: '1', display: 'Patient' },
    });
  }
  const inst = recordInstances(record);
  if (inst.studyUid) {
    const detail: { type: string; valueString: string }[] = [
      ...inst.seriesUids.map((s) => ({ type: 'SeriesInstanceUID', valueString: s })),
      ...inst.byClass.flatMap((c) =>
        c.instances.map((i) => ({ type: 'SOPInstanceUID', valueString: `${c.sopClassUid}|${i}` })),
      ),
      ...inst.unclassified.map((i) => ({ type: 'SOPInstanceUID', valueString: i })),
      ...(record.breakGlassReason
        ? [{ type: 'BreakGlassReason', valueString: record.breakGlassReason }]
        : []),
    ];
    entity.push({
      what: {
        type: 'ImagingStudy',
        identifier: { system: DICOM_UID_SYSTEM, value: `urn:oid:${inst.studyUid}` },
      },
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '3', display: 'Report' },
      ...(ev.action === 'C'
        ? { lifecycle: { system: OBJECT_LIFECYCLE, code: '1', display: 'Origination / Creation' } }
        : ev.action === 'D'
          ? { lifecycle: { system: OBJECT_LIFECYCLE, code: '14', display: 'Logical deletion' } }
          : {}),
      ...(detail.length ? { detail } : {}),
    });
  }
  if (ev.eventId.code === '110112') {
    const asked = recordQuery(record) ?? {};
    entity.push({
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '24', display: 'Query' },
      query: b64(JSON.stringify(asked)),
      ...(inst.count !== undefined
        ? { detail: [{ type: 'NumberOfMatches', valueString: String(inst.count) }] }
        : {}),
    });
  }
  if (ev.eventId.code === '110101') {
    entity.push({
      what: {
        display: 'Security Audit Log',
        identifier: { value: `urn:custos:audit-ledger:${record.node}` },
      },
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '13', display: 'Security Resource' },
      ...(record.objects ? { query: b64(JSON.stringify(record.objects)) } : {}),
    });
  }
  if (ev.eventId.code === '110113') {
    const user = (record.objects as Record<string, unknown> | undefined)?.user;
    if (typeof user === 'string')
      entity.push({
        what: { identifier: { value: user } },
        type: { system: ENTITY_TYPE, code: '1', display: 'Person' },
        role: { system: OBJECT_ROLE, code: '11', display: 'Security User Entity' },
      });
    else if (record.detail)
      entity.push({
        what: { identifier: { value: `urn:custos:action:${record.action}` } },
        type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
        role: { system: OBJECT_ROLE, code: '13', display: 'Security Resource' },
        description: JSON.stringify(record.detail),
      });
  }
  const desc = outcomeDescription(record);
  return {
    resourceType: 'AuditEvent',
    id: String(record.seq),
    type: coding(ev.eventId),
    subtype,
    action: ev.action,
    recorded: record.ts,
    outcome: outcomeIndicator(record.outcome),
    ...(desc ? { outcomeDesc: desc } : {}),
    ...(purpose ? { purposeOfEvent: purpose } : {}),
    agent,
    source: {
      ...(opts.site ? { site: opts.site } : {}),
      observer: { type: 'Device', identifier: { value: record.node }, display: record.node },
      type: [{ system: SOURCE_TYPE, code: '4', display: 'Application Server' }],
    },
    ...(entity.length ? { entity } : {}),
  };
}

export interface SearchsetBundle {
  resourceType: 'Bundle';
  type: 'searchset';
  timestamp?: string;
  total?: number;
  link: { relation: 'self' | 'next' | 'previous' | 'first'; url: string }[];
  entry: { fullUrl: string; resource: FhirAuditEvent; search: { mode: 'match' } }[];
}

/** A FHIR searchset Bundle of AuditEvents; `baseUrl` is the FHIR base (…/fhir/r4). */
export function auditSearchset(input: {
  events: FhirAuditEvent[];
  baseUrl: string;
  selfUrl: string;
  nextUrl?: string;
  total?: number;
  timestamp?: string;
}): SearchsetBundle {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(input.timestamp ? { timestamp: input.timestamp } : {}),
    ...(input.total !== undefined ? { total: input.total } : {}),
    link: [
      { relation: 'self', url: input.selfUrl },
      ...(input.nextUrl ? [{ relation: 'next' as const, url: input.nextUrl }] : []),
    ],
    entry: input.events.map((e) => ({
      fullUrl: `${input.baseUrl}/AuditEvent/${e.id}`,
      resource: e,
      search: { mode: 'match' as const },
    })),
  };
}
