import { CustosError } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type {
  Action,
  Decision,
  PolicyDecisionPoint,
  ResourceRef,
  StudyFilter,
  StudyFilterSource,
} from '../ports/policy.js';

/** An open break-glass window of the principal: one study, the reason given, until expiresAt. */
export interface BreakGlassWindow {
  id: string;
  studyUid: string;
  reason: string;
  expiresAt: string;
}

/** Where the gate learns a principal's open break-glass windows (the break_glass table). */
export interface BreakGlassWindowSource {
  /** Unexpired windows of this principal, now. */
  openFor(principal: Principal): Promise<readonly BreakGlassWindow[]>;
}

/**
 * The one door to data: asks the policy decision point and, on deny, records the refusal before the caller
 * learns of it. Allowed accesses are recorded by the service that performs them, with the deciding policy, so
 * that one record names both the decision and the objects touched.
 *
 * Break-glass: the principal's open windows are added to its facts before every decision (so the break-glass
 * policy can permit those studies, in row checks and in SQL narrowing alike), and an allowed decision on a
 * study with an open window carries the window and its reason for the access record.
 */
export class AccessGate {
  constructor(
    private readonly pdp: PolicyDecisionPoint,
    private readonly ledger: AuditLedger,
    private readonly breakGlass?: BreakGlassWindowSource,
  ) {}

  async require(principal: Principal, action: Action, resource: ResourceRef): Promise<Decision> {
    const { scoped, windows } = await this.withWindows(principal);
    const decision = await this.pdp.decide(scoped, action, resource);
    if (!decision.allowed) return this.refuse(principal, action, resource, decision);
    return marked(decision, resource, windows);
  }

  /**
   * A study UID that is not in the archive: returns (the caller then answers "not found") only when the
   * principal is allowed the action on every study, whatever its facts; anyone else is refused exactly as for
   * a study it may not read, so that a refusal tells nothing about whether the study exists. Until 6 Dec 2026
   * the unknown study was decided as a study with no facts, i.e. `normal`: a role allowed every normal study
   * but refused restricted ones (the administrator, the data steward) got 404 here and 403 on a restricted
   * study, and so learnt which UIDs were restricted studies.
   */
  async requireUnknownStudy(principal: Principal, action: Action, studyUid: string): Promise<void> {
    const { scoped } = await this.withWindows(principal);
    const source = this.pdp as Partial<StudyFilterSource>;
    if (source.allowsEveryStudy && (await source.allowsEveryStudy(scoped, action))) return;
    const resource: ResourceRef = { type: 'study', studyUid };
    const decision = await this.pdp.decide(scoped, action, resource);
    await this.refuse(
      principal,
      action,
      resource,
      decision.allowed
        ? {
            allowed: false,
            policy: 'builtin:unknown-study',
            reason: `no study ${studyUid} in the archive; refused as a study this principal may not read, since it may not ${action} every study (${decision.reason})`,
          }
        : decision,
    );
  }

  /** Record the refusal, then throw it: for a study, one answer whatever the study (or its absence). */
  private async refuse(
    principal: Principal,
    action: Action,
    resource: ResourceRef,
    decision: Decision,
  ): Promise<never> {
    await this.ledger.append({
      principal,
      action,
      outcome: 'denied',
      policy: decision.policy,
      ...(resource.patientId ? { patientId: resource.patientId } : {}),
      ...(resource.studyUid ? { studyUid: resource.studyUid } : {}),
      detail: { reason: decision.reason, resource: resource.type },
    });
    throw new CustosError({
      code: 'access.denied',
      // For a study the answer names neither the deciding policy nor the study's facts (restricted, another
      // department...), and is the same for a study that does not exist: the ledger keeps the reason.
      message:
        resource.type === 'study'
          ? `${principal.name} may not ${action} this study, or it is not in the archive`
          : `${principal.name} may not ${action} ${resource.type}: ${decision.reason}`,
      httpStatus: 403,
      dicomStatus: 0x0124,
    });
  }

  /** What lists may be narrowed to in SQL before each row is decided (`all` when the decision point cannot say). */
  async narrowing(principal: Principal, action: Action): Promise<StudyFilter> {
    const source = this.pdp as Partial<StudyFilterSource>;
    if (!source.studyFilter) return { kind: 'all' };
    const { scoped } = await this.withWindows(principal);
    return source.studyFilter(scoped, action);
  }

  /** Decide without throwing: used to filter list results row by row. */
  async decide(principal: Principal, action: Action, resource: ResourceRef): Promise<Decision> {
    return (await this.decideEach(principal, action, [resource]))[0]!;
  }

  /** decide() for each of many resources (a page of a list), the principal's windows looked up once. */
  async decideEach(
    principal: Principal,
    action: Action,
    resources: readonly ResourceRef[],
  ): Promise<Decision[]> {
    const { scoped, windows } = await this.withWindows(principal);
    const decisions = await this.pdp.decideEach(scoped, action, resources);
    return decisions.map((d, i) => marked(d, resources[i]!, windows));
  }

  private async withWindows(
    principal: Principal,
  ): Promise<{ scoped: Principal; windows: readonly BreakGlassWindow[] }> {
    const windows = this.breakGlass ? await this.breakGlass.openFor(principal) : [];
    if (!windows.length) {
      // Only the gate fills breakGlassStudies: whatever a caller put there is not a window.
      const { breakGlassStudies: _ignored, ...scoped } = principal;
      return { scoped: principal.breakGlassStudies ? scoped : principal, windows };
    }
    return {
      scoped: { ...principal, breakGlassStudies: [...new Set(windows.map((w) => w.studyUid))].sort() },
      windows,
    };
  }
}

/** An allowed decision on a study the principal holds a window on names the windows and the reason given. */
function marked(decision: Decision, resource: ResourceRef, windows: readonly BreakGlassWindow[]): Decision {
  if (!decision.allowed || resource.type !== 'study' || !windows.length) return decision;
  const mine = windows.filter((w) => w.studyUid === resource.studyUid);
  if (!mine.length) return decision;
  return {
    ...decision,
    breakGlass: { ids: mine.map((w) => w.id), reason: [...new Set(mine.map((w) => w.reason))].join(' | ') },
  };
}
