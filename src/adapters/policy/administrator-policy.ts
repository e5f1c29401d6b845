import { ADMINISTRATOR_ROLE, type Principal } from '../../domain/principal.js';
import type { Action, Decision, PolicyDecisionPoint, ResourceRef } from '../../ports/policy.js';

/**
 * First-day policy decision point: deny by default, allow an authenticated administrator everything. The
 * access-control issue replaces it with Cedar policies behind the same port.
 */
export class AdministratorOnlyPolicy implements PolicyDecisionPoint {
  async decide(principal: Principal, _action: Action, _resource: ResourceRef): Promise<Decision> {
    if (principal.role === ADMINISTRATOR_ROLE) {
      return {
        allowed: true,
        policy: 'builtin:administrator-allow',
        reason: 'administrators may do everything',
      };
    }
    return {
      allowed: false,
      policy: 'builtin:default-deny',
      reason: 'no policy permits this action for this role',
    };
  }
}
