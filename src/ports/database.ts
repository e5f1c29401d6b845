import type { ColumnType, Generated, Kysely } from 'kysely';

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
}

export interface UsersTable {
  pk: Generated<number>;
  username: string;
  display_name: string;
  role: string;
  password_hash: string | null;
  active: number;
  created_at: string;
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
}

export interface AuditLogTable {
  seq: Generated<number>;
  ts: string;
  actor: string;
  actor_role: string;
  action: string;
  outcome: string;
  policy: string;
  patient_id: string;
  study_uid: string;
  objects_json: string;
  source: string;
  detail_json: string;
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

export interface DatabaseSchema {
  patients: PatientsTable;
  studies: StudiesTable;
  study_keys: StudyKeysTable;
  series: SeriesTable;
  instances: InstancesTable;
  users: UsersTable;
  api_tokens: ApiTokensTable;
  audit_log: AuditLogTable;
  application_entities: ApplicationEntitiesTable;
}

export type SqlDialectName = 'sqlite' | 'postgres';

/** The index database as services see it: Kysely plus the few facts that differ by dialect. */
export interface IndexDb {
  readonly db: Kysely<DatabaseSchema>;
  readonly dialect: SqlDialectName;
  close(): Promise<void>;
}

export type Timestamp = ColumnType<string, string, string>;
