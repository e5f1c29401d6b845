// First: it switches off the V8 optimization that crashes Node 20 on Cedar's externref calls.
import './v8-wasm-call-guard.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { CustosError } from '../../domain/errors.js';
import { personNameKeys } from '../../domain/person-name.js';
import type { Principal } from '../../domain/principal.js';
import type {
  Action,
  Decision,
  PolicyDecisionPoint,
  PolicyProblem,
  PolicySetSource,
  PolicyValidator,
  ResourceRef,
  StudyFilter,
  StudyFilterSource,
} from '../../ports/policy.js';
import { everyStudyOfResiduals, filterOfResiduals } from './cedar-narrowing.js';

/** The schema and default policies shipped with Custos (the repository's policies/ directory). */
const POLICY_DIR = fileURLToPath(new URL('../../../policies/', import.meta.url));
export const SCHEMA_FILE = `${POLICY_DIR}custos.cedarschema`;
export const DEFAULT_POLICY_FILE = `${POLICY_DIR}default.cedar`;

const NS = 'Custos';

/** Line and column (1-based) of a byte offset into text: Cedar reports UTF-8 byte offsets. */
export function lineColumn(text: string, byteOffset: number): { line: number; column: number } {
  const before = Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: [...lines[lines.length - 1]!].length + 1 };
}

function problemsOf(text: string, errors: cedar.DetailedError[], policyId?: string): PolicyProblem[] {
  return errors.map((e) => {
    const at = e.sourceLocations?.[0];
    const label = at?.label ? `: ${at.label}` : '';
    return {
      message: e.message + label,
      ...(at ? lineColumn(text, at.start) : { line: 1, column: 1 }),
      ...(policyId ? { policyId } : {}),
      ...(e.help ? { help: e.help } : {}),
    };
  });
}

interface Compiled {
  /** Policies keyed by their @id, in file order. */
  policies: Record<string, string>;
  /** Cedar's positional id (policy0, policy1, ...) to @id, for validator messages. */
  idByPosition: Map<string, string>;
  problems: PolicyProblem[];
  /** Ids a new version may not use (see reservedIdProblem); an active version that has one still loads. */
  reservedIds: PolicyProblem[];
}

/**
 * The ledger's `policy` field names the deciding policy by its @id, several joined by commas, and names decisions
 * no Cedar policy took as `default-deny`, `n/a` or a namespaced id (`builtin:local-operator`,
 * `config:hl7.senders`). A policy with such an id would make an allow read as a default denial or a built-in rule,
 * or as two policies: the record would misname what decided.
 */
function reservedIdProblem(id: string): string | undefined {
  if (id === 'default-deny' || id === 'n/a')
    return `policy id '${id}' is reserved: the audit ledger records it for decisions no policy took`;
  if (id.includes(','))
    return `policy id '${id}' may not contain a comma: the audit ledger joins several deciding policies with commas`;
  if (id.includes(':'))
    return `policy id '${id}' may not contain a colon: the audit ledger records built-in rules as 'builtin:…' and configured ones as 'config:…'`;
  return undefined;
}

