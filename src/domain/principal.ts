import type { UserId } from './ids.js';

/** Who is asking. Every service call takes one; there is no anonymous path to data. */
export interface Principal {
  kind: 'user' | 'ae' | 'system';
  id: UserId;
  /** Account name (or AE title) as shown in the audit ledger. */
  name: string;
  role: string;
  /** Network source: client address for HTTP, calling host for DIMSE, 'cli' for local commands. */
  source: string;
  /** How it authenticated ('password', 'token:<id>', 'oidc', 'tls-cert', …), recorded with every audit record. */
  via?: string;
  /** The department the principal works in (policies scope by it). */
  department?: string;
  /** Purpose of use the caller declared for this request (HL7 PurposeOfUse code), recorded in the ledger. */
  purpose?: string;
}

/** The built-in administrator role of the first start (issue 4 adds the governance roles). */
export const ADMINISTRATOR_ROLE = 'administrator';

/** The governance roles (ARCHITECTURE.md users; issue 4), as SCIM `roles` values and in configuration. */
export const GOVERNANCE_ROLES = [
  'radiologist',
  'technologist',
  'referring-physician',
  'student',
  'sysadmin',
  'data-owner',
  'data-steward',
  'data-custodian',
  'privacy-officer',
  'researcher',
] as const;

export const KNOWN_ROLES: readonly string[] = [ADMINISTRATOR_ROLE, ...GOVERNANCE_ROLES];
