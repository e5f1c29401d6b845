import { sql } from 'kysely';
import { CustosError } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import type { AuditLedger, AuditStore } from '../ports/audit-ledger.js';
import type { Clock } from '../ports/clock.js';
import type { IndexDb } from '../ports/database.js';
import type { AccessGate } from './access-gate.js';
import { STUDY_FACT_COLUMNS, type StudyFacts } from './study-facts.js';

/** How many of a study's own ledger records the study page shows (newest first). */
export const STUDY_HISTORY_LIMIT = 200;
/** The longest span the activity figures cover in one request. */
export const ACTIVITY_MAX_DAYS = 366;

export interface StudyGovernance {
  studyUid: string;
  patientId: string;
  /** Present only when the caller may read the study's metadata. */
  patientName?: string;
  studyDescription?: string;
  accessionNumber?: string;
  studyDate: string;
  modalities: string[];
  numSeries: number;
  numInstances: number;
  totalBytes: number;
  owner: string | null;
  department: string | null;
  classification: string;
  retentionUntil: string | null;
  status: string;
  createdAt: string;
  updatedAt: string;
}

export interface SeriesSummary {
  seriesUid: string;
  modality: string;
  seriesNumber: number | null;
  seriesDescription: string;
  bodyPart: string;
  numInstances: number;
}

export interface StudyAccess {
  seq: number;
  ts: string;
  actor: string;
  role: string;
  action: string;
  outcome: string;
  policy: string;
  source: string;
  channel?: string;
  breakGlassReason?: string;
}

export interface StudyPage {
  study: StudyGovernance;
  /** null when the caller may not read the study's metadata (a privacy officer auditing it). */
  series: SeriesSummary[] | null;
  /** null when the caller may not read the audit of this study. */
  accessHistory: { records: StudyAccess[]; truncated: boolean } | null;
  permissions: { viewMetadata: boolean; readAudit: boolean };
}

export interface ActivityDay {
  day: string;
  /** Instances archived that day (from the index). */
  ingested: number;
  ingestedBytes: number;
  /** Refused accesses recorded in the ledger that day. */
  denied: number;
  /** Break-glass openings recorded in the ledger that day. */
  breakGlass: number;
}

export interface Activity {
  from: string;
  to: string;
  totals: { ingested: number; ingestedBytes: number; denied: number; breakGlass: number };
  byDay: ActivityDay[];
}

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * What the web console reads beyond QIDO and the audit API: one study's governance page (decided per study,
 * recorded like any metadata read) and the activity figures of the dashboard (counts per day, decided on the
 * archive by the `view-activity` action).
 */
export class ConsoleService {
  constructor(
    private readonly deps: {
      index: IndexDb;
      gate: AccessGate;
      ledger: AuditLedger;
      auditStore: AuditStore;
      facts: StudyFacts;
      clock: Clock;
    },
  ) {}

