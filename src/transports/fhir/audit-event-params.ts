import { actionsWithCode, type EventActionCode } from '../../domain/audit-codes.js';
import { CustosError } from '../../domain/errors.js';
import { isValidUid } from '../../domain/ids.js';
import type { AuditFilter } from '../../ports/audit-ledger.js';

/** The search parameters GET /fhir/r4/AuditEvent understands (FHIR R4 AuditEvent search parameters). */
export const AUDIT_EVENT_PARAMS = [
  'patient',
  'date',
  'agent',
  'entity',
  'action',
  '_count',
  '_cursor',
  '_format',
];

export const DEFAULT_COUNT = 100;
export const MAX_COUNT = 1000;

const bad = (parameter: string, message: string) =>
  new CustosError({
    code: 'fhir.bad-parameter',
    message: `${parameter}: ${message}`,
    httpStatus: 400,
    detail: { parameter },
  });

const single = (q: URLSearchParams, name: string): string | undefined => {
  const all = q.getAll(name);
  if (all.length > 1) throw bad(name, 'may be given once');
  const v = all[0];
  if (v === undefined) return undefined;
  if (v === '') throw bad(name, 'is empty');
  if (v.includes(',')) throw bad(name, 'takes one value (comma-separated alternatives are not supported)');
  return v;
};

/** A token or reference value: `system|value`, `Type/id` or a bare value. */
const tokenValue = (v: string): string => {
  const bar = v.lastIndexOf('|');
  const afterBar = bar >= 0 ? v.slice(bar + 1) : v;
  const m = /^(?:[A-Za-z]+)\/(.+)$/.exec(afterBar);
  return m ? m[1]! : afterBar;
};

const DATE_RE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

/**
 * The half-open UTC interval [lo, hi) a FHIR date/dateTime value stands for at its precision (FHIR R4 §3.1.1.5.4:
 * `date=2026-11` means the whole month). A time needs a zone, as FHIR requires.
 */
export function dateRange(value: string): { lo: string; hi: string } | undefined {
  const m = DATE_RE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, hh, mi, ss, frac, zone] = m;
  const year = Number(y);
  const month = mo ? Number(mo) : undefined;
  const day = d ? Number(d) : undefined;
  if (month !== undefined && (month < 1 || month > 12)) return undefined;
  if (day !== undefined && (day < 1 || day > new Date(Date.UTC(year, month!, 0)).getUTCDate()))
    return undefined;
  if (hh === undefined) {
    const lo = Date.UTC(year, (month ?? 1) - 1, day ?? 1);
    const hi =
      day !== undefined
        ? Date.UTC(year, month! - 1, day + 1)
        : month !== undefined
          ? Date.UTC(year, month, 1)
          : Date.UTC(year + 1, 0, 1);
    return { lo: new Date(lo).toISOString(), hi: new Date(hi).toISOString() };
  }
  if (Number(hh) > 23 || Number(mi) > 59 || (ss !== undefined && Number(ss) > 59)) return undefined;
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  const base = new Date(`${y}-${mo}-${d}T${hh}:${mi}:${ss ?? '00'}.${String(ms).padStart(3, '0')}${zone}`);
  if (Number.isNaN(base.getTime())) return undefined;
  // Precision of the value: a minute, a second, or a millisecond (finer fractions fall inside that millisecond).
  const step = ss === undefined ? 60_000 : frac === undefined ? 1000 : 1;
  return { lo: base.toISOString(), hi: new Date(base.getTime() + step).toISOString() };
}

/**
 * FHIR AuditEvent search parameters → a ledger filter, newest first. Every parameter narrows (AND); `date` may
 * repeat (`date=ge2026-11-01&date=lt2026-12-01`). An unknown parameter is refused rather than ignored: a
 * silently dropped filter would widen what an auditor thinks they are looking at.
 */
export function parseAuditEventSearch(q: URLSearchParams): AuditFilter {
  for (const k of new Set(q.keys())) {
    if (!AUDIT_EVENT_PARAMS.includes(k))
      throw bad(k, `unknown search parameter (supported: ${AUDIT_EVENT_PARAMS.join(', ')})`);
  }
  const f: AuditFilter = { limit: DEFAULT_COUNT, order: 'desc' };
  const format = single(q, '_format');
  if (format !== undefined && !['json', 'application/fhir+json', 'application/json'].includes(format))
    throw bad('_format', `only JSON is offered, got '${format}'`);
  const patient = single(q, 'patient');
  if (patient !== undefined) f.patientId = tokenValue(patient);
  const agent = single(q, 'agent');
  if (agent !== undefined) f.actor = tokenValue(agent);
  const entity = single(q, 'entity');
  if (entity !== undefined) {
    const uid = tokenValue(entity).replace(/^urn:oid:/, '');
    if (!isValidUid(uid)) throw bad('entity', `'${entity}' is not a study instance UID (e.g. urn:oid:1.2.3)`);
    f.studyUid = uid;
  }
  const actionValues = q.getAll('action');
  if (actionValues.length) {
    let allowed: Set<string> | undefined;
    for (const v of actionValues) {
      const codes = v.split(',');
      const names = new Set<string>();
      for (const c of codes) {
        if (!['C', 'R', 'U', 'D', 'E'].includes(c))
          throw bad('action', `must be C, R, U, D or E, got '${c}'`);
        for (const a of actionsWithCode(c as EventActionCode)) names.add(a);
      }
      allowed = allowed ? new Set([...allowed].filter((a) => names.has(a))) : names;
    }
    // An empty intersection matches nothing; the ledger has no action called '-'.
    f.action = allowed!.size ? [...allowed!] : ['-'];
  }
  for (const raw of q.getAll('date')) {
    const m = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.*)$/.exec(raw)!;
    const prefix = m[1] ?? 'eq';
    if (!['eq', 'gt', 'lt', 'ge', 'le'].includes(prefix))
      throw bad('date', `prefix '${prefix}' is not supported (use eq, ge, le, gt or lt)`);
    // An unencoded '+' of a zone offset arrives as a space (form decoding); put it back.
    const r = dateRange(m[2]!.replace(/ (\d{2}:\d{2})$/, '+$1'));
    if (!r) throw bad('date', `'${m[2]}' is not a FHIR date or dateTime (a time needs a zone, e.g. Z)`);
    const since = prefix === 'eq' || prefix === 'ge' ? r.lo : prefix === 'gt' ? r.hi : undefined;
    const until = prefix === 'eq' || prefix === 'le' ? r.hi : prefix === 'lt' ? r.lo : undefined;
    if (since && (!f.since || since > f.since)) f.since = since;
    if (until && (!f.until || until < f.until)) f.until = until;
  }
  const count = single(q, '_count');
  if (count !== undefined) {
    if (!/^\d+$/.test(count) || Number(count) < 1 || Number(count) > MAX_COUNT)
      throw bad('_count', `must be an integer from 1 to ${MAX_COUNT}, got '${count}'`);
    f.limit = Number(count);
  }
  const cursor = single(q, '_cursor');
  if (cursor !== undefined) {
    if (!/^[1-9]\d{0,15}$/.test(cursor)) throw bad('_cursor', `must be a positive integer, got '${cursor}'`);
    f.beforeSeq = Number(cursor);
  }
  return f;
}
