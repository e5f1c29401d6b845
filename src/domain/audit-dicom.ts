import {
  networkAccessPoint,
  outcomeDescription,
  outcomeIndicator,
  PURPOSE_OF_USE_SYSTEM_OID,
  recordInstances,
  recordQuery,
  ROLE_ID,
  standardEvent,
  type CodedValue,
} from './audit-codes.js';
import type { AuditRecord } from './audit-record.js';

/**
 * An audit record as a DICOM audit message: PS3.15 Annex A.5 (the DICOM audit message schema, an extension of
 * RFC 3881), one `<AuditMessage>` per record, on a single line so that a file of them is one message a line.
 */
export interface DicomAuditOptions {
  /** AuditSourceID; defaults to the recording node. */
  auditSourceId?: string;
  /** AuditEnterpriseSiteID, e.g. the hospital. */
  enterpriseSiteId?: string;
  /** How the archive names itself as an active participant (its AE title or application name). */
  applicationId?: string;
}

/** Study Root Query/Retrieve Information Model - FIND (PS3.4): the SOP class of every Custos study query. */
export const STUDY_ROOT_FIND = '1.2.840.10008.5.1.4.1.2.2.1';

// XML 1.0 §2.2: these code points cannot appear in a document at all, even escaped.
const NOT_XML_CHAR =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Escape for an attribute value or text; tab, CR and LF as references so the message stays on one line. */
export function xmlEscape(s: string): string {
  return s
    .replace(NOT_XML_CHAR, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\t/g, '&#9;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;');
}

type Attrs = Record<string, string | number | boolean | undefined>;

const attrs = (a: Attrs): string =>
  Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${xmlEscape(String(v))}"`)
    .join('');

const el = (name: string, a: Attrs, children: string[] = []): string =>
  children.length ? `<${name}${attrs(a)}>${children.join('')}</${name}>` : `<${name}${attrs(a)}/>`;

const text = (name: string, value: string): string => `<${name}>${xmlEscape(value)}</${name}>`;

/** PS3.15 A.5.1 CodedValueType: csd-code, codeSystemName, originalText. */
const coded = (name: string, c: CodedValue): string =>
  el(name, { 'csd-code': c.code, codeSystemName: c.system, originalText: c.display });

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

const detail = (type: string, value: string) => el('ParticipantObjectDetail', { type, value: b64(value) });

const PATIENT_NUMBER: CodedValue = { code: '2', system: 'RFC-3881', display: 'Patient Number' };
const STUDY_INSTANCE_UID: CodedValue = { code: '110180', system: 'DCM', display: 'Study Instance UID' };
const SOP_CLASS_UID: CodedValue = { code: '110181', system: 'DCM', display: 'SOP Class UID' };
const USER_IDENTIFIER: CodedValue = { code: '11', system: 'RFC-3881', display: 'User Identifier' };
const URI: CodedValue = { code: '12', system: 'RFC-3881', display: 'URI' };

function activeParticipants(record: AuditRecord, opts: DicomAuditOptions): string[] {
  const ev = standardEvent(record.action);
  const nap = networkAccessPoint(record.source);
  const actor = record.actor;
  const actorRoles: CodedValue[] = [];
  // PS3.15 A.5.3.7 / A.5.3.10: the requesting side of a transfer or query is the Source, the archive the
  // Destination; for an export the archive is the Source and the medium or recipient the Destination.
  if (ev.eventId.code === '110104' || ev.eventId.code === '110112') actorRoles.push(ROLE_ID.source);
  const requestor = el(
    'ActiveParticipant',
    {
      UserID: actor.kind === 'ae' ? (actor.aeTitle ?? actor.name) : actor.name,
      AlternativeUserID: actor.id !== actor.name ? actor.id : undefined,
      UserName: actor.kind === 'user' ? actor.name : undefined,
      UserIsRequestor: true,
      NetworkAccessPointID: nap?.id,
      NetworkAccessPointTypeCode: nap?.type,
    },
    [
      ...actorRoles.map((r) => coded('RoleIDCode', r)),
      // The Custos role is an application-defined role code: PS3.15 allows any coding scheme here.
      el('RoleIDCode', {
        'csd-code': actor.role,
        codeSystemName: 'urn:custos:role',
        originalText: actor.role,
      }),
    ],
  );
  const archiveRoles: CodedValue[] = [];
  if (ev.eventId.code === '110104' || ev.eventId.code === '110112') archiveRoles.push(ROLE_ID.destination);
  if (ev.eventId.code === '110106') archiveRoles.push(ROLE_ID.source);
  const archive = el(
    'ActiveParticipant',
    {
      UserID: opts.applicationId ?? 'CUSTOS',
      UserIsRequestor: false,
      NetworkAccessPointID: record.node,
      NetworkAccessPointTypeCode: networkAccessPoint(record.node)?.type ?? '1',
    },
    archiveRoles.map((r) => coded('RoleIDCode', r)),
  );
  const out = [requestor, archive];
  if (ev.eventId.code === '110106') {
    const to =
      record.detail?.destination ?? (record.objects as Record<string, unknown> | undefined)?.destination;
    out.push(
      el(
        'ActiveParticipant',
        { UserID: typeof to === 'string' && to ? to : record.action, UserIsRequestor: false },
        [coded('RoleIDCode', ROLE_ID.destinationMedia)],
      ),
    );
  }
  return out;
}

