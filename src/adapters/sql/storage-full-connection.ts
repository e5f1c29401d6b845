import { PostgresDriver, type DatabaseConnection, type PostgresDialectConfig } from 'kysely';

/** What Kysely's PostgresDriver hands out and takes back (its own connection class, not exported by name). */
type PostgresConnection = Parameters<PostgresDriver['releaseConnection']>[0];
import { storageFull } from '../../domain/storage-full.js';

/**
 * The database's "no room" errors, reported as the archive's storage-full error (domain/storage-full.ts) so that
 * every service and transport sees one code whichever dialect runs: SQLite's SQLITE_FULL (the index file or its
 * write-ahead log could not grow), PostgreSQL's disk_full (SQLSTATE 53100, PostgreSQL Appendix A).
 */
export function databaseFull(e: unknown): unknown {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (code === 'SQLITE_FULL') return storageFull("the index's volume", e);
  if (code === '53100') return storageFull("PostgreSQL's volume", e);
  return e;
}

/** A connection whose statements' errors pass through databaseFull(); everything else is the driver's own. */
export function translatingConnection(inner: DatabaseConnection): DatabaseConnection {
  return {
    executeQuery: async (query) => {
      try {
        return await inner.executeQuery(query);
      } catch (e) {
        throw databaseFull(e);
      }
    },
    async *streamQuery(query, chunkSize) {
      try {
        yield* inner.streamQuery(query, chunkSize);
      } catch (e) {
        throw databaseFull(e);
      }
    },
  };
}

/** Kysely's PostgreSQL driver with translatingConnection(); the pool's own connection is what it releases. */
export class TranslatingPostgresDriver extends PostgresDriver {
  private readonly inner = new WeakMap<DatabaseConnection, PostgresConnection>();

  constructor(config: PostgresDialectConfig) {
    super(config);
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    const connection = (await super.acquireConnection()) as PostgresConnection;
    const outer = translatingConnection(connection);
    this.inner.set(outer, connection);
    return outer;
  }

  override async releaseConnection(connection: DatabaseConnection): Promise<void> {
    await super.releaseConnection(this.inner.get(connection) ?? (connection as PostgresConnection));
  }
}
