import { CustosError } from '../domain/errors.js';
import { asUserId } from '../domain/ids.js';
import type { Principal } from '../domain/principal.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { BlobStore, ListedBlob } from '../ports/blob-store.js';
import type { Clock } from '../ports/clock.js';
import type { Kysely } from 'kysely';
import type { DatabaseSchema, IndexDb } from '../ports/database.js';
import { readStoredToEnd } from './stored-object-check.js';
import type { StudyKeyService } from './study-keys.js';

/** Key errors that concern one study's data key (study-keys.ts, the key store's unwrap), not the whole archive. */
const UNREADABLE_KEY = new Set(['keys.missing', 'keys.unwrap-failed']);

export interface FixityDeps {
  index: IndexDb;
  blobs: BlobStore;
  studyKeys: StudyKeyService;
  ledger: AuditLedger;
  clock: Clock;
  /** Names this process as a lease holder. */
  node: string;
}

export interface FixityOptions {
  /** Read at most this many bytes per second (0: no limit). */
  bytesPerSecond?: number;
  /** Stop after this long (a scheduled slice); the pass resumes where it stopped. */
  maxSeconds?: number;
  onProgress?: (p: FixityProgress) => void;
  signal?: AbortSignal;
}

export interface FixityProgress {
  checked: number;
  bytes: number;
  corrupt: number;
  total: number;
  totalBytes: number;
}

export interface CorruptObject {
  sopInstanceUid: string;
  studyUid: string;
  blobId: string;
  reason: string;
  /** Set when the corrupt blob is a quarantined object's raw bytes (quarantine entry id). */
  quarantineId?: string;
}

export interface FixityReport {
  checked: number;
  bytes: number;
  ok: number;
  corrupt: CorruptObject[];
  seconds: number;
  /** The pass reached the last object (false: stopped by time, signal, or a scheduled slice). */
  complete: boolean;
}

export interface OrphanBlob {
  blobId: string;
  storedBytes: number;
  /** When the file was last written (ISO 8601). */
  modifiedAt: string;
}

export interface OrphanReport {
  /** Committed blobs in the store. */
  listed: number;
  /** Blobs no instance and no quarantine entry refers to, written before the age limit. */
  orphans: OrphanBlob[];
  orphanBytes: number;
  /** Orphans deleted (with `remove`). */
  removed: number;
  /** Blobs written within the age limit: not considered (an ingest may be committing one now). */
  young: number;
  seconds: number;
}

/**
 * Blob ids are reconciled one first hex digit at a time: memory holds a sixteenth of the store's ids, and each
 * table is read once per group (blob_id has no index: ingest does not pay for one).
 */
const ID_GROUPS = '0123456789abcdef';

const JOB = 'fixity';
/** Corrupt objects a pass's `fixity-check` record names (the count covers them all). */
const MAX_LISTED = 1000;
const PAGE = 200;
/**
 * A pass verifies archived instances (cursor: the last SOP instance UID checked), then the raw bytes kept in
 * quarantine, entries still quarantined or rejected (cursor: this prefix and the last entry id). Released
 * entries share their blob with the archived instance and are checked as that.
 */
const QUARANTINE_CURSOR = 'q:';
const HELD = ['quarantined', 'rejected'];

interface BlobRow {
  /** The instance's SOP instance UID, or the quarantine entry's id. */
  key: string;
  sop_instance_uid: string;
  study_uid: string;
  blob_id: string;
  sha256: string;
  size: number;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Re-verifies stored objects, archived and quarantined, against their SHA-256 and every chunk's authentication
 * tag (ARCHITECTURE.md invariant 5). A failing object is marked corrupt (retrieve then refuses it before sending a byte), and an
 * alert is recorded in the same transaction as the mark. Passes are rate-limited and resumable: the scheduled
 * job keeps its cursor in job_state under a lease, so one process at a time works on it and a restart goes on
 * where the last one stopped.
 */
export class FixityService {
  constructor(private readonly deps: FixityDeps) {}

  private readonly system: Principal = {
    kind: 'system',
    id: asUserId('system'),
    name: 'system:fixity',
    role: 'system',
    source: 'fixity',
  };

  /** A whole pass now, from the first object (`custos fixity run`), recorded as run by `principal`. */
  async runPass(principal: Principal, opts: FixityOptions = {}): Promise<FixityReport> {
    const report = await this.check('', opts);
    await this.recordPass(principal, report.report, 'on-demand');
    return report.report;
  }

