import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { StudyFilter } from '../../ports/policy.js';

const ALL: StudyFilter = { kind: 'all' };
const NONE: StudyFilter = { kind: 'none' };

type Expr = cedar.Expr;
type Obj = Record<string, unknown>;

const isUnknownResource = (e: unknown): boolean => {
  const u = (e as Obj)?.unknown as { Value?: unknown }[] | undefined;
  return Array.isArray(u) && u[0]?.Value === 'resource';
};

/** `resource.attr` → attr, else undefined. */
function resourceAttr(e: Expr): string | undefined {
  const dot = (e as Obj)['.'] as { left: Expr; attr: string } | undefined;
  return dot && isUnknownResource(dot.left) ? dot.attr : undefined;
}

function literal(e: Expr): unknown {
  if ('Value' in e) return e.Value;
  if ('Set' in e) {
    const values = e.Set.map(literal);
    return values.every((v) => v !== undefined) ? values : undefined;
  }
  return undefined;
}

function and(of: StudyFilter[]): StudyFilter {
  if (of.some((f) => f.kind === 'none')) return NONE;
  const rest = of.filter((f) => f.kind !== 'all').flatMap((f) => (f.kind === 'and' ? f.of : [f]));
  return rest.length === 0 ? ALL : rest.length === 1 ? rest[0]! : { kind: 'and', of: rest };
}

function or(of: StudyFilter[]): StudyFilter {
  if (of.some((f) => f.kind === 'all')) return ALL;
  const rest = of.filter((f) => f.kind !== 'none').flatMap((f) => (f.kind === 'or' ? f.of : [f]));
  return rest.length === 0 ? NONE : rest.length === 1 ? rest[0]! : { kind: 'or', of: rest };
}

const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;

/**
 * A filter that holds whenever the residual expression (over an unknown study) is true. Every case not
 * recognised is `all`: the result may admit more than the expression, never less.
 */
export function filterOf(e: Expr): StudyFilter {
  const o = e as Obj;
  if ('Value' in e) return e.Value === false ? NONE : ALL;
  if ('&&' in o) {
    const { left, right } = o['&&'] as { left: Expr; right: Expr };
    return and([filterOf(left), filterOf(right)]);
  }
  if ('||' in o) {
    const { left, right } = o['||'] as { left: Expr; right: Expr };
    return or([filterOf(left), filterOf(right)]);
  }
  if ('is' in o) {
    const is = o.is as { left: Expr; entity_type: string; in?: Expr };
    if (!isUnknownResource(is.left)) return ALL;
    // Lists hold studies: a condition on another resource type never holds for a row.
    return is.entity_type === 'Custos::Study' ? ALL : NONE;
  }
  if ('==' in o) {
    const { left, right } = o['=='] as { left: Expr; right: Expr };
    const attr = resourceAttr(left) ?? resourceAttr(right);
    const value = literal(resourceAttr(left) ? right : left);
    if (typeof value !== 'string') return ALL;
    if (attr === 'department') return /^[\x20-\x7e]*$/.test(value) ? { kind: 'department', value } : ALL;
    if (attr === 'classification') return { kind: 'classification', value };
    if (attr === 'owner') return { kind: 'owner', value };
    if (attr === 'uid') return { kind: 'study', uids: [value] };
    return ALL;
  }
  for (const op of ['contains', 'containsAny'] as const) {
    if (!(op in o)) continue;
    const { left, right } = o[op] as { left: Expr; right: Expr };
    // A known set containing the study's own UID: the principal's break-glass studies.
    if (op === 'contains' && resourceAttr(right) === 'uid') {
      const uids = strings(literal(left));
      return !uids ? ALL : uids.length ? { kind: 'study', uids } : NONE;
    }
    const attr = resourceAttr(left);
    const raw = literal(right);
    const values = op === 'contains' ? (typeof raw === 'string' ? [raw] : undefined) : strings(raw);
    if (!attr || !values) return ALL;
    if (values.length === 0 && op === 'containsAny') return NONE;
    switch (attr) {
      case 'referringPhysicianNames': {
        // Keys are FAMILY^GIVEN of the upper-cased name: the family name is a substring of the stored value.
        const familyNames = values.map((k) => k.split('^')[0]!).filter((f) => f !== '');
        return familyNames.length ? { kind: 'referring-name', familyNames } : NONE;
      }
      case 'referringPhysicianIds':
        return { kind: 'referring-id', ids: values };
      case 'careTeam':
        return or(values.map((userId) => ({ kind: 'care-team', userId }) as StudyFilter));
      case 'grantees':
        return or(values.map((userId) => ({ kind: 'grantee', userId }) as StudyFilter));
      case 'projects':
        return { kind: 'project', projects: values };
      default:
        return ALL;
    }
  }
  return ALL;
}

