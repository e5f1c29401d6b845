import { createHash, randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import { CustosError } from '../domain/errors.js';
import { asUserId } from '../domain/ids.js';
import { ADMINISTRATOR_ROLE, type Principal } from '../domain/principal.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { IdentityTokenVerifier, VerifiedIdentity } from '../ports/identity-tokens.js';
import type { Clock } from '../ports/clock.js';
import type { IndexDb } from '../ports/database.js';

const TOKEN_PREFIX = 'cst_';

export const hashToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

const unauthenticated = (message: string) =>
  new CustosError({ code: 'auth.unauthenticated', message, httpStatus: 401 });

export interface CreatedToken {
  token: string;
  expiresAt: string | null;
}

/**
 * Authentication: API tokens (stored as SHA-256, shown once) and password login (argon2id). Issue 4 adds
 * sessions, MFA, OIDC and SCIM behind this service.
 */
export class AuthService {
  constructor(
    private readonly index: IndexDb,
    private readonly ledger: AuditLedger,
    private readonly clock: Clock,
    /** The organisation's identity provider, when OIDC is configured. */
    private readonly oidc?: IdentityTokenVerifier,
  ) {}

  /**
   * A JWT from the identity provider: verified against its JWKS, then refused if a local (e.g. SCIM-provisioned)
   * account of that name exists and is deactivated, so deprovisioning takes effect at once.
   */
  private async authenticateOidc(token: string, source: string): Promise<Principal> {
    const refuse = async (reason: string, err: CustosError) => {
      await this.ledger.append({
        principal: {
          kind: 'user',
          id: asUserId('unknown'),
          name: 'unknown',
          role: 'none',
          source,
          via: 'oidc',
        },
        action: 'token-use',
        outcome: 'failure',
        policy: 'n/a',
        detail: { reason },
      });
      throw err;
    };
    let identity: VerifiedIdentity;
    try {
      identity = await this.oidc!.verify(token);
    } catch (err) {
      if (err instanceof CustosError) return refuse(err.message, err);
      throw err;
    }
    const local = await this.index.db
      .selectFrom('users')
      .select(['pk', 'active'])
      .where('username', '=', identity.username)
      .executeTakeFirst();
    if (local && !local.active)
      return refuse(
        `account ${identity.username} is deactivated`,
        unauthenticated(`the account ${identity.username} is deactivated`),
      );
    return {
      kind: 'user',
      id: asUserId(local ? String(local.pk) : `oidc:${identity.subject}`),
      name: identity.username,
      // No role that maps: the principal can authenticate but every policy denies it.
      role: identity.role ?? 'none',
      source,
      via: 'oidc',
      ...(identity.department ? { department: identity.department } : {}),
    };
  }

  async authenticateBearer(authorization: string | undefined, source: string): Promise<Principal> {
    if (!authorization) throw unauthenticated('this request needs an Authorization: Bearer <token> header');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m) throw unauthenticated('the Authorization header must be "Bearer <token>"');
    const token = m[1]!;
    if (this.oidc && !token.startsWith(TOKEN_PREFIX) && token.split('.').length === 3)
      return this.authenticateOidc(token, source);
    const now = this.clock.now().toISOString();
    const row = token.startsWith(TOKEN_PREFIX)
      ? await this.index.db
          .selectFrom('api_tokens as t')
          .innerJoin('users as u', 'u.pk', 't.user_pk')
          .select([
            'u.pk',
            'u.username',
            'u.role',
            'u.active',
            't.pk as token_pk',
            'u.department',
            'u.physician_name',
            'u.physician_id',
            't.expires_at',
            't.revoked_at',
          ])
          .where('t.token_hash', '=', hashToken(token))
          .executeTakeFirst()
      : undefined;
    if (
      !row ||
      row.revoked_at !== null ||
      (row.expires_at !== null && row.expires_at <= now) ||
      !row.active
    ) {
      await this.ledger.append({
        principal: { kind: 'user', id: asUserId('unknown'), name: 'unknown', role: 'none', source },
        action: 'token-use',
        outcome: 'failure',
        policy: 'n/a',
        detail: { reason: !row ? 'unknown token' : 'token expired, revoked or account inactive' },
      });
      throw unauthenticated('the bearer token is unknown, expired or revoked');
    }
    const projects = await this.index.db
      .selectFrom('project_members')
      .select('project')
      .where('user_pk', '=', row.pk)
      .execute();
    return {
      kind: 'user',
      id: asUserId(String(row.pk)),
      name: row.username,
      role: row.role,
      source,
      via: `token:${row.token_pk}`,
      department: row.department,
      physicianName: row.physician_name,
      physicianId: row.physician_id,
      projects: projects.map((p) => p.project),
    };
  }

  /** First start: create the administrator with a one-time password that is returned (and printed) once. */
  async bootstrapAdministrator(
    username = 'admin',
  ): Promise<{ username: string; password: string } | undefined> {
    const any = await this.index.db.selectFrom('users').select('pk').limit(1).executeTakeFirst();
    if (any) return undefined;
    const password = randomBytes(15).toString('base64url');
    const hash = await argon2.hash(password, { type: argon2.argon2id });
    await this.index.db.transaction().execute(async (trx) => {
      const created = await trx
        .insertInto('users')
        .values({
          username,
          display_name: 'Administrator',
          role: ADMINISTRATOR_ROLE,
          password_hash: hash,
          active: 1,
          created_at: this.clock.now().toISOString(),
        })
        .returning('pk')
        .executeTakeFirstOrThrow();
      await this.ledger.appendIn(trx, {
        principal: systemPrincipal('initialise'),
        action: 'account-create',
        outcome: 'success',
        policy: 'builtin:first-start',
        objects: { user: username, userPk: created.pk, role: ADMINISTRATOR_ROLE },
      });
    });
    return { username, password };
  }

  async createToken(
    actor: Principal,
    username: string,
    opts: { name?: string; ttlDays?: number } = {},
  ): Promise<CreatedToken> {
    const user = await this.index.db
      .selectFrom('users')
      .select(['pk', 'active'])
      .where('username', '=', username)
      .executeTakeFirst();
    if (!user || !user.active) {
      throw new CustosError({
        code: 'auth.no-such-user',
        message: `no active account named '${username}'`,
        httpStatus: 404,
      });
    }
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const now = this.clock.now();
    const expiresAt = opts.ttlDays ? new Date(now.getTime() + opts.ttlDays * 86_400_000).toISOString() : null;
    await this.index.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('api_tokens')
        .values({
          user_pk: user.pk,
          token_hash: hashToken(token),
          name: opts.name ?? '',
          created_at: now.toISOString(),
          expires_at: expiresAt,
          revoked_at: null,
        })
        .execute();
      await this.ledger.appendIn(trx, {
        principal: actor,
        action: 'token-create',
        outcome: 'success',
        policy: 'builtin:local-operator',
        objects: { user: username, name: opts.name ?? '', expiresAt },
      });
    });
    return { token, expiresAt };
  }

  /** Password login: returns a token valid for `ttlHours` (a session token for scripts and the console). */
  async login(username: string, password: string, source: string, ttlHours = 12): Promise<CreatedToken> {
    const user = await this.index.db
      .selectFrom('users')
      .select(['pk', 'username', 'role', 'password_hash', 'active'])
      .where('username', '=', username)
      .executeTakeFirst();
    const ok =
      !!user && !!user.active && !!user.password_hash && (await argon2.verify(user.password_hash, password));
    const principal: Principal = {
      kind: 'user',
      id: asUserId(user ? String(user.pk) : 'unknown'),
      name: username,
      role: user?.role ?? 'none',
      source,
      via: 'password',
    };
    if (!ok) {
      await this.ledger.append({
        principal,
        action: 'login',
        outcome: 'failure',
        policy: 'n/a',
        detail: { reason: 'bad username or password' },
      });
      throw unauthenticated('the username or password is wrong');
    }
    await this.ledger.append({ principal, action: 'login', outcome: 'success', policy: 'n/a' });
    return this.createToken(principal, username, { name: 'login', ttlDays: ttlHours / 24 });
  }

  /**
   * The principal of a local account acting through the command line (`--as`): it must exist and be active; its
   * role and facts are what the policy decision point sees, and the ledger names it.
   */
  async localPrincipal(username: string, source: string): Promise<Principal> {
    const row = await this.index.db
      .selectFrom('users')
      .select(['pk', 'username', 'role', 'active', 'department', 'physician_name', 'physician_id'])
      .where('username', '=', username)
      .executeTakeFirst();
    if (!row || !row.active)
      throw new CustosError({
        code: 'auth.no-such-user',
        message: `no active account named '${username}'`,
        httpStatus: 404,
      });
    return {
      kind: 'user',
      id: asUserId(String(row.pk)),
      name: row.username,
      role: row.role,
      source,
      via: 'cli',
      department: row.department,
      physicianName: row.physician_name,
      physicianId: row.physician_id,
    };
  }

  /** End a session: the token the request came with stops working at once. */
  async logout(principal: Principal): Promise<void> {
    const m = /^token:(\d+)$/.exec(principal.via ?? '');
    if (!m) {
      throw new CustosError({
        code: 'auth.not-a-session',
        message: 'logout ends the token this request was made with; this request did not use one',
        httpStatus: 400,
      });
    }
    await this.index.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('api_tokens')
        .set({ revoked_at: this.clock.now().toISOString() })
        .where('pk', '=', Number(m[1]))
        .where('revoked_at', 'is', null)
        .execute();
      await this.ledger.appendIn(trx, { principal, action: 'logout', outcome: 'success', policy: 'n/a' });
    });
  }
}

export const systemPrincipal = (what: string): Principal => ({
  kind: 'system',
  id: asUserId('system'),
  name: `system:${what}`,
  role: ADMINISTRATOR_ROLE,
  source: 'cli',
});
