import { CustosError } from './errors.js';
import { isValidUid } from './ids.js';
import { checkDA, checkTM, inIsRange, IS_MAX, IS_MIN } from './validation/vr-rules.js';
import { lookupTag, tagForKeyword } from '../dicom/dictionary.js';
import { tagToHex } from '../dicom/tags.js';

/** PS3.18 §8.3.4 query levels. */
export type QidoLevel = 'study' | 'series' | 'instance';

/** The attributes Custos matches on, per level (PS3.18 Table 10.6.1-5 and the required keys of PS3.4 C.6). */
export type MatchKey =
  | 'PatientName'
  | 'PatientID'
  | 'IssuerOfPatientID'
  | 'PatientBirthDate'
  | 'PatientSex'
  | 'StudyInstanceUID'
  | 'StudyDate'
  | 'StudyTime'
  | 'AccessionNumber'
  | 'ReferringPhysicianName'
  | 'StudyDescription'
  | 'StudyID'
  | 'ModalitiesInStudy'
  | 'SeriesInstanceUID'
  | 'Modality'
  | 'SeriesNumber'
  | 'SeriesDescription'
  | 'BodyPartExamined'
  | 'PerformedProcedureStepStartDate'
  | 'PerformedProcedureStepStartTime'
  | 'SOPClassUID'
  | 'SOPInstanceUID'
  | 'InstanceNumber';

const LEVEL_OF: Record<MatchKey, QidoLevel> = {
  PatientName: 'study',
  PatientID: 'study',
  IssuerOfPatientID: 'study',
  PatientBirthDate: 'study',
  PatientSex: 'study',
  StudyInstanceUID: 'study',
  StudyDate: 'study',
  StudyTime: 'study',
  AccessionNumber: 'study',
  ReferringPhysicianName: 'study',
  StudyDescription: 'study',
  StudyID: 'study',
  ModalitiesInStudy: 'study',
  SeriesInstanceUID: 'series',
  Modality: 'series',
  SeriesNumber: 'series',
  SeriesDescription: 'series',
  BodyPartExamined: 'series',
  PerformedProcedureStepStartDate: 'series',
  PerformedProcedureStepStartTime: 'series',
  SOPClassUID: 'instance',
  SOPInstanceUID: 'instance',
  InstanceNumber: 'instance',
};

type Kind = 'string' | 'pn' | 'uid' | 'date' | 'time' | 'int' | 'multi';
const KIND_OF: Record<MatchKey, Kind> = {
  PatientName: 'pn',
  PatientID: 'string',
  IssuerOfPatientID: 'string',
  PatientBirthDate: 'date',
  PatientSex: 'string',
  StudyInstanceUID: 'uid',
  StudyDate: 'date',
  StudyTime: 'time',
  AccessionNumber: 'string',
  ReferringPhysicianName: 'pn',
  StudyDescription: 'string',
  StudyID: 'string',
  ModalitiesInStudy: 'multi',
  SeriesInstanceUID: 'uid',
  Modality: 'multi',
  SeriesNumber: 'int',
  SeriesDescription: 'string',
  BodyPartExamined: 'string',
  PerformedProcedureStepStartDate: 'date',
  PerformedProcedureStepStartTime: 'time',
  SOPClassUID: 'uid',
  SOPInstanceUID: 'uid',
  InstanceNumber: 'int',
};

const ORDER: QidoLevel[] = ['study', 'series', 'instance'];

export type Match =
  | { key: MatchKey; type: 'equals'; value: string; caseInsensitive: boolean }
  | { key: MatchKey; type: 'wildcard'; pattern: string; caseInsensitive: boolean }
  | { key: MatchKey; type: 'range'; from?: string; to?: string }
  | { key: MatchKey; type: 'list'; values: string[] }
  | { key: MatchKey; type: 'int'; value: number };

export interface QidoQuery {
  level: QidoLevel;
  matches: Match[];
  /** Tags (8-hex uppercase) added to the default return keys, or 'all'. */
  includeFields: Set<string> | 'all';
  limit: number;
  offset: number;
  /** Query keys that were accepted but not matched (reported in a Warning header, PS3.18 §8.3.4.1). */
  ignored: string[];
}

