import type { Kysely } from 'kysely';
import type { AuditEvent, AuditLedger } from '../../ports/audit-ledger.js';
import type { DatabaseSchema, IndexDb } from '../../ports/database.js';
import type { Clock } from '../../ports/clock.js';

/**
 * The first-day ledger: one append-only table in the index database (triggers refuse UPDATE/DELETE). Issue 5
 * replaces it with the hash-chained, signed ledger behind the same port.
 */
export class SqlAuditLedger implements AuditLedger {
  constructor(
    private readonly index: IndexDb,
    private readonly clock: Clock,
  ) {}

  private row(event: AuditEvent) {
    return {
      ts: this.clock.now().toISOString(),
      actor: event.principal.name,
      actor_role: event.principal.role,
      action: event.action,
      outcome: event.outcome,
      policy: event.policy,
      patient_id: event.patientId ?? '',
      study_uid: event.studyUid ?? '',
      objects_json: JSON.stringify(event.objects ?? {}),
      source: event.principal.source,
      detail_json: JSON.stringify(event.detail ?? {}),
    };
  }

  async append(event: AuditEvent): Promise<void> {
    // SQLite runs with synchronous=FULL and PostgreSQL commits synchronously: resolved means durable.
    await this.index.db.insertInto('audit_log').values(this.row(event)).execute();
  }

  async appendIn(trx: unknown, event: AuditEvent): Promise<void> {
    await (trx as Kysely<DatabaseSchema>).insertInto('audit_log').values(this.row(event)).execute();
  }
}
