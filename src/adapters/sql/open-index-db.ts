import Database from 'better-sqlite3-multiple-ciphers';
import {
  CompiledQuery,
  Kysely,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
  sql,
  type DatabaseConnection,
  type Driver,
} from 'kysely';
import pg from 'pg';
import type { DatabaseSchema, IndexDb } from '../../ports/database.js';
import { CustosError } from '../../domain/errors.js';
import { migrateToLatest } from './migrations.js';

export type IndexDbConfig =
  | {
      kind: 'sqlite';
      path: string;
      /**
       * Page-encryption key for the index file (SQLite3 Multiple Ciphers, ChaCha20-Poly1305 by default):
       * the index holds patient names, so it is encrypted at rest like the blobs.
       */
      key: Buffer;
    }
  | { kind: 'postgres'; url: string; schema?: string; poolSize?: number };

/**
 * SQLite write transactions start IMMEDIATE: a deferred transaction that reads and then writes cannot wait for
 * another process's write lock (SQLite answers "database is locked" at once to avoid a deadlock), which is what
 * several `serve --workers` processes, or `custos import` beside a server, would hit.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly cfg: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(cfg);
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.cfg);
  }
}

// PostgreSQL returns BIGINT as string by default; our counters fit in a double.
pg.types.setTypeParser(20, (v) => Number(v));

export async function openIndexDb(config: IndexDbConfig): Promise<IndexDb> {
  if (config.kind === 'sqlite') return openSqlite(config.path, config.key);
  return openPostgres(config.url, config.schema, config.poolSize ?? 10);
}

async function openSqlite(path: string, key: Buffer): Promise<IndexDb> {
  let raw: Database.Database;
  try {
    raw = new Database(path);
    raw.pragma(`cipher='chacha20'`);
    raw.pragma(`key="x'${key.toString('hex')}'"`);
    // Touch the schema: a wrong key surfaces here, not at the first query.
    raw.prepare('select count(*) from sqlite_master').get();
  } catch (err) {
    throw new CustosError({
      code: 'db.open-failed',
      message: `cannot open the index database at ${path}: ${(err as Error).message} (wrong key-encryption key for this data directory?)`,
      cause: err,
    });
  }
  raw.pragma('journal_mode = WAL');
  // FULL: a committed transaction (and its audit record) survives power loss.
  raw.pragma('synchronous = FULL');
  raw.pragma('foreign_keys = ON');
  // Same LIKE semantics as PostgreSQL: wildcard matching is case-sensitive unless a service upper-cases both sides.
  raw.pragma('case_sensitive_like = ON');
  raw.pragma('busy_timeout = 10000');
  const db = new Kysely<DatabaseSchema>({ dialect: new ImmediateSqliteDialect({ database: raw }) });
  await migrateToLatest(db as Kysely<unknown>, 'sqlite');
  return {
    db,
    dialect: 'sqlite',
    close: () => db.destroy(),
  };
}

async function openPostgres(url: string, schema: string | undefined, poolSize: number): Promise<IndexDb> {
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new CustosError({
      code: 'config.invalid',
      message: `databaseSchema '${schema}' must match [a-z_][a-z0-9_]*`,
    });
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  try {
    const client = await pool.connect();
    try {
      if (schema) await client.query(`create schema if not exists ${schema}`);
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end();
    throw new CustosError({
      code: 'db.open-failed',
      message: `cannot connect to PostgreSQL: ${(err as Error).message}`,
      cause: err,
    });
  }
  const db = new Kysely<DatabaseSchema>({ dialect: new PostgresDialect({ pool }) });
  await migrateToLatest(db as Kysely<unknown>, 'postgres', schema);
  await sql`select 1`.execute(db);
  return { db, dialect: 'postgres', close: () => db.destroy() };
}

/** Drop a test schema (PostgreSQL test isolation). */
export async function dropPostgresSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}
