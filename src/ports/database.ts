import type { ColumnType, Generated, GeneratedAlways, Kysely, RawBuilder } from 'kysely';

/**
 * The index and ledger schema, shared by every SQL adapter. Services build queries with Kysely against
 * these types; dialect differences (DDL details, pattern collation) live in src/adapters/sql.
 *
 * Text dates follow DICOM (DA = YYYYMMDD, TM = HHMMSS.FFFFFF) so ranges compare as strings.
 */
export interface PatientsTable {
  pk: Generated<number>;
  patient_id: string;
  issuer: string;
  patient_name: string;
  /** Upper-cased PatientName for case-insensitive matching (PS3.18 QIDO, issue 2). */
  patient_name_norm: string;
  /** The alphabetic, ideographic and phonetic groups of patient_name_norm, made by the database (migration 0026). */
  patient_name_alpha: GeneratedAlways<string>;
  patient_name_ideo: GeneratedAlways<string>;
  patient_name_phon: GeneratedAlways<string>;
  birth_date: string;
  sex: string;
  created_at: string;
}

export interface StudiesTable {
  study_uid: string;
  patient_pk: number;
  study_date: string;
  study_time: string;
  accession_number: string;
  referring_physician_name: string;
  referring_physician_norm: string;
  /** The component groups of referring_physician_norm, as patients' (migration 0026). */
  referring_physician_alpha: GeneratedAlways<string>;
  referring_physician_ideo: GeneratedAlways<string>;
  referring_physician_phon: GeneratedAlways<string>;
  study_description: string;
  study_id: string;
  /** ModalitiesInStudy as stored in DICOM: values joined by backslash. */
  modalities: string;
  /** Study-level attributes (DICOM JSON) captured from the first instance, for QIDO responses and includefield. */
  attrs_json: string;
  num_series: number;
  num_instances: number;
  total_bytes: number;
  // governance columns filled by later issues
  owner: string | null;
  department: string | null;
  classification: string;
  retention_until: string | null;
  status: string;
  created_at: string;
  updated_at: string;
  /** Code values of Referring Physician Identification Sequence (0008,0096), joined by backslash. */
  referring_physician_ids: Generated<string>;
}

export interface StudyKeysTable {
  study_uid: string;
  wrapped_key: Buffer;
  kek_id: string;
  created_at: string;
}

export interface SeriesTable {
  series_uid: string;
  study_uid: string;
  modality: string;
  series_number: number | null;
  series_description: string;
  body_part: string;
  pps_start_date: string;
  pps_start_time: string;
  attrs_json: string;
  num_instances: number;
  created_at: string;
}

export interface InstancesTable {
  sop_instance_uid: string;
  series_uid: string;
  study_uid: string;
  sop_class_uid: string;
  instance_number: number | null;
  transfer_syntax_uid: string;
  blob_id: string;
  size: number;
  sha256: string;
  rows: number | null;
  columns: number | null;
  number_of_frames: number | null;
  /** Header as DICOM JSON with BulkDataURI placeholders `bulk:<tagpath>`. */
  metadata_json: string;
  /** Where pixel data and other bulk values sit in the stored object (offsets, fragments, frames). */
  bulk_json: string;
  status: string;
  created_at: string;
  /** 'unverified' | 'ok' | 'corrupt', set by the fixity job. */
  fixity_status: Generated<string>;
  fixity_checked_at: string | null;
}

export interface JobStateTable {
  name: string;
  cursor: string;
  pass_started_at: string | null;
  last_pass_completed_at: string | null;
  lease_owner: string | null;
  lease_until: string | null;
  stats_json: string;
}

export interface UsersTable {
  pk: Generated<number>;
  username: string;
  display_name: string;
  role: string;
  password_hash: string | null;
  active: number;
  created_at: string;
  /** Access-control facts (migration 0004-policy). */
  department: string | null;
  /** DICOM PN ('Family^Given'), matched to ReferringPhysicianName. */
  physician_name: string | null;
  physician_id: string | null;
  /** Managed by the identity provider over SCIM (migration 0009-scim). */
  external_id: string | null;
  email: string | null;
  given_name: string | null;
  family_name: string | null;
  updated_at: string | null;
  /** Set by SCIM DELETE: the account is gone for SCIM and for sign-in; its row stays for the audit trail. */
  deleted_at: string | null;
  /** Migration 0010-accounts: a one-time password was set; every session is confined until it is changed. */
  must_change_password: Generated<number>;
  /** Failed logins counted since failure_window_start (lockout). */
  failed_logins: Generated<number>;
  failure_window_start: string | null;
  locked_until: string | null;
  /** TOTP secret, AES-256-GCM under a key derived from the KEK (docs/accounts.md); null until confirmed. */
  totp_secret: string | null;
  /** A secret issued by enrolment and not yet confirmed with a code. */
  totp_pending: string | null;
  totp_enrolled_at: string | null;
  /** The last time step whose code was accepted: a code is never accepted twice. */
  totp_last_step: number | null;
}

