import type { Principal } from '../domain/principal.js';

/** Actions a policy can allow (ARCHITECTURE.md; issue 4 extends the set and moves them to Cedar). */
export type Action =
  'query' | 'view-metadata' | 'view-pixels' | 'store' | 'read-audit' | 'administer' | 'correct-header';

/** What the action is on. Study-level facts are what policies scope by. */
export interface ResourceRef {
  type: 'archive' | 'study' | 'account' | 'quarantine';
  studyUid?: string;
  patientId?: string;
  department?: string | null;
  classification?: string;
}

export interface Decision {
  allowed: boolean;
  /** Identifier of the policy that decided (allow or deny), recorded in the audit ledger. */
  policy: string;
  reason: string;
}

/** The single policy decision point every transport reaches through the services. */
export interface PolicyDecisionPoint {
  decide(principal: Principal, action: Action, resource: ResourceRef): Promise<Decision>;
}