/** Split a policy file into its policies keyed by @id (the id recorded with every decision). */
function compile(text: string): Compiled {
  const policies: Record<string, string> = {};
  const idByPosition = new Map<string, string>();
  const parts = cedar.policySetTextToParts(text);
  if (parts.type === 'failure')
    return { policies, idByPosition, problems: problemsOf(text, parts.errors), reservedIds: [] };
  const problems: PolicyProblem[] = [];
  const reservedIds: PolicyProblem[] = [];
  for (const tpl of parts.policy_templates) {
    const at = text.indexOf(tpl);
    problems.push({
      message: 'policy templates are not supported: write static policies',
      ...lineColumn(text, Buffer.byteLength(text.slice(0, Math.max(at, 0)))),
    });
  }
  // The parts come back in no particular order; Cedar numbers policies (policy0, ...) in file order.
  // Claim the longest parts first so that a short policy is not found inside a longer one.
  const claimed: [number, number][] = [];
  const free = (at: number, len: number) => claimed.every(([s, e]) => at + len <= s || at >= e);
  const located = [...parts.policies]
    .sort((a, b) => b.length - a.length)
    .map((p) => {
      let at = text.indexOf(p);
      while (at >= 0 && !free(at, p.length)) at = text.indexOf(p, at + 1);
      if (at >= 0) claimed.push([at, at + p.length]);
      return { p, at };
    });
  located.sort((a, b) => a.at - b.at);
  located.forEach(({ p, at }, i) => {
    const where = lineColumn(text, Buffer.byteLength(text.slice(0, Math.max(at, 0))));
    const json = cedar.policyToJson(p);
    const id = json.type === 'success' ? json.json.annotations?.id : undefined;
    if (!id) {
      problems.push({
        message: 'every policy needs an @id("...") annotation: the audit ledger records it',
        ...where,
      });
      return;
    }
    if (policies[id] !== undefined) {
      problems.push({ message: `duplicate policy id '${id}'`, policyId: id, ...where });
      return;
    }
    const reserved = reservedIdProblem(id);
    if (reserved) reservedIds.push({ message: reserved, policyId: id, ...where });
    policies[id] = p;
    idByPosition.set(`policy${i}`, id);
  });
  return { policies, idByPosition, problems, reservedIds };
}

/** Parse and validate policy files against the shipped schema (strict mode). */
export class CedarPolicyValidator implements PolicyValidator {
  readonly schema: string;

  constructor(schemaFile = SCHEMA_FILE) {
    this.schema = readFileSync(schemaFile, 'utf8');
    const parsed = cedar.checkParseSchema(this.schema);
    if (parsed.type === 'failure') {
      throw new CustosError({
        code: 'policy.bad-schema',
        message: `the Cedar schema ${schemaFile} does not parse: ${parsed.errors.map((e) => e.message).join('; ')}`,
      });
    }
  }

  validate(text: string): PolicyProblem[] {
    const parsed = cedar.checkParsePolicySet({ staticPolicies: text });
    if (parsed.type === 'failure') return problemsOf(text, parsed.errors);
    const compiled = compile(text);
    if (compiled.problems.length || compiled.reservedIds.length)
      return [...compiled.problems, ...compiled.reservedIds];
    const answer = cedar.validate({
      schema: this.schema,
      policies: { staticPolicies: text },
      validationSettings: { mode: 'strict' },
    });
    if (answer.type === 'failure') return problemsOf(text, answer.errors);
    return answer.validationErrors.flatMap((v) => {
      const id = compiled.idByPosition.get(v.policyId) ?? v.policyId;
      const [p] = problemsOf(text, [v.error], id);
      // Cedar names policies by position (policy4); the editor knows them by @id.
      return [{ ...p!, message: p!.message.replaceAll(`\`${v.policyId}\``, `'${id}'`) }];
    });
  }

  defaultPolicyText(): string {
    return readFileSync(DEFAULT_POLICY_FILE, 'utf8');
  }
}

const uid = (type: string, id: string): cedar.TypeAndId => ({ type: `${NS}::${type}`, id });
const normDept = (d: string | null | undefined) => (d ?? '').trim().toLowerCase();
const principalUid = (p: Principal) => (p.kind === 'user' ? String(p.id) : `${p.kind}:${p.id}`);
/**
 * The account a principal acts for, as grants and care teams name it: a user's id, and for an AE bound to an
 * account (its id is the account's) that account's, so that the account's grants and care-team memberships reach
 * its AE as its role and department do (docs/dimse.md). Until 6 Dec 2026 an AE's was `ae:<account>`, which no
 * grant or care team names: an AE bound to a student found nothing it was granted. Anything else (an unbound AE,
 * a system principal) matches no account.
 */
const accountUid = (p: Principal) =>
  p.kind === 'user' || (p.kind === 'ae' && /^\d{1,15}$/.test(p.id)) ? String(p.id) : principalUid(p);

