/**
 * Which screens each role is offered. The server decides every request through its policies whatever this
 * says; this only keeps the navigation to what a role can use (docs/console.md has the table).
 */
export type Screen = 'dashboard' | 'studies' | 'audit' | 'quarantine' | 'users';

const SCREENS: Record<Screen, readonly string[]> = {
  dashboard: ['data-steward', 'data-owner', 'data-custodian', 'privacy-officer', 'administrator'],
  studies: [
    'radiologist',
    'technologist',
    'referring-physician',
    'student',
    'data-owner',
    'data-steward',
    'administrator',
  ],
  audit: ['privacy-officer', 'data-owner', 'administrator'],
  quarantine: ['data-steward'],
  users: ['sysadmin', 'data-custodian', 'administrator'],
};

export const SCREEN_LABELS: Record<Screen, string> = {
  dashboard: 'Dashboard',
  studies: 'Studies',
  audit: 'Audit',
  quarantine: 'Quarantine',
  users: 'Users & AEs',
};

/** Study pages are also reached from the audit (the privacy officer reads a study's access history). */
export const STUDY_PAGE_ROLES = [...SCREENS.studies, 'privacy-officer'];

export function screensFor(role: string): Screen[] {
  return (Object.keys(SCREENS) as Screen[]).filter((s) => SCREENS[s].includes(role));
}

/** Roles that may open a study outside their scope by giving a reason (break-glass). */
export const BREAK_GLASS_ROLES = ['radiologist', 'technologist', 'referring-physician'];
/** Roles that review break-glass accesses. */
export const BREAK_GLASS_REVIEWERS = ['privacy-officer', 'data-owner'];
/** Roles the audit ledger search and export are open to (read-audit on the archive). */
export const AUDIT_READERS = ['privacy-officer', 'administrator'];
