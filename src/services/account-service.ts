import argon2 from 'argon2';
import { sql, type Kysely, type Transaction } from 'kysely';
import { CustosError } from '../domain/errors.js';
import { DEFAULT_PASSWORD_POLICY, generatePassword, type PasswordPolicy } from '../domain/password-policy.js';
import { ROLES, type Principal } from '../domain/principal.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { Clock } from '../ports/clock.js';
import type { DatabaseSchema, IndexDb } from '../ports/database.js';
import { accountName } from './account-names.js';

export interface NewAccount {
  username: string;
  role: string;
  displayName?: string;
  department?: string;
  /** DICOM PN, 'Family^Given'. */
  physicianName?: string;
  physicianId?: string;
}

export interface AccountSummary {
  username: string;
  role: string;
  department: string | null;
  physicianName: string | null;
  physicianId: string | null;
  active: boolean;
  projects: string[];
}

/**
 * The existing account (deleted ones included: the audit trail names them) whose name equals `username` ignoring
 * letter case, other than the account `exceptPk`. Account names are case-insensitive (SCIM userName, RFC 7643
 * §8.7.1), so 'JSmith' and 'jsmith' would be two accounts that audit records could not tell apart.
 *
 * Every path that creates or renames an account (AccountService.add for the CLI and the admin API, SCIM create,
 * replace and patch) calls this inside the transaction that writes the name, which is enough: accounts are
 * created by administrators and an identity provider one at a time, the exact-name unique constraint still
 * holds, and a unique index on lower(username) is not added because archives that already hold such a pair
 * would fail the migration; those pairs are left as they are and no new one can be made.
 */
export async function accountNamedAlike(
  db: Kysely<DatabaseSchema>,
  username: string,
  exceptPk?: number,
): Promise<string | undefined> {
  let q = db
    .selectFrom('users')
    .select('username')
    .where(sql<string>`lower(username)`, '=', username.toLowerCase());
  if (exceptPk !== undefined) q = q.where('pk', '!=', exceptPk);
  return (await q.orderBy('pk').executeTakeFirst())?.username;
}

/** The error for a name that equals an existing account's, exactly or ignoring case. */
export function accountExists(username: string, existing: string): CustosError {
  return new CustosError({
    code: 'account.exists',
    message:
      existing === username
        ? `an account named '${existing}' already exists`
        : `an account named '${existing}' already exists; account names are case-insensitive, so '${username}' would name the same person`,
    httpStatus: 409,
  });
}

/**
 * Minimal account management for access control: accounts with the facts policies scope by, and the
 * relationships kept beside studies (grants, care teams, research projects). Every change is audited in the
 * transaction that makes it.
 */
export class AccountService {
  constructor(
    private readonly index: IndexDb,
    private readonly ledger: AuditLedger,
    private readonly clock: Clock,
    private readonly passwordPolicy: PasswordPolicy = DEFAULT_PASSWORD_POLICY,
  ) {}

