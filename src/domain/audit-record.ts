/**
 * One audit ledger record: who did what to which objects, when, from where and why. This is the exact value
 * the chain hashes (in canonical JSON), and the single source every export (JSONL, DICOM PS3.15 A.5, FHIR
 * AuditEvent) is derived from.
 */
export interface AuditRecord {
  /** Record format version. */
  v: 1;
  /** Position in the chain: 1, 2, 3, … without gaps. */
  seq: number;
  /** UTC, millisecond precision, ISO 8601 (`2026-11-23T08:49:20.123Z`). */
  ts: string;
  /** Who: the authenticated principal (a user, a registered DICOM AE and its bound account, or the system). */
  actor: AuditActor;
  /** What: the action attempted and how it ended, and the policy that decided. */
  action: AuditAction | string;
  outcome: AuditOutcome;
  /** Identifier of the deciding policy, or 'n/a' where no policy decides (a failed login). */
  policy: string;
  /** Which objects. */
  patientId?: string;
  studyUid?: string;
  objects?: AuditObjects;
  /** Where: network source (client address, AE host), the interface, and the Custos node that recorded it. */
  source: string;
  channel?: string;
  node: string;
  /** Why: purpose of use (e.g. TREAT, HRESCH) and, for break-glass, the reason the user gave. */
  purpose?: string;
  breakGlassReason?: string;
  /** Anything else worth keeping (error codes, reasons, changed fields). */
  detail?: Record<string, unknown>;
}

export interface AuditActor {
  kind: 'user' | 'ae' | 'system';
  id: string;
  name: string;
  role: string;
  /** How the principal authenticated: 'password', 'token:<id>', 'oidc', 'tls-cert', 'cli'. */
  via?: string;
  /** For a DICOM AE: its title (name is the title too; kept explicit for exports). */
  aeTitle?: string;
}

export type AuditOutcome = 'success' | 'denied' | 'failure';

/** The action vocabulary. Services may record others, but these are the ones exports map to standard codes. */
export type AuditAction =
  | 'login'
  | 'logout'
  | 'mfa'
  | 'token-use'
  | 'token-create'
  | 'token-revoke'
  | 'account-create'
  | 'account-change'
  | 'query'
  | 'view-metadata'
  | 'view-pixels'
  | 'store'
  | 'export-clinical'
  | 'export-deidentified'
  | 'print'
  | 'correct-header'
  | 'quarantine'
  | 'release'
  | 'reject'
  | 'request-deletion'
  | 'approve-deletion'
  | 'delete'
  | 'policy-apply'
  | 'config-change'
  | 'break-glass'
  | 'alert'
  | 'read-audit'
  | 'dicom-associate'
  | 'administer';

/** Every AuditAction, once: the compiler refuses this object if the type gains a name it lacks. */
const STANDARD_ACTIONS: Record<AuditAction, true> = {
  login: true,
  logout: true,
  mfa: true,
  'token-use': true,
  'token-create': true,
  'token-revoke': true,
  'account-create': true,
  'account-change': true,
  query: true,
  'view-metadata': true,
  'view-pixels': true,
  store: true,
  'export-clinical': true,
  'export-deidentified': true,
  print: true,
  'correct-header': true,
  quarantine: true,
  release: true,
  reject: true,
  'request-deletion': true,
  'approve-deletion': true,
  delete: true,
  'policy-apply': true,
  'config-change': true,
  'break-glass': true,
  alert: true,
  'read-audit': true,
  'dicom-associate': true,
  administer: true,
};

/**
 * Every action name Custos records: the AuditAction vocabulary and the names services record besides it (the HL7
 * feed, fixity, storage commitment, AE, grant, project and care-team administration, console reads). An audit
 * search for a name outside this list that the ledger does not hold either is refused rather than answered with
 * nothing (a misspelt `view-pixel` is not "no such access"). A test checks every `action: '…'` in src is here.
 */
export const KNOWN_AUDIT_ACTIONS: readonly string[] = [
  ...Object.keys(STANDARD_ACTIONS),
  'hl7-message',
  'hl7-order',
  'hl7-patient-update',
  'hl7-patient-merge',
  'hl7-patient-identifier-change',
  'fixity-check',
  'storage-commit',
  'review-break-glass',
  'view-activity',
  'read-quality-kpis',
  'ae-add',
  'ae-remove',
  'grant-create',
  'project-add',
  'care-team-add',
];

export interface AuditObjects {
  seriesUids?: string[];
  sopInstanceUids?: string[];
  /** For queries: what was asked (attribute → value) and how many results were returned. */
  query?: Record<string, unknown>;
  count?: number;
  [key: string]: unknown;
}

/** The fields of an audit event a service reports (the ledger port's AuditEvent has this shape). */
export interface AuditEventFields {
  principal: {
    kind: AuditActor['kind'];
    id: string;
    name: string;
    role: string;
    source: string;
    via?: string;
    purpose?: string;
    channel?: string;
    channelDetail?: Readonly<Record<string, string>>;
  };
  action: string;
  outcome: AuditOutcome;
  policy: string;
  patientId?: string;
  studyUid?: string;
  objects?: AuditObjects;
  channel?: string;
  purpose?: string;
  breakGlassReason?: string;
  detail?: Record<string, unknown>;
}

/** Build the record (all but its seq) from an event, the time it is recorded and the recording node. */
export function recordOf(e: AuditEventFields, at: Date, node: string): Omit<AuditRecord, 'seq'> {
  const p = e.principal;
  const actor: AuditActor = { kind: p.kind, id: String(p.id), name: p.name, role: p.role };
  if (p.via) actor.via = p.via;
  if (p.kind === 'ae') actor.aeTitle = p.name;
  const r: Omit<AuditRecord, 'seq'> = {
    v: 1,
    ts: at.toISOString(),
    actor,
    action: e.action,
    outcome: e.outcome,
    policy: e.policy,
    source: p.source,
    node,
  };
  if (e.patientId) r.patientId = e.patientId;
  if (e.studyUid) r.studyUid = e.studyUid;
  if (e.objects && Object.keys(e.objects).length) r.objects = e.objects;
  // The event's own channel (a finer one, e.g. 'scim') wins over the one the request came in by.
  const channel = e.channel ?? p.channel;
  if (channel) r.channel = channel;
  const purpose = e.purpose ?? p.purpose;
  if (purpose) r.purpose = purpose;
  if (e.breakGlassReason) r.breakGlassReason = e.breakGlassReason;
  const detail = p.channelDetail ? { ...p.channelDetail, ...e.detail } : e.detail;
  if (detail && Object.keys(detail).length) r.detail = detail;
  return r;
}