/** The Cedar entities of one request: the principal, its role and the resource. */
export function requestEntities(
  principal: Principal,
  resource: ResourceRef,
): { principal: cedar.TypeAndId; resource: cedar.TypeAndId; entities: cedar.EntityJson[] } {
  const p = uid('User', principalUid(principal));
  const role = uid('Role', principal.role);
  const entities: cedar.EntityJson[] = [
    { uid: role, attrs: {}, parents: [] },
    {
      uid: p,
      attrs: {
        uid: accountUid(principal),
        name: principal.name,
        department: normDept(principal.department),
        physicianNames: personNameKeys(principal.physicianName),
        physicianId: (principal.physicianId ?? '').trim(),
        projects: [...(principal.projects ?? [])],
        breakGlassStudies: [...(principal.breakGlassStudies ?? [])],
      },
      parents: [role],
    },
  ];
  if (resource.type !== 'study') return { principal: p, resource: uid('Archive', 'custos'), entities };
  const r = uid('Study', resource.studyUid ?? '');
  entities.push({
    uid: r,
    attrs: {
      uid: resource.studyUid ?? '',
      department: normDept(resource.department),
      classification: resource.classification ?? 'normal',
      owner: resource.owner ?? '',
      referringPhysicianNames: personNameKeys(resource.referringPhysicianName),
      referringPhysicianIds: [...(resource.referringPhysicianIds ?? [])],
      careTeam: [...(resource.careTeam ?? [])],
      projects: [...(resource.projects ?? [])],
      grantees: [...(resource.grantees ?? [])],
    },
    parents: [],
  });
  return { principal: p, resource: r, entities };
}

/**
 * Everything requestEntities builds the entities from, as strings: equal keys give equal entities (up to the
 * study's identity when `anyStudy`, see studyIdentityMatters). The principal's part is made once per decideEach.
 */
function principalKey(p: Principal): string {
  return JSON.stringify([
    p.kind,
    p.id,
    p.name,
    p.role,
    p.department ?? null,
    p.physicianName ?? null,
    p.physicianId ?? null,
    p.projects ?? [],
    p.breakGlassStudies ?? [],
  ]);
}

function resourceKey(r: ResourceRef, anyStudy: boolean): string {
  return JSON.stringify([
    r.type,
    ...(r.type === 'study'
      ? [
          anyStudy ? '*' : (r.studyUid ?? ''),
          r.department ?? null,
          r.classification ?? null,
          r.owner ?? null,
          r.referringPhysicianName ?? null,
          r.referringPhysicianIds ?? [],
          r.careTeam ?? [],
          r.projects ?? [],
          r.grantees ?? [],
        ]
      : []),
  ]);
}

export interface CedarPdpOptions {
  /** How long a known active version is trusted before the source is asked again (ms). Default 1000. */
  refreshMs?: number;
  /** Decisions remembered per policy version (least recently used dropped first); 0 turns memoisation off. Default 20,000. */
  memoSize?: number;
}

let nextSetId = 0;

/** What a partial evaluation with the study unknown says about a principal's action on studies. */
interface Scope {
  /** The SQL narrowing of lists (a superset of the allowed studies). */
  filter: StudyFilter;
  /** Allowed on every study, whatever its facts. */
  every: boolean;
}

/** The one use of a study's identity in the shipped policies: false for every study when the set is empty. */
const BREAK_GLASS_CHECK =
  /principal\s*\.\s*breakGlassStudies\s*\.\s*contains\s*\(\s*resource\s*\.\s*uid\s*\)/g;

/**
 * Whether a decision may depend on which study it is, beyond the study's facts: a policy naming a study
 * (`resource.uid`, `resource == Custos::Study::"…"`, `resource in …`, `resource["uid"]`), other than the
 * break-glass check. Textual and conservative: anything that looks like it (comments included) counts.
 */