  /** Create an account with a one-time password, returned once and to be changed at first sign-in. */
  async add(
    actor: Principal,
    a: NewAccount,
    policy = 'builtin:local-operator',
  ): Promise<{ username: string; password: string }> {
    if (!(ROLES as readonly string[]).includes(a.role)) {
      throw new CustosError({
        code: 'account.bad-role',
        message: `unknown role '${a.role}': one of ${ROLES.join(', ')}`,
        httpStatus: 400,
      });
    }
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(a.username)) {
      throw new CustosError({
        code: 'account.bad-name',
        message: `account names are 1-64 letters, digits and . _ @ -; got '${a.username}'`,
        httpStatus: 400,
      });
    }
    const alike = await accountNamedAlike(this.index.db, a.username);
    if (alike !== undefined) throw accountExists(a.username, alike);
    const password = generatePassword(this.passwordPolicy, a.username);
    const hash = await argon2.hash(password, { type: argon2.argon2id });
    await this.index.db.transaction().execute(async (trx) => {
      // Again in the transaction: another account may have been made while the password was hashed.
      const clash = await accountNamedAlike(trx, a.username);
      if (clash !== undefined) throw accountExists(a.username, clash);
      const created = await trx
        .insertInto('users')
        .values({
          username: a.username,
          display_name: a.displayName ?? '',
          role: a.role,
          password_hash: hash,
          active: 1,
          created_at: this.clock.now().toISOString(),
          department: a.department?.trim() || null,
          physician_name: a.physicianName?.trim() || null,
          physician_id: a.physicianId?.trim() || null,
          must_change_password: 1,
        })
        .returning('pk')
        .executeTakeFirstOrThrow();
      await this.ledger.appendIn(trx, {
        principal: actor,
        action: 'account-create',
        outcome: 'success',
        policy,
        objects: {
          user: a.username,
          userPk: created.pk,
          role: a.role,
          department: a.department ?? null,
          physicianName: a.physicianName ?? null,
          physicianId: a.physicianId ?? null,
        },
      });
    });
    return { username: a.username, password };
  }

  async list(): Promise<AccountSummary[]> {
    const [users, members] = await Promise.all([
      this.index.db
        .selectFrom('users')
        .select(['pk', 'username', 'role', 'department', 'physician_name', 'physician_id', 'active'])
        .orderBy('username')
        .execute(),
      this.index.db.selectFrom('project_members').select(['user_pk', 'project']).orderBy('project').execute(),
    ]);
    return users.map((u) => ({
      username: u.username,
      role: u.role,
      department: u.department,
      physicianName: u.physician_name,
      physicianId: u.physician_id,
      active: !!u.active,
      projects: members.filter((m) => m.user_pk === u.pk).map((m) => m.project),
    }));
  }

  /** An explicit grant of one study to one account until it expires (restricted studies, students). */
  async grant(
    actor: Principal,
    username: string,
    studyUid: string,
    opts: { days: number; reason: string },
  ): Promise<{ expiresAt: string }> {
    const userPk = await this.userPk(username);
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + opts.days * 86_400_000).toISOString();
    await this.index.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('study_grants')
        .values({
          user_pk: userPk,
          study_uid: studyUid,
          granted_by: actor.name,
          granted_at: now.toISOString(),
          expires_at: expiresAt,
          reason: opts.reason,
        })
        .execute();
      await this.ledger.appendIn(trx, {
        principal: actor,
        action: 'grant-create',
        outcome: 'success',
        policy: 'builtin:local-operator',
        ...(await patientOfStudy(trx, studyUid)),
        studyUid,
        objects: { user: username, expiresAt, reason: opts.reason },
      });
    });
    return { expiresAt };
  }

  /** Care-team relationship of an account to a study (what HL7 orders will fill). */
  async addToCareTeam(
    actor: Principal,
    username: string,
    studyUid: string,
    relationship = '',
  ): Promise<void> {
    const userPk = await this.userPk(username);
    await this.index.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('care_team')
        .values({
          study_uid: studyUid,
          user_pk: userPk,
          relationship,
          source: actor.name,
          added_at: this.clock.now().toISOString(),
        })
        .onConflict((oc) => oc.columns(['study_uid', 'user_pk']).doNothing())
        .execute();
      await this.ledger.appendIn(trx, {
        principal: actor,
        action: 'care-team-add',
        outcome: 'success',
        policy: 'builtin:local-operator',
        ...(await patientOfStudy(trx, studyUid)),
        studyUid,
        objects: { user: username, relationship },
      });
    });
  }

  /** Research project membership of an account, and enrolment of studies in the project. */
  async addToProject(
    actor: Principal,
    project: string,
    who: { username?: string; studyUid?: string },
  ): Promise<void> {
    const now = this.clock.now().toISOString();
    const userPk = who.username ? await this.userPk(who.username) : undefined;
    await this.index.db.transaction().execute(async (trx) => {
      if (userPk !== undefined)
        await trx
          .insertInto('project_members')
          .values({ project, user_pk: userPk, added_at: now })
          .onConflict((oc) => oc.columns(['project', 'user_pk']).doNothing())
          .execute();
      if (who.studyUid)
        await trx
          .insertInto('study_projects')
          .values({ project, study_uid: who.studyUid, added_at: now })
          .onConflict((oc) => oc.columns(['study_uid', 'project']).doNothing())
          .execute();
      await this.ledger.appendIn(trx, {
        principal: actor,
        action: 'project-add',
        outcome: 'success',
        policy: 'builtin:local-operator',
        ...(who.studyUid ? { studyUid: who.studyUid } : {}),
        objects: { project, ...(who.username ? { user: who.username } : {}) },
      });
    });
  }

  private async userPk(username: string): Promise<number> {
    const u = await this.index.db
      .selectFrom('users')
      .select('pk')
      .where('username', '=', await accountName(this.index.db, username))
      .executeTakeFirst();
    if (!u) {
      throw new CustosError({
        code: 'auth.no-such-user',
        message: `no account named '${username}'`,
        httpStatus: 404,
      });
    }
    return u.pk;
  }
}

/**
 * The patient of a stored study, for the record of a grant or care-team membership on it: a search of the ledger
 * by patient then shows who was given access to that patient's study, as it shows a break-glass opening. A study
 * not (yet) stored names no patient.
 */
async function patientOfStudy(
  trx: Transaction<DatabaseSchema>,
  studyUid: string,
): Promise<{ patientId?: string }> {
  const study = await trx
    .selectFrom('studies as st')
    .innerJoin('patients as p', 'p.pk', 'st.patient_pk')
    .select('p.patient_id')
    .where('st.study_uid', '=', studyUid)
    .executeTakeFirst();
  return study ? { patientId: study.patient_id } : {};
}