  /**
   * One slice of the scheduled pass, if one is due (a pass is due `intervalSeconds` after the last one ended)
   * and no other process holds the job. Returns undefined when there was nothing to do.
   */
  async runScheduled(opts: FixityOptions & { intervalSeconds: number }): Promise<FixityReport | undefined> {
    const now = this.deps.clock.now();
    const leaseSeconds = (opts.maxSeconds ?? 60) * 2 + 60;
    if (!(await this.acquire(now, leaseSeconds))) return undefined;
    try {
      const st = await this.deps.index.db
        .selectFrom('job_state')
        .selectAll()
        .where('name', '=', JOB)
        .executeTakeFirstOrThrow();
      let passStartedAt = st.pass_started_at;
      if (!passStartedAt) {
        const last = st.last_pass_completed_at ? Date.parse(st.last_pass_completed_at) : 0;
        if (now.getTime() - last < opts.intervalSeconds * 1000) return undefined;
        await this.deps.index.db
          .updateTable('job_state')
          .set({ pass_started_at: now.toISOString(), cursor: '', stats_json: '{}' })
          .where('name', '=', JOB)
          .execute();
        passStartedAt = now.toISOString();
        st.cursor = '';
        st.stats_json = '{}';
      }
      const { report, cursor } = await this.check(st.cursor, opts, (c) => this.saveCursor(c));
      const before = JSON.parse(st.stats_json) as {
        checked?: number;
        bytes?: number;
        corrupt?: number;
        corruptObjects?: CorruptObject[];
      };
      // The pass's record names the corrupt objects of every slice, not only the last one's: until 7 Dec 2026 a
      // pass that found damage in an earlier slice ended with a `fixity-check` success naming none.
      const stats = {
        checked: (before.checked ?? 0) + report.checked,
        bytes: (before.bytes ?? 0) + report.bytes,
        corrupt: (before.corrupt ?? 0) + report.corrupt.length,
        corruptObjects: [...(before.corruptObjects ?? []), ...report.corrupt].slice(0, MAX_LISTED),
      };
      if (report.complete) {
        const endedAt = this.deps.clock.now();
        await this.deps.index.db
          .updateTable('job_state')
          .set({
            cursor: '',
            pass_started_at: null,
            last_pass_completed_at: endedAt.toISOString(),
            stats_json: JSON.stringify(stats),
          })
          .where('name', '=', JOB)
          .execute();
        await this.recordPass(
          this.system,
          {
            ...report,
            checked: stats.checked,
            bytes: stats.bytes,
            corrupt: stats.corruptObjects,
            // The whole pass, wall-clock from its first slice's start to its last one's end (the waits between
            // slices included); until 7 Dec 2026 the record gave the last slice's seconds alone.
            seconds: (endedAt.getTime() - Date.parse(passStartedAt)) / 1000,
          },
          'scheduled',
          stats.corrupt,
        );
      } else {
        await this.deps.index.db
          .updateTable('job_state')
          .set({ cursor, stats_json: JSON.stringify(stats) })
          .where('name', '=', JOB)
          .execute();
      }
      return report;
    } finally {
      await this.deps.index.db
        .updateTable('job_state')
        .set({ lease_owner: null, lease_until: null })
        .where('name', '=', JOB)
        .where('lease_owner', '=', this.deps.node)
        .execute();
    }
  }