export interface QidoScope {
  studyUid?: string;
  seriesUid?: string;
}

const MAX_LIMIT = 10_000;

const bad = (message: string, param: string) =>
  new CustosError({ code: 'qido.bad-parameter', message, httpStatus: 400, detail: { parameter: param } });

/** Resolve a QIDO key given as keyword or 8-hex tag to a keyword. */
function keywordOf(key: string): string | undefined {
  if (/^[0-9A-Fa-f]{8}$/.test(key)) return lookupTag(Number.parseInt(key, 16))?.keyword;
  return tagForKeyword(key) !== undefined ? key : undefined;
}

function tagHexOf(key: string): string | undefined {
  if (/^[0-9A-Fa-f]{8}$/.test(key)) return key.toUpperCase();
  const t = tagForKeyword(key);
  return t === undefined ? undefined : tagToHex(t);
}

/**
 * An attribute path (PS3.18 §8.3.4.1: `attributeID` is a tag or keyword, or a sequence's tag or keyword, a period
 * and an attributeID, e.g. `RequestAttributesSequence.RequestedProcedureID`): the tag of each component, or why it
 * is not one. Every component but the last must be a sequence (SQ, or a private tag, whose VR the dictionary does
 * not know). Until 6 Dec 2026 only the first component was read: `PatientName.Foo` and a misspelt
 * `RequestAttributesSequence.RequestedProcedureId` were answered unfiltered with a Warning, not a 400.
 */
function attributePath(path: string): { tags: string[] } | { why: string } {
  const tags: string[] = [];
  const parts = path.split('.');
  for (const [i, part] of parts.entries()) {
    const hex = tagHexOf(part);
    if (!hex) return { why: `'${part}' is not a DICOM keyword or tag` };
    if (i < parts.length - 1) {
      const vr = lookupTag(Number.parseInt(hex, 16))?.vr;
      if (vr !== undefined && vr !== 'SQ') return { why: `'${part}' is not a sequence (its VR is ${vr})` };
    }
    tags.push(hex);
  }
  return { tags };
}

/**
 * A query bound for a time column. Times are stored as HHMMSS with the fraction as received, if any
 * (normaliseStoredTime), and compared as strings, so a bound must order against every spelling of a stored time:
 * a lower bound drops its fraction's trailing zeros ("101500.000" is "101500", which every time from 10:15:00 on
 * sorts at or after); an upper bound without a fraction takes .999999, and one with a fraction is padded to six
 * digits ("101501.5" is "101501.500000", which 101501, 101501.5 and 101501.50 all sort at or before).
 */
export function normaliseTime(tm: string, upper = false): string {
  const [hms = '', frac] = tm.split('.');
  const pad = upper ? '595959'.slice(hms.length) : '000000'.slice(hms.length);
  const base = (hms + pad).slice(0, 6);
  if (upper) return `${base}.${frac === undefined ? '999999' : frac.padEnd(6, '0')}`;
  const significant = frac?.replace(/0+$/, '') ?? '';
  return significant ? `${base}.${significant}` : base;
}

/** A DA or TM value, range or single, each side checked as its VR says (a real calendar date, a 24-hour time). */
function parseRange(key: MatchKey, raw: string, check: (v: string) => string | undefined): Match {
  const dash = raw.indexOf('-');
  if (dash === -1) {
    const why = check(raw);
    if (why) throw bad(`${key} '${raw}' is not a valid ${KIND_OF[key]}: ${why}`, key);
    return { key, type: 'equals', value: raw, caseInsensitive: false };
  }
  const from = raw.slice(0, dash);
  const to = raw.slice(dash + 1);
  if (!from && !to) throw bad(`${key} range '${raw}' must be FROM-TO, FROM- or -TO`, key);
  for (const side of [from, to]) {
    const why = side ? check(side) : undefined;
    if (why) throw bad(`${key} range '${raw}' must be FROM-TO, FROM- or -TO: ${why}`, key);
  }
  // PS3.4 C.2.2.2.5.1, .2: FROM is less than or equal to TO, and a time range does not cross midnight. A range
  // that ends before it starts matches nothing, and until 6 Dec 2026 it answered an empty list as if no study had
  // been made then (`StudyTime=220000-060000` for a night's studies).
  const time = KIND_OF[key] === 'time';
  if (from && to && (time ? normaliseTime(from) > normaliseTime(to, true) : from > to))
    throw bad(
      time
        ? `${key} range '${raw}' ends before it starts: a time range does not cross midnight (PS3.4 C.2.2.2.5.2); ask for '${from}-' and '-${to}' in two queries`
        : `${key} range '${raw}' ends before it starts (PS3.4 C.2.2.2.5.1): give the earlier date first`,
      key,
    );
  return { key, type: 'range', ...(from ? { from } : {}), ...(to ? { to } : {}) };
}

