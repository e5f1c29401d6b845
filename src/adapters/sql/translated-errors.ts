import { PostgresDriver, type DatabaseConnection, type PostgresDialectConfig } from 'kysely';
import { INDEX_UNAVAILABLE, indexUnavailable } from '../../domain/retry-later.js';
import { storageFull, storageUnwritable, storageWriteError } from '../../domain/storage-full.js';

/** What Kysely's PostgresDriver hands out and takes back (its own connection class, not exported by name). */
type PostgresConnection = Parameters<PostgresDriver['releaseConnection']>[0];

/**
 * The database's storage errors, reported as the archive's (domain/storage-full.ts) so that every service and
 * transport sees one code whichever dialect runs. No room: SQLite's SQLITE_FULL (the index file or its write-ahead
 * log could not grow), PostgreSQL's disk_full (SQLSTATE 53100, PostgreSQL Appendix A), ENOSPC from syncing the
 * WAL. A volume that refuses writes: SQLITE_READONLY and SQLITE_IOERR with their extended codes, EROFS or EIO from
 * syncing the WAL. A PostgreSQL that cannot be reached is the error index.unavailable (domain/retry-later.ts).
 */
export function translateDatabaseError(e: unknown): unknown {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (code === 'SQLITE_FULL') return storageFull("the index's volume", e);
  if (typeof code === 'string' && code.startsWith('SQLITE_READONLY'))
    return storageUnwritable("the index's volume is read-only", e);
  if (typeof code === 'string' && code.startsWith('SQLITE_IOERR'))
    return storageUnwritable(`the index's volume failed an input or output (${code})`, e);
  if (code === '53100') return storageFull("PostgreSQL's volume", e);
  if (lostPostgres(e)) return indexUnavailable(e);
  return storageWriteError("the index's volume", e);
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
 * node-postgres's own errors for a connection cut or not made in time.
 */
function lostPostgres(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || /^57P0[123]$/.test(code) || NETWORK.has(code)))
    return true;
  // node-postgres's own words: the server went away mid-query, or a new connection took longer than the pool's
  // connectionTimeoutMillis (a host that drops packets rather than refusing them).
  // pg's own words for a connection that went away: while a query ran, on connecting, and for the next query
  // on that client (a transaction's rollback after its connection was terminated, which was a 500 until 5 Dec
  // 2026).
  return /^Connection terminated|^timeout exceeded when trying to connect|^Client has encountered a connection error and is not queryable/.test(
    e.message,
  );
}

/** A connection whose statements' errors pass through translateDatabaseError(); everything else is the driver's own. */
export function translatingConnection(
  inner: DatabaseConnection,
  /** Sees each translated error and the driver's own; what it returns is thrown. */
  seen: (translated: unknown, original: unknown) => unknown = (translated) => translated,
): DatabaseConnection {
  return {
    executeQuery: async (query) => {
      try {
        return await inner.executeQuery(query);
      } catch (e) {
        throw seen(translateDatabaseError(e), e);
      }
    },
    async *streamQuery(query, chunkSize) {
      try {
        yield* inner.streamQuery(query, chunkSize);
      } catch (e) {
        throw seen(translateDatabaseError(e), e);
      }
    },
  };
}

/** Kysely's PostgreSQL driver with translatingConnection(); the pool's own connection is what it releases. */
export class TranslatingPostgresDriver extends PostgresDriver {
  private readonly inner = new WeakMap<DatabaseConnection, PostgresConnection>();

  constructor(
    config: PostgresDialectConfig,
    /** Told the driver's own error each time one reads as index.unavailable. */
    private readonly onLost: (cause: unknown) => void = () => {},
  ) {
    super(config);
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    let connection: PostgresConnection;
    try {
      connection = (await super.acquireConnection()) as PostgresConnection;
    } catch (e) {
      throw this.heard(translateDatabaseError(e), e);
    }
    const outer = translatingConnection(connection, (translated, e) => this.heard(translated, e));
    this.inner.set(outer, connection);
    return outer;
  }

  private heard(translated: unknown, original: unknown): unknown {
    if ((translated as { code?: unknown }).code === INDEX_UNAVAILABLE) this.onLost(original);
    return translated;
  }

  override async releaseConnection(connection: DatabaseConnection): Promise<void> {
    await super.releaseConnection(this.inner.get(connection) ?? (connection as PostgresConnection));
  }
}
