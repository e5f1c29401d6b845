import { createHash } from 'node:crypto';
import { sql, type Expression, type SqlBool } from 'kysely';
import { CustosError } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import type { Clock } from '../ports/clock.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { IndexDb } from '../ports/database.js';
import { personNameQuery } from '../domain/person-name.js';
import {
  normaliseTime,
  wildcardToLike,
  type Match,
  type MatchKey,
  type QidoQuery,
} from '../domain/qido-query.js';
import {
  INSTANCE_DEFAULT_RETURN,
  SERIES_DEFAULT_RETURN,
  STUDY_DEFAULT_RETURN,
  sortByTag,
  type DicomJsonObject,
} from '../domain/dicom-levels.js';
import type { Decision, StudyFilter } from '../ports/policy.js';
import type { AccessGate } from './access-gate.js';
import { STUDY_FACT_COLUMNS, type StudyFacts, type StudyFactsRow } from './study-facts.js';
import { applyToJson, patientCorrections } from './header-overlay.js';
import { RenderedRows } from './rendered-rows.js';
import { studyOrder, type StudySort } from './study-sort.js';
import { INLINE_BINARY_MAX } from '../dicom/dicom-json.js';

/** Where each matchable attribute lives. Aliases: p = patients, st = studies, se = series, i = instances. */
const COLUMN: Record<Exclude<MatchKey, 'ModalitiesInStudy'>, string> = {
  PatientName: 'p.patient_name_norm',
  PatientID: 'p.patient_id',
  IssuerOfPatientID: 'p.issuer',
  PatientBirthDate: 'p.birth_date',
  PatientSex: 'p.sex',
  StudyInstanceUID: 'st.study_uid',
  StudyDate: 'st.study_date',
  StudyTime: 'st.study_time',
  AccessionNumber: 'st.accession_number',
  ReferringPhysicianName: 'st.referring_physician_norm',
  StudyDescription: 'st.study_description',
  StudyID: 'st.study_id',
  SeriesInstanceUID: 'se.series_uid',
  Modality: 'se.modality',
  SeriesNumber: 'se.series_number',
  SeriesDescription: 'se.series_description',
  BodyPartExamined: 'se.body_part',
  PerformedProcedureStepStartDate: 'se.pps_start_date',
  PerformedProcedureStepStartTime: 'se.pps_start_time',
  SOPClassUID: 'i.sop_class_uid',
  SOPInstanceUID: 'i.sop_instance_uid',
  InstanceNumber: 'i.instance_number',
};

const TIME_KEYS = new Set<MatchKey>(['StudyTime', 'PerformedProcedureStepStartTime']);

/** The series condition of a ModalitiesInStudy key (alias s2). */
function modalityCondition(m: Match): Expression<SqlBool> {
  return m.type === 'list'
    ? sql<SqlBool>`s2.modality in (${sql.join(m.values)})`
    : m.type === 'wildcard'
      ? sql<SqlBool>`s2.modality like ${wildcardToLike(m.pattern)} escape '\\'`
      : m.type === 'equals'
        ? sql<SqlBool>`s2.modality = ${m.value}`
        : sql<SqlBool>`1 = 1`;
}

/**
 * `drivenBySeries`: a ModalitiesInStudy key is matched as the studies of the matching series (`st.study_uid in
 * (select …)`), found through the series' modality index, instead of asking each study in turn whether it has such
 * a series (`exists`). See QueryService.fewSeriesOf for when.
 */
export function matchPredicate(m: Match, drivenBySeries = false): Expression<SqlBool> {
  if (m.key === 'ModalitiesInStudy') {
    return drivenBySeries
      ? sql<SqlBool>`st.study_uid in (select s2.study_uid from series s2 where ${modalityCondition(m)})`
      : sql<SqlBool>`exists (select 1 from series s2 where s2.study_uid = st.study_uid and ${modalityCondition(m)})`;
  }
  const col = sql.ref(COLUMN[m.key]);
  const pnGroups = PN_GROUPS[m.key];
  switch (m.type) {
    case 'equals': {
      if (TIME_KEYS.has(m.key)) {
        return sql<SqlBool>`${col} >= ${normaliseTime(m.value)} and ${col} <= ${normaliseTime(m.value, true)}`;
      }
      if (pnGroups) return personNamePredicate(COLUMN[m.key], pnGroups, m.value);
      return sql<SqlBool>`${col} = ${m.value}`;
    }
    case 'wildcard': {
      if (m.pattern === '*') return sql<SqlBool>`1 = 1`;
      if (pnGroups) return personNamePredicate(COLUMN[m.key], pnGroups, m.pattern);
      return sql<SqlBool>`${col} like ${wildcardToLike(m.pattern)} escape '\\'`;
    }
    case 'list':
      return sql<SqlBool>`${col} in (${sql.join(m.values)})`;
    case 'int':
      return sql<SqlBool>`${col} = ${m.value}`;
    case 'range': {
      const time = TIME_KEYS.has(m.key);
      const from = m.from === undefined ? undefined : time ? normaliseTime(m.from) : m.from;
      const to = m.to === undefined ? undefined : time ? normaliseTime(m.to, true) : m.to;
      // An empty stored value never matches a range (PS3.4 C.2.2.2.5).
      if (from !== undefined && to !== undefined) return sql<SqlBool>`${col} >= ${from} and ${col} <= ${to}`;
      if (from !== undefined) return sql<SqlBool>`${col} >= ${from}`;
      return sql<SqlBool>`${col} <> '' and ${col} <= ${to}`;
    }
  }
}

/**
 * Where the component groups of a person name key are held (migration 0026): the table, its key and the query's
 * alias of it, and the columns of the alphabetic, ideographic and phonetic groups.
 */