/**
 * Failed sign-ins under names that are no usable account (migration 0015-sign-in-name-failures), counted like
 * UsersTable's so that lockout does not tell which names are accounts.
 */
export interface SignInNameFailuresTable {
  /** SHA-256 (hex) of the name, case-folded as account names are. */
  name_hash: string;
  failed_logins: Generated<number>;
  failure_window_start: string | null;
  locked_until: string | null;
}

/** Console sessions (migration 0010-accounts): the cookie and the login token are two keys to one session. */
export interface SessionsTable {
  pk: Generated<number>;
  /** SHA-256 of the custos_session cookie value. */
  id_hash: string;
  /** SHA-256 of the bearer token returned by the same login. */
  token_hash: string;
  user_pk: number;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  idle_seconds: number;
  revoked_at: string | null;
  mfa_passed: Generated<number>;
  source: string;
}

export interface ScimGroupsTable {
  id: string;
  display_name: string;
  external_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface ScimGroupMembersTable {
  group_id: string;
  user_pk: number;
}

/** Versioned policy sets (never updated or deleted); the highest version is active. */
export interface PolicyVersionsTable {
  version: number;
  text: string;
  sha256: string;
  applied_by: string;
  applied_at: string;
  comment: string;
}

/** Explicit, expiring grants of one study to one account (needed for restricted studies and students). */
export interface StudyGrantsTable {
  pk: Generated<number>;
  user_pk: number;
  study_uid: string;
  granted_by: string;
  granted_at: string;
  expires_at: string;
  reason: string;
}

/** Order / care-team relationships (filled by HL7 orders). */
export interface CareTeamTable {
  study_uid: string;
  user_pk: number;
  relationship: string;
  source: string;
  added_at: string;
}

export interface ProjectMembersTable {
  project: string;
  user_pk: number;
  added_at: string;
}

export interface StudyProjectsTable {
  project: string;
  study_uid: string;
  added_at: string;
}

export interface ApiTokensTable {
  pk: Generated<number>;
  user_pk: number;
  /** SHA-256 of the token; the token itself is shown once and never stored. */
  token_hash: string;
  name: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  /** Migration 0010-accounts; updated at most once a minute. */
  last_used_at: string | null;
}

/** One hash-chained ledger record; the search columns are copies of fields of `record`. */
export interface AuditLedgerTable {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  outcome: string;
  patient_id: string;
  study_uid: string;
  /** The record's canonical JSON (RFC 8785), exactly the bytes hashed. */
  record: string;
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpointsTable {
  seq: number;
  hash: string;
  ts: string;
  node: string;
  key_id: string;
  signature: string;
}

/** An order received over HL7 (ORM^O01, OMI^O23): the "valid order" a study is checked against. */
export interface OrdersTable {
  pk: Generated<number>;
  order_key: string;
  placer_order_number: string;
  filler_order_number: string;
  accession_number: string;
  patient_pk: number;
  ordering_physician_id: string;
  ordering_physician_name: string;
  referring_physician_id: string;
  referring_physician_name: string;
  department: string;
  procedure_code: string;
  procedure_text: string;
  study_instance_uid: string;
  modality: string;
  order_control: string;
  status: string;
  sender: string;
  message_control_id: string;
  received_at: string;
  updated_at: string;
}

/** A physician's relationship to a patient established by an order; access policies scope by it. */
export interface CareRelationshipsTable {
  pk: Generated<number>;
  patient_pk: number;
  physician_id: string;
  physician_name: string;
  relationship: string;
  order_pk: number;
  created_at: string;
}

/** One patient merge or identifier change applied from an HL7 feed (A40, A34, A47). */
export interface PatientMergesTable {
  pk: Generated<number>;
  event: string;
  prior_patient_id: string;
  prior_issuer: string;
  prior_patient_pk: number | null;
  surviving_patient_pk: number;
  studies_moved: number;
  sender: string;
  message_control_id: string;
  merged_at: string;
}

/**
 * An object that failed validation and was kept rather than archived (docs/validation.md): its bytes are in the
 * blob store, encrypted under the study's key like any instance; nothing here is visible to query or retrieve.
 */
export interface QuarantineTable {
  id: string;
  sop_instance_uid: string;
  sop_class_uid: string;
  study_uid: string;
  series_uid: string;
  patient_id: string;
  transfer_syntax_uid: string;
  blob_id: string;
  size: number;
  sha256: string;
  /** Header as stored (DICOM JSON with bulk placeholders), before any correction. */
  metadata_json: string;
  bulk_json: string;
  /** Defects found at ingest, each with its disposition. */
  defects_json: string;
  /** Corrections made by the data steward: { 'GGGGEEEE': string[] }. */
  corrections_json: string;
  /** 'quarantined' | 'released' | 'rejected'. */
  status: string;
  level: string;
  channel: string;
  sender: string;
  reason: string | null;
  created_at: string;
  updated_at: string;
  /** 'unverified' | 'ok' | 'corrupt', set by the fixity job (migration 0012-quality). */
  fixity_status: Generated<string>;
  fixity_checked_at: string | null;
}

/** Header corrections served over the stored bytes of an archived instance (the correction overlay). */
export interface HeaderCorrectionsTable {
  sop_instance_uid: string;
  study_uid: string;
  /** { 'GGGGEEEE': string[] }, applied to the stored header on retrieve. */
  corrections_json: string;
  quarantine_id: string | null;
  created_at: string;
}

/** A DICOM application entity allowed to associate (issue 3). */
export interface ApplicationEntitiesTable {
  pk: Generated<number>;
  title: string;
  host: string;
  port: number;
  /** SHA-256 of the TLS client certificate (DER, lower-case hex) the AE must present, if any. */
  cert_sha256: string | null;
  /** The account whose role the AE acts with; null = no role (everything denied). */
  user_pk: number | null;
  created_at: string;
}

/** Break-glass windows: a study opened outside the account's scope, with the reason, until expires_at. */
export interface BreakGlassTable {
  id: string;
  user_pk: number;
  username: string;
  role: string;
  study_uid: string;
  patient_id: string;
  reason: string;
  opened_at: string;
  expires_at: string;
  reviewed_by: string | null;
  reviewed_at: string | null;
  review_note: string | null;
}

/** The archive an index belongs to, and a check of its key-encryption key (src/app/archive-identity.ts). */
export interface ArchiveIdentityTable {
  archive_id: string;
  /** HMAC-SHA-256 of archive_id under a secret derived from the key-encryption key, hex. */
  key_check: string;
  created_at: string;
}

/** A merge loop an alert has reported (src/services/merge-loops.ts): reported once while it stays as it is. */
export interface MergeLoopAlertsTable {
  /** The loop's patient pks, then its patient_merges pks, each sorted: `patients 3,4,6; merges 2,3,9`. */
  loop_key: string;
  alerted_at: string;
}

/** A feed message applied (PatientFeedService): a resend of it (same sender and MSH-10) is not applied again. */
export interface Hl7AppliedMessagesTable {
  /** 'APP^FACILITY' (MSH-3^MSH-4). */
  sender: string;
  /** MSH-10. */
  control_id: string;
  message_type: string;
  /** SHA-256 (hex) of the message's segments after MSH, with its MSH-9. */
  digest: string;
  applied_at: string;
}

/**
 * A Storage Commitment transaction (PS3.4 J.3.2): its Transaction UID, who asked and for what (SHA-256 of the
 * sorted references), so that a UID used again for another request is told apart from a retry of the same one.
 */
export interface StorageCommitmentsTable {
  transaction_uid: string;
  calling_ae: string;
  request_sha256: string;
  reference_count: number;
  requested_at: string;
}

export interface DatabaseSchema {
  archive_identity: ArchiveIdentityTable;
  quarantine: QuarantineTable;
  header_corrections: HeaderCorrectionsTable;
  patients: PatientsTable;
  studies: StudiesTable;
  study_keys: StudyKeysTable;
  series: SeriesTable;
  instances: InstancesTable;
  users: UsersTable;
  sign_in_name_failures: SignInNameFailuresTable;
  api_tokens: ApiTokensTable;
  sessions: SessionsTable;
  audit_ledger: AuditLedgerTable;
  audit_checkpoints: AuditCheckpointsTable;
  job_state: JobStateTable;
  policy_versions: PolicyVersionsTable;
  study_grants: StudyGrantsTable;
  care_team: CareTeamTable;
  project_members: ProjectMembersTable;
  study_projects: StudyProjectsTable;
  scim_groups: ScimGroupsTable;
  scim_group_members: ScimGroupMembersTable;
  orders: OrdersTable;
  care_relationships: CareRelationshipsTable;
  patient_merges: PatientMergesTable;
  application_entities: ApplicationEntitiesTable;
  break_glass: BreakGlassTable;
  merge_loop_alerts: MergeLoopAlertsTable;
  hl7_applied_messages: Hl7AppliedMessagesTable;
  storage_commitments: StorageCommitmentsTable;
}

export type SqlDialectName = 'sqlite' | 'postgres';

/** The index database as services see it: Kysely plus the few facts that differ by dialect. */
export interface IndexDb {
  readonly db: Kysely<DatabaseSchema>;
  readonly dialect: SqlDialectName;
  /**
   * A text column compared by its bytes, for ORDER BY: SQLite's default (BINARY), PostgreSQL's "C" collation
   * rather than the database's locale, so that a sorted list is in the same order on both.
   */
  bytewise(column: string): RawBuilder<string>;
  close(): Promise<void>;
  /** Whether the database answers now (for /api/health; a PostgreSQL server may be restarting). */
  answers(): Promise<boolean>;
}

export type Timestamp = ColumnType<string, string, string>;