function participantObjects(record: AuditRecord): string[] {
  const ev = standardEvent(record.action);
  const out: string[] = [];
  if (record.patientId) {
    out.push(
      el(
        'ParticipantObjectIdentification',
        {
          ParticipantObjectID: record.patientId,
          ParticipantObjectTypeCode: 1,
          ParticipantObjectTypeCodeRole: 1,
        },
        [coded('ParticipantObjectIDTypeCode', PATIENT_NUMBER)],
      ),
    );
  }
  const inst = recordInstances(record);
  if (inst.studyUid) {
    const children = [coded('ParticipantObjectIDTypeCode', STUDY_INSTANCE_UID)];
    for (const s of inst.seriesUids) children.push(detail('SeriesInstanceUID', s));
    for (const s of inst.unclassified) children.push(detail('SOPInstanceUID', s));
    if (record.breakGlassReason) children.push(detail('BreakGlassReason', record.breakGlassReason));
    for (const c of inst.byClass) {
      children.push(
        el(
          'SOPClass',
          { UID: c.sopClassUid, NumberOfInstances: c.instances.length },
          c.instances.map((i) => el('Instance', { UID: i })),
        ),
      );
    }
    out.push(
      el(
        'ParticipantObjectIdentification',
        {
          ParticipantObjectID: inst.studyUid,
          ParticipantObjectTypeCode: 2,
          // RFC 3881 role 3 "Report": the role PS3.15 gives a study in every instance message.
          ParticipantObjectTypeCodeRole: 3,
          ParticipantObjectDataLifeCycle:
            ev.action === 'C' ? 1 : ev.action === 'D' ? 14 : ev.action === 'U' ? 3 : undefined,
        },
        children,
      ),
    );
  }
  if (ev.eventId.code === '110112') {
    const asked = recordQuery(record) ?? {};
    const level = typeof asked.level === 'string' ? asked.level : undefined;
    out.push(
      el(
        'ParticipantObjectIdentification',
        {
          ParticipantObjectID: STUDY_ROOT_FIND,
          ParticipantObjectTypeCode: 2,
          ParticipantObjectTypeCodeRole: 24,
        },
        [
          coded('ParticipantObjectIDTypeCode', SOP_CLASS_UID),
          // A.5.3.10: the query itself, base64; Custos records it as JSON (attribute → value).
          text('ParticipantObjectQuery', b64(JSON.stringify(asked))),
          detail('QueryEncoding', 'application/json'),
          ...(level ? [detail('QueryLevel', level)] : []),
          ...(inst.count !== undefined ? [detail('NumberOfMatches', String(inst.count))] : []),
          ...(record.channel ? [detail('Channel', record.channel)] : []),
        ],
      ),
    );
  }
  if (ev.eventId.code === '110101') {
    // A.5.3.2: the audit log is a security resource (role 13) identified by URI.
    out.push(
      el(
        'ParticipantObjectIdentification',
        {
          ParticipantObjectID: `urn:custos:audit-ledger:${record.node}`,
          ParticipantObjectTypeCode: 2,
          ParticipantObjectTypeCodeRole: 13,
        },
        [
          coded('ParticipantObjectIDTypeCode', URI),
          text('ParticipantObjectName', 'Security Audit Log'),
          ...(record.objects ? [detail('Query', JSON.stringify(record.objects))] : []),
        ],
      ),
    );
  }
  if (ev.eventId.code === '110113') {
    // A.5.3.11: the alert subject; for account changes the user account, else the Custos action.
    const objects = (record.objects ?? {}) as Record<string, unknown>;
    const user = typeof objects.user === 'string' ? objects.user : undefined;
    out.push(
      user
        ? el(
            'ParticipantObjectIdentification',
            {
              ParticipantObjectID: user,
              ParticipantObjectTypeCode: 1,
              ParticipantObjectTypeCodeRole: 11,
            },
            [coded('ParticipantObjectIDTypeCode', USER_IDENTIFIER)],
          )
        : el(
            'ParticipantObjectIdentification',
            {
              ParticipantObjectID: `urn:custos:action:${record.action}`,
              ParticipantObjectTypeCode: 2,
              ParticipantObjectTypeCodeRole: 13,
            },
            [
              coded('ParticipantObjectIDTypeCode', URI),
              ...(record.detail ? [detail('Alert Description', JSON.stringify(record.detail))] : []),
            ],
          ),
    );
  }
  return out;
}

/** One record as a PS3.15 A.5 `<AuditMessage>` (with the XML declaration). */
export function toDicomAuditXml(record: AuditRecord, opts: DicomAuditOptions = {}): string {
  const ev = standardEvent(record.action);
  const description = outcomeDescription(record);
  const eventIdentification = el(
    'EventIdentification',
    {
      EventActionCode: ev.action,
      EventDateTime: record.ts,
      EventOutcomeIndicator: outcomeIndicator(record.outcome),
    },
    [
      coded('EventID', ev.eventId),
      ...ev.types.map((t) => coded('EventTypeCode', t)),
      ...(description ? [text('EventOutcomeDescription', description)] : []),
      ...(record.purpose
        ? [
            el('PurposeOfUse', {
              'csd-code': record.purpose,
              codeSystemName: PURPOSE_OF_USE_SYSTEM_OID,
              originalText: record.purpose,
            }),
          ]
        : []),
    ],
  );
  const source = el(
    'AuditSourceIdentification',
    { AuditEnterpriseSiteID: opts.enterpriseSiteId, AuditSourceID: opts.auditSourceId ?? record.node },
    // RFC 3881 audit source type 4: application server process.
    [
      el('AuditSourceTypeCode', {
        'csd-code': '4',
        codeSystemName: 'DCM',
        originalText: 'Application Server',
      }),
    ],
  );
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    el('AuditMessage', {}, [
      eventIdentification,
      ...activeParticipants(record, opts),
      source,
      ...participantObjects(record),
    ])
  );
}
