import argon2 from 'argon2';
import type { Kysely } from 'kysely';
import {
  accountManageProblem,
  roleGrantProblem,
  tokenIssueProblem,
  type AccountRef,
} from '../domain/account-admin-rules.js';
import type { AuditAction } from '../domain/audit-record.js';
import { CustosError } from '../domain/errors.js';
import { generatePassword } from '../domain/password-policy.js';
import { ROLES, type Principal } from '../domain/principal.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { Decision } from '../ports/policy.js';
import type { Clock } from '../ports/clock.js';
import type { DatabaseSchema, IndexDb } from '../ports/database.js';
import type { AccessGate } from './access-gate.js';
import { accountName } from './account-names.js';
import type { AccountService, NewAccount } from './account-service.js';
import {
  isLocalOperator,
  LOCAL_OPERATOR_POLICY,
  revokeCredentials,
  type AuthService,
  type CreatedToken,
  type TokenSummary,
} from './auth-service.js';

export interface AdminUserView {
  username: string;
  displayName: string;
  role: string;
  department: string | null;
  physicianName: string | null;
  physicianId: string | null;
  active: boolean;
  mfaEnrolled: boolean;
  lockedUntil: string | null;
  mustChangePassword: boolean;
  projects: string[];
}

export interface UserChange {
  active?: boolean;
  role?: string;
  displayName?: string;
  department?: string | null;
  physicianName?: string | null;
  physicianId?: string | null;
}

/** The policy id separation-of-duties refusals are recorded and answered with (docs/accounts.md). */
export const SEPARATION_OF_DUTIES_POLICY = 'builtin:separation-of-duties';

/**
 * Records a separation-of-duties refusal as `denied` (the attempted action, the account, the reason) and throws
 * the 403 `access.denied` that names why: user administration and SCIM (the identity provider's channel) refuse
 * alike.
 */
export async function refuseForSeparationOfDuties(
  ledger: AuditLedger,
  actor: Principal,
  action: AuditAction,
  user: string,
  problem: string,
  channel?: string,
): Promise<never> {
  await ledger.append({
    principal: actor,
    action,
    outcome: 'denied',
    policy: SEPARATION_OF_DUTIES_POLICY,
    ...(channel ? { channel } : {}),
    objects: { user },
    detail: { reason: problem },
  });
  throw new CustosError({
    code: 'access.denied',
    message: `${actor.name} may not do this: ${problem}`,
    httpStatus: 403,
    detail: { policy: SEPARATION_OF_DUTIES_POLICY },
  });
}

/** A separation-of-duties problem found inside a change's transaction: it rolls the change back. */
export class SeparationRefusal extends Error {
  constructor(
    readonly user: string,
    readonly problem: string,
  ) {
    super(problem);
  }
}