interface PersonNameGroups {
  table: 'patients' | 'studies';
  id: 'pk' | 'study_uid';
  alias: 'p' | 'st';
  columns: readonly [string, string, string];
}

const PN_GROUPS: Partial<Record<MatchKey, PersonNameGroups>> = {
  PatientName: {
    table: 'patients',
    id: 'pk',
    alias: 'p',
    columns: ['patient_name_alpha', 'patient_name_ideo', 'patient_name_phon'],
  },
  ReferringPhysicianName: {
    table: 'studies',
    id: 'study_uid',
    alias: 'st',
    columns: ['referring_physician_alpha', 'referring_physician_ideo', 'referring_physician_phon'],
  },
};

/**
 * A person name key against the component groups of the stored names (personNameQuery): a key of one group is
 * matched against each group, a key with '=' group by group. Each group is its own indexed column, so an exact
 * name is an index lookup per group and a pattern that begins with its literal prefix an index range per group.
 *
 * The groups are matched in a subquery of the names' own table (`p.pk in (select pk from patients where … union
 * all …)`), one index search per group. Until 7 Dec 2026 they were ORed in the query itself; SQLite, which Custos
 * never asks to gather statistics (ANALYZE), then judged a walk through every study in date order cheaper than
 * the three index searches, and `PatientName=山田*` read the whole studies table (47 ms against 3 ms at 4,000
 * studies, and growing with the archive).
 */
function personNamePredicate(whole: string, groups: PersonNameGroups, value: string): Expression<SqlBool> {
  const q = personNameQuery(value);
  if ('anyGroup' in q) {
    // A key with no ideographic or phonetic characters (Latin, Greek, Cyrillic and other alphabets, with digits,
    // delimiters, wildcards and accents) can only be an alphabetic name: the ideographic and phonetic groups hold
    // kanji, hanja and hanzi, and kana and hangul (PS3.5 §6.2.1.2, Annexes H to K). Such a key is matched on the
    // alphabetic group as before 7 Dec 2026, on the stored matching form and its covering index: ORed over the
    // three group columns, a Western site's prefix query took twice as long (QIDO-RS prefix p50 5.3 → 10.3 ms on
    // the benchmark's 10,000 instances, 7 Dec 2026). Until 7 Dec 2026 only keys in the Latin script were matched
    // so, and `PatientName=ΠΑΠ*` against all three groups.
    if (!IDEOGRAPHIC_OR_PHONETIC.test(q.anyGroup)) return groupMatches(sql.ref(whole), q.anyGroup, true);
    return sameNameIn(
      groups,
      groups.columns.map((c) => groupMatches(sql.ref(c), q.anyGroup)),
    );
  }
  const given = groups.columns.flatMap((c, i) =>
    q.groups[i] === undefined ? [] : [groupMatches(sql.ref(c), q.groups[i])],
  );
  return given.length
    ? sameNameIn(groups, [sql<SqlBool>`${sql.join(given, sql` and `)}`])
    : sql<SqlBool>`1 = 1`;
}

/** The outer row's names among those of its table that meet any of the conditions (one index search each). */
function sameNameIn(
  { table, id, alias }: PersonNameGroups,
  conditions: Expression<SqlBool>[],
): Expression<SqlBool> {
  const selects = conditions.map((c) => sql`select ${sql.ref(id)} from ${sql.table(table)} where ${c}`);
  return sql<SqlBool>`${sql.ref(`${alias}.${id}`)} in (${sql.join(selects, sql` union all `)})`;
}

/** Ideographs (kanji, hanja, hanzi) and the phonetic scripts of the ideographic and phonetic groups. */
const IDEOGRAPHIC_OR_PHONETIC =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Bopomofo}]/u;

/**
 * One component group, in its matching form, against a stored group column: exact, or a wildcard pattern. With
 * `groupsFollow` the column is the whole matching form (an alphabetic key on the alphabetic group): a stored name whose
 * alphabetic group matches also matches with whatever groups follow its '='. Its exact names are then the value
 * and the range [`v=`, `v>`) ('>' follows '=' in code point order, which SQLite's binary and PostgreSQL's "C"
 * collation both keep), one index lookup and one index range; a pattern not ending in '*' also matches before an
 * '=' (one ending in '*' already reaches past the first group). Each LIKE begins with the pattern's literal
 * prefix, so each uses the column's index.
 */
function groupMatches(
  col: ReturnType<typeof sql.ref>,
  group: string,
  groupsFollow = false,
): Expression<SqlBool> {
  if (!/[*?]/.test(group))
    return groupsFollow
      ? sql<SqlBool>`(${col} = ${group} or (${col} >= ${`${group}=`} and ${col} < ${`${group}>`}))`
      : sql<SqlBool>`${col} = ${group}`;
  const pattern = wildcardToLike(group);
  const like =
    groupsFollow && !group.endsWith('*')
      ? sql<SqlBool>`(${col} like ${pattern} escape '\\' or ${col} like ${`${pattern}=%`} escape '\\')`
      : sql<SqlBool>`${col} like ${pattern} escape '\\'`;
  // `Doe^John^*` asks for any middle name and the rest, none included: a name stored as `DOE^JOHN^^^` or `Doe^John`
  // has no trailing components in its matching form (normalisePersonName), so the pattern without its trailing
  // delimiters and '*' finds it too.
  const bare = /^(.*[^^])\^+\*+$/.exec(group)?.[1];
  return bare ? sql<SqlBool>`(${like} or ${groupMatches(col, bare, groupsFollow)})` : like;
}

const likeLiteral = (s: string) => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
const userPk = (id: string) => (/^\d{1,15}$/.test(id) ? Number(id) : -1);

