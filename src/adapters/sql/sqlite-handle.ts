import { accessSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { CustosError } from '../../domain/errors.js';

/** A WAL that restarts is cut back to this size (so its size tells how much awaits a checkpoint). */
export const WAL_TRUNCATE_BYTES = 4 * 1024 * 1024;

/**
 * Open the encrypted SQLite index file with the settings every connection to it uses (the server's, and the
 * checkpoint thread's): page encryption, WAL, synchronous commits, PostgreSQL-like LIKE, a busy timeout so
 * several processes can share it.
 */
export function openSqliteHandle(path: string, key: Buffer): Database.Database {
  let raw: Database.Database | undefined;
  try {
    raw = new Database(path);
    raw.pragma(`cipher='chacha20'`);
    raw.pragma(`key="x'${key.toString('hex')}'"`);
    // Touch the schema: a wrong key surfaces here, not at the first query.
    raw.prepare('select count(*) from sqlite_master').get();
  } catch (err) {
    // A handle that opened the file and then failed (a wrong key, a directory it cannot write) is closed: its
    // descriptor would otherwise stay until the process ends.
    raw?.close();
    throw new CustosError({
      code: 'db.open-failed',
      message: `cannot open the index database at ${path}: ${(err as Error).message} (${openFailureHint(path, err)})`,
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
  // 16 MiB of decrypted pages per connection (the default is 2 MiB): the B-tree pages ingest and study-level
  // queries touch stay hot instead of being re-read and re-decrypted. Not more: the page cache is resident memory
  // (64 MiB filled up with instance rows and kept the server over its 300 MB budget while storing a 1 GB object).
  raw.pragma('cache_size = -16384');
  raw.pragma(`journal_size_limit = ${WAL_TRUNCATE_BYTES}`);
  // Statement journals in memory. A group commit (transaction-batcher.ts) runs each writer in a savepoint, and
  // SQLite keeps the pages a savepoint may have to restore in a statement journal that spills to a temporary file
  // past 64 KiB: one pwrite a page for the rest of the transaction. Those pages are never needed after a crash (a
  // transaction that did not commit is simply absent from the WAL), so nothing durable moves. Temporary tables
  // and sorts live in memory too; the index's queries sort pages of a bounded size (limit), not whole tables.
  raw.pragma('temp_store = MEMORY');
  return raw;
}

/**
 * What an index that does not open most likely means: a wrong key only when SQLite read the file and found no
 * database in it; a directory it cannot write (a read-only mount, a service account without the right) when it
 * could not open it. Until 5 Dec 2026 every failure suggested a wrong key.
 */
function openFailureHint(path: string, err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'SQLITE_NOTADB') return 'wrong key-encryption key for this data directory?';
  const dir = dirname(path);
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    return `the data directory ${dir} cannot be written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): the index writes its write-ahead log beside the database`;
  }
  return code === 'SQLITE_CANTOPEN' ? 'the file or its directory cannot be opened' : 'see the error';
}