  /**
   * One study's governance state, series and access history. Who sees what: the study's metadata and series
   * need `view-metadata` on the study; its access history needs `read-audit` (archive-wide for the privacy
   * officer, or on the study for its data owner). Someone with neither is refused (and the refusal recorded).
   */
  async study(principal: Principal, studyUid: string, channel: string): Promise<StudyPage> {
    const { index, gate, ledger } = this.deps;
    const row = await index.db
      .selectFrom('studies as st')
      .innerJoin('patients as p', 'p.pk', 'st.patient_pk')
      .select([
        ...STUDY_FACT_COLUMNS,
        'p.patient_name',
        'st.study_date',
        'st.study_description',
        'st.accession_number',
        'st.modalities',
        'st.num_series',
        'st.num_instances',
        'st.total_bytes',
        'st.retention_until',
        'st.status',
        'st.created_at',
        'st.updated_at',
      ])
      .where('st.study_uid', '=', studyUid)
      .executeTakeFirst();
    if (!row) {
      // Whoever reads the ledger archive-wide sees every study's page (its history), so may learn that one is
      // missing; as may whoever may read every study's metadata (retrieve's rule). Anyone else gets the refusal
      // a forbidden study gets, so a refusal says nothing about whether the study exists.
      if (!(await gate.decide(principal, 'read-audit', { type: 'archive' })).allowed)
        await gate.requireUnknownStudy(principal, 'view-metadata', studyUid);
      throw new CustosError({
        code: 'study.not-found',
        message: `no study ${studyUid} in the archive`,
        httpStatus: 404,
      });
    }
    const ref = await this.deps.facts.resource(row);
    const view = await gate.decide(principal, 'view-metadata', ref);
    const archiveAudit = await gate.decide(principal, 'read-audit', { type: 'archive' });
    const audit = archiveAudit.allowed ? archiveAudit : await gate.decide(principal, 'read-audit', ref);
    if (!view.allowed && !audit.allowed) await gate.require(principal, 'view-metadata', ref);

    const study: StudyGovernance = {
      studyUid: row.study_uid,
      patientId: row.patient_id,
      studyDate: row.study_date,
      modalities: row.modalities ? row.modalities.split('\\') : [],
      numSeries: Number(row.num_series),
      numInstances: Number(row.num_instances),
      totalBytes: Number(row.total_bytes),
      owner: row.owner,
      department: row.department,
      classification: row.classification,
      retentionUntil: row.retention_until,
      status: row.status,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      ...(view.allowed
        ? {
            patientName: row.patient_name,
            studyDescription: row.study_description,
            accessionNumber: row.accession_number,
          }
        : {}),
    };
    let series: SeriesSummary[] | null = null;
    if (view.allowed) {
      const rows = await index.db
        .selectFrom('series')
        .select([
          'series_uid',
          'modality',
          'series_number',
          'series_description',
          'body_part',
          'num_instances',
        ])
        .where('study_uid', '=', studyUid)
        .orderBy('series_number')
        .orderBy('series_uid')
        .execute();
      series = rows.map((s) => ({
        seriesUid: s.series_uid,
        modality: s.modality,
        seriesNumber: s.series_number,
        seriesDescription: s.series_description,
        bodyPart: s.body_part,
        numInstances: Number(s.num_instances),
      }));
      await ledger.append({
        principal,
        action: 'view-metadata',
        outcome: 'success',
        policy: view.policy,
        patientId: row.patient_id,
        studyUid,
        channel,
        objects: { studies: [studyUid], level: 'study', count: 1 },
        ...(view.breakGlass
          ? { breakGlassReason: view.breakGlass.reason, detail: { breakGlass: view.breakGlass.ids } }
          : {}),
      });
    }
    let accessHistory: StudyPage['accessHistory'] = null;
    if (audit.allowed) {
      const records = await this.deps.auditStore.search({
        studyUid,
        order: 'desc',
        limit: STUDY_HISTORY_LIMIT + 1,
      });
      accessHistory = {
        records: records.slice(0, STUDY_HISTORY_LIMIT).map((r) => ({
          seq: r.seq,
          ts: r.ts,
          actor: r.actor.name,
          role: r.actor.role,
          action: r.action,
          outcome: r.outcome,
          policy: r.policy,
          source: r.source,
          ...(r.channel ? { channel: r.channel } : {}),
          ...(r.breakGlassReason ? { breakGlassReason: r.breakGlassReason } : {}),
        })),
        truncated: records.length > STUDY_HISTORY_LIMIT,
      };
      await ledger.append({
        principal,
        action: 'read-audit',
        outcome: 'success',
        policy: audit.policy,
        patientId: row.patient_id,
        studyUid,
        channel,
        objects: {
          query: { operation: 'study-history', studyUid },
          count: accessHistory.records.length,
        },
      });
    }
    return {
      study,
      series,
      accessHistory,
      permissions: { viewMetadata: view.allowed, readAudit: audit.allowed },
    };
  }

  /**
   * Activity per UTC day between two dates (inclusive): instances archived (index), refused accesses and
   * break-glass openings (ledger). Counts only: no names, no patients.
   */
  /**
   * The decision activity() takes, alone: the route takes it before it reads its parameters, so that a caller
   * who may not view the activity is refused (403, recorded) rather than told what is wrong with its request.
   */
  async authorizeActivity(principal: Principal): Promise<void> {
    await this.deps.gate.require(principal, 'view-activity', { type: 'archive' });
  }