/**
 * The decision point's scope of a list as SQL over studies (st): the same policies, partially evaluated. It
 * admits at least every study the policies allow; each row is decided afterwards all the same.
 */
export function scopePredicate(f: StudyFilter, now: string): Expression<SqlBool> {
  switch (f.kind) {
    case 'all':
      return sql<SqlBool>`1 = 1`;
    case 'none':
      return sql<SqlBool>`1 = 0`;
    case 'and':
      return sql<SqlBool>`(${sql.join(
        f.of.map((x) => scopePredicate(x, now)),
        sql` and `,
      )})`;
    case 'or':
      return sql<SqlBool>`(${sql.join(
        f.of.map((x) => scopePredicate(x, now)),
        sql` or `,
      )})`;
    case 'department':
      return sql<SqlBool>`lower(trim(coalesce(st.department, ''))) = ${f.value}`;
    case 'classification':
      return sql<SqlBool>`st.classification = ${f.value}`;
    case 'owner':
      return sql<SqlBool>`st.owner = ${f.value}`;
    case 'referring-name':
      return sql<SqlBool>`(${sql.join(
        f.familyNames.map((n) => sql`st.referring_physician_norm like ${likeLiteral(n)} escape '\\'`),
        sql` or `,
      )})`;
    case 'referring-id':
      return sql<SqlBool>`(${sql.join(
        f.ids.map((id) => sql`st.referring_physician_ids like ${likeLiteral(id)} escape '\\'`),
        sql` or `,
      )})`;
    case 'care-team':
      // The same two sources as StudyFacts: explicit care-team rows, and HL7 orders for the study's patient whose
      // ordering or referring physician is this account (by physician identifier).
      return sql<SqlBool>`(exists (select 1 from care_team ct where ct.study_uid = st.study_uid and ct.user_pk = ${userPk(f.userId)})
        or exists (select 1 from care_relationships cr join users u on u.physician_id = cr.physician_id
                   where cr.patient_pk = st.patient_pk and cr.physician_id <> '' and u.active = 1 and u.pk = ${userPk(f.userId)}))`;
    case 'grantee':
      return sql<SqlBool>`exists (select 1 from study_grants g where g.study_uid = st.study_uid and g.user_pk = ${userPk(f.userId)} and g.expires_at > ${now})`;
    case 'project':
      return sql<SqlBool>`exists (select 1 from study_projects sp where sp.study_uid = st.study_uid and sp.project in (${sql.join(f.projects)}))`;
    case 'study':
      return sql<SqlBool>`st.study_uid in (${sql.join(f.uids)})`;
  }
}

/** One study as the console's study browser lists it: what identifies it and its governance state. */
export interface BrowsedStudy {
  studyUid: string;
  patientId: string;
  patientName: string;
  studyDate: string;
  accessionNumber: string;
  studyDescription: string;
  modalities: string[];
  numSeries: number;
  numInstances: number;
  owner: string | null;
  department: string | null;
  classification: string;
  retentionUntil: string | null;
  status: string;
}

export interface QueryResult {
  results: DicomJsonObject[];
  /** Texts for a Warning: 299 header (ignored keys, truncated results). */
  warnings: string[];
  /** More rows match beyond this page: the next one starts `results.length` rows further on. */
  more: boolean;
  /** Where the next page's rows begin among the SQL matches (allPages: `from`), when there is one. */
  next: number;
}

const level = (key: MatchKey) => COLUMN[key as Exclude<MatchKey, 'ModalitiesInStudy'>]?.split('.')[0] ?? 'st';

/**
 * The one query service behind QIDO-RS (and later C-FIND and the console): matching in SQL, each row checked
 * by the decision point, the query and its result count recorded before results leave.
 */
/**
 * Every page of a search, one after the other, each read from where the last one ended among the matches (`from`,
 * given to search() or searchEncoded()): what C-FIND, and a PATIENT-level C-MOVE or C-GET, answer in full where
 * QIDO-RS stops at one page (limits.maxQueryResults). Each page reads and decides its own rows only: until 5 Dec
 * 2026 each page was asked for by its offset among the visible rows, which read and decided every row before it
 * again, so a C-FIND's cost grew with the square of its matches.
 */
export async function* allPages<T>(
  page: (from: number) => Promise<{ results: T[]; more: boolean; next: number }>,
): AsyncGenerator<T[]> {
  for (let from = 0; ;) {
    const { results, more, next } = await page(from);
    yield results;
    if (!more) return;
    from = next;
  }
}

export class QueryService {
  private readonly rendered = new RenderedRows();
  /** C-FIND's study-level identifiers, as latin1 text of their bytes (searchEncoded). */
  private readonly encoded = new RenderedRows(20_000, 8 * 1024 * 1024);

  constructor(
    private readonly index: IndexDb,
    private readonly gate: AccessGate,
    private readonly ledger: AuditLedger,
    private readonly clock: Clock,
    private readonly facts: StudyFacts,
    /** Most rows one answer holds (`limits.maxQueryResults`); a query's larger `limit` is lowered to it. */
    private readonly maxResults = 10_000,
  ) {}

  /** Matching rows the principal may see, as DICOM JSON objects (QIDO-RS, C-FIND, C-MOVE/C-GET matching). */
  async search(principal: Principal, query: QidoQuery, retrieveBase: string, from = 0): Promise<QueryResult> {
    return this.answer(
      principal,
      query,
      'dicom',
      async (rows) => {
        const fields = returnedFields(query);
        if (wantsSopClasses(query, fields)) await this.loadSopClasses(rows);
        return rows.map((row) => this.toJson(query, fields, row, retrieveBase));
      },
      from,
    );
  }

