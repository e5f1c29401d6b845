import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../domain/audit-record.js';
import { sampleRecord } from '../../test/support/audit-records.js';
import type { AuditStore, LedgerRow } from '../ports/audit-ledger.js';
import type { AuditSink, ForwardLease } from '../ports/audit-sink.js';
import { systemClock } from '../ports/clock.js';
import { AuditForwarder } from './audit-forwarder.js';

function storeOf(records: AuditRecord[]): AuditStore {
  return {
    search: async () => [],
    checkpoints: async () => [],
    head: async () => ({ seq: records.length, hash: '' }),
    rowsAfter: async (after: number, limit: number): Promise<LedgerRow[]> =>
      records
        .filter((r) => r.seq > after)
        .slice(0, limit)
        .map((r) => ({
          seq: r.seq,
          prevHash: '',
          hash: '',
          text: JSON.stringify(r),
          columns: {
            ts: r.ts,
            actor: r.actor.name,
            action: r.action,
            outcome: r.outcome,
            patientId: '',
            studyUid: '',
          },
        })),
  } as unknown as AuditStore;
}

class MemoryLease implements ForwardLease {
  cursor = 0;
  owner = '';
  until = '';
  async acquire(owner: string, now: string, until: string) {
    if (this.owner && this.owner !== owner && this.until > now) return undefined;
    this.owner = owner;
    this.until = until;
    return { cursor: this.cursor };
  }
  async commit(owner: string, cursor: number) {
    if (owner !== this.owner || cursor < this.cursor) return false;
    this.cursor = cursor;
    return true;
  }
  async release(owner: string) {
    if (owner === this.owner) this.owner = '';
  }
}

/** A sink whose connection the test can break after a delivery "succeeded". */
class FlakySink implements AuditSink {
  delivered: number[] = [];
  epoch = 1;
  open = true;
  onDeliver: ((seqs: number[]) => void) | undefined;
  async deliver(records: readonly AuditRecord[]) {
    if (!this.open) {
      this.epoch++;
      this.open = true;
    }
    const seqs = records.map((r) => r.seq);
    this.delivered.push(...seqs);
    this.onDeliver?.(seqs);
  }
  connection() {
    return { epoch: this.epoch, open: this.open };
  }
  async close() {}
}

const until = async (cond: () => boolean) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > 5000) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('AuditForwarder delivery semantics', () => {
  const records = Array.from({ length: 6 }, (_, i) => sampleRecord({ seq: i + 1 }));

  it('sends again what was written on a connection that then closed, and commits only once it stays open', async () => {
    const sink = new FlakySink();
    const lease = new MemoryLease();
    let broke = false;
    sink.onDeliver = (seqs) => {
      // The repository dies right after accepting the first batch, before the forwarder confirms it.
      if (!broke && seqs[0] === 1) {
        broke = true;
        sink.open = false;
      }
    };
    const fwd = new AuditForwarder({
      store: storeOf(records),
      sink,
      lease,
      clock: systemClock,
      owner: 'me',
      batchSize: 3,
      idleMs: 5,
    });
    fwd.start();
    await until(() => fwd.status().committed === 6);
    await fwd.stop();
    expect(sink.delivered).toEqual([1, 2, 3, 1, 2, 3, 4, 5, 6]);
    expect(lease.cursor).toBe(6);
    expect(lease.owner).toBe('');
  });

  it('retries with doubling backoff while delivery fails, then resumes from the committed cursor', async () => {
    const lease = new MemoryLease();
    lease.cursor = 2;
    let failuresLeft = 3;
    const delivered: number[] = [];
    const attempts: number[] = [];
    const sink: AuditSink = {
      deliver: async (rs) => {
        attempts.push(Date.now());
        if (failuresLeft-- > 0) throw new Error('repository down');
        delivered.push(...rs.map((r) => r.seq));
      },
      connection: () => ({ epoch: 1, open: true }),
      close: async () => {},
    };
    const errors: unknown[] = [];
    const fwd = new AuditForwarder({
      store: storeOf(records),
      sink,
      lease,
      clock: systemClock,
      owner: 'me',
      idleMs: 5,
      backoff: { initialMs: 40, maxMs: 1000 },
      onError: (e) => errors.push(e),
    });
    fwd.start();
    await until(() => fwd.status().committed === 6);
    await fwd.stop();
    expect(delivered).toEqual([3, 4, 5, 6]);
    // Three failures in a row are reported once: the first of the run.
    expect(errors).toHaveLength(1);
    const gaps = attempts.slice(1, 4).map((t, i) => t - attempts[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(35);
    expect(gaps[1]).toBeGreaterThanOrEqual(75);
    expect(gaps[2]).toBeGreaterThanOrEqual(155);
  });

  it('stays idle while another owner holds a live lease, and takes over once it expires', async () => {
    const lease = new MemoryLease();
    lease.owner = 'other';
    lease.until = new Date(Date.now() + 300).toISOString();
    const sink = new FlakySink();
    const fwd = new AuditForwarder({
      store: storeOf(records),
      sink,
      lease,
      clock: systemClock,
      owner: 'me',
      idleMs: 5,
      leaseMs: 1000,
      standbyMs: 20,
    });
    fwd.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(sink.delivered).toEqual([]);
    expect(fwd.status().holdingLease).toBe(false);
    await until(() => fwd.status().committed === 6);
    await fwd.stop();
    expect(sink.delivered).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
