import type { Principal } from '../domain/principal.js';

export interface AuditEvent {
  principal: Principal;
  action: string;
  outcome: 'success' | 'denied' | 'failure';
  /** The policy that decided, or 'n/a' for events no policy decides (e.g. a failed login). */
  policy: string;
  patientId?: string;
  studyUid?: string;
  /** Which objects: series / SOP instance UIDs, or a query and its result count. */
  objects?: Record<string, unknown>;
  detail?: Record<string, unknown>;
}

/**
 * Append-only audit ledger (issue 5 adds chaining, signatures and export). `append` resolves only once the
 * record is durable, so a read's record exists before its data leaves the process. `appendIn` writes in a
 * caller's transaction so a mutation and its record commit together.
 */
export interface AuditLedger {
  append(event: AuditEvent): Promise<void>;
  appendIn(trx: unknown, event: AuditEvent): Promise<void>;
}
