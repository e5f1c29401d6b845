/**
 * Data-quality KPIs (issue 6; served as GET /api/quality/kpis, docs/quality-kpis.md). Pure: the service reads
 * the audit ledger and the quarantine table and hands the facts in; the clock is passed in.
 *
 * An arriving object is counted once, by the ledger record its ingest wrote:
 * - accepted: `store` success with no validation finding;
 * - acceptedWithWarnings: `store` success whose record lists validation findings (detail.validation);
 * - quarantined: `quarantine`;
 * - rejected: `store` failure for a header defect (codes ingest.validation-failed, ingest.invalid-attribute).
 * Duplicates (the same object sent again) and releases from quarantine (a `store` with detail.releasedFrom) are
 * not new arrivals and are not counted; nor are failures that are not about the header (storage, transport).
 */
export type ArrivalOutcome = 'accepted' | 'acceptedWithWarnings' | 'quarantined' | 'rejected';

/** The parts of a ledger record the KPIs read. */
export interface KpiLedgerFact {
  ts: string;
  action: string;
  outcome: string;
  objects?: Record<string, unknown>;
  detail?: Record<string, unknown>;
}

const HEADER_REJECTIONS = new Set(['ingest.validation-failed', 'ingest.invalid-attribute']);

/** How an ingest ledger record counts, or undefined when it is not an arrival. */
export function arrivalOutcome(r: KpiLedgerFact): ArrivalOutcome | undefined {
  if (r.action === 'quarantine') return r.outcome === 'success' ? 'quarantined' : undefined;
  if (r.action !== 'store') return undefined;
  if (r.outcome === 'failure')
    return HEADER_REJECTIONS.has(String(r.detail?.code ?? '')) ? 'rejected' : undefined;
  if (r.outcome !== 'success') return undefined;
  if (r.objects?.duplicate === true || r.detail?.releasedFrom !== undefined) return undefined;
  const findings = r.detail?.validation;
  return Array.isArray(findings) && findings.length > 0 ? 'acceptedWithWarnings' : 'accepted';
}

/** Ledger actions counted as reconciliations, by the KPI member they count in. */
export const RECONCILIATION_ACTIONS = {
  merges: 'hl7-patient-merge',
  identifierChanges: 'hl7-patient-identifier-change',
  corrections: 'correct-header',
  releases: 'release',
  rejections: 'reject',
} as const;
export type ReconciliationKind = keyof typeof RECONCILIATION_ACTIONS;

export interface DayCounts {
  day: string;
  accepted: number;
  acceptedWithWarnings: number;
  quarantined: number;
  rejected: number;
}

export interface QualityKpis {
  from: string;
  to: string;
  objects: {
    total: number;
    accepted: number;
    acceptedWithWarnings: number;
    quarantined: number;
    rejected: number;
  };
  /** Share of arrivals whose header had no finding at all, in percent (one decimal); null with no arrivals. */
  headerCorrectPercent: number | null;
  /** Entries waiting for the data steward now (not limited to the period), with their age in hours. */
  quarantine: { open: number; oldestAgeHours: number | null; medianAgeHours: number | null };
  reconciliations: Record<ReconciliationKind, number>;
  byDay: DayCounts[];
}

/** Every calendar day (UTC) from `from` to `to`, both included, as YYYY-MM-DD. */
export function daysBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000)
    out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const hours = (ms: number) => Math.round((ms / 3_600_000) * 10) / 10;

/** The KPIs of the period from the ledger facts in it and the open quarantine entries' creation times. */
export function computeQualityKpis(input: {
  from: string;
  to: string;
  now: Date;
  ledger: readonly KpiLedgerFact[];
  openQuarantineCreatedAt: readonly string[];
}): QualityKpis {
  const byDay = new Map<string, DayCounts>(
    daysBetween(input.from, input.to).map((day) => [
      day,
      { day, accepted: 0, acceptedWithWarnings: 0, quarantined: 0, rejected: 0 },
    ]),
  );
  const objects = { total: 0, accepted: 0, acceptedWithWarnings: 0, quarantined: 0, rejected: 0 };
  const reconciliations: Record<ReconciliationKind, number> = {
    merges: 0,
    identifierChanges: 0,
    corrections: 0,
    releases: 0,
    rejections: 0,
  };
  const kindOf = new Map(
    Object.entries(RECONCILIATION_ACTIONS).map(([k, a]) => [a, k as ReconciliationKind]),
  );
  for (const r of input.ledger) {
    const day = byDay.get(r.ts.slice(0, 10));
    if (!day) continue;
    const arrival = arrivalOutcome(r);
    if (arrival) {
      objects[arrival] += 1;
      objects.total += 1;
      day[arrival] += 1;
      continue;
    }
    const kind = kindOf.get(r.action as (typeof RECONCILIATION_ACTIONS)[ReconciliationKind]);
    if (kind && r.outcome === 'success') reconciliations[kind] += 1;
  }
  const ages = input.openQuarantineCreatedAt.map((c) => input.now.getTime() - Date.parse(c));
  const med = median(ages);
  return {
    from: input.from,
    to: input.to,
    objects,
    headerCorrectPercent: objects.total ? Math.round((objects.accepted / objects.total) * 1000) / 10 : null,
    quarantine: {
      open: ages.length,
      oldestAgeHours: ages.length ? hours(Math.max(...ages)) : null,
      medianAgeHours: med === null ? null : hours(med),
    },
    reconciliations,
    byDay: [...byDay.values()],
  };
}
