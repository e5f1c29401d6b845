import type { AuditRecord } from '../domain/audit-record.js';

/**
 * Where forwarded audit records go (an audit record repository: syslog over TLS or UDP). `deliver` resolves once
 * the records were handed to the transport in order, and rejects if any could not be; the forwarder then sends
 * them again from its last committed cursor.
 */
export interface AuditSink {
  deliver(records: readonly AuditRecord[]): Promise<void>;
  /**
   * The connection the last delivery used. `epoch` changes whenever the sink reconnects; `open` is false once the
   * connection closed or failed. A connectionless sink (UDP) reports a constant epoch and `open: true`. The
   * forwarder treats records as received only once it sees their connection still open after they were written.
   */
  connection(): { epoch: number; open: boolean };
  close(): Promise<void>;
}

/**
 * The forwarder's persistent cursor and the lease that lets one process forward at a time (several server
 * workers or nodes may run a forwarder; the others wait). Times are ISO 8601 UTC.
 */
export interface ForwardLease {
  /**
   * Takes or renews the lease for `owner` until `until` when it is free, expired (before `now`) or already
   * `owner`'s; answers the committed cursor, or undefined when another owner holds a live lease.
   */
  acquire(owner: string, now: string, until: string): Promise<{ cursor: number } | undefined>;
  /** Persists `cursor` (never backwards) if `owner` still holds the lease; false when it was taken over. */
  commit(owner: string, cursor: number, until: string): Promise<boolean>;
  /** Gives the lease up (on shutdown) so another process can take over at once. */
  release(owner: string): Promise<void>;
}
