import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3-multiple-ciphers';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/** Prepared statements kept per connection: the index's queries are a few hundred distinct texts. */
const STATEMENT_CACHE_SIZE = 500;
/** WAL pages (4 KiB) after which this connection checkpoints itself, when the ledger thread did not. */
const SAFETY_NET_CHECKPOINT_PAGES = 8192;

/**
 * The server's connection to the SQLite index, as Kysely's driver sees it: prepared statements are reused, and
 * commits are made durable by a group commit off the event loop.
 *
 * better-sqlite3 runs every statement on the calling thread, so with `synchronous = FULL` each COMMIT waits for
 * an fsync of the WAL with the whole server stalled, one commit at a time. This connection runs with
 * `synchronous = NORMAL` instead (a commit appends to the WAL without syncing it) and `durable()` fdatasyncs the
 * WAL file on the libuv thread pool. The driver (open-index-db.ts) releases the connection and then awaits
 * `durable()` before a write's caller continues: a write transaction still returns only once it is on disk, as
 * with FULL, but the commits made while one sync runs share the next one, and the event loop goes on meanwhile.
 *
 * What this changes: between its COMMIT and the sync (the time of one fdatasync), a transaction is visible to
 * other requests of this process before it is durable. A power loss in that window loses it with its ledger
 * record, and its writer was never told it succeeded (a sender gets no success for a store that was lost).
 * Checkpoints keep their own syncs (NORMAL syncs the WAL before a checkpoint and the database after it), and
 * SQLite's WAL checksums mean a power loss keeps a prefix of the commits, never a later one without an earlier.
 */
export class GroupCommitSqlite implements SqliteDatabase {
  private readonly statements = new Map<string, Database.Statement>();
  /** A statement that may write ran since the last `takeCommitted()`. */
  private dirty = false;
  private syncing: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private walDirSynced = false;
  private wal: FileHandle | undefined;
  /** Number of WAL fdatasyncs started (the tests read it). */
  syncs = 0;

  constructor(
    readonly raw: Database.Database,
    private readonly path: string,
  ) {
    raw.pragma('synchronous = NORMAL');
    // Checkpoints are the checkpoint thread's job (sqlite-checkpoint-worker.ts); this connection checkpoints
    // only as a safety net, should that thread not run, once the WAL holds 32 MiB.
    raw.pragma(`wal_autocheckpoint = ${SAFETY_NET_CHECKPOINT_PAGES}`);
  }

  prepare(sql: string): SqliteStatement {
    let stmt = this.statements.get(sql);
    if (stmt && !stmt.busy) {
      // Most recently used last, so the first key is the one to evict.
      this.statements.delete(sql);
      this.statements.set(sql, stmt);
    } else {
      stmt = this.raw.prepare(sql);
      // A statement still iterating (a streamed query) cannot run again: it gets a fresh one, left uncached.
      if (!this.statements.has(sql)) {
        this.statements.set(sql, stmt);
        if (this.statements.size > STATEMENT_CACHE_SIZE)
          this.statements.delete(this.statements.keys().next().value!);
      }
    }
    // COMMIT itself reads as read-only to SQLite; the writes before it mark the connection.
    if (!stmt.readonly) this.dirty = true;
    return stmt;
  }

  close(): void {
    this.statements.clear();
    this.raw.close();
    // No sync can be running: the driver waits for durable() before it hands a connection on or closes it.
    void this.wal?.close().catch(() => undefined);
    this.wal = undefined;
  }

  /**
   * Whether a write has been committed since the last call: a statement that may write ran and no transaction
   * is open any more (a rolled-back one counts too; its sync is merely unnecessary).
   */
  takeCommitted(): boolean {
    if (!this.dirty || this.raw.inTransaction) return false;
    this.dirty = false;
    return true;
  }

  /**
   * Resolves once everything committed on this connection before the call is on disk. A sync already running
   * may have started before the caller's commit, so callers then share the one that starts after it.
   */
  durable(): Promise<void> {
    if (!this.syncing) return this.startSync();
    this.next ??= this.syncing.then(
      () => this.startSync(),
      () => this.startSync(),
    );
    return this.next;
  }

  private startSync(): Promise<void> {
    this.next = undefined;
    this.syncs++;
    const run = this.syncWal();
    this.syncing = run;
    const clear = () => {
      if (this.syncing === run) this.syncing = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /** The fdatasync of the WAL (a seam for tests: a disk that fails its syncs is hard to come by). */
  protected datasync(wal: FileHandle): Promise<void> {
    return wal.datasync();
  }

  /**
   * fdatasync of the WAL file; the first time also of the directory, which holds the WAL's entry. The WAL is
   * opened once and kept: SQLite deletes it only when the last connection closes, and this one is open until
   * close(); a restarted WAL is the same file, overwritten from its start. Without a WAL file (not in WAL mode
   * after all) the commit went to the database file itself, which is synced instead, opened each time.
   */
  private async syncWal(): Promise<void> {
    if (!this.wal) {
      try {
        this.wal = await open(`${this.path}-wal`, 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        const db = await open(this.path, 'r');
        try {
          await db.datasync();
        } finally {
          await db.close();
        }
        return;
      }
    }
    await this.datasync(this.wal);
    if (!this.walDirSynced) {
      const dir = await open(dirname(this.path), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      this.walDirSynced = true;
    }
  }
}