  private async acquire(now: Date, seconds: number): Promise<boolean> {
    const db = this.deps.index.db;
    const exists = await db.selectFrom('job_state').select('name').where('name', '=', JOB).executeTakeFirst();
    if (!exists) {
      await db
        .insertInto('job_state')
        .values({ name: JOB, cursor: '', stats_json: '{}' })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
    }
    const r = await db
      .updateTable('job_state')
      .set({
        lease_owner: this.deps.node,
        lease_until: new Date(now.getTime() + seconds * 1000).toISOString(),
      })
      .where('name', '=', JOB)
      .where((eb) =>
        eb.or([
          eb('lease_until', 'is', null),
          eb('lease_until', '<', now.toISOString()),
          eb('lease_owner', '=', this.deps.node),
        ]),
      )
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  private async saveCursor(cursor: string): Promise<void> {
    await this.deps.index.db.updateTable('job_state').set({ cursor }).where('name', '=', JOB).execute();
  }

  private async check(
    from: string,
    opts: FixityOptions,
    checkpoint?: (cursor: string) => Promise<void>,
  ): Promise<{ report: FixityReport; cursor: string }> {
    const db = this.deps.index.db;
    const started = Date.now();
    const inQuarantine = from.startsWith(QUARANTINE_CURSOR);
    const after = inQuarantine ? from.slice(QUARANTINE_CURSOR.length) : from;
    // A pass resumed inside the quarantine phase has no archived instances left to check.
    const archived = inQuarantine
      ? { n: 0, bytes: 0 }
      : await db
          .selectFrom('instances')
          .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('size').as('bytes')])
          .where('sop_instance_uid', '>', after)
          .executeTakeFirstOrThrow();
    const held = await db
      .selectFrom('quarantine')
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('size').as('bytes')])
      .where('status', 'in', HELD)
      .where('id', '>', inQuarantine ? after : '')
      .executeTakeFirstOrThrow();
    const progress: FixityProgress = {
      checked: 0,
      bytes: 0,
      corrupt: 0,
      total: Number(archived.n) + Number(held.n),
      totalBytes: Number(archived.bytes ?? 0) + Number(held.bytes ?? 0),
    };
    const report: FixityReport = { checked: 0, bytes: 0, ok: 0, corrupt: [], seconds: 0, complete: false };
    const deadline = opts.maxSeconds ? started + opts.maxSeconds * 1000 : Infinity;
    const phases = [
      {
        prefix: '',
        page: (c: string) =>
          db
            .selectFrom('instances')
            .select(['sop_instance_uid as key', 'sop_instance_uid', 'study_uid', 'blob_id', 'sha256', 'size'])
            .where('sop_instance_uid', '>', c)
            .orderBy('sop_instance_uid')
            .limit(PAGE)
            .execute(),
      },
      {
        prefix: QUARANTINE_CURSOR,
        page: (c: string) =>
          db
            .selectFrom('quarantine')
            .select(['id as key', 'sop_instance_uid', 'study_uid', 'blob_id', 'sha256', 'size'])
            .where('status', 'in', HELD)
            .where('id', '>', c)
            .orderBy('id')
            .limit(PAGE)
            .execute(),
      },
    ];
    let cursor = from;
    for (const phase of inQuarantine ? phases.slice(1) : phases) {
      let position = phase.prefix === '' ? after : inQuarantine ? after : '';
      for (;;) {
        const rows: BlobRow[] = await phase.page(position);
        for (const row of rows) {
          if (opts.signal?.aborted || Date.now() >= deadline) {
            report.seconds = (Date.now() - started) / 1000;
            return { report, cursor };
          }
          await this.checkOne(row, phase.prefix === QUARANTINE_CURSOR, report);
          progress.corrupt = report.corrupt.length;
          position = row.key;
          cursor = phase.prefix + row.key;
          report.checked += 1;
          report.bytes += Number(row.size);
          progress.checked = report.checked;
          progress.bytes = report.bytes;
          opts.onProgress?.(progress);
          if (checkpoint && report.checked % 50 === 0) await checkpoint(cursor);
          if (opts.bytesPerSecond) {
            const due = started + (report.bytes / opts.bytesPerSecond) * 1000;
            if (due > Date.now()) await sleep(due - Date.now());
          }
        }
        if (rows.length < PAGE) break;
      }
    }
    report.complete = true;
    report.seconds = (Date.now() - started) / 1000;
    return { report, cursor };
  }

  /** Verify one blob; mark it (instance or quarantine entry) and, when it fails, alert in the same transaction. */
  private async checkOne(row: BlobRow, quarantined: boolean, report: FixityReport): Promise<void> {
    const db = this.deps.index.db;
    const failure = await this.verify(row);
    const at = this.deps.clock.now().toISOString();
    const mark = (trx: Kysely<DatabaseSchema>, status: 'ok' | 'corrupt') =>
      quarantined
        ? trx
            .updateTable('quarantine')
            .set({ fixity_status: status, fixity_checked_at: at })
            .where('id', '=', row.key)
            .execute()
        : trx
            .updateTable('instances')
            .set({ fixity_status: status, fixity_checked_at: at })
            .where('sop_instance_uid', '=', row.key)
            .execute();
    if (!failure) {
      report.ok += 1;
      await mark(db, 'ok');
      return;
    }
    report.corrupt.push({
      sopInstanceUid: row.sop_instance_uid,
      studyUid: row.study_uid,
      blobId: row.blob_id,
      reason: failure,
      ...(quarantined ? { quarantineId: row.key } : {}),
    });
    await db.transaction().execute(async (trx) => {
      await mark(trx, 'corrupt');
      await this.deps.ledger.appendIn(trx, {
        principal: this.system,
        action: 'alert',
        outcome: 'failure',
        policy: 'n/a',
        studyUid: row.study_uid,
        objects: {
          sopInstanceUids: [row.sop_instance_uid],
          blobId: row.blob_id,
          ...(quarantined ? { quarantineId: row.key } : {}),
        },
        detail: {
          alert: 'object-integrity',
          found: 'fixity',
          ...(quarantined ? { where: 'quarantine' } : {}),
          reason: failure,
        },
      });
    });
  }

  /** Read the whole object through the blob store's checks. Returns why it failed, or undefined when sound. */
  private async verify(row: {
    study_uid: string;
    blob_id: string;
    size: number;
    sha256: string;
  }): Promise<string | undefined> {
    try {
      await readStoredToEnd(this.deps, row);
      return undefined;
    } catch (err) {
      // Tag or digest mismatch, truncation, a missing file: each means the archive no longer holds the object.
      if (err instanceof CustosError && err.code.startsWith('blob.')) return err.message;
      // Its study's data key gone or not unwrapping: the object cannot be read either, and the other studies
      // still can. Until 6 Dec 2026 this ended the pass (`custos fixity run` exited 2 naming no study, the
      // scheduled pass failed at the same object every time), and nothing after it was verified.
      if (err instanceof CustosError && UNREADABLE_KEY.has(err.code))
        return `unreadable: its study's data key cannot be used (${err.message})`;
      throw err;
    }
  }

  /**
   * The other direction of fixity: blobs in the store that nothing in the index refers to. A crash between a
   * blob becoming durable and its index transaction committing leaves one (encrypted, unreachable by any
   * request, never covered by retention or deletion). Only blobs written more than `minAgeSeconds` ago count: an
   * ingest commits its index transaction moments after its blob. With `remove` they are deleted. The run is
   * recorded in the ledger (`fixity-check`, detail.kind `orphan-blobs`, with the ids).
   */
  async findOrphans(
    principal: Principal,
    opts: { remove: boolean; minAgeSeconds: number },
  ): Promise<OrphanReport> {
    const started = Date.now();
    const db = this.deps.index.db;
    const cutoff = this.deps.clock.now().getTime() - opts.minAgeSeconds * 1000;
    const report: OrphanReport = { listed: 0, orphans: [], orphanBytes: 0, removed: 0, young: 0, seconds: 0 };
    for (const group of ID_GROUPS) {
      const candidates = new Map<string, ListedBlob>();
      for await (const blob of this.deps.blobs.list(group)) {
        report.listed++;
        if (blob.modifiedAt.getTime() > cutoff) report.young++;
        else candidates.set(blob.blobId, blob);
      }
      if (!candidates.size) continue;
      for (const table of ['instances', 'quarantine'] as const) {
        // By the first character, not by a range: a PostgreSQL collation need not order ':' after '9'.
        const rows = await db
          .selectFrom(table)
          .select('blob_id')
          .where((eb) => eb(eb.fn('substr', ['blob_id', eb.lit(1), eb.lit(1)]), '=', group))
          .execute();
        for (const r of rows) candidates.delete(r.blob_id);
      }
      for (const blob of candidates.values()) {
        report.orphans.push({
          blobId: blob.blobId,
          storedBytes: blob.storedBytes,
          modifiedAt: blob.modifiedAt.toISOString(),
        });
        report.orphanBytes += blob.storedBytes;
        if (opts.remove) {
          await this.deps.blobs.delete(blob.blobId);
          report.removed++;
        }
      }
    }
    report.seconds = (Date.now() - started) / 1000;
    await this.deps.ledger.append({
      principal,
      action: 'fixity-check',
      outcome: 'success',
      policy: 'n/a',
      objects: { count: report.orphans.length },
      detail: {
        kind: 'orphan-blobs',
        listed: report.listed,
        orphans: report.orphans.length,
        orphanBytes: report.orphanBytes,
        removed: report.removed,
        young: report.young,
        minAgeSeconds: opts.minAgeSeconds,
        blobIds: report.orphans.slice(0, 1000).map((o) => o.blobId),
      },
    });
    return report;
  }

  /** `corrupt`: how many were found, when `r.corrupt` lists only the first MAX_LISTED (a scheduled pass). */
  private async recordPass(
    principal: Principal,
    r: FixityReport,
    kind: string,
    corrupt = r.corrupt.length,
  ): Promise<void> {
    await this.deps.ledger.append({
      principal,
      action: 'fixity-check',
      outcome: corrupt ? 'failure' : 'success',
      policy: 'n/a',
      objects: {
        count: r.checked,
        sopInstanceUids: r.corrupt.slice(0, MAX_LISTED).map((c) => c.sopInstanceUid),
      },
      detail: { kind, bytes: r.bytes, corrupt, complete: r.complete, seconds: r.seconds },
    });
  }
}