  /**
   * search() for QIDO-RS: each row as the text of its DICOM JSON. Study-level rows are remembered by the inputs
   * they were made from (RenderedRows), so a study asked for again is not parsed, corrected and serialised again.
   */
  async searchJsonRows(
    principal: Principal,
    query: QidoQuery,
    retrieveBase: string,
  ): Promise<{ rows: string[]; warnings: string[] }> {
    const { results, warnings } = await this.searchRendered(
      principal,
      query,
      retrieveBase,
      this.rendered,
      '',
      (json) => JSON.stringify(json),
    );
    return { rows: results, warnings };
  }

  /**
   * search() for C-FIND: each row as the bytes `encode` makes of its DICOM JSON (a response identifier).
   * Study-level rows are remembered like QIDO-RS's, in a cache of their own, by their inputs and by `variant`,
   * which must name everything `encode` depends on besides the JSON (requested keys, transfer syntax).
   */
  async searchEncoded(
    principal: Principal,
    query: QidoQuery,
    variant: string,
    encode: (json: DicomJsonObject) => Buffer,
    from = 0,
  ): Promise<{ results: Buffer[]; more: boolean; next: number }> {
    const { results, more, next } = await this.searchRendered(
      principal,
      query,
      '',
      this.encoded,
      variant,
      (json) => encode(json).toString('latin1'),
      from,
    );
    return { results: results.map((text) => Buffer.from(text, 'latin1')), more, next };
  }

  /**
   * Matching rows rendered as text. Study-level rows with the default or listed fields go through `cache`, keyed
   * by their inputs and `variant`; they are selected without their stored attributes ('rendered'), which are
   * read only for the studies the cache does not hold.
   */
  private searchRendered(
    principal: Principal,
    query: QidoQuery,
    retrieveBase: string,
    cache: RenderedRows,
    variant: string,
    text: (json: DicomJsonObject) => string,
    from = 0,
  ): Promise<{ results: string[]; warnings: string[]; more: boolean; next: number }> {
    const fields = returnedFields(query);
    const render = (row: Row) => text(this.toJson(query, fields, row, retrieveBase));
    const sopClasses = wantsSopClasses(query, fields);
    if (query.level !== 'study' || fields === 'all')
      return this.answer(
        principal,
        query,
        'dicom',
        async (rows) => {
          if (sopClasses) await this.loadSopClasses(rows);
          return rows.map(render);
        },
        from,
      );
    // What every row's rendering depends on besides the row, digested once per query to keep the keys short.
    const fieldsKey = createHash('sha256')
      .update(`${fields.join(',')}\u0000${retrieveBase}\u0000${variant}`)
      .digest('base64');
    return this.answer(
      principal,
      query,
      'rendered',
      async (rows) => {
        if (sopClasses) await this.loadSopClasses(rows);
        const keys = rows.map((row) => renderKey(fieldsKey, row));
        const known = rows.map((row, i) => cache.peek(row.study_uid, keys[i]!));
        await this.loadStudyAttrs(rows.filter((_, i) => known[i] === undefined));
        return rows.map((row, i) => known[i] ?? cache.get(row.study_uid, keys[i]!, () => render(row)));
      },
      from,
    );
  }

  /** The stored study attributes of rows selected without them ('rendered'). */
  private async loadStudyAttrs(rows: Row[]): Promise<void> {
    for (let i = 0; i < rows.length; i += ATTRS_BATCH) {
      const batch = rows.slice(i, i + ATTRS_BATCH);
      const found = await this.index.db
        .selectFrom('studies')
        .select(['study_uid', 'attrs_json'])
        .where(
          'study_uid',
          'in',
          batch.map((r) => r.study_uid),
        )
        .execute();
      const attrs = new Map(found.map((f) => [f.study_uid, f.attrs_json]));
      for (const row of batch) row.study_attrs = attrs.get(row.study_uid) ?? '{}';
    }
  }

  /**
   * SOPClassesInStudy (PS3.4 C.6.2.1.2) of each row: the distinct SOP classes of its active instances, read from
   * the instance index by study (instances_study) for a page of studies at once, only when it is asked for.
   */
  private async loadSopClasses(rows: Row[]): Promise<void> {
    for (let i = 0; i < rows.length; i += ATTRS_BATCH) {
      const batch = rows.slice(i, i + ATTRS_BATCH);
      const found = await this.index.db
        .selectFrom('instances')
        .select(['study_uid', 'sop_class_uid'])
        .distinct()
        .where(
          'study_uid',
          'in',
          batch.map((r) => r.study_uid),
        )
        .where('status', '=', 'active')
        .execute();
      const classes = new Map<string, string[]>();
      for (const f of found) {
        const list = classes.get(f.study_uid);
        if (list) list.push(f.sop_class_uid);
        else classes.set(f.study_uid, [f.sop_class_uid]);
      }
      for (const row of batch) row.sop_classes = (classes.get(row.study_uid) ?? []).sort();
    }
  }

  private async answer<T>(
    principal: Principal,
    query: QidoQuery,
    purpose: 'dicom' | 'rendered',
    present: (rows: Row[]) => Promise<T[]>,
    from = 0,
  ): Promise<{ results: T[]; warnings: string[]; more: boolean; next: number }> {
    const { rows, more, next, policy, glass } = await this.visibleRows(principal, query, purpose, from);
    // The record names what is disclosed, so it can be written before the rows are presented: its commit and WAL
    // sync run meanwhile (one turn of the event loop lets the commit reach its sync), and nothing is returned
    // before it is durable.
    const recorded = this.recordQuery(principal, query, policy, glass, rows);
    recorded.catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    const results = await present(rows);
    const warnings = query.ignored.map(
      (k) => UNSUPPORTED_MATCHING[k] ?? `the query key ${k} is not supported and was ignored`,
    );
    if (more) warnings.push(MORE_RESULTS);
    await recorded;
    return { results, warnings, more, next };
  }

