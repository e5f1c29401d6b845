import {
  type CreateTableBuilder,
  type Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  sql,
} from 'kysely';
import type { SqlDialectName } from '../../ports/database.js';
import { CustosError } from '../../domain/errors.js';

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
    // Issue 3: the DICOM application entities allowed to associate, each bound to a host (and optionally a TLS
    // client certificate) and to the account whose role the policy decision point sees.
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
  };
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
  /** PostgreSQL schema the index lives in; the migration tables are looked up there and nowhere else. */
  schema?: string,
): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new InCodeProvider(dialect),
    migrationTableName: 'custos_migrations',
    migrationLockTableName: 'custos_migrations_lock',
    // Without a schema, Kysely takes a custos_migrations table in ANY schema of the database as ours, so a second
    // Custos schema in the same database (tests, several archives) was never migrated.
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