  async activity(
    principal: Principal,
    range: { from?: string; to?: string },
    channel: string,
  ): Promise<Activity> {
    const decision = await this.deps.gate.require(principal, 'view-activity', { type: 'archive' });
    const today = this.deps.clock.now().toISOString().slice(0, 10);
    const to = range.to ?? today;
    const from = range.from ?? addDays(to, -29);
    for (const [name, v] of [
      ['from', from],
      ['to', to],
    ] as const) {
      // A day that does not exist (2026-02-30) is refused too: Date.parse rolls it into March, and until 7 Dec 2026
      // the answer listed that day alone and left out the real days of the range with what they counted.
      if (
        !DAY_RE.test(v) ||
        Number.isNaN(Date.parse(`${v}T00:00:00Z`)) ||
        new Date(`${v}T00:00:00Z`).toISOString().slice(0, 10) !== v
      )
        throw new CustosError({
          code: 'kpi.bad-range',
          message: `${name}: '${v}' is not a date (YYYY-MM-DD)`,
          httpStatus: 400,
          detail: { parameter: name },
        });
    }
    if (from > to)
      throw new CustosError({
        code: 'kpi.bad-range',
        message: `from (${from}) must not be after to (${to})`,
        httpStatus: 400,
        detail: { parameter: 'from' },
      });
    if (daysBetween(from, to) >= ACTIVITY_MAX_DAYS)
      throw new CustosError({
        code: 'kpi.bad-range',
        message: `the range may cover at most ${ACTIVITY_MAX_DAYS} days`,
        httpStatus: 400,
        detail: { parameter: 'from' },
      });
    const start = `${from}T00:00:00.000Z`;
    const end = `${addDays(to, 1)}T00:00:00.000Z`;
    const db = this.deps.index.db;
    const dayOf = (col: string) => sql<string>`substr(${sql.ref(col)}, 1, 10)`;
    const [ingest, denied, breakGlass] = await Promise.all([
      db
        .selectFrom('instances')
        .select([
          dayOf('created_at').as('day'),
          sql<number>`count(*)`.as('n'),
          sql<number>`coalesce(sum(size), 0)`.as('bytes'),
        ])
        .where('created_at', '>=', start)
        .where('created_at', '<', end)
        .groupBy(dayOf('created_at'))
        .execute(),
      db
        .selectFrom('audit_ledger')
        .select([dayOf('ts').as('day'), sql<number>`count(*)`.as('n')])
        .where('ts', '>=', start)
        .where('ts', '<', end)
        .where('outcome', '=', 'denied')
        .groupBy(dayOf('ts'))
        .execute(),
      db
        .selectFrom('audit_ledger')
        .select([dayOf('ts').as('day'), sql<number>`count(*)`.as('n')])
        .where('ts', '>=', start)
        .where('ts', '<', end)
        .where('action', '=', 'break-glass')
        .where('outcome', '=', 'success')
        .groupBy(dayOf('ts'))
        .execute(),
    ]);
    const byDay = new Map<string, ActivityDay>();
    for (let d = from; d <= to; d = addDays(d, 1))
      byDay.set(d, { day: d, ingested: 0, ingestedBytes: 0, denied: 0, breakGlass: 0 });
    for (const r of ingest) {
      const e = byDay.get(r.day);
      if (e) {
        e.ingested = Number(r.n);
        e.ingestedBytes = Number(r.bytes);
      }
    }
    for (const r of denied) {
      const e = byDay.get(r.day);
      if (e) e.denied = Number(r.n);
    }
    for (const r of breakGlass) {
      const e = byDay.get(r.day);
      if (e) e.breakGlass = Number(r.n);
    }
    const days = [...byDay.values()];
    const totals = days.reduce(
      (t, d) => ({
        ingested: t.ingested + d.ingested,
        ingestedBytes: t.ingestedBytes + d.ingestedBytes,
        denied: t.denied + d.denied,
        breakGlass: t.breakGlass + d.breakGlass,
      }),
      { ingested: 0, ingestedBytes: 0, denied: 0, breakGlass: 0 },
    );
    await this.deps.ledger.append({
      principal,
      action: 'view-activity',
      outcome: 'success',
      policy: decision.policy,
      channel,
      objects: { query: { operation: 'activity', from, to } },
    });
    return { from, to, totals, byDay: days };
  }
}

function addDays(day: string, n: number): string {
  const t = new Date(`${day}T00:00:00Z`);
  t.setUTCDate(t.getUTCDate() + n);
  return t.toISOString().slice(0, 10);
}

function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}
