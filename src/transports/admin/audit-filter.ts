import { CustosError } from '../../domain/errors.js';
import type { AuditFilter } from '../../ports/audit-ledger.js';

/** Parameters of an audit search as both the admin API and the CLI take them (strings, as typed). */
export interface AuditFilterInput {
  patient?: string | undefined;
  study?: string | undefined;
  user?: string | undefined;
  action?: string | undefined;
  outcome?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  before?: string | undefined;
  after?: string | undefined;
  limit?: string | undefined;
}

export const AUDIT_FILTER_KEYS = [
  'patient',
  'study',
  'user',
  'action',
  'outcome',
  'since',
  'until',
  'before',
  'after',
  'limit',
] as const;

const bad = (param: string, message: string) =>
  new CustosError({
    code: 'audit.bad-filter',
    message: `${param}: ${message}`,
    httpStatus: 400,
    detail: { parameter: param },
  });

/** A date (YYYY-MM-DD, taken as UTC midnight) or an ISO 8601 instant, as the ledger's UTC text. */
export function parseInstant(param: string, value: string): string {
  const v = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00.000Z` : value;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(v))
    throw bad(param, `'${value}' is not a date (YYYY-MM-DD) or an ISO 8601 time with a zone`);
  const t = new Date(v);
  if (Number.isNaN(t.getTime())) throw bad(param, `'${value}' is not a valid time`);
  return t.toISOString();
}

function positiveInt(param: string, value: string, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max)
    throw bad(param, `must be an integer from 1 to ${max}, got '${value}'`);
  return Number(value);
}

export function parseAuditFilter(
  input: AuditFilterInput,
  defaults: { limit: number; maxLimit: number },
): AuditFilter {
  const f: AuditFilter = { limit: defaults.limit, order: 'desc' };
  if (input.patient) f.patientId = input.patient;
  if (input.study) f.studyUid = input.study;
  if (input.user) f.actor = input.user;
  if (input.action)
    f.action = input.action
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean);
  if (input.outcome) {
    if (!['success', 'denied', 'failure'].includes(input.outcome))
      throw bad('outcome', `must be success, denied or failure, got '${input.outcome}'`);
    f.outcome = input.outcome as AuditFilter['outcome'] & string;
  }
  if (input.since) f.since = parseInstant('since', input.since);
  if (input.until) f.until = parseInstant('until', input.until);
  if (f.since && f.until && f.since >= f.until) throw bad('until', 'must be later than since');
  if (input.before) f.beforeSeq = positiveInt('before', input.before, Number.MAX_SAFE_INTEGER);
  if (input.after) {
    f.afterSeq = positiveInt('after', input.after, Number.MAX_SAFE_INTEGER);
    f.order = 'asc';
  }
  if (input.limit) f.limit = positiveInt('limit', input.limit, defaults.maxLimit);
  return f;
}
