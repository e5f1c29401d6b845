import type { Principal } from '../domain/principal.js';

/**
 * Actions a policy can allow (docs/access-control.md). Archive-wide actions (store, query's first check,
 * read-audit, administer) are decided on the archive; the others on one study.
 */
export const ACTIONS = [
  'query',
  'view-metadata',
  'view-pixels',
  'store',
  'export-clinical',
  'print',
  'correct-header',
  'request-deletion',
  'approve-deletion',
  'export-deidentified',
  'read-audit',
  'administer',
  'view-activity',
  'break-glass',
  'review-break-glass',
  // Issue 6: the data-quality KPIs (GET /api/quality/kpis), archive-wide.
  'read-quality-kpis',
] as const;
export type Action = (typeof ACTIONS)[number];

/** What the action is on. Study-level facts, read from the index, are what policies scope by. */
export interface ResourceRef {
  type: 'archive' | 'study' | 'account';
  studyUid?: string;
  patientId?: string;
  department?: string | null;
  classification?: string;
  /** ReferringPhysicianName (0008,0090) as stored. */
  referringPhysicianName?: string;
  /** Code values of Referring Physician Identification Sequence (0008,0096). */
  referringPhysicianIds?: readonly string[];
  /** The study's data owner (account name), when one is recorded. */
  owner?: string | null;
  /** Account ids on the study's order / care team. */
  careTeam?: readonly string[];
  /** Research projects the study is enrolled in. */
  projects?: readonly string[];
  /** Account ids with an unexpired explicit grant on the study. */
  grantees?: readonly string[];
}

export interface Decision {
  allowed: boolean;
  /** Identifier(s) of the policy that decided (allow or deny), recorded in the audit ledger. */
  policy: string;
  reason: string;
  /**
   * Set by the access gate when the principal holds an open break-glass window on the study: the windows and
   * the reason given, which every record of the access carries (docs/access-control.md).
   */
  breakGlass?: { ids: string[]; reason: string };
}

/** The single policy decision point every transport reaches through the services. */
export interface PolicyDecisionPoint {
  decide(principal: Principal, action: Action, resource: ResourceRef): Promise<Decision>;
  /** decide() for each resource, in order (a page of a list: cheaper than one call each). */
  decideEach(principal: Principal, action: Action, resources: readonly ResourceRef[]): Promise<Decision[]>;
}

/** A problem found in a policy file, located for the person editing it (1-based line and column). */
export interface PolicyProblem {
  message: string;
  line: number;
  column: number;
  /** The @id of the policy concerned, when the problem is inside one. */
  policyId?: string;
  help?: string;
}

/** Parses and validates policy text against the schema shipped with Custos. */
export interface PolicyValidator {
  validate(text: string): PolicyProblem[];
  /** The policy set shipped with Custos, installed as version 1 on first start. */
  defaultPolicyText(): string;
}

/** Where the decision point reads the active policy set from (the policy_versions table in the index). */
export interface PolicySetSource {
  /** The active version number: cheap, called often to notice an apply from another process. */
  activeVersion(): Promise<number>;
  /** The text of one version. */
  text(version: number): Promise<string>;
}

/**
 * A condition on study facts that holds for every study a principal may be allowed an action on: lists are
 * narrowed in SQL with it, then every row is still decided. It may admit more than the policies allow (a
 * superset, never less), so anything the narrowing cannot express is `all`.
 */
export type StudyFilter =
  | { kind: 'all' }
  | { kind: 'none' }
  | { kind: 'and'; of: StudyFilter[] }
  | { kind: 'or'; of: StudyFilter[] }
  /** The study's department, trimmed and lower-cased, equals value (ASCII only). */
  | { kind: 'department'; value: string }
  | { kind: 'classification'; value: string }
  | { kind: 'owner'; value: string }
  /** The upper-cased ReferringPhysicianName contains one of these upper-cased family names. */
  | { kind: 'referring-name'; familyNames: string[] }
  /** The stored referring physician identifiers contain one of these. */
  | { kind: 'referring-id'; ids: string[] }
  | { kind: 'care-team'; userId: string }
  | { kind: 'grantee'; userId: string }
  | { kind: 'project'; projects: string[] }
  /** The Study Instance UID is one of these (an open break-glass window names its study). */
  | { kind: 'study'; uids: string[] };

/** Optional capability of a decision point: the SQL-expressible scope of an action for a principal. */
export interface StudyFilterSource {
  studyFilter(principal: Principal, action: Action): Promise<StudyFilter>;
  /**
   * Whether the action is allowed on every study, whatever its facts (a restricted one included): only such a
   * principal is told that a study UID is not in the archive; everyone else gets the refusal a forbidden study
   * gets (docs/access-control.md, "What a refusal says"). False when it cannot be shown.
   */
  allowsEveryStudy(principal: Principal, action: Action): Promise<boolean>;
}
