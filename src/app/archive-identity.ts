import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNew } from '../adapters/keyfile/ledger-signing-key.js';
import { CustosError } from '../domain/errors.js';
import type { IndexDb } from '../ports/database.js';
import type { KeyStore } from '../ports/key-store.js';

/**
 * An archive is three things that only work together: the index, the key-encryption keyfile that unwraps its
 * study keys, and the blob tree under the data directory. Nothing tied them together until 5 Dec 2026, so a
 * missing keyfile beside a PostgreSQL index was replaced by a new key without a word (and nothing stored before
 * could be read again), and a data directory pointed at another database or schema got a new, empty index
 * beside its blobs, which `fixity orphans --remove` then took for orphans and deleted.
 *
 * Now the index holds one `archive_identity` row (a random id, and an HMAC of it under a secret derived from the
 * key-encryption key), and the data directory an `archive-id` file with the same id. Each open checks them
 * against each other before anything is written to the index.
 */

const MARKER = 'archive-id';
/**
 * Beside the archive id, in a file of its own (a Custos before 6 Dec 2026 reads only the id): 'postgresql' when
 * the index is in PostgreSQL. Nothing else in the data directory tells such an archive from a SQLite one whose
 * index.sqlite is gone, and the two need different advice.
 */
const INDEX_KIND = 'index-kind';
const KEY_CHECK_PURPOSE = 'custos/archive-key-check/v1';

/** Whether the index already holds an archive: its identity row, or (made before that row existed) any account. */
export async function indexHoldsArchive(index: IndexDb): Promise<boolean> {
  const identity = await index.db.selectFrom('archive_identity').select('archive_id').limit(1).execute();
  if (identity.length > 0) return true;
  const users = await index.db.selectFrom('users').select('pk').limit(1).execute();
  return users.length > 0;
}

/** Whether the audit ledger holds any record (signed with the audit signing key). */
export async function ledgerHasRecords(index: IndexDb): Promise<boolean> {
  return (await index.db.selectFrom('audit_ledger').select('seq').limit(1).execute()).length > 0;
}

async function keyCheck(keys: KeyStore, archiveId: string): Promise<string> {
  return createHmac('sha256', await keys.deriveSecret(KEY_CHECK_PURPOSE, 32))
    .update(archiveId)
    .digest('hex');
}

/** The archive id the data directory names, if it names one. */
async function readMarker(dataDir: string): Promise<string | undefined> {
  const markerPath = join(dataDir, MARKER);
  return existsSync(markerPath) ? (await readFile(markerPath, 'utf8')).trim() : undefined;
}

/** A data directory that holds no archive yet, where the command may not make one. */
export function notInitialised(dataDir: string, indexName?: string): CustosError {
  return new CustosError({
    code: 'archive.not-initialised',
    message: `${dataDir} holds no archive yet${indexName ? ` (with the index ${indexName})` : ''}: \`custos serve --data ${dataDir}\` initialises one`,
  });
}

async function holdsObjects(dataDir: string): Promise<boolean> {
  try {
    return (await readdir(join(dataDir, 'blobs', 'objects'))).length > 0;
  } catch {
    return false;
  }
}

/**
 * A SQLite data directory whose index file is gone while its blobs or its archive id remain: refused before a new,
 * empty index is made beside them (`index.sqlite` restored from a backup brings the archive back).
 */
export async function refuseMissingSqliteIndex(dataDir: string, sqlitePath: string): Promise<void> {
  if (existsSync(sqlitePath)) return;
  const marker = await readMarker(dataDir);
  if (marker === undefined && !(await holdsObjects(dataDir))) return;
  const held = marker ? `archive ${marker}` : 'stored objects';
  const kindPath = join(dataDir, INDEX_KIND);
  if (existsSync(kindPath) && (await readFile(kindPath, 'utf8')).trim() === 'postgresql')
    throw new CustosError({
      code: 'archive.database-url-missing',
      message: `the data directory ${dataDir} holds ${held}, whose index is in PostgreSQL, but no database URL is set: set CUSTOS_DATABASE_URL (or database.url in the config file), and CUSTOS_DATABASE_SCHEMA if the archive has its own schema; nothing was changed`,
    });
  throw new CustosError({
    code: 'archive.index-missing',
    message: `the data directory ${dataDir} holds ${held}, but its index ${sqlitePath} is missing: restore it (from a backup), or, if this archive's index is in PostgreSQL, set CUSTOS_DATABASE_URL; nothing was changed`,
  });
}

/** Note in the data directory that its index is in PostgreSQL (on each open, so older archives get it too). */
export async function recordPostgresIndex(dataDir: string): Promise<void> {
  const kindPath = join(dataDir, INDEX_KIND);
  if (!existsSync(kindPath)) await writeNew(kindPath, 'postgresql\n', 0o600);
}

export interface BindOptions {
  index: IndexDb;
  keys: KeyStore;
  dataDir: string;
  /** What the index is, for messages: the PostgreSQL URL's database and schema, or the SQLite file. */
  indexName: string;
  /** false: refuse a data directory and index that hold no archive yet, instead of making one. */
  initialise: boolean;
  now: Date;
}

/**
 * Check that the index, the key-encryption key and the data directory belong to one archive, or make a new
 * archive's identity when all three are new. Throws a CustosError naming what does not belong.
 */
export async function bindArchive(o: BindOptions): Promise<void> {
  const markerPath = join(o.dataDir, MARKER);
  const marker = await readMarker(o.dataDir);
  const [row] = await o.index.db.selectFrom('archive_identity').selectAll().limit(1).execute();
  if (row) {
    const expected = Buffer.from(row.key_check, 'hex');
    const actual = Buffer.from(await keyCheck(o.keys, row.archive_id), 'hex');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual))
      throw new CustosError({
        code: 'keys.wrong-keyfile',
        message: `the key-encryption keyfile of ${o.dataDir} is not the key of the index ${o.indexName} (archive ${row.archive_id}): restore that archive's keyfile, or point the data directory at its own index`,
      });
    if (marker !== undefined && marker !== row.archive_id)
      throw new CustosError({
        code: 'archive.mismatch',
        message: `the data directory ${o.dataDir} belongs to archive ${marker}, but the index ${o.indexName} to archive ${row.archive_id}: point it at its own index (database URL and schema)`,
      });
    if (marker === undefined) await writeNew(markerPath, `${row.archive_id}\n`, 0o600);
    return;
  }
  const legacy = await indexHoldsArchive(o.index);
  if (legacy && marker !== undefined)
    throw new CustosError({
      code: 'archive.mismatch',
      message: `the data directory ${o.dataDir} belongs to archive ${marker}, but the index ${o.indexName} to another archive: point it at its own index (database URL and schema)`,
    });
  if (!legacy) {
    if (marker !== undefined || (await holdsObjects(o.dataDir)))
      throw new CustosError({
        code: 'archive.index-empty',
        message: `the data directory ${o.dataDir} holds ${marker ? `archive ${marker}` : 'stored objects'}, but the index ${o.indexName} holds no archive: it is not this directory's index (check the database URL and schema); nothing was changed`,
      });
    if (!o.initialise) throw notInitialised(o.dataDir, o.indexName);
  }
  const archiveId = randomUUID();
  await o.index.db
    .insertInto('archive_identity')
    .values({
      archive_id: archiveId,
      key_check: await keyCheck(o.keys, archiveId),
      created_at: o.now.toISOString(),
    })
    .execute();
  await writeNew(markerPath, `${archiveId}\n`, 0o600);
}