export function studyIdentityMatters(policies: Record<string, string>): boolean {
  const text = Object.values(policies).join('\n').replace(BREAK_GLASS_CHECK, '');
  return /resource\s*\.\s*uid|resource\s*\[|resource\s*(==|!=|in\b)|Study\s*::\s*"/.test(text);
}

/**
 * The Cedar policy decision point. The active policy set is parsed once per version and kept in the
 * engine's cache; a version check against the source, at most every refreshMs, notices a `policy apply`
 * made by any process sharing the database. Deny by default: no permit, or any error, refuses.
 */
export class CedarPolicyDecisionPoint implements PolicyDecisionPoint, StudyFilterSource {
  private active?: {
    version: number;
    setId: string;
    order: Map<string, number>;
    policies: Record<string, string>;
    /** See studyIdentityMatters: when false, studies with the same facts share remembered decisions. */
    byStudy: boolean;
  };
  private readonly scopes = new Map<string, Scope>();
  private checkedAt = -Infinity;
  private refreshing?: Promise<void>;
  private readonly refreshMs: number;
  private readonly memoSize: number;
  private readonly memo = new Map<string, Decision>();

  constructor(
    private readonly source: PolicySetSource,
    opts: CedarPdpOptions = {},
  ) {
    this.refreshMs = opts.refreshMs ?? 1000;
    this.memoSize = opts.memoSize ?? 20_000;
  }

  /** Forget the version check so that the next decision reads the active version (after an apply). */
  invalidate(): void {
    this.checkedAt = -Infinity;
  }

  async decide(principal: Principal, action: Action, resource: ResourceRef): Promise<Decision> {
    return (await this.decideEach(principal, action, [resource]))[0]!;
  }

  /** decide() for each of many resources (a page of a list): the version checked and the principal keyed once. */
  async decideEach(
    principal: Principal,
    action: Action,
    resources: readonly ResourceRef[],
  ): Promise<Decision[]> {
    const { version, setId, order, byStudy } = await this.current();
    // A decision is a pure function of the policy version and the request's entities: the same viewer paging
    // through the same studies is answered from memory (a wasm call costs a few hundred µs: bench/policy.ts).
    // Unless a policy names studies, or the principal holds break-glass windows, it does not depend on which
    // study it is: studies with the same facts (department, physician, classification, …) share one entry, so
    // a QIDO page over many similar studies costs a few evaluations, not one per row.
    // The key is made of the raw inputs the entities are built from (cheaper than building them: a QIDO page
    // asks once per row); the entities are built only when Cedar has to evaluate.
    const shared = !byStudy && !principal.breakGlassStudies?.length;
    const prefix = `${version}\u0000${action}\u0000${principalKey(principal)}`;
    return resources.map((resource) => {
      const key = `${prefix}\u0000${resourceKey(resource, shared && resource.type === 'study')}`;
      const known = this.memo.get(key);
      if (known) {
        this.memo.delete(key);
        this.memo.set(key, known);
        return known;
      }
      const req = requestEntities(principal, resource);
      const decision = Object.freeze(this.evaluate(version, setId, order, principal, action, resource, req));
      this.memo.set(key, decision);
      if (this.memo.size > this.memoSize) this.memo.delete(this.memo.keys().next().value!);
      return decision;
    });
  }

  private evaluate(
    version: number,
    setId: string,
    order: Map<string, number>,
    principal: Principal,
    action: Action,
    resource: ResourceRef,
    req: ReturnType<typeof requestEntities>,
  ): Decision {
    const answer = cedar.statefulIsAuthorized({
      principal: req.principal,
      action: uid('Action', action),
      resource: req.resource,
      context: {},
      entities: req.entities,
      preparsedPolicySetId: setId,
    });
    if (answer.type === 'failure') {
      return {
        allowed: false,
        policy: 'default-deny',
        reason: `the request could not be evaluated: ${answer.errors.map((e) => e.message).join('; ')}`,
      };
    }
    const { decision, diagnostics } = answer.response;
    // Cedar reports the satisfied policies in no fixed order; the ledger gets them in file order.
    const ids = [...diagnostics.reason].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
    const errors = diagnostics.errors.length
      ? `; policies in error: ${diagnostics.errors.map((e) => `${e.policyId} (${e.error.message})`).join(', ')}`
      : '';
    if (decision === 'allow') {
      return {
        allowed: true,
        policy: ids.join(','),
        reason: `permitted by ${ids.join(', ')} (policy version ${version})`,
      };
    }
    if (ids.length) {
      return {
        allowed: false,
        policy: ids.join(','),
        reason: `forbidden by ${ids.join(', ')} (policy version ${version})${errors}`,
      };
    }
    return {
      allowed: false,
      policy: 'default-deny',
      reason: `no policy permits ${action} for role '${principal.role}' on this ${resource.type === 'study' ? 'study' : 'archive'} (policy version ${version})${errors}`,
    };
  }

  /**
   * The scope of an action for a principal as a filter on study facts, from Cedar's partial evaluation with
   * the study unknown: lists are narrowed in SQL with it, and each row is still decided.
   */
  async studyFilter(principal: Principal, action: Action): Promise<StudyFilter> {
    return (await this.scope(principal, action)).filter;
  }

  /** Whether the action is allowed on every study whatever its facts, from the same partial evaluation. */
  async allowsEveryStudy(principal: Principal, action: Action): Promise<boolean> {
    return (await this.scope(principal, action)).every;
  }

  private async scope(principal: Principal, action: Action): Promise<Scope> {
    const { version, policies } = await this.current();
    const req = requestEntities(principal, { type: 'archive' });
    const entities = req.entities;
    const key = `${version}\u0000${action}\u0000${JSON.stringify(entities)}`;
    const known = this.scopes.get(key);
    if (known) return known;
    const answer = cedar.isAuthorizedPartial({
      principal: req.principal,
      action: uid('Action', action),
      resource: null,
      context: {},
      policies: { staticPolicies: policies },
      entities,
    });
    const scope: Scope =
      answer.type === 'residuals'
        ? { filter: filterOfResiduals(answer.response), every: everyStudyOfResiduals(answer.response) }
        : { filter: { kind: 'all' }, every: false };
    this.scopes.set(key, scope);
    if (this.scopes.size > 1000) this.scopes.delete(this.scopes.keys().next().value!);
    return scope;
  }

  private async current(): Promise<{
    version: number;
    setId: string;
    order: Map<string, number>;
    policies: Record<string, string>;
    byStudy: boolean;
  }> {
    if (this.active && performance.now() - this.checkedAt < this.refreshMs) return this.active;
    this.refreshing ??= this.refresh().finally(() => (this.refreshing = undefined));
    await this.refreshing;
    return this.active!;
  }

  private async refresh(): Promise<void> {
    const version = await this.source.activeVersion();
    if (this.active?.version !== version) {
      const text = await this.source.text(version);
      const compiled = compile(text);
      if (compiled.problems.length) {
        throw new CustosError({
          code: 'policy.unusable',
          message: `active policy version ${version} does not compile: ${compiled.problems.map((p) => `${p.line}:${p.column} ${p.message}`).join('; ')}`,
        });
      }
      const setId = `custos-v${version}-${nextSetId++}`;
      const parsed = cedar.preparsePolicySet(setId, { staticPolicies: compiled.policies });
      if (parsed.type === 'failure') {
        throw new CustosError({
          code: 'policy.unusable',
          message: `active policy version ${version} does not parse: ${parsed.errors.map((e) => e.message).join('; ')}`,
        });
      }
      const order = new Map(Object.keys(compiled.policies).map((id, i) => [id, i]));
      this.active = {
        version,
        setId,
        order,
        policies: compiled.policies,
        byStudy: studyIdentityMatters(compiled.policies),
      };
      this.memo.clear();
      this.scopes.clear();
    }
    this.checkedAt = performance.now();
  }
}