  /**
   * The console's study browser: the same matching, narrowing and per-row decisions as QIDO at study level, with
   * the governance columns of each study instead of DICOM JSON. Recorded like any query.
   */
  async browseStudies(
    principal: Principal,
    query: QidoQuery,
    channel: string,
    sort?: StudySort,
  ): Promise<{ studies: BrowsedStudy[]; more: boolean }> {
    if (query.level !== 'study')
      throw new CustosError({ code: 'query.bad-level', message: 'the study browser lists studies only' });
    const { rows, more, policy, glass } = await this.visibleRows(principal, query, 'browse', 0, sort);
    const studies = rows.map((r): BrowsedStudy => ({
      studyUid: r.study_uid,
      patientId: r.patient_id,
      patientName: r.patient_name,
      studyDate: r.study_date!,
      accessionNumber: r.accession_number!,
      studyDescription: r.study_description!,
      modalities: r.modalities ? r.modalities.split('\\') : [],
      numSeries: Number(r.num_series),
      numInstances: Number(r.num_instances),
      owner: r.owner,
      department: r.department,
      classification: r.classification,
      retentionUntil: r.retention_until ?? null,
      status: r.status!,
    }));
    await this.recordQuery(principal, query, policy, glass, rows, channel);
    return { studies, more };
  }

  /**
   * Rows matching the query that the principal may see: narrowed in SQL, then each row decided. `from` is where
   * among the SQL matches to begin (a previous page's `next`); `next` is where the row after the last one returned
   * lies.
   */
  private async visibleRows(
    principal: Principal,
    query: QidoQuery,
    purpose: Purpose,
    from = 0,
    sort?: StudySort,
  ): Promise<{ rows: Row[]; more: boolean; next: number; policy: string; glass: Decision[] }> {
    const decision = await this.gate.require(principal, 'query', { type: 'archive' });
    const scope = scopePredicate(
      await this.gate.narrowing(principal, 'query'),
      this.clock.now().toISOString(),
    );
    // Every matching row is checked by the decision point with its study's facts; offset and limit count
    // the rows the principal may see, so pages stay whole when some matches are refused.
    const limit = Math.min(query.limit, this.maxResults);
    const batch = query.offset + limit + 1;
    const visible: Row[] = [];
    const breakGlass = new Map<string, Decision>();
    let skipped = 0;
    let next = from;
    for (let sqlOffset = from; visible.length <= limit; sqlOffset += batch) {
      const rows = await this.select(query, scope, sqlOffset, batch, purpose, sort);
      const refs = await this.facts.resources(rows);
      const decisions = await this.gate.decideEach(
        principal,
        'query',
        rows.map((row) => refs.get(row.study_uid)!),
      );
      for (const [i, row] of rows.entries()) {
        const d = decisions[i]!;
        if (!d.allowed) continue;
        if (skipped < query.offset) skipped++;
        else {
          if (visible.length < limit && d.breakGlass) breakGlass.set(row.study_uid, d);
          if (visible.push(row) > limit) {
            next = sqlOffset + i;
            break;
          }
        }
      }
      if (rows.length < batch) break;
    }
    return {
      rows: visible.slice(0, limit),
      more: visible.length > limit,
      next,
      policy: decision.policy,
      glass: [...breakGlass.values()],
    };
  }

  /**
   * A query answered page after page (C-FIND: each page recorded as it was read, before its answers went) that
   * then failed (a page that cannot be read or encoded, a requestor that aborted): a second record, with outcome
   * `failure`, how many matches had been answered and why, so that the ledger does not show as answered what
   * never was (as RetrieveService.recordUnserved does for a retrieve).
   */
  async recordUnanswered(
    principal: Principal,
    query: QidoQuery,
    answered: number,
    err: unknown,
    reason?: string,
  ): Promise<void> {
    const e = err instanceof CustosError ? err : undefined;
    await this.ledger.append({
      principal,
      action: 'query',
      outcome: 'failure',
      policy: 'n/a',
      objects: { level: query.level, matches: query.matches.map((m) => ({ ...m })), count: answered },
      detail: {
        answered,
        unanswered: e?.code ?? 'internal',
        reason: (reason ?? (err instanceof Error ? err.message : 'internal error')).slice(0, 500),
      },
    });
  }

  /**
   * The query's record; results a break-glass window let through name the windows, reasons and policies. It names
   * the studies and the patients answered, and when they are one patient (a search by PatientID, say) that patient
   * as its own, so the search by patient and the patient's accounting of disclosures find the query
   * (docs/audit.md). An answer of several patients is not indexed by each: a row per patient answered, written
   * before the answer goes, cost a ModalitiesInStudy query of thousands of rows half its time again (bench, 7 Dec
   * 2026).
   */
  private async recordQuery(
    principal: Principal,
    query: QidoQuery,
    policy: string,
    glass: Decision[],
    rows: readonly Pick<Row, 'study_uid' | 'patient_id'>[],
    channel?: string,
  ): Promise<void> {
    const studies = [...new Set(rows.map((r) => r.study_uid))];
    const patients = [...new Set(rows.map((r) => r.patient_id))];
    await this.ledger.append({
      principal,
      action: 'query',
      outcome: 'success',
      policy: [...new Set([policy, ...glass.map((d) => d.policy)])].join(','),
      ...(channel ? { channel } : {}),
      ...(glass.length
        ? {
            breakGlassReason: [...new Set(glass.map((d) => d.breakGlass!.reason))].join(' | '),
            detail: { breakGlass: [...new Set(glass.flatMap((d) => d.breakGlass!.ids))] },
          }
        : {}),
      ...(patients.length === 1 ? { patientId: patients[0]! } : {}),
      objects: {
        level: query.level,
        matches: query.matches.map((m) => ({ ...m })),
        count: rows.length,
        studies: studies.slice(0, 1000),
        patients: patients.slice(0, 1000),
      },
    });
  }

