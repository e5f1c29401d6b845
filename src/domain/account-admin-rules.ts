import { ADMINISTRATOR_ROLE } from './principal.js';

/** The role that reads the audit ledger and reviews break-glass: it watches those who administer. */
export const PRIVACY_OFFICER_ROLE = 'privacy-officer';

/**
 * Roles that administer accounts (the shipped `archive-administer` policy: sysadmin, data-custodian,
 * administrator) or audit those who do (privacy-officer). Separation of duties (docs/accounts.md): only the
 * administrator grants these roles, or acts on an account that holds one, through user administration; a
 * sysadmin or data custodian administers every other account, and its own.
 */
export const GUARDED_ROLES: readonly string[] = [
  ADMINISTRATOR_ROLE,
  'sysadmin',
  'data-custodian',
  PRIVACY_OFFICER_ROLE,
];

export interface AccountRef {
  name: string;
  role: string;
}

/** Why `actor` may not give an account the role `role`, or undefined when it may. */
export function roleGrantProblem(actor: AccountRef, role: string): string | undefined {
  if (actor.role === ADMINISTRATOR_ROLE || !GUARDED_ROLES.includes(role)) return undefined;
  return `only an administrator may grant the role '${role}'; a ${actor.role} may not (separation of duties)`;
}

/** Why `actor` may not change, reset or unlock the account `target`, or undefined when it may. */
export function accountManageProblem(actor: AccountRef, target: AccountRef): string | undefined {
  if (actor.role === ADMINISTRATOR_ROLE || actor.name === target.name || !GUARDED_ROLES.includes(target.role))
    return undefined;
  return `only an administrator may administer the account '${target.name}' (role '${target.role}'); a ${actor.role} may not (separation of duties)`;
}

/**
 * Why `actor` may not create an API token for `target`, or undefined when it may: a token is the account's
 * power without its password or second factor, so it is issued only for an account with no more privilege than
 * the actor's (accountManageProblem), and for the privacy officer by nobody but the privacy officer.
 */
export function tokenIssueProblem(actor: AccountRef, target: AccountRef): string | undefined {
  if (target.role === PRIVACY_OFFICER_ROLE && actor.name !== target.name)
    return `only the privacy officer '${target.name}' may create API tokens for that account; the privacy officer audits those who administer accounts (separation of duties)`;
  return accountManageProblem(actor, target);
}
