import { PostgresDriver, type DatabaseConnection, type PostgresDialectConfig } from 'kysely';
import { indexUnavailable } from '../../domain/retry-later.js';
import { storageFull } from '../../domain/storage-full.js';

/** What Kysely's PostgresDriver hands out and takes back (its own connection class, not exported by name). */
type PostgresConnection = Parameters<PostgresDriver['releaseConnection']>[0];

/**
 * The database's "no room" errors, reported as the archive's storage-full error (domain/storage-full.ts) so that
 * every service and transport sees one code whichever dialect runs: SQLite's SQLITE_FULL (the index file or its
 * write-ahead log could not grow), PostgreSQL's disk_full (SQLSTATE 53100, PostgreSQL Appendix A). A PostgreSQL
 * that cannot be reached is the error index.unavailable (domain/retry-later.ts).
 */
export function translateDatabaseError(e: unknown): unknown {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (code === 'SQLITE_FULL') return storageFull("the index's volume", e);
  if (code === '53100') return storageFull("PostgreSQL's volume", e);
  if (lostPostgres(e)) return indexUnavailable(e);
  return e;
}

/** errno values of a connection that could not be made or was cut. */
const NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * PostgreSQL is down, restarting or out of reach: SQLSTATE class 08 (connection exception) and 57P01–57P03 (shut
 * down by an administrator, crashed, cannot connect now; PostgreSQL Appendix A), a refused or cut socket, or
 * node-postgres's own "Connection terminated" when the server went away mid-query.
 */
function lostPostgres(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || /^57P0[123]$/.test(code) || NETWORK.has(code)))
    return true;
  return /^Connection terminated/.test(e.message);
}

/** A connection whose statements' errors pass through translateDatabaseError(); everything else is the driver's own. */
export function translatingConnection(inner: DatabaseConnection): DatabaseConnection {
  return {
    executeQuery: async (query) => {
      try {
        return await inner.executeQuery(query);
      } catch (e) {
        throw translateDatabaseError(e);
      }
    },
    async *streamQuery(query, chunkSize) {
      try {
        yield* inner.streamQuery(query, chunkSize);
      } catch (e) {
        throw translateDatabaseError(e);
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
    let connection: PostgresConnection;
    try {
      connection = (await super.acquireConnection()) as PostgresConnection;
    } catch (e) {
      throw translateDatabaseError(e);
    }
    const outer = translatingConnection(connection);
    this.inner.set(outer, connection);
    return outer;
  }

  override async releaseConnection(connection: DatabaseConnection): Promise<void> {
    await super.releaseConnection(this.inner.get(connection) ?? (connection as PostgresConnection));
  }
}