  private async select(
    query: QidoQuery,
    scope: Expression<SqlBool>,
    offset: number,
    limit: number,
    purpose: Purpose,
    sort?: StudySort,
  ): Promise<Row[]> {
    const needsSeries = query.level !== 'study' || query.matches.some((m) => level(m.key) === 'se');
    const needsInstances = query.level === 'instance';
    // Only the columns the answer is made of: every row of a page is read, sorted and handed over with them.
    let qb = this.index.db
      .selectFrom('studies as st')
      .innerJoin('patients as p', 'p.pk', 'st.patient_pk')
      .select([
        ...STUDY_FACT_COLUMNS,
        'st.modalities',
        'st.num_series',
        'st.num_instances',
        'p.issuer',
        'p.patient_name',
        'p.birth_date',
        'p.sex',
      ])
      .$if(purpose === 'dicom', (q) => q.select('st.attrs_json as study_attrs'))
      .$if(purpose === 'rendered', (q) =>
        q.select(['st.created_at as study_created', 'st.updated_at as study_updated']),
      )
      .$if(purpose === 'browse', (q) =>
        q.select([
          'st.accession_number',
          'st.study_description',
          'st.study_date',
          'st.retention_until',
          'st.status',
        ]),
      )
      .where('st.status', '=', 'active')
      .where(scope);
    if (needsSeries && query.level !== 'study') {
      qb = qb.innerJoin('series as se', 'se.study_uid', 'st.study_uid') as typeof qb;
    }
    const bySeries = await this.fewSeriesOf(query, offset + limit);
    for (const m of query.matches) {
      if (m === bySeries) {
        qb = qb.where(matchPredicate(m, true));
      } else if (query.level === 'study' && level(m.key) === 'se') {
        // Study-level query filtered by a series attribute: the study matches if any of its series does.
        const col = m;
        qb = qb.where(
          sql<SqlBool>`exists (select 1 from series se where se.study_uid = st.study_uid and ${matchPredicate(col)})`,
        );
      } else {
        qb = qb.where(matchPredicate(m));
      }
    }
    let full;
    if (query.level === 'study' && sort) {
      full = studyOrder(this.index, sort).reduce((q, term) => q.orderBy(term), qb);
    } else if (query.level === 'study') {
      full = qb.orderBy('st.study_date', 'desc').orderBy('st.study_time', 'desc').orderBy('st.study_uid');
    } else if (query.level === 'series') {
      full = qb
        .select([
          'se.series_uid',
          'se.attrs_json as series_attrs',
          'se.num_instances as series_instances',
        ] as never[])
        .orderBy(sql.ref('st.study_uid'))
        // A series without a number last on both dialects: SQLite sorts NULL first by default, PostgreSQL last,
        // so until 6 Dec 2026 the two listed such a series at opposite ends.
        .orderBy(sql`${sql.ref('se.series_number')} nulls last`)
        .orderBy(sql.ref('se.series_uid'));
    } else {
      const withInst = (
        needsInstances
          ? qb.innerJoin('instances as i' as never, 'i.series_uid' as never, 'se.series_uid' as never)
          : qb
      ) as typeof qb;
      full = withInst
        .select([
          'se.series_uid',
          'se.attrs_json as series_attrs',
          'i.sop_instance_uid',
          'i.metadata_json',
          'i.transfer_syntax_uid',
          'i.status as instance_status',
        ] as never[])
        .where(sql.ref('i.status'), '=', 'active')
        .orderBy(sql.ref('se.series_uid'))
        .orderBy(sql`${sql.ref('i.instance_number')} nulls last`)
        .orderBy(sql.ref('i.sop_instance_uid'));
    }
    return (await full.limit(limit).offset(offset).execute()) as unknown as Row[];
  }

  /**
   * The ModalitiesInStudy key of a study query that has no other key, when so few series match it that the query
   * is better driven by them (matchPredicate's `drivenBySeries`); otherwise undefined.
   *
   * A study query is answered in date order. With `exists`, SQLite walks the studies in that order through their
   * date index and asks each for a matching series, stopping when the page is full: cheap for a common modality and
   * a small page, but for a rare modality (or one no study has) it reads every study of the archive to fill its
   * page. Driven by the series, it reads the matching series through their modality index and sorts their
   * studies: cheap for a rare modality, dear for a common one and a small page. SQLite, which Custos never asks to
   * gather statistics, cannot tell the two apart; so the matching series are counted first, no further than
   * where the walk would be cheaper. Measured on 5,000 studies (8 Dec 2026) a study walked cost about 1.9 µs and
   * a series driven about 3.5 µs; walking reads about min(N, rows·N/m) studies for `rows` rows of N studies with m
   * matching series, driving about m series, so the series drive when m < N/2 and m² < rows·N/2. N is read as the
   * studies' largest rowid, which deletions leave only higher. PostgreSQL plans either form as the same semi-join
   * by its own statistics, so it keeps `exists`. Until 8 Dec 2026 SQLite always walked: `ModalitiesInStudy=NM`
   * on an archive without NM read every study (4 ms at 5,000 studies, growing with the archive), and
   * `ModalitiesInStudy=CT` with no limit took 9.3 ms of SQL where the series take 4.4.
   */
  private async fewSeriesOf(query: QidoQuery, rows: number): Promise<Match | undefined> {
    const [m, ...others] = query.matches;
    if (
      this.index.dialect !== 'sqlite' ||
      query.level !== 'study' ||
      others.length ||
      m?.key !== 'ModalitiesInStudy'
    )
      return undefined;
    // A wildcard is left to the walk: one that is not a prefix is no range of the modality index.
    if (m.type !== 'equals' && m.type !== 'list') return undefined;
    const db = this.index.db;
    const studies = Number(
      (await sql<{ n: number | null }>`select max(rowid) as n from studies`.execute(db)).rows[0]?.n ?? 0,
    );
    const bound = Math.floor(Math.min(studies / 2, Math.sqrt((rows * studies) / 2))) + 1;
    const { rows: counted } = await sql<{
      n: number;
    }>`select count(*) as n from (select 1 from series s2 where ${modalityCondition(m)} limit ${bound})`.execute(
      db,
    );
    return Number(counted[0]?.n ?? bound) < bound ? m : undefined;
  }