function stringMatch(key: MatchKey, raw: string, caseInsensitive: boolean): Match {
  if (/[*?]/.test(raw)) {
    if (/^\*+$/.test(raw)) return { key, type: 'wildcard', pattern: '*', caseInsensitive };
    return { key, type: 'wildcard', pattern: raw, caseInsensitive };
  }
  return { key, type: 'equals', value: raw, caseInsensitive };
}

function splitList(raw: string): string[] {
  return raw
    .split(/[\\,]/)
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

/**
 * A list of separators alone (`StudyInstanceUID=,`, a C-FIND `\`) names no value to match: until 7 Dec 2026 it became an
 * empty SQL list, which found nothing on SQLite and was a 500 (C-FIND 0xC000) on PostgreSQL.
 */
const noValues = (key: MatchKey, raw: string, what: string) =>
  bad(`${key} '${raw}' lists no ${what}: give one or more, separated by commas`, key);

/** The level a matching key belongs to, or undefined for an attribute Custos does not match on. */
export function matchKeyLevel(keyword: string): QidoLevel | undefined {
  return Object.hasOwn(LEVEL_OF, keyword) ? LEVEL_OF[keyword as MatchKey] : undefined;
}

/**
 * Whether a key's value may be a list of values, each matched (UIDs, modalities): the keys a C-FIND value with a
 * backslash can be asked of.
 */
export function takesValueList(keyword: string): boolean {
  const kind = (KIND_OF as Record<string, Kind | undefined>)[keyword];
  return kind === 'uid' || kind === 'multi';
}

function parseMatch(key: MatchKey, given: string): Match | undefined {
  if (given === '') return undefined; // universal matching: return the attribute, do not filter
  // The index keeps values without their NULs (index-record.ts), so a query's are left out too: until 6 Dec 2026
  // a value with one found nothing on SQLite and failed with a 500 (C-FIND 0xC000) on PostgreSQL.
  const raw = given.replaceAll('\0', '');
  if (raw === '') throw bad(`${key} holds only NUL characters`, key);
  // A backslash separates the values of a DICOM attribute (PS3.5 §6.4), so no single value of a text key holds one:
  // `PatientID=A\B` asks for two values, which only UID and modality keys take as a list. Refused naming the key, as
  // C-FIND refuses it; until 7 Dec 2026 QIDO-RS matched it as one value and answered [], as if nothing were stored.
  if ((KIND_OF[key] === 'pn' || KIND_OF[key] === 'string') && raw.includes('\\'))
    throw bad(
      `${key}: one value only (no multiple value matching); a backslash separates values, and only UIDs and modalities take a list`,
      key,
    );
  switch (KIND_OF[key]) {
    // PS3.5 §6.2: trailing spaces never count, leading ones count in PN only; the index keeps values so trimmed
    // (part10-parser.ts), and a query's are trimmed the same way. A value of spaces alone is an empty value:
    // universal matching. Until 7 Dec 2026 `PatientID=P1%20` found nothing where P1 was stored.
    case 'pn': {
      const v = raw.trimEnd();
      // PS3.5 §6.2.1.2: alphabetic, ideographic and phonetic, no more. Each given group is matched against the
      // stored group in its place (person-name.ts personNameQuery), so a fourth would be a condition on nothing.
      if (v.split('=').length > 3)
        throw bad(
          `${key} '${v}' has more than three component groups (alphabetic=ideographic=phonetic)`,
          key,
        );
      return v ? stringMatch(key, v, true) : undefined;
    }
    case 'string': {
      const v = raw.trim();
      return v ? stringMatch(key, v, false) : undefined;
    }
    case 'uid': {
      const values = splitList(raw);
      if (!values.length) throw noValues(key, raw, 'UID');
      for (const v of values) if (!isValidUid(v)) throw bad(`${key} '${v}' is not a valid UID`, key);
      return values.length === 1
        ? { key, type: 'equals', value: values[0]!, caseInsensitive: false }
        : { key, type: 'list', values };
    }
    case 'multi': {
      const values = splitList(raw);
      if (!values.length) throw noValues(key, raw, 'value');
      if (values.length === 1 && /[*?]/.test(values[0]!)) return stringMatch(key, values[0]!, false);
      // A list is matched value for value: until 7 Dec 2026 a wildcard in one (`CT,M*`) was a literal 'M*', which no
      // modality is, so the list silently matched as if it were not there.
      const wild = values.find((v) => /[*?]/.test(v));
      if (wild)
        throw bad(
          `${key} '${raw}': a wildcard ('${wild}') can be the only value, not one of a list; ask for it in a query of its own`,
          key,
        );
      return { key, type: 'list', values };
    }
    case 'date':
      return parseRange(key, raw, checkDA);
    case 'time':
      return parseRange(key, raw, checkTM);
    case 'int': {
      // PS3.5 Table 6.2-1: an IS value may carry a leading + or - (until 7 Dec 2026 '+3' was refused).
      if (!/^[+-]?\d+$/.test(raw)) throw bad(`${key} '${raw}' is not an integer`, key);
      const value = Number.parseInt(raw, 10);
      // An IS value is 32-bit (PS3.5): a larger one is no value of the attribute, not a query for none.
      if (!inIsRange(value))
        throw bad(`${key} '${raw}' is outside the range of an IS value (${IS_MIN} to ${IS_MAX})`, key);
      return { key, type: 'int', value };
    }
  }
}

/** The QIDO-RS parameters that are not attribute keys and take a single value (PS3.18 §8.3.4). */
const ONE_VALUE_PARAMETERS: ReadonlySet<string> = new Set([
  'limit',
  'offset',
  'fuzzymatching',
  'emptyvaluematching',
  'multiplevaluematching',
]);

function parseNonNegative(name: string, raw: string): number {
  if (!/^\d+$/.test(raw)) throw bad(`${name} must be a non-negative integer, got '${raw}'`, name);
  return Number.parseInt(raw, 10);
}

/**
 * Parse QIDO-RS query parameters (PS3.18 §8.3.4) into a typed query. Keys may be keywords or tags; backslash
 * or comma separated UIDs (and modalities) form a list match. A matching key given twice is refused: the two
 * would be anded, which finds nothing for two UIDs and is never what the caller meant.
 */
export function parseQidoQuery(params: URLSearchParams, level: QidoLevel, scope: QidoScope = {}): QidoQuery {
  const matches: Match[] = [];
  const seen = new Set<MatchKey>();
  const includes = new Set<string>();
  let includeAll = false;
  let limit = MAX_LIMIT;
  let offset = 0;
  const ignored: string[] = [];
  const levelIndex = ORDER.indexOf(level);
  const controls = new Set<string>();

  for (const [rawKey, value] of params) {
    const lower = rawKey.toLowerCase();
    // One value each, as a matching key has: until 7 Dec 2026 the last of two counted (`limit=1&limit=3` answered
    // three), where a proxy or a log that read the first saw another query than the one answered.
    if (ONE_VALUE_PARAMETERS.has(lower)) {
      if (controls.has(lower)) throw bad(`${lower} is given more than once; give it once`, lower);
      controls.add(lower);
    }
    if (lower === 'includefield') {
      for (const f of value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        if (f.toLowerCase() === 'all') includeAll = true;
        else {
          // An attribute inside a sequence is returned with the whole sequence it lies in (until 6 Dec 2026 a
          // path here was a 400).
          const path = attributePath(f);
          if ('why' in path) throw bad(`includefield '${f}': ${path.why}`, 'includefield');
          includes.add(path.tags[0]!);
        }
      }
      continue;
    }
    if (lower === 'limit') {
      limit = Math.min(parseNonNegative('limit', value), MAX_LIMIT);
      // No result can be asked for: until 6 Dec 2026 limit=0 was answered [] and a warning that more existed.
      if (limit === 0) throw bad(`limit must be at least 1, got '${value}'`, 'limit');
      continue;
    }
    if (lower === 'offset') {
      offset = parseNonNegative('offset', value);
      // Beyond 2^53 - 1 the number is no longer exact, and the databases' 64-bit OFFSET ends soon after. (A
      // limit above the server's maximum is only lowered to it.)
      if (!Number.isSafeInteger(offset))
        throw bad(`offset must be at most ${Number.MAX_SAFE_INTEGER}, got '${value}'`, 'offset');
      continue;
    }
    // PS3.18 §8.3.4.2, §8.3.4.5, §8.3.4.6: true asks for a matching Custos does not do, which the search goes
    // without and a Warning says so; false is the normal search. Until 6 Dec 2026 the latter two were a 400.
    if (lower === 'fuzzymatching' || lower === 'emptyvaluematching' || lower === 'multiplevaluematching') {
      if (value !== 'true' && value !== 'false') throw bad(`${lower} must be true or false`, lower);
      if (value === 'true') ignored.push(lower);
      continue;
    }
    if (lower === 'charset') continue;
    const head = rawKey.split('.')[0]!;
    const keyword = keywordOf(head);
    // Any well-formed tag is an attribute key, a private one (00091001) too: accepted, returned, not matched.
    if (!keyword && !/^[0-9A-Fa-f]{8}$/.test(head))
      throw bad(`'${rawKey}' is not a DICOM keyword, tag or QIDO parameter`, rawKey);
    if (rawKey.includes('.')) {
      const path = attributePath(rawKey);
      if ('why' in path) throw bad(`'${rawKey}' is not an attribute path: ${path.why}`, rawKey);
      // Sequence matching is not supported; the sequence is still returned. An empty value asks for no matching
      // (universal matching, PS3.4 C.2.2.2.3), which is done: no Warning (until 7 Dec 2026 it had one).
      if (value.trim() !== '') ignored.push(rawKey);
      includes.add(path.tags[0]!);
      continue;
    }
    if (!keyword || !(keyword in LEVEL_OF)) {
      // `PatientAge=` asks for the attribute without a condition, which is what it gets: no Warning that it was
      // not matched (until 7 Dec 2026 it said 'the query key PatientAge is not supported and was ignored').
      if (value.trim() !== '') ignored.push(rawKey);
      const hex = tagHexOf(head);
      if (hex) includes.add(hex);
      continue;
    }
    const key = keyword as MatchKey;
    if (seen.has(key))
      throw bad(
        `${key} is given more than once; give several values as one comma-separated list (UIDs, modalities)`,
        rawKey,
      );
    if (ORDER.indexOf(LEVEL_OF[key]) > levelIndex) {
      throw bad(`${key} cannot be matched in a ${level}-level query`, key);
    }
    seen.add(key);
    const hex = tagHexOf(key);
    if (hex) includes.add(hex);
    const m = parseMatch(key, value);
    if (m) matches.push(m);
  }

  if (scope.studyUid)
    matches.push({ key: 'StudyInstanceUID', type: 'equals', value: scope.studyUid, caseInsensitive: false });
  if (scope.seriesUid)
    matches.push({
      key: 'SeriesInstanceUID',
      type: 'equals',
      value: scope.seriesUid,
      caseInsensitive: false,
    });

  return { level, matches, includeFields: includeAll ? 'all' : includes, limit, offset, ignored };
}

/** DICOM wildcard (`*`, `?`) to a SQL LIKE pattern with `\` as the escape character. */
export function wildcardToLike(pattern: string): string {
  let out = '';
  for (const ch of pattern) {
    if (ch === '*') out += '%';
    else if (ch === '?') out += '_';
    else if (ch === '%' || ch === '_' || ch === '\\') out += '\\' + ch;
    else out += ch;
  }
  return out;
}
