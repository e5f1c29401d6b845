import type { UserId } from './ids.js';

/** Who is asking. Every service call takes one; there is no anonymous path to data. */
export interface Principal {
  kind: 'user' | 'ae' | 'system';
  /** The account id; for an AE, its bound account's id (`ae:<title>` when it has none). */
  id: UserId;
  /** Account name (or AE title) as shown in the audit ledger. */
  name: string;
  role: string;
  /** Network source: client address for HTTP, calling host for DIMSE, 'cli' for local commands. */
  source: string;
  /** How it authenticated ('password', 'token:<id>', 'oidc', 'tls-cert', …), recorded with every audit record. */
  via?: string;
  /**
   * The interface the request came in by, as audit records name it (`dicomweb`, `wado-uri`, `admin-api`, `fhir`,
   * `scim`, `dimse`, `hl7`, `cli`): set once by the transport, carried by every record made for the request.
   */
  channel?: string;
  /**
   * What else the transport knows of the request that an auditor needs in every record of it (a DIMSE service,
   * a C-MOVE destination): kept in each record's `detail`, under whatever the record itself says.
   */
  channelDetail?: Readonly<Record<string, string>>;
  /** Purpose of use the caller declared for this request (HL7 PurposeOfUse code), recorded in the ledger. */
  purpose?: string;
  /** The account's department (scopes department-bound roles). */
  department?: string | null;
  /** The account's physician name as a DICOM PN ('Family^Given'), matched to ReferringPhysicianName. */
  physicianName?: string | null;
  /** An explicit physician identifier, matched to Referring Physician Identification Sequence code values. */
  physicianId?: string | null;
  /** Research projects the account is a member of. */
  projects?: readonly string[];
  /** Studies of the account's open break-glass windows: filled in by the access gate, never by a transport. */
  breakGlassStudies?: readonly string[];
}

/**
 * The built-in role of the first-start account (docs/access-control.md lists what it may do); the governance
 * roles are in ROLES.
 */
export const ADMINISTRATOR_ROLE = 'administrator';

/** Roles the shipped policies know (issue 4), as SCIM `roles` values and in `custos user add --role`. */
export const ROLES = [
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
  ADMINISTRATOR_ROLE,
] as const;