  private toJson(
    query: QidoQuery,
    fields: readonly string[] | 'all',
    row: Row,
    base: string,
  ): DicomJsonObject {
    // Layers, later ones winning: stored study attributes, the study's computed ones, then (below study level)
    // the series' and the instance's. Looked up per returned field instead of merged into one object per row.
    const studyUrl = `${base}/studies/${row.study_uid}`;
    const studyComputed: DicomJsonObject = {
      '00080056': { vr: 'CS', Value: ['ONLINE'] },
      '00201206': { vr: 'IS', Value: [row.num_series] },
      '00201208': { vr: 'IS', Value: [row.num_instances] },
      '00081190': { vr: 'UR', Value: [studyUrl] },
    };
    if (row.modalities) studyComputed['00080061'] = { vr: 'CS', Value: row.modalities.split('\\') };
    if (row.sop_classes?.length) studyComputed[SOP_CLASSES_IN_STUDY] = { vr: 'UI', Value: row.sop_classes };
    const layers: DicomJsonObject[] = [JSON.parse(row.study_attrs!) as DicomJsonObject, studyComputed];
    if (query.level !== 'study') {
      const seriesUrl = `${studyUrl}/series/${row.series_uid}`;
      layers.push(JSON.parse(row.series_attrs!) as DicomJsonObject);
      if (query.level === 'series') {
        layers.push({
          '00081190': { vr: 'UR', Value: [seriesUrl] },
          '00201209': { vr: 'IS', Value: [row.series_instances!] },
        });
      } else {
        layers.push({ '00081190': { vr: 'UR', Value: [seriesUrl] } });
        layers.push(JSON.parse(row.metadata_json!) as DicomJsonObject);
        layers.push({
          '00081190': { vr: 'UR', Value: [`${seriesUrl}/instances/${row.sop_instance_uid}`] },
          '00080056': { vr: 'CS', Value: ['ONLINE'] },
          // Available Transfer Syntax UID (PS3.4 Table C.6-4, an optional instance-level key): the syntax it is
          // stored in, which a client asks for to pick what it can decode (wsidicom, OHIF's video handler).
          '00083002': { vr: 'UI', Value: [row.transfer_syntax_uid!] },
        });
      }
    }
    const lookup = (tag: string) => {
      for (let i = layers.length - 1; i >= 0; i--) {
        const v = layers[i]![tag];
        if (v !== undefined) return v;
      }
      return undefined;
    };
    // The patient index is the authority for the patient module (HL7 ADT updates and merges).
    const patient: DicomJsonObject = {};
    for (const tag of PATIENT_TAGS) {
      const v = lookup(tag);
      if (v !== undefined) patient[tag] = v;
    }
    const corrected = applyToJson(
      patient,
      patientCorrections(patient, {
        patientId: row.patient_id,
        issuer: row.issuer,
        name: row.patient_name,
        birthDate: row.birth_date,
        sex: row.sex,
      }),
    );
    if (fields === 'all') {
      const all: DicomJsonObject = Object.assign({}, ...layers, corrected);
      return sortByTag(withoutBulk(all));
    }
    // `fields` is sorted, so the result is in tag order without sorting each row.
    const out: DicomJsonObject = {};
    for (const t of fields) {
      const v = corrected[t] ?? lookup(t);
      if (v === undefined || isBulkValue(v)) continue;
      out[t] = v.vr === 'SQ' ? elementWithoutBulk(v) : v;
    }
    return out;
  }
}

/**
 * A digest of everything a study-level row's DICOM JSON is made of besides its UID (toJson): the fields and base
 * URL, the stored study attributes, the counts and modalities (and SOP classes, when asked for), and the patient
 * index's values. The stored attributes stand in by the row's creation and update times: they are written when the
 * study row is created (ingest) and never changed, and every change of a study row sets its updated_at. So a row is
 * recognised without reading its attributes, which are most of its bytes.
 */
function renderKey(fieldsKey: string, row: Row): string {
  // The inputs themselves, not a digest of them: a digest per row (eleven calls into the hash) cost ~3 µs a row,
  // more than the rest of a cached row; the key is kept once per remembered study. A null input is '\u0001'
  // without the separator, so it differs from every string, 'null' and '' included.
  const part = (v: string | number | null | undefined) =>
    v === null || v === undefined ? '\u0001' : `\u0000${String(v)}`;
  return (
    fieldsKey +
    part(row.study_created) +
    part(row.study_updated) +
    part(row.modalities) +
    part(row.sop_classes?.join('\\')) +
    part(row.num_series) +
    part(row.num_instances) +
    part(row.patient_id) +
    part(row.issuer) +
    part(row.patient_name) +
    part(row.birth_date) +
    part(row.sex)
  );
}

