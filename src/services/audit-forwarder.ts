import type { AuditRecord } from '../domain/audit-record.js';
import type { AuditStore } from '../ports/audit-ledger.js';
import type { AuditSink, ForwardLease } from '../ports/audit-sink.js';
import type { Clock } from '../ports/clock.js';

export interface AuditForwarderOptions {
  store: AuditStore;
  sink: AuditSink;
  lease: ForwardLease;
  clock: Clock;
  /** Who this forwarder is in the lease row (node and process). */
  owner: string;
  batchSize?: number;
  /** Pause when the ledger has nothing new. */
  idleMs?: number;
  leaseMs?: number;
  /** How long stop() lets a delivery in progress finish before closing the sink under it. */
  stopGraceMs?: number;
  /** How often a forwarder that does not hold the lease checks whether it may take over (at most leaseMs/2). */
  standbyMs?: number;
  /** Retry delays after a failure: doubling from `initial` up to `max`. */
  backoff?: { initialMs: number; maxMs: number };
  /** Delivery failures (the first of a run, then every 20th) and unexpected errors, for the operator's log. */
  onError?: (err: unknown) => void;
}

export interface ForwarderStatus {
  /** Highest seq known delivered and persisted. */
  committed: number;
  /** Highest seq written to the sink (may be ahead of committed). */
  sent: number;
  holdingLease: boolean;
  consecutiveFailures: number;
  lastError?: string;
}

/**
 * Forwards the audit ledger to an audit record repository. The ledger in the database is the durable buffer:
 * the forwarder reads it in sequence order from its persisted cursor, so a repository that is down for hours
 * loses nothing; it resumes from the cursor when the repository (or Custos) comes back.
 *
 * Delivery is at least once. The cursor is persisted only after the records were written and their connection
 * was then seen still open (at the start of the next round, or after an idle pause); if the connection failed
 * in between, everything after the persisted cursor is sent again on the next connection. A crash between a
 * send and the cursor update also resends. A receiver therefore may see a record twice; the AuditMessage carries
 * no seq, but the pair (EventDateTime, ActiveParticipant, objects) identifies it and the FHIR AuditEvent id is
 * the seq. What no syslog sender can rule out: RFC 5425 has no acknowledgement, so a repository that accepts TCP
 * data and dies before storing it, while the connection still looks open, loses those records.
 *
 * One forwarder sends at a time: each round renews a lease row (ForwardLease); the others sleep and take over
 * when its lease expires.
 */
export class AuditForwarder {
  private committed = 0;
  private sent = 0;
  /** Connection epoch the records in (committed, sent] were written on. */
  private sentEpoch = -1;
  private holding = false;
  /** When the lease must next be renewed (epoch ms). */
  private renewAt = 0;
  private failures = 0;
  private lastError: string | undefined;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  private onError: ((err: unknown) => void) | undefined;

  constructor(private readonly o: AuditForwarderOptions) {
    this.onError = o.onError;
  }

  status(): ForwarderStatus {
    return {
      committed: this.committed,
      sent: this.sent,
      holdingLease: this.holding,
      consecutiveFailures: this.failures,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** Starts forwarding in the background; `onError` (if given) replaces the constructor's error callback. */
  start(onError?: (err: unknown) => void): void {
    if (!this.stopped) return;
    if (onError) this.onError = onError;
    this.stopped = false;
    this.loop = this.run();
  }

  /**
   * Stops after the current round, persists what is confirmed, gives the lease up and closes the sink. A
   * delivery stuck on an unresponsive repository is cut after `stopGraceMs` by closing the sink under it.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    if (this.loop) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), this.o.stopGraceMs ?? 5_000);
      });
      if ((await Promise.race([this.loop, graceOver])) === 'late') await this.o.sink.close();
      clearTimeout(timer);
      await this.loop;
      this.loop = undefined;
    }
    await this.o.sink.close();
  }

  private get leaseMs() {
    return this.o.leaseMs ?? 30_000;
  }

  private until(): string {
    return new Date(this.o.clock.now().getTime() + this.leaseMs).toISOString();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let pause: number;
      try {
        pause = await this.round();
        this.failures = 0;
      } catch (err) {
        this.failures++;
        this.lastError = err instanceof Error ? err.message : String(err);
        // A repository down for hours would otherwise log every retry: report the first failure of a run and
        // then every 20th (status() always has the latest).
        if (this.failures === 1 || this.failures % 20 === 0) this.onError?.(err);
        // Whatever was written since the last commit may not have arrived: send it again.
        this.sent = this.committed;
        const b = this.o.backoff ?? { initialMs: 500, maxMs: 60_000 };
        pause = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(this.failures - 1, 20));
      }
      if (!this.stopped && pause > 0) await this.sleep(pause);
    }
    try {
      await this.confirm();
      if (this.holding) await this.o.lease.release(this.o.owner);
    } catch (err) {
      this.onError?.(err);
    }
    this.holding = false;
  }

  /** Persist (committed, sent] if the connection they were written on is still the open one. */
  private async confirm(): Promise<void> {
    if (!this.holding || this.sent <= this.committed) return;
    const c = this.o.sink.connection();
    if (!c.open || c.epoch !== this.sentEpoch) {
      this.sent = this.committed;
      return;
    }
    const nowMs = this.o.clock.now().getTime();
    if (await this.o.lease.commit(this.o.owner, this.sent, this.until())) {
      this.committed = this.sent;
      this.renewAt = nowMs + this.leaseMs / 3;
    } else this.lostLease();
  }

  private lostLease() {
    this.holding = false;
    this.sent = this.committed;
  }

  /** One round: hold the lease, confirm the previous batch, send the next. Answers how long to pause. */
  private async round(): Promise<number> {
    const nowMs = this.o.clock.now().getTime();
    // The lease is renewed once a third of it has passed (a commit renews it too), not on every batch: each
    // renewal is a write transaction, which on SQLite competes with the ledger for the one write lock.
    if (!this.holding || nowMs >= this.renewAt) {
      const lease = await this.o.lease.acquire(this.o.owner, new Date(nowMs).toISOString(), this.until());
      if (!lease) {
        this.holding = false;
        return Math.min(this.leaseMs / 2, this.o.standbyMs ?? 5_000);
      }
      this.renewAt = nowMs + this.leaseMs / 3;
      if (!this.holding || lease.cursor > this.committed) {
        // Newly taken (or taken over): start from what the last holder persisted.
        this.holding = true;
        this.committed = this.sent = lease.cursor;
      }
    }
    await this.confirm();
    if (!this.holding) return 0;
    const rows = await this.o.store.rowsAfter(this.sent, this.o.batchSize ?? 500);
    if (!rows.length) return this.o.idleMs ?? 1_000;
    const records = rows.map((r) => JSON.parse(r.text) as AuditRecord);
    await this.o.sink.deliver(records);
    this.sent = rows[rows.length - 1]!.seq;
    this.sentEpoch = this.o.sink.connection().epoch;
    return 0;
  }
}
