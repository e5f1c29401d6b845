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

/**
 * The one door to data: asks the policy decision point and, on deny, records the refusal before the caller
 * learns of it. Allowed accesses are recorded by the service that performs them, with the deciding policy, so
 * that one record names both the decision and the objects touched.
 */
export class AccessGate {
  constructor(
    private readonly pdp: PolicyDecisionPoint,
    private readonly ledger: AuditLedger,
  ) {}

  async require(principal: Principal, action: Action, resource: ResourceRef): Promise<Decision> {
    const decision = await this.pdp.decide(principal, action, resource);
    if (!decision.allowed) {
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
    return decision;
  }

  /** What lists may be narrowed to in SQL before each row is decided (`all` when the decision point cannot say). */
  async narrowing(principal: Principal, action: Action): Promise<StudyFilter> {
    const source = this.pdp as Partial<StudyFilterSource>;
    return source.studyFilter ? source.studyFilter(principal, action) : { kind: 'all' };
  }

  /** Decide without throwing: used to filter list results row by row. */
  decide(principal: Principal, action: Action, resource: ResourceRef): Promise<Decision> {
    return this.pdp.decide(principal, action, resource);
  }
}