/** Active accounts holding the administrator role, as a transaction sees them. */
async function activeAdministrators(trx: Kysely<DatabaseSchema>): Promise<number> {
  const row = await trx
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('role', '=', 'administrator')
    .where('active', '=', 1)
    .where('deleted_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * A change's transaction whose work may throw SeparationRefusal: the change is rolled back, then the refusal
 * recorded as denied and answered 403 (refuseForSeparationOfDuties), outside the transaction that undid it.
 *
 * A change that would leave no active administrator (the last one demoted, deactivated or deleted, by the console,
 * the CLI or SCIM) is rolled back and answered 409 `account.last-administrator`: nobody could then administer
 * accounts, approve what needs an administrator, or undo the change. Until 7 Dec 2026 the only administrator
 * could give themselves another role. The ledger's write lock is taken first, so that on PostgreSQL two changes
 * that each demote a different one of the last two administrators run one after the other, and the second sees
 * the first.
 */
export async function changeWithSeparation<T>(
  db: Kysely<DatabaseSchema>,
  ledger: AuditLedger,
  actor: Principal,
  action: AuditAction,
  work: (trx: Kysely<DatabaseSchema>) => Promise<T>,
  channel?: string,
): Promise<T> {
  try {
    return await db.transaction().execute(async (trx) => {
      await ledger.lockIn(trx);
      const administrators = await activeAdministrators(trx);
      const done = await work(trx);
      if (administrators > 0 && (await activeAdministrators(trx)) === 0)
        throw new CustosError({
          code: 'account.last-administrator',
          message:
            'this change would leave no active administrator account; give another account the administrator role first',
          httpStatus: 409,
        });
      return done;
    });
  } catch (err) {
    if (!(err instanceof SeparationRefusal)) throw err;
    return refuseForSeparationOfDuties(ledger, actor, action, err.user, err.problem, channel);
  }
}

const noSuchUser = (username: string) =>
  new CustosError({ code: 'auth.no-such-user', message: `no account named '${username}'`, httpStatus: 404 });

/**
 * User administration for the console and the CLI (docs/accounts.md): every call but the local operator's is
 * decided by the policy decision point as the 'administer' action on the archive, and every call is recorded in
 * the ledger in the transaction that makes the change. Deactivation and password reset end the account's sessions and tokens in that transaction.
 */
export class UserAdminService {
  constructor(
    private readonly index: IndexDb,
    private readonly gate: AccessGate,
    private readonly ledger: AuditLedger,
    private readonly clock: Clock,
    private readonly accounts: AccountService,
    private readonly auth: AuthService,
  ) {}

  /**
   * The local operator (`custos user …`, whoever can open the data directory) is not decided by Cedar: its
   * authority is that access, as for `custos user add`, `grant` and `token create`, and its records say so with
   * `builtin:local-operator` (docs/access-control.md). Until 7 Dec 2026 these commands were decided as the
   * synthetic administrator and recorded as `archive-administer`, as if a Cedar policy had allowed a person, and
   * a policy taking `administer` from the administrator role would have taken the operator's recovery
   * (`custos user reset-password admin`) with it.
   */
  private allow(actor: Principal): Promise<Decision> {
    if (isLocalOperator(actor))
      return Promise.resolve({ allowed: true, policy: LOCAL_OPERATOR_POLICY, reason: 'local operator' });
    return this.gate.require(actor, 'administer', { type: 'archive' });
  }

  /**
   * The decision this service's calls take, alone: a route takes it before it reads the request's body or
   * parameters, so that a caller who may not administer accounts is refused (403, recorded) whatever it sent,
   * rather than told what is wrong with its request (400, unrecorded: until 6 Dec 2026).
   */
  async authorize(actor: Principal): Promise<void> {
    await this.allow(actor);
  }

  /**
   * Separation of duties, after the 'administer' decision: a caller allowed to administer accounts may still not
   * grant a role above its own or act on a more privileged account (domain/account-admin-rules.ts). A refusal
   * is recorded as `denied` (the attempted action, the account, the reason) before the caller learns of it, and
   * answered 403 `access.denied` naming why. Until 6 Dec 2026 a sysadmin could create administrators and mint
   * tokens for the administrator and the privacy officer.
   */
  private async separate(
    actor: Principal,
    action: AuditAction,
    user: string,
    problem: string | undefined,
  ): Promise<void> {
    if (problem !== undefined) await refuseForSeparationOfDuties(this.ledger, actor, action, user, problem);
  }

  /** The account as the rules see it (404 when there is none). */
  private async target(username: string): Promise<AccountRef> {
    const u = await this.row(this.index.db, username);
    return { name: u.username, role: u.role };
  }

  /** The account `username` names, once `actor` may administer it (separation of duties). */
  private async requireManage(actor: Principal, action: AuditAction, username: string): Promise<AccountRef> {
    const target = await this.target(username);
    await this.separate(actor, action, target.name, accountManageProblem(actor, target));
    return target;
  }

  async list(actor: Principal): Promise<AdminUserView[]> {
    await this.allow(actor);
    const [users, members] = await Promise.all([
      this.index.db
        .selectFrom('users')
        .selectAll()
        .where('deleted_at', 'is', null)
        .orderBy('username')
        .execute(),
      this.index.db.selectFrom('project_members').select(['user_pk', 'project']).orderBy('project').execute(),
    ]);
    const now = this.clock.now().toISOString();
    return users.map((u) => ({
      username: u.username,
      displayName: u.display_name,
      role: u.role,
      department: u.department,
      physicianName: u.physician_name,
      physicianId: u.physician_id,
      active: !!u.active,
      mfaEnrolled: !!u.totp_secret,
      lockedUntil: u.locked_until !== null && u.locked_until > now ? u.locked_until : null,
      mustChangePassword: !!u.must_change_password,
      projects: members.filter((m) => m.user_pk === u.pk).map((m) => m.project),
    }));
  }

  async get(actor: Principal, username: string): Promise<AdminUserView> {
    const stored = await accountName(this.index.db, username);
    const found = (await this.list(actor)).find((u) => u.username === stored);
    if (!found) throw noSuchUser(username);
    return found;
  }

  async create(actor: Principal, a: NewAccount): Promise<{ username: string; password: string }> {
    const decision = await this.allow(actor);
    await this.separate(actor, 'account-create', a.username, roleGrantProblem(actor, a.role));
    return this.accounts.add(actor, a, decision.policy);
  }

  private async row(db: Kysely<DatabaseSchema>, username: string) {
    const u = await db
      .selectFrom('users')
      .selectAll()
      .where('username', '=', await accountName(db, username))
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (!u) throw noSuchUser(username);
    return u;
  }

  async change(actor: Principal, username: string, c: UserChange): Promise<AdminUserView> {
    const decision = await this.allow(actor);
    if (c.role !== undefined && !(ROLES as readonly string[]).includes(c.role))
      throw new CustosError({
        code: 'account.bad-role',
        message: `unknown role '${c.role}': one of ${ROLES.join(', ')}`,
        httpStatus: 400,
      });
    if (
      c.active === false &&
      actor.kind === 'user' &&
      actor.name === (await accountName(this.index.db, username))
    )
      throw new CustosError({
        code: 'account.self-deactivation',
        message: 'an administrator cannot deactivate their own account',
        httpStatus: 409,
      });
    const target = await this.requireManage(actor, 'account-change', username);
    if (c.role !== undefined)
      await this.separate(actor, 'account-change', target.name, roleGrantProblem(actor, c.role));
    await changeWithSeparation(this.index.db, this.ledger, actor, 'account-change', async (trx) => {
      const before = await this.row(trx, username);
      // Again in the transaction: the account's role may have changed since it was checked above (recorded as
      // denied like the check above; until 6 Dec 2026 this refusal left no record).
      const raced = accountManageProblem(actor, {
        name: before.username,
        role: before.role,
      });
      if (raced !== undefined) throw new SeparationRefusal(before.username, raced);
      const set = {
        ...(c.active !== undefined ? { active: c.active ? 1 : 0 } : {}),
        ...(c.role !== undefined ? { role: c.role } : {}),
        ...(c.displayName !== undefined ? { display_name: c.displayName } : {}),
        ...(c.department !== undefined ? { department: c.department?.trim() || null } : {}),
        ...(c.physicianName !== undefined ? { physician_name: c.physicianName?.trim() || null } : {}),
        ...(c.physicianId !== undefined ? { physician_id: c.physicianId?.trim() || null } : {}),
      };
      const now = this.clock.now().toISOString();
      const changed = Object.entries(set)
        .filter(([k, v]) => (before as Record<string, unknown>)[k] !== v)
        .map(([k]) => k);
      if (changed.length) {
        await trx
          .updateTable('users')
          .set({ ...set, updated_at: now })
          .where('pk', '=', before.pk)
          .execute();
      }
      const deactivated = before.active === 1 && c.active === false;
      if (deactivated) await revokeCredentials(trx, before.pk, now);
      await this.ledger.appendIn(trx, {
        principal: actor,
        action: 'account-change',
        outcome: 'success',
        policy: decision.policy,
        objects: { user: before.username, userPk: before.pk },
        detail: {
          changed,
          ...(c.role !== undefined && c.role !== before.role
            ? { role: { from: before.role, to: c.role } }
            : {}),
          ...(c.active !== undefined && (c.active ? 1 : 0) !== before.active ? { active: c.active } : {}),
          ...(deactivated ? { sessionsAndTokensRevoked: true } : {}),
        },
      });
    });
    return this.get(actor, username);
  }

  /** Remove the account's TOTP: it enrols again at its next sign-in (if its role requires it). */
  async resetMfa(actor: Principal, username: string): Promise<void> {
    const decision = await this.allow(actor);
    await this.requireManage(actor, 'mfa', username);
    await this.simpleChange(actor, decision, username, 'mfa', { change: 'mfa-reset' }, async (trx, pk) => {
      await trx
        .updateTable('users')
        .set({ totp_secret: null, totp_pending: null, totp_enrolled_at: null, totp_last_step: null })
        .where('pk', '=', pk)
        .execute();
    });
  }

  async unlock(actor: Principal, username: string): Promise<void> {
    const decision = await this.allow(actor);
    await this.simpleChange(
      actor,
      decision,
      username,
      'account-change',
      { change: 'unlock' },
      async (trx, pk) => {
        await trx
          .updateTable('users')
          .set({ locked_until: null, failed_logins: 0, failure_window_start: null })
          .where('pk', '=', pk)
          .execute();
      },
    );
  }

  /** A new one-time password, shown once; every session and token of the account ends now. */
  async resetPassword(actor: Principal, username: string): Promise<{ password: string }> {
    const decision = await this.allow(actor);
    await this.requireManage(actor, 'account-change', username);
    const password = generatePassword(this.auth.settings.password, username);
    const hash = await argon2.hash(password, { type: argon2.argon2id });
    await this.simpleChange(
      actor,
      decision,
      username,
      'account-change',
      { change: 'password-reset', sessionsAndTokensRevoked: true },
      async (trx, pk) => {
        await trx
          .updateTable('users')
          .set({ password_hash: hash, must_change_password: 1, locked_until: null, failed_logins: 0 })
          .where('pk', '=', pk)
          .execute();
        await revokeCredentials(trx, pk, this.clock.now().toISOString());
      },
    );
    return { password };
  }

  /** Apply one change to the account and record it, under the `administer` decision the caller took. */
  private async simpleChange(
    actor: Principal,
    decision: { policy: string },
    username: string,
    action: 'mfa' | 'account-change',
    detail: Record<string, unknown>,
    apply: (trx: Kysely<DatabaseSchema>, pk: number) => Promise<void>,
  ): Promise<void> {
    await this.index.db.transaction().execute(async (trx) => {
      const u = await this.row(trx, username);
      await apply(trx, u.pk);
      await this.ledger.appendIn(trx, {
        principal: actor,
        action,
        outcome: 'success',
        policy: decision.policy,
        objects: { user: u.username, userPk: u.pk },
        detail,
      });
    });
  }

  async listTokens(actor: Principal, username: string): Promise<TokenSummary[]> {
    await this.allow(actor);
    await this.row(this.index.db, username);
    return this.auth.listTokens(username);
  }

  async createToken(
    actor: Principal,
    username: string,
    opts: { name: string; ttlDays?: number },
  ): Promise<CreatedToken> {
    const decision = await this.allow(actor);
    const target = await this.target(username);
    await this.separate(actor, 'token-create', target.name, tokenIssueProblem(actor, target));
    return this.auth.createToken(actor, username, { ...opts, policy: decision.policy });
  }

  async revokeToken(actor: Principal, username: string, id: number): Promise<void> {
    const decision = await this.allow(actor);
    await this.auth.revokeToken(actor, username, id, decision.policy);
  }
}