/**
 * The filter of a partial evaluation with the study unknown: a study may be allowed only if some permit's
 * residual holds for it. Forbid residuals only take rows away, so they are left to the row-by-row decision.
 */
export function filterOfResiduals(response: cedar.ResidualResponse): StudyFilter {
  if (response.decision === 'deny') return NONE;
  if (response.decision === 'allow') return ALL;
  const permits = Object.values(response.residuals).filter((p) => p.effect === 'permit');
  // Scope constraints left in a residual and `unless` clauses are conjuncts; leaving them out only widens.
  return or(permits.map((p) => and(p.conditions.map((c) => (c.kind === 'when' ? filterOf(c.body) : ALL)))));
}

/**
 * The value of a residual expression for every study, or undefined when it depends on the study: only
 * `resource is Custos::Study` is known about the unknown resource (the question is about studies).
 */
function forEveryStudy(e: Expr): boolean | undefined {
  const o = e as Obj;
  if ('Value' in e) return typeof e.Value === 'boolean' ? e.Value : undefined;
  if ('&&' in o) {
    const { left, right } = o['&&'] as { left: Expr; right: Expr };
    const [l, r] = [forEveryStudy(left), forEveryStudy(right)];
    return l === false || r === false ? false : l === true && r === true ? true : undefined;
  }
  if ('||' in o) {
    const { left, right } = o['||'] as { left: Expr; right: Expr };
    const [l, r] = [forEveryStudy(left), forEveryStudy(right)];
    return l === true || r === true ? true : l === false && r === false ? false : undefined;
  }
  if ('!' in o) {
    const v = forEveryStudy((o['!'] as { arg: Expr }).arg);
    return v === undefined ? undefined : !v;
  }
  if ('is' in o) {
    const is = o.is as { left: Expr; entity_type: string; in?: Expr };
    if (!isUnknownResource(is.left) || is.in !== undefined) return undefined;
    return is.entity_type === 'Custos::Study';
  }
  return undefined;
}

/**
 * Whether a partial evaluation with the study unknown allows the action on every study: some permit holds
 * whatever the study's facts, and no forbid can hold for any study (a forbid whose conditions depend on the
 * study, such as restricted-needs-grant, may refuse some study). Anything not shown is false.
 */
export function everyStudyOfResiduals(response: cedar.ResidualResponse): boolean {
  if (response.decision !== null) return response.decision === 'allow';
  const satisfied = new Set(response.satisfied);
  const policies = Object.entries(response.residuals);
  const unscoped = (p: cedar.PolicyJson) =>
    p.principal.op === 'All' && p.action.op === 'All' && p.resource.op === 'All';
  const holds = ([id, p]: [string, cedar.PolicyJson]) =>
    satisfied.has(id) ||
    (unscoped(p) && p.conditions.every((c) => forEveryStudy(c.body) === (c.kind === 'when')));
  const never = ([, p]: [string, cedar.PolicyJson]) =>
    p.conditions.some((c) => forEveryStudy(c.body) === (c.kind !== 'when'));
  return (
    policies.some((e) => e[1].effect === 'permit' && holds(e)) &&
    policies.every((e) => e[1].effect !== 'forbid' || (!satisfied.has(e[0]) && never(e)))
  );
}
