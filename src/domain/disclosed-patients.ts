import type { AuditRecord } from './audit-record.js';
import type { QidoLevel } from './qido-query.js';

/**
 * One patient whose data a search returned (a `query` record's `objects.patients`): how many of the patient's
 * studies, series (series and instance level) and instances (instance level) the answer held. The answer's rows
 * carry the patient's name, ID and study details, so a search is a disclosure of each patient it returned.
 */
export interface DisclosedPatient {
  patientId: string;
  studies: number;
  series?: number;
  instances?: number;
}

/** A row of a search's answer, as far as its patient and its place in the patient's data go. */
export interface ReturnedRow {
  patientId: string;
  studyUid: string;
  seriesUid?: string;
  sopInstanceUid?: string;
}

/**
 * The patients an answer's rows belong to, one entry each, sorted by Patient ID. The list grows with the distinct
 * patients, not with the rows: an answer of 10,000 instances of one patient is one entry.
 */
export function disclosedPatients(level: QidoLevel, rows: Iterable<ReturnedRow>): DisclosedPatient[] {
  const byPatient = new Map<string, { studies: Set<string>; series: Set<string>; instances: number }>();
  for (const row of rows) {
    let p = byPatient.get(row.patientId);
    if (!p) byPatient.set(row.patientId, (p = { studies: new Set(), series: new Set(), instances: 0 }));
    p.studies.add(row.studyUid);
    if (row.seriesUid !== undefined) p.series.add(row.seriesUid);
    p.instances += 1;
  }
  return [...byPatient.keys()].sort().map((patientId) => {
    const p = byPatient.get(patientId)!;
    const entry: DisclosedPatient = { patientId, studies: p.studies.size };
    if (level !== 'study') entry.series = p.series.size;
    if (level === 'instance') entry.instances = p.instances;
    return entry;
  });
}

/**
 * The Patient IDs a record names as disclosed by a search (`objects.patients`), distinct and sorted: what the
 * ledger's patient index holds for it. None for other records, and for searches recorded before 7 Dec 2026.
 */
export function disclosedPatientIds(record: Pick<AuditRecord, 'objects'>): string[] {
  const list = record.objects?.patients;
  if (!Array.isArray(list)) return [];
  const ids = new Set<string>();
  for (const p of list as unknown[]) {
    const id = (p as { patientId?: unknown } | null)?.patientId;
    if (typeof id === 'string' && id !== '') ids.add(id);
  }
  return [...ids].sort();
}

/** The entry for one patient in a record's `objects.patients`, if the record lists it. */
export function disclosedPatient(
  record: Pick<AuditRecord, 'objects'>,
  patientId: string,
): DisclosedPatient | undefined {
  const list = record.objects?.patients;
  if (!Array.isArray(list)) return undefined;
  return (list as DisclosedPatient[]).find((p) => p?.patientId === patientId);
}

/**
 * A recorded search's matching keys as one line (`PatientName=DOE^J* StudyDate=20260101-20261231`), from a
 * record's `objects.matches` (the Match values the query service records). A value of another shape is shown as
 * its JSON.
 */
export function matchesText(matches: unknown): string {
  if (!Array.isArray(matches)) return '';
  return matches
    .map((m: unknown) => {
      const x = m as Record<string, unknown> | null;
      const key = typeof x?.key === 'string' ? x.key : undefined;
      if (!x || !key) return JSON.stringify(m);
      switch (x.type) {
        case 'equals':
        case 'int':
          return `${key}=${String(x.value)}`;
        case 'wildcard':
          return `${key}=${String(x.pattern)}`;
        case 'list':
          return `${key}=${Array.isArray(x.values) ? x.values.join('\\') : ''}`;
        case 'range':
          return `${key}=${typeof x.from === 'string' ? x.from : ''}-${typeof x.to === 'string' ? x.to : ''}`;
        default:
          return JSON.stringify(m);
      }
    })
    .join(' ');
}