/**
 * The answer was cut by `limit` or by the server's maximum (limits.maxQueryResults): PS3.18 §8.3.4.4.1 words the
 * Warning for it thus, which clients test for. Until 7 Dec 2026 it was Custos's own "there are more results than
 * the limit; use offset to page".
 */
const MORE_RESULTS = 'There are additional results that can be requested';

/**
 * Warnings for a matching parameter given as true that Custos does not do, in the words of PS3.18 §8.3.4.2,
 * §8.3.4.5 and §8.3.4.6, which clients test for. Until 7 Dec 2026 the last two were Custos's own ("… Only literal
 * matching has been performed: no empty value matched.").
 */
const UNSUPPORTED_MATCHING: Readonly<Record<string, string>> = {
  fuzzymatching: 'The fuzzymatching parameter is not supported. Only literal matching has been performed.',
  emptyvaluematching:
    'The emptyvaluematching parameter is not supported. Empty Value Matching has not been performed.',
  multiplevaluematching:
    'The multiplevaluematching parameter is not supported. Multiple Value Matching has not been performed.',
};

/** The patient module attributes the patient index corrects (header-overlay.ts patientCorrections). */
const PATIENT_TAGS = ['00100010', '00100020', '00100021', '00100030', '00100040'] as const;

const SOP_CLASSES_IN_STUDY = '00080062';

/** Whether a study-level answer carries SOPClassesInStudy: asked for by includefield (C-FIND: a return key). */
function wantsSopClasses(query: QidoQuery, fields: readonly string[] | 'all'): boolean {
  return query.level === 'study' && (fields === 'all' || fields.includes(SOP_CLASSES_IN_STUDY));
}

/**
 * The attributes a QIDO response returns at the query's level: the level's defaults (PS3.18 Tables 10.6.3-3 to
 * -5) and the includefield keys, sorted by tag; worked out once per query, not per row.
 */
function returnedFields(query: QidoQuery): readonly string[] | 'all' {
  if (query.includeFields === 'all') return 'all';
  const defaults =
    query.level === 'study'
      ? STUDY_DEFAULT_RETURN
      : query.level === 'series'
        ? [...STUDY_DEFAULT_RETURN, ...SERIES_DEFAULT_RETURN]
        : [...STUDY_DEFAULT_RETURN, ...SERIES_DEFAULT_RETURN, ...INSTANCE_DEFAULT_RETURN];
  return [...new Set([...defaults, ...query.includeFields])].sort();
}

/**
 * QIDO returns attributes, never bulk data references into the store: a value stored as bulk data is left out, at
 * the top level and inside sequence items (until 5 Dec 2026 a binary value in a Request Attributes Sequence item
 * went out as an unresolvable `bulk:` placeholder).
 */
function withoutBulk(obj: DicomJsonObject): DicomJsonObject {
  for (const [k, v] of Object.entries(obj)) {
    if (isBulkValue(v)) delete obj[k];
    else if (v.vr === 'SQ') obj[k] = elementWithoutBulk(v);
  }
  return obj;
}

type JsonElement = DicomJsonObject[string];

/**
 * A value stored as bulk data, or binary over the inline limit: a big endian object's words are stored inline
 * (served from the file they would come in its byte order), and until 6 Dec 2026 went out in QIDO, where a
 * little endian object's did not.
 */
function isBulkValue(v: JsonElement): boolean {
  return (
    v.BulkDataURI !== undefined ||
    (typeof v.InlineBinary === 'string' && Buffer.byteLength(v.InlineBinary, 'base64') > INLINE_BINARY_MAX)
  );
}

/** A sequence without the bulk data references in its items; itself (not a copy) when it holds none. */
function elementWithoutBulk(v: JsonElement): JsonElement {
  const items = v.Value as DicomJsonObject[] | undefined;
  if (!items?.some(holdsBulk)) return v;
  return { ...v, Value: items.map((item) => withoutBulk({ ...item })) };
}

function holdsBulk(item: DicomJsonObject): boolean {
  for (const v of Object.values(item)) {
    if (isBulkValue(v)) return true;
    if (v.vr === 'SQ' && (v.Value as DicomJsonObject[] | undefined)?.some(holdsBulk)) return true;
  }
  return false;
}

/**
 * What a list is for: DICOM JSON (QIDO-RS, C-FIND), the same through a cache of rendered study rows ('rendered':
 * rows without their stored attributes, which are read only for studies the cache does not hold), or the
 * console's study browser.
 */
type Purpose = 'dicom' | 'rendered' | 'browse';

/** Stored attributes read per query for the studies a cache does not hold. */
const ATTRS_BATCH = 500;

/** A row of the list query; the fields after the patient's are there for one purpose only. */
interface Row extends StudyFactsRow {
  modalities: string;
  /** SOPClassesInStudy, read only when asked for (loadSopClasses). */
  sop_classes?: string[];
  num_series: number;
  num_instances: number;
  issuer: string;
  patient_name: string;
  birth_date: string;
  sex: string;
  /** 'dicom', and 'rendered' once read (searchRendered()) */
  study_attrs?: string;
  /** 'rendered' */
  study_created?: string;
  study_updated?: string;
  /** 'browse' */
  accession_number?: string;
  study_description?: string;
  study_date?: string;
  retention_until?: string | null;
  status?: string;
  series_uid?: string;
  series_attrs?: string;
  series_instances?: number;
  sop_instance_uid?: string;
  metadata_json?: string;
  transfer_syntax_uid?: string;
}
