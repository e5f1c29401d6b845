import {
  type CreateTableBuilder,
  type Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  type RawBuilder,
  sql,
} from 'kysely';
import type { SqlDialectName } from '../../ports/database.js';
import { CustosError } from '../../domain/errors.js';
import { normalisePersonName } from '../../domain/index-record.js';

/**
 * Schema migrations, in code so a packaged build carries them. Each migration is written once for both
 * dialects; where the DDL differs the dialect is named here and nowhere else.
 */
function migrations(dialect: SqlDialectName): Record<string, Migration> {
  // Wildcard matching uses LIKE on both dialects, case-sensitively (SQLite runs with case_sensitive_like on);
  // case-insensitive PatientName matching compares upper-cased values. PostgreSQL can use a btree index for
  // LIKE 'X%' only under the C collation; SQLite's binary collation already allows it.
  const patternCollation = dialect === 'postgres' ? sql`collate "C"` : sql``;
  const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
  const withAutoPk = <N extends string>(tb: CreateTableBuilder<N, never>, name: string) =>
    dialect === 'postgres'
      ? tb.addColumn(name, 'serial', (c) => c.primaryKey())
      : tb.addColumn(name, 'integer', (c) => c.primaryKey().autoIncrement());

  return {
    '0001-index': {
      async up(db: Kysely<unknown>) {
        await withAutoPk(db.schema.createTable('patients'), 'pk')
          .addColumn('patient_id', 'text', (c) => c.notNull())
          .addColumn('issuer', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('patient_name', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('patient_name_norm', sql`text ${patternCollation}`, (c) => c.notNull().defaultTo(''))
          .addColumn('birth_date', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('sex', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addUniqueConstraint('patients_id_issuer', ['patient_id', 'issuer'])
          .execute();
        await db.schema
          .createIndex('patients_name_norm')
          .on('patients')
          .column('patient_name_norm')
          .execute();

        await db.schema
          .createTable('studies')
          .addColumn('study_uid', 'text', (c) => c.primaryKey())
          .addColumn('patient_pk', 'integer', (c) => c.notNull().references('patients.pk'))
          .addColumn('study_date', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('study_time', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('accession_number', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('referring_physician_name', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('referring_physician_norm', sql`text ${patternCollation}`, (c) =>
            c.notNull().defaultTo(''),
          )
          .addColumn('study_description', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('study_id', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('modalities', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('attrs_json', 'text', (c) => c.notNull())
          .addColumn('num_series', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('num_instances', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('total_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('owner', 'text')
          .addColumn('department', 'text')
          .addColumn('classification', 'text', (c) => c.notNull().defaultTo('normal'))
          .addColumn('retention_until', 'text')
          .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('studies_patient').on('studies').column('patient_pk').execute();
        await db.schema
          .createIndex('studies_date')
          .on('studies')
          .columns(['study_date', 'study_time'])
          .execute();
        await db.schema.createIndex('studies_accession').on('studies').column('accession_number').execute();
        await db.schema
          .createIndex('studies_refphys')
          .on('studies')
          .column('referring_physician_norm')
          .execute();

        await db.schema
          .createTable('study_keys')
          .addColumn('study_uid', 'text', (c) => c.primaryKey())
          .addColumn('wrapped_key', sql.raw(bytes), (c) => c.notNull())
          .addColumn('kek_id', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('series')
          .addColumn('series_uid', 'text', (c) => c.primaryKey())
          .addColumn('study_uid', 'text', (c) => c.notNull().references('studies.study_uid'))
          .addColumn('modality', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('series_number', 'integer')
          .addColumn('series_description', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('body_part', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('pps_start_date', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('pps_start_time', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('attrs_json', 'text', (c) => c.notNull())
          .addColumn('num_instances', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('series_study').on('series').column('study_uid').execute();
        await db.schema
          .createIndex('series_modality_study')
          .on('series')
          .columns(['modality', 'study_uid'])
          .execute();

        await db.schema
          .createTable('instances')
          .addColumn('sop_instance_uid', 'text', (c) => c.primaryKey())
          .addColumn('series_uid', 'text', (c) => c.notNull().references('series.series_uid'))
          .addColumn('study_uid', 'text', (c) => c.notNull())
          .addColumn('sop_class_uid', 'text', (c) => c.notNull())
          .addColumn('instance_number', 'integer')
          .addColumn('transfer_syntax_uid', 'text', (c) => c.notNull())
          .addColumn('blob_id', 'text', (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('rows', 'integer')
          .addColumn('columns', 'integer')
          .addColumn('number_of_frames', 'integer')
          .addColumn('metadata_json', 'text', (c) => c.notNull())
          .addColumn('bulk_json', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('instances_series')
          .on('instances')
          .columns(['series_uid', 'instance_number'])
          .execute();
        await db.schema.createIndex('instances_study').on('instances').column('study_uid').execute();
        await db.schema.createIndex('instances_sop_class').on('instances').column('sop_class_uid').execute();

        await withAutoPk(db.schema.createTable('users'), 'pk')
          .addColumn('username', 'text', (c) => c.notNull().unique())
          .addColumn('display_name', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('password_hash', 'text')
          .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();

        await withAutoPk(db.schema.createTable('api_tokens'), 'pk')
          .addColumn('user_pk', 'integer', (c) => c.notNull().references('users.pk'))
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text')
          .addColumn('revoked_at', 'text')
          .execute();

        await withAutoPk(db.schema.createTable('audit_log'), 'seq')
          .addColumn('ts', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('actor_role', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('policy', 'text', (c) => c.notNull())
          .addColumn('patient_id', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('study_uid', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('objects_json', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('detail_json', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('audit_study').on('audit_log').column('study_uid').execute();
        await db.schema.createIndex('audit_ts').on('audit_log').column('ts').execute();
        // The ledger is append-only from the first day (ARCHITECTURE.md invariant 3).
        if (dialect === 'sqlite') {
          await sql`create trigger audit_log_no_update before update on audit_log
                    begin select raise(abort, 'audit_log is append-only'); end`.execute(db);
          await sql`create trigger audit_log_no_delete before delete on audit_log
                    begin select raise(abort, 'audit_log is append-only'); end`.execute(db);
        } else {
          await sql`create or replace function custos_refuse_ledger_change() returns trigger language plpgsql as $$
                    begin raise exception 'audit_log is append-only'; end $$`.execute(db);
          await sql`create trigger audit_log_append_only before update or delete or truncate on audit_log
                    for each statement execute function custos_refuse_ledger_change()`.execute(db);
        }
      },
    },
    '0002-ledger': {
      // The hash-chained ledger replaces the first-day audit_log table (no deployment ever kept records in it).
      async up(db: Kysely<unknown>) {
        await db.schema.dropTable('audit_log').execute();
        const seqType = dialect === 'postgres' ? 'bigint' : 'integer';
        await db.schema
          .createTable('audit_ledger')
          // Assigned by the ledger under its write lock: 1, 2, 3, … without gaps, so a gap means a removal.
          .addColumn('seq', seqType, (c) => c.primaryKey())
          .addColumn('ts', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('patient_id', 'text', (c) => c.notNull())
          .addColumn('study_uid', 'text', (c) => c.notNull())
          .addColumn('record', 'text', (c) => c.notNull())
          .addColumn('prev_hash', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .execute();
        for (const col of ['patient_id', 'study_uid', 'actor', 'action'] as const) {
          await db.schema
            .createIndex(`audit_ledger_${col}`)
            .on('audit_ledger')
            .columns([col, 'seq'])
            .execute();
        }
        await db.schema.createIndex('audit_ledger_ts').on('audit_ledger').column('ts').execute();
        await db.schema
          .createTable('audit_checkpoints')
          .addColumn('seq', seqType, (c) => c.primaryKey())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('ts', 'text', (c) => c.notNull())
          .addColumn('node', 'text', (c) => c.notNull())
          .addColumn('key_id', 'text', (c) => c.notNull())
          .addColumn('signature', 'text', (c) => c.notNull())
          .execute();
        for (const table of ['audit_ledger', 'audit_checkpoints']) {
          if (dialect === 'sqlite') {
            await sql`create trigger ${sql.raw(`${table}_no_update`)} before update on ${sql.table(table)}
                      begin select raise(abort, ${sql.lit(`${table} is append-only`)}); end`.execute(db);
            await sql`create trigger ${sql.raw(`${table}_no_delete`)} before delete on ${sql.table(table)}
                      begin select raise(abort, ${sql.lit(`${table} is append-only`)}); end`.execute(db);
          } else {
            await sql`create or replace function custos_refuse_ledger_change() returns trigger language plpgsql as $$
                      begin raise exception '% is append-only', TG_TABLE_NAME; end $$`.execute(db);
            await sql`create trigger ${sql.raw(`${table}_append_only`)} before update or delete or truncate on ${sql.table(table)}
                      for each statement execute function custos_refuse_ledger_change()`.execute(db);
          }
        }
      },
    },
    // Issue 5, standards out: the syslog forwarder's cursor into the ledger and its lease (one forwarder at a
    // time across workers and nodes). Self-contained: nothing else refers to this table.
    '0005-audit-forward': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('audit_forward')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('cursor', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('lease_owner', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('lease_until', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('updated_at', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
      },
    },
    '0007-fixity': {
      async up(db: Kysely<unknown>) {
        // 'unverified' until the first fixity pass, then 'ok' or 'corrupt' (never served; see docs/fixity.md).
        await db.schema
          .alterTable('instances')
          .addColumn('fixity_status', 'text', (c) => c.notNull().defaultTo('unverified'))
          .execute();
        await db.schema.alterTable('instances').addColumn('fixity_checked_at', 'text').execute();
        await db.schema.createIndex('instances_fixity').on('instances').column('fixity_status').execute();
        // Long-running jobs: where a pass has got to (resumable) and who holds it (one process at a time).
        await db.schema
          .createTable('job_state')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('cursor', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('pass_started_at', 'text')
          .addColumn('last_pass_completed_at', 'text')
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'text')
          .addColumn('stats_json', 'text', (c) => c.notNull().defaultTo('{}'))
          .execute();
      },
    },
    // Issue 4 (access control): the account facts policies scope by, the study facts that are not in
    // 0001-index, the relationships (care team, research projects, explicit grants) and the versioned policy
    // sets. Self-contained: it touches only users and studies from 0001-index.
    '0004-policy': {
      async up(db: Kysely<unknown>) {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for (const col of ['department', 'physician_name', 'physician_id']) {
          await db.schema.alterTable('users').addColumn(col, 'text').execute();
        }
        // Code values of Referring Physician Identification Sequence (0008,0096), joined by backslash.
        await db.schema
          .alterTable('studies')
          .addColumn('referring_physician_ids', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        await db.schema.createIndex('studies_department').on('studies').column('department').execute();

        await db.schema
          .createTable('policy_versions')
          .addColumn('version', 'integer', (c) => c.primaryKey())
          .addColumn('text', 'text', (c) => c.notNull())
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('applied_by', 'text', (c) => c.notNull())
          .addColumn('applied_at', 'text', (c) => c.notNull())
          .addColumn('comment', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        // Policy versions are history: never rewritten, never removed (ARCHITECTURE.md invariant 7).
        if (dialect === 'sqlite') {
          await sql`create trigger policy_versions_no_update before update on policy_versions
                    begin select raise(abort, 'policy_versions is append-only'); end`.execute(db);
          await sql`create trigger policy_versions_no_delete before delete on policy_versions
                    begin select raise(abort, 'policy_versions is append-only'); end`.execute(db);
        } else {
          await sql`create or replace function custos_refuse_policy_change() returns trigger language plpgsql as $$
                    begin raise exception 'policy_versions is append-only'; end $$`.execute(db);
          await sql`create trigger policy_versions_append_only before update or delete or truncate on policy_versions
                    for each statement execute function custos_refuse_policy_change()`.execute(db);
        }

        await withAutoPk(db.schema.createTable('study_grants'), 'pk')
          .addColumn('user_pk', 'integer', (c) => c.notNull().references('users.pk'))
          .addColumn('study_uid', 'text', (c) => c.notNull())
          .addColumn('granted_by', 'text', (c) => c.notNull())
          .addColumn('granted_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        await db.schema
          .createIndex('study_grants_study')
          .on('study_grants')
          .columns(['study_uid', 'user_pk'])
          .execute();

        // Filled by HL7 orders later (ordering provider, care team members of the order).
        await db.schema
          .createTable('care_team')
          .addColumn('study_uid', 'text', (c) => c.notNull())
          .addColumn('user_pk', 'integer', (c) => c.notNull().references('users.pk'))
          .addColumn('relationship', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('source', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('added_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('care_team_pk', ['study_uid', 'user_pk'])
          .execute();
        await db.schema.createIndex('care_team_user').on('care_team').column('user_pk').execute();

        await db.schema
          .createTable('project_members')
          .addColumn('project', 'text', (c) => c.notNull())
          .addColumn('user_pk', 'integer', (c) => c.notNull().references('users.pk'))
          .addColumn('added_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('project_members_pk', ['project', 'user_pk'])
          .execute();
        await db.schema.createIndex('project_members_user').on('project_members').column('user_pk').execute();
        await db.schema
          .createTable('study_projects')
          .addColumn('project', 'text', (c) => c.notNull())
          .addColumn('study_uid', 'text', (c) => c.notNull())
          .addColumn('added_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('study_projects_pk', ['study_uid', 'project'])
          .execute();
      },
    },
    // Issue 4, SCIM 2.0: what an identity provider manages about an account, and its groups.
    '0009-scim': {
      async up(db: Kysely<unknown>) {
        for (const col of ['external_id', 'email', 'given_name', 'family_name', 'updated_at', 'deleted_at']) {
          await db.schema.alterTable('users').addColumn(col, 'text').execute();
        }
        await db.schema
          .createTable('scim_groups')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('display_name', 'text', (c) => c.notNull().unique())
          .addColumn('external_id', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('scim_group_members')
          .addColumn('group_id', 'text', (c) => c.notNull().references('scim_groups.id').onDelete('cascade'))
          .addColumn('user_pk', 'integer', (c) => c.notNull().references('users.pk'))
          .addPrimaryKeyConstraint('scim_group_members_pk', ['group_id', 'user_pk'])
          .execute();
      },
    },
    '0006-hl7': {
      // HL7 v2 feeds (issue 6): orders, the care relationships they establish, and the record of patient merges.
      async up(db: Kysely<unknown>) {
        await withAutoPk(db.schema.createTable('orders'), 'pk')
          // Placer order number, else filler order number: what later messages about the same order carry.
          .addColumn('order_key', 'text', (c) => c.notNull().unique())
          .addColumn('placer_order_number', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('filler_order_number', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('accession_number', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('patient_pk', 'integer', (c) => c.notNull().references('patients.pk'))
          .addColumn('ordering_physician_id', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('ordering_physician_name', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('referring_physician_id', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('referring_physician_name', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('department', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('procedure_code', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('procedure_text', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('study_instance_uid', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('modality', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('order_control', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('sender', 'text', (c) => c.notNull())
          .addColumn('message_control_id', 'text', (c) => c.notNull())
          .addColumn('received_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('orders_accession').on('orders').column('accession_number').execute();
        await db.schema.createIndex('orders_patient').on('orders').column('patient_pk').execute();

        await withAutoPk(db.schema.createTable('care_relationships'), 'pk')
          .addColumn('patient_pk', 'integer', (c) => c.notNull().references('patients.pk'))
          .addColumn('physician_id', 'text', (c) => c.notNull())
          .addColumn('physician_name', 'text', (c) => c.notNull())
          /** 'ordering' | 'referring'. */
          .addColumn('relationship', 'text', (c) => c.notNull())
          .addColumn('order_pk', 'integer', (c) => c.notNull().references('orders.pk'))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addUniqueConstraint('care_relationships_unique', [
            'patient_pk',
            'physician_id',
            'physician_name',
            'relationship',
            'order_pk',
          ])
          .execute();
        await db.schema
          .createIndex('care_relationships_physician')
          .on('care_relationships')
          .columns(['physician_id', 'patient_pk'])
          .execute();

        await withAutoPk(db.schema.createTable('patient_merges'), 'pk')
          .addColumn('event', 'text', (c) => c.notNull())
          .addColumn('prior_patient_id', 'text', (c) => c.notNull())
          .addColumn('prior_issuer', 'text', (c) => c.notNull())
          .addColumn('prior_patient_pk', 'integer')
          .addColumn('surviving_patient_pk', 'integer', (c) => c.notNull().references('patients.pk'))
          .addColumn('studies_moved', 'integer', (c) => c.notNull())
          .addColumn('sender', 'text', (c) => c.notNull())
          .addColumn('message_control_id', 'text', (c) => c.notNull())
          .addColumn('merged_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0008-quality': {
      // Validation outcomes (docs/validation.md): objects kept in quarantine, and header corrections served over
      // the stored bytes of released instances.
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('quarantine')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('sop_instance_uid', 'text', (c) => c.notNull())
          .addColumn('sop_class_uid', 'text', (c) => c.notNull())
          .addColumn('study_uid', 'text', (c) => c.notNull())
          .addColumn('series_uid', 'text', (c) => c.notNull())
          .addColumn('patient_id', 'text', (c) => c.notNull())
          .addColumn('transfer_syntax_uid', 'text', (c) => c.notNull())
          .addColumn('blob_id', 'text', (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('metadata_json', 'text', (c) => c.notNull())
          .addColumn('bulk_json', 'text', (c) => c.notNull())
          .addColumn('defects_json', 'text', (c) => c.notNull())
          .addColumn('corrections_json', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('status', 'text', (c) => c.notNull().defaultTo('quarantined'))
          .addColumn('level', 'text', (c) => c.notNull())
          .addColumn('channel', 'text', (c) => c.notNull())
          .addColumn('sender', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('quarantine_status_created')
          .on('quarantine')
          .columns(['status', 'created_at'])
          .execute();
        await db.schema.createIndex('quarantine_sop').on('quarantine').column('sop_instance_uid').execute();
        await db.schema
          .createTable('header_corrections')
          .addColumn('sop_instance_uid', 'text', (c) => c.primaryKey())
          .addColumn('study_uid', 'text', (c) => c.notNull())
          .addColumn('corrections_json', 'text', (c) => c.notNull())
          .addColumn('quarantine_id', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('header_corrections_study')
          .on('header_corrections')
          .column('study_uid')
          .execute();
      },
    },
    '0003-dimse': {
      async up(db: Kysely<unknown>) {
        await withAutoPk(db.schema.createTable('application_entities'), 'pk')
          .addColumn('title', 'text', (c) => c.notNull().unique())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('port', 'integer', (c) => c.notNull())
          .addColumn('cert_sha256', 'text')
          .addColumn('user_pk', 'integer', (c) => c.references('users.pk'))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    // Issue 4 item 1 (accounts): lockout, TOTP, forced password change, token last use, console sessions.
    '0010-accounts': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable('users')
          .addColumn('must_change_password', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .alterTable('users')
          .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        for (const col of [
          'failure_window_start',
          'locked_until',
          'totp_secret',
          'totp_pending',
          'totp_enrolled_at',
        ])
          await db.schema.alterTable('users').addColumn(col, 'text').execute();
        await db.schema.alterTable('users').addColumn('totp_last_step', 'integer').execute();
        await db.schema.alterTable('api_tokens').addColumn('last_used_at', 'text').execute();
        await withAutoPk(db.schema.createTable('sessions'), 'pk')
          .addColumn('id_hash', 'text', (c) => c.notNull().unique())
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('user_pk', 'integer', (c) => c.notNull().references('users.pk'))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('last_seen_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('idle_seconds', 'integer', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .addColumn('mfa_passed', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('source', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        await db.schema.createIndex('sessions_user').on('sessions').column('user_pk').execute();
      },
    },
    '0011-break-glass': {
      async up(db: Kysely<unknown>) {
        // Emergency access windows (docs/access-control.md): who opened which study, why, until when, and the
        // privacy officer's review. The decisions themselves are in the ledger; this table scopes them.
        await db.schema
          .createTable('break_glass')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_pk', 'integer', (c) => c.notNull().references('users.pk'))
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('study_uid', 'text', (c) => c.notNull())
          .addColumn('patient_id', 'text', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('opened_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('reviewed_by', 'text')
          .addColumn('reviewed_at', 'text')
          .addColumn('review_note', 'text')
          .execute();
        await db.schema
          .createIndex('break_glass_user_expires')
          .on('break_glass')
          .columns(['user_pk', 'expires_at'])
          .execute();
        await db.schema.createIndex('break_glass_opened').on('break_glass').column('opened_at').execute();
      },
    },
    // Issue 6 (data quality): quarantined objects' raw bytes are verified by the fixity job like archived ones
    // (docs/fixity.md). Self-contained: it touches only quarantine, from 0008-quality.
    '0012-quality': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable('quarantine')
          .addColumn('fixity_status', 'text', (c) => c.notNull().defaultTo('unverified'))
          .execute();
        await db.schema.alterTable('quarantine').addColumn('fixity_checked_at', 'text').execute();
      },
    },
    // What ties an index to its key-encryption key and its blob tree (src/app/archive-identity.ts): one row.
    '0013-archive-identity': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('archive_identity')
          .addColumn('archive_id', 'text', (c) => c.primaryKey())
          .addColumn('key_check', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    // Names are matched case-insensitively on a stored fold (src/domain/case-fold.ts). Until 6 Dec 2026 it was
    // toUpperCase, which turns 'ß' into 'SS' and 'ﬁ' into 'FI'; ASCII folds the same either way, so only names
    // with other characters are folded again.
    '0014-name-fold': {
      async up(db: Kysely<unknown>) {
        await refoldNames(db, (name) =>
          dialect === 'postgres' ? sql`${sql.ref(name)} ~ '[^ -~]'` : sql`${sql.ref(name)} glob '*[^ -~]*'`,
        );
      },
    },
    // Sign-in names that are no usable account, counted as accounts' failures are (docs/accounts.md), in the
    // index so that every worker process and node counts them together. Keyed by the SHA-256 of the folded name.
    '0015-sign-in-name-failures': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('sign_in_name_failures')
          .addColumn('name_hash', 'text', (c) => c.primaryKey())
          .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('failure_window_start', 'text')
          .addColumn('locked_until', 'text')
          .execute();
      },
    },
    // Merge loops already reported by an alert (docs/hl7.md), so each loop is reported once, by whichever of the
    // feed or ingest meets it first. Keyed by the loop's patients and merges (src/services/merge-loops.ts).
    '0016-merge-loop-alerts': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('merge_loop_alerts')
          .addColumn('loop_key', 'text', (c) => c.primaryKey())
          .addColumn('alerted_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    // A name's trailing empty components and groups are left out of its matching form (normalisePersonName), so
    // that `DOE^JOHN^^^` and `Doe^John` find each other. Only names ending in a delimiter or holding one before an
    // '=' are folded again.
    '0017-name-trailing-delimiters': {
      async up(db: Kysely<unknown>) {
        await refoldNames(
          db,
          (name) =>
            sql`${sql.ref(name)} like '%^' or ${sql.ref(name)} like '%=' or ${sql.ref(name)} like '%^=%'`,
        );
      },
    },
    '0018-order-numbers': {
      // An order is found by its placer number, else its filler number (PatientFeedService.findOrder).
      async up(db: Kysely<unknown>) {
        await db.schema.createIndex('orders_placer').on('orders').column('placer_order_number').execute();
        await db.schema.createIndex('orders_filler').on('orders').column('filler_order_number').execute();
      },
    },
    '0019-cancelled-order-relationships': {
      // A cancelled order gives no care relationship (PatientFeedService.syncOrderRelationships); those that orders
      // cancelled before this rule still held are ended, so their physicians' access ends with the upgrade.
      async up(db: Kysely<unknown>) {
        await sql`delete from care_relationships
                  where order_pk in (select pk from orders where status = 'cancelled')`.execute(db);
      },
    },
    // The feed messages applied, by sender and control id (MSH-10), so that an original-mode sender's resend of
    // a message whose ACK it lost is acknowledged again and not applied twice (docs/hl7.md). `digest` is the
    // SHA-256 of the message after its MSH: a control id reused for other content is another message.
    '0020-hl7-applied-messages': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('hl7_applied_messages')
          .addColumn('sender', 'text', (c) => c.notNull())
          .addColumn('control_id', 'text', (c) => c.notNull())
          .addColumn('message_type', 'text', (c) => c.notNull())
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('applied_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('hl7_applied_messages_pk', ['sender', 'control_id'])
          .execute();
      },
    },
    '0021-storage-commitment-transactions': {
      // The Transaction UIDs of storage commitment requests (storage-commitment.ts): one used again for another
      // request is a duplicate (PS3.3 C.14.1.1, Failure Reason 0131H).
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('storage_commitments')
          .addColumn('transaction_uid', 'text', (c) => c.primaryKey())
          .addColumn('calling_ae', 'text', (c) => c.notNull())
          .addColumn('request_sha256', 'text', (c) => c.notNull())
          .addColumn('reference_count', 'integer', (c) => c.notNull())
          .addColumn('requested_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    // HL7 feed upkeep of 7 Dec 2026 (docs/hl7.md).
    '0023-hl7-discontinued-orders-and-applied-at': {
      async up(db: Kysely<unknown>) {
        // A discontinued order gives no care relationship, as a cancelled one does not (ORDER_STATUSES_ENDED):
        // an order the filler discontinued as requested (ORC-1 DR) is cancelled, as ORC-1 OD makes it, and the
        // relationships that discontinued orders still held end with the upgrade.
        await sql`update orders set status = 'cancelled'
                  where order_control = 'DR' and status not in ('cancelled', 'discontinued')`.execute(db);
        await sql`delete from care_relationships
                  where order_pk in (select pk from orders where status in ('cancelled', 'discontinued'))`.execute(
          db,
        );
        // The hourly prune of the messages older than the resend window (pruneAppliedMessages) reads them by this
        // index: it runs under the ledger's write lock, and without it scanned a week of the feed's messages.
        await db.schema
          .createIndex('hl7_applied_messages_applied_at')
          .ifNotExists()
          .on('hl7_applied_messages')
          .column('applied_at')
          .execute();
      },
    },
    // Each component group of a person name in a column of its own (alphabetic, ideographic, phonetic; PS3.5
    // §6.2.1.2), derived by the database from the matching form, so that a query key matches each group on its own
    // index (query-service.ts personNamePredicate). Generated columns fill the rows already stored when the
    // migration runs, and every later write, with no writer knowing of them.
    '0026-person-name-groups': {
      async up(db: Kysely<unknown>) {
        for (const [table, norm, prefix] of [
          ['patients', 'patient_name_norm', 'patient_name'],
          ['studies', 'referring_physician_norm', 'referring_physician'],
        ] as const) {
          for (const [i, group] of PERSON_NAME_GROUPS.entries()) {
            const column = `${prefix}_${group}`;
            const value = componentGroup(dialect, norm, (i + 1) as 1 | 2 | 3);
            // PostgreSQL adds only a stored generated column, SQLite only a virtual one; both are indexed.
            await db.schema
              .alterTable(table)
              .addColumn(column, sql`text ${patternCollation}`, (c) =>
                dialect === 'postgres' ? c.generatedAlwaysAs(value).stored() : c.generatedAlwaysAs(value),
              )
              .execute();
            await db.schema.createIndex(`${table}_${column}`).on(table).column(column).execute();
          }
        }
      },
    },
  };
}

const PERSON_NAME_GROUPS = ['alpha', 'ideo', 'phon'] as const;

/**
 * The `n`th '='-separated part of a text column, '' where it has fewer: PostgreSQL's split_part, spelt out with
 * SQLite's instr and substr (a generated column takes only deterministic built-in functions).
 */
function componentGroup(dialect: SqlDialectName, column: string, n: 1 | 2 | 3): RawBuilder<string> {
  if (dialect === 'postgres') return sql<string>`split_part(${sql.ref(column)}, '=', ${sql.lit(n)})`;
  let rest = column;
  const guards: string[] = [];
  for (let i = 1; i < n; i++) {
    guards.push(`instr(${rest}, '=') = 0`);
    rest = `substr(${rest}, instr(${rest}, '=') + 1)`;
  }
  const head = `case when instr(${rest}, '=') = 0 then ${rest} else substr(${rest}, 1, instr(${rest}, '=') - 1) end`;
  return sql<string>`(${sql.raw(guards.length ? `case when ${guards.join(' or ')} then '' else ${head} end` : head)})`;
}

/**
 * Recomputes the stored matching form (normalisePersonName) of the patient and referring physician names that
 * `which` selects, after the form changed; a name whose form is unchanged is not written.
 */
async function refoldNames(db: Kysely<unknown>, which: (column: string) => RawBuilder<unknown>) {
  for (const [table, key, name, norm] of [
    ['patients', 'pk', 'patient_name', 'patient_name_norm'],
    ['studies', 'study_uid', 'referring_physician_name', 'referring_physician_norm'],
  ] as const) {
    const { rows } = await sql<{ k: string | number; name: string; norm: string }>`
      select ${sql.ref(key)} as k, ${sql.ref(name)} as name, ${sql.ref(norm)} as norm
      from ${sql.table(table)} where ${which(name)}`.execute(db);
    for (const row of rows) {
      const folded = normalisePersonName(row.name);
      if (folded !== row.norm)
        await sql`update ${sql.table(table)} set ${sql.ref(norm)} = ${folded}
                  where ${sql.ref(key)} = ${row.k}`.execute(db);
    }
  }
}

class InCodeProvider implements MigrationProvider {
  constructor(private readonly dialect: SqlDialectName) {}
  async getMigrations() {
    return migrations(this.dialect);
  }
}

export async function migrateToLatest(
  db: Kysely<unknown>,
  dialect: SqlDialectName,
  schema?: string,
): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new InCodeProvider(dialect),
    migrationTableName: 'custos_migrations',
    migrationLockTableName: 'custos_migrations_lock',
    // Migrations are developed on parallel branches and numbered apart; a database that already ran a later one
    // must still take an earlier-numbered one that arrived afterwards.
    allowUnorderedMigrations: true,
    // Without the schema named, Kysely looks for its tables in every schema and takes another
    // installation's (or test's) migration tables in the same database for ours.
    ...(dialect === 'postgres' ? { migrationTableSchema: schema ?? 'public' } : {}),
  });
  let { error, results } = await migrator.migrateToLatest();
  // Kysely checks for its tables by introspecting every schema of the database; a schema dropped by another
  // session during that query fails it with 3F000 (invalid_schema_name). Nothing was migrated: try again.
  for (let i = 0; i < 3 && (error as { code?: string } | undefined)?.code === '3F000'; i++) {
    await new Promise((r) => setTimeout(r, 50 * (i + 1)));
    ({ error, results } = await migrator.migrateToLatest());
  }
  if (error) {
    throw new CustosError({
      code: 'db.migration-failed',
      message: `database migration failed: ${String((error as Error).message ?? error)}`,
      cause: error,
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
