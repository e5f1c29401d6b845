import {
  CompiledQuery,
  Kysely,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
  sql,
  type DatabaseConnection,
  type Driver,
  type PostgresDialectConfig,
} from 'kysely';
import pg from 'pg';
import type { DatabaseSchema, IndexDb } from '../../ports/database.js';
import { CustosError } from '../../domain/errors.js';
import { migrateToLatest } from './migrations.js';
import { openSqliteHandle } from './sqlite-handle.js';
import { GroupCommitSqlite } from './sqlite-group-commit.js';
import { SqliteCheckpointer } from './sqlite-checkpointer.js';
import { sqliteLimitLiterals } from './sqlite-limit-literals.js';
import { PostgresReachability } from './postgres-reachability.js';
import {
  translateDatabaseError,
  translatingConnection,
  TranslatingPostgresDriver,
} from './translated-errors.js';

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
  | {
      kind: 'postgres';
      url: string;
      schema?: string;
      poolSize?: number;
      /** The operator's log: told once when PostgreSQL stops answering and once when it answers again. */
      notice?: (line: string) => void;
    };

/**
 * SQLite write transactions start IMMEDIATE: a deferred transaction that reads and then writes cannot wait for
 * another process's write lock (SQLite answers "database is locked" at once to avoid a deadlock), which is what
 * several `serve --workers` processes, or `custos import` beside a server, would hit.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  constructor(private readonly database: GroupCommitSqlite) {
    super({ database });
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    return translatingConnection(await super.acquireConnection());
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  /**
   * Some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM) end the transaction inside SQLite already; a ROLLBACK
   * after them would fail with "no transaction is active" and hide the error that caused it.
   */
  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.database.raw.inTransaction) await super.rollbackTransaction(connection);
  }

  /**
   * Group commit (sqlite-group-commit.ts): the connection is handed on first, so other transactions run while
   * this one's WAL sync is in flight, and then the caller waits until what it committed is durable.
   */
  override async releaseConnection(): Promise<void> {
    const committed = this.database.takeCommitted();
    await super.releaseConnection();
    if (committed)
      await this.database.durable().catch((e: unknown) => {
        throw translateDatabaseError(e);
      });
  }
}

export class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly database: GroupCommitSqlite) {
    super({ database });
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.database);
  }
}

/** Kysely's PostgreSQL dialect whose errors of a full disk or a lost server read as the archive's (translated-errors.ts). */
class TranslatingPostgresDialect extends PostgresDialect {
  constructor(
    private readonly config: PostgresDialectConfig,
    private readonly onLost: (cause: unknown) => void,
  ) {
    super(config);
  }
  override createDriver(): Driver {
    return new TranslatingPostgresDriver(this.config, this.onLost);
  }
}

/** The SQLite index, with what another connection to the same file needs. */
export interface SqliteIndexDb extends IndexDb {
  readonly dialect: 'sqlite';
  /** Where the file is and its page key, for a connection of another thread or process. */
  readonly path: string;
  readonly key: Buffer;
}

export const isSqliteIndex = (index: IndexDb): index is SqliteIndexDb =>
  index.dialect === 'sqlite' && 'path' in index;

// PostgreSQL returns BIGINT as string by default; our counters fit in a double.
pg.types.setTypeParser(20, (v) => Number(v));

export async function openIndexDb(config: IndexDbConfig): Promise<IndexDb> {
  if (config.kind === 'sqlite') return openSqlite(config.path, config.key);
  return openPostgres(config.url, config.schema, config.poolSize ?? 10, config.notice);
}

async function openSqlite(path: string, key: Buffer): Promise<IndexDb> {
  const connection = new GroupCommitSqlite(openSqliteHandle(path, key), path);
  const db = new Kysely<DatabaseSchema>({
    dialect: new ImmediateSqliteDialect(connection),
    plugins: [sqliteLimitLiterals],
  });
  await migrateToLatest(db as Kysely<unknown>, 'sqlite');
  const checkpointer = SqliteCheckpointer.start({ path, key });
  const index: SqliteIndexDb = {
    db,
    dialect: 'sqlite',
    bytewise: (column) => sql<string>`${sql.ref(column)}`,
    close: async () => {
      await checkpointer.close();
      await db.destroy();
    },
    // The file is opened once; an error of the file itself (full, unreadable) is an answer to the request.
    answers: async () => true,
    path,
    key,
  };
  return index;
}

async function openPostgres(
  url: string,
  schema: string | undefined,
  poolSize: number,
  notice?: (line: string) => void,
): Promise<IndexDb> {
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new CustosError({
      code: 'config.invalid',
      message: `databaseSchema '${schema}' must match [a-z_][a-z0-9_]*`,
    });
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // Without it a connect to a host that drops packets waits for the kernel's TCP timeout (minutes).
    connectionTimeoutMillis: 10_000,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  const reachability = new PostgresReachability(() => pool.query('select 1'), notice);
  // An idle connection that PostgreSQL closes (a restart, a failover, an administrator's pg_terminate_backend) is
  // reported here after the pool has dropped it; unheard, the 'error' event ended the whole server. The next
  // query opens a new connection, and a query made while the database is away fails as index.unavailable. A
  // restart closes every idle connection at once: the operator is told once, and once when it answers again.
  pool.on('error', (err) => reachability.lost(err));
  // The pool listens on idle connections only: one checked out for a query or a transaction when its backend is
  // terminated emits 'error' with nobody listening, which ended the server with every request in flight (until
  // 5 Dec 2026). Its query fails as well (index.unavailable), and the pool drops it on release.
  pool.on('connect', (client) => client.on('error', (err) => reachability.lost(err)));
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
  const db = new Kysely<DatabaseSchema>({
    dialect: new TranslatingPostgresDialect({ pool }, (cause) => reachability.lost(cause)),
  });
  await migrateToLatest(db as Kysely<unknown>, 'postgres', schema);
  await sql`select 1`.execute(db);
  return {
    db,
    dialect: 'postgres',
    bytewise: (column) => sql<string>`${sql.ref(column)} collate "C"`,
    close: async () => {
      reachability.close();
      await db.destroy();
    },
    answers: () => reachability.check(),
  };
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
