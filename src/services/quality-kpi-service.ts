import { CustosError } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import {
  computeQualityKpis,
  RECONCILIATION_ACTIONS,
  type KpiLedgerFact,
  type QualityKpis,
} from '../domain/quality-kpis.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { Clock } from '../ports/clock.js';
import type { IndexDb } from '../ports/database.js';
import type { AccessGate } from './access-gate.js';

/** Longest period one request may cover (the ledger rows of the period are read and counted here). */
export const MAX_KPI_DAYS = 366;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

const badParam = (parameter: string, message: string) =>
  new CustosError({
    code: 'quality.bad-request',
    message: `${parameter}: ${message}`,
    httpStatus: 400,
    detail: { parameter },
  });

function parseDay(parameter: string, raw: string): string {
  if (
    !DAY.test(raw) ||
    Number.isNaN(Date.parse(`${raw}T00:00:00Z`)) ||
    new Date(`${raw}T00:00:00Z`).toISOString().slice(0, 10) !== raw
  )
    throw badParam(parameter, `must be a calendar date YYYY-MM-DD, got '${raw}'`);
  return raw;
}

/**
 * Data-quality KPIs for the data steward, owner, custodian and privacy officer (policy
 * archive-read-quality-kpis): arrivals by validation outcome, the open quarantine queue, reconciliations.
 * Counts come from the audit ledger, which records every ingest outcome, so they cover objects that were
 * rejected and never stored.
 */
export class QualityKpiService {
  constructor(
    private readonly deps: { index: IndexDb; gate: AccessGate; ledger: AuditLedger; clock: Clock },
  ) {}

  /** Period from `from` to `to` (UTC days, both included); default: the last 30 days up to today. */
  /**
   * The decision this service's report take, alone: a route takes it before it reads the request's body or
   * parameters, so that a caller who may not read the quality KPIs is refused (403, recorded) whatever it
   * sent, rather than told what is wrong with its request (400, unrecorded: until 6 Dec 2026).
   */
  async authorize(principal: Principal): Promise<void> {
    await this.deps.gate.require(principal, 'read-quality-kpis', { type: 'archive' });
  }

  async kpis(principal: Principal, period: { from?: string; to?: string }): Promise<QualityKpis> {
    const now = this.deps.clock.now();
    const to = period.to !== undefined ? parseDay('to', period.to) : now.toISOString().slice(0, 10);
    const from =
      period.from !== undefined
        ? parseDay('from', period.from)
        : new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10);
    if (from > to) throw badParam('from', `${from} is after to=${to}`);
    const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
    if (days > MAX_KPI_DAYS)
      throw badParam('to', `the period may cover at most ${MAX_KPI_DAYS} days, not ${days}`);
    const decision = await this.deps.gate.require(principal, 'read-quality-kpis', { type: 'archive' });
    const end = new Date(Date.parse(`${to}T00:00:00Z`) + 86_400_000).toISOString();
    const rows = await this.deps.index.db
      .selectFrom('audit_ledger')
      .select(['record'])
      .where('action', 'in', ['store', 'quarantine', ...Object.values(RECONCILIATION_ACTIONS)])
      .where('ts', '>=', `${from}T00:00:00.000Z`)
      .where('ts', '<', end)
      .execute();
    const open = await this.deps.index.db
      .selectFrom('quarantine')
      .select(['created_at'])
      .where('status', '=', 'quarantined')
      .execute();
    const result = computeQualityKpis({
      from,
      to,
      now,
      ledger: rows.map((r) => JSON.parse(r.record) as KpiLedgerFact),
      openQuarantineCreatedAt: open.map((o) => o.created_at),
    });
    await this.deps.ledger.append({
      principal,
      action: 'read-quality-kpis',
      outcome: 'success',
      policy: decision.policy,
      detail: { from, to },
    });
    return result;
  }
}
