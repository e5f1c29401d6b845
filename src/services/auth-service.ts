import { createHash, randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import { CustosError } from '../domain/errors.js';
import { asUserId } from '../domain/ids.js';
import { ADMINISTRATOR_ROLE, type Principal } from '../domain/principal.js';
import {
  checkPassword,
  DEFAULT_PASSWORD_POLICY,
  generatePassword,
  type PasswordPolicy,
} from '../domain/password-policy.js';
import { base32Encode, matchTotp, otpauthUri } from '../domain/totp.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { IdentityTokenVerifier, VerifiedIdentity } from '../ports/identity-tokens.js';
import type { Clock } from '../ports/clock.js';
import type { DatabaseSchema, IndexDb } from '../ports/database.js';
import type { KeyStore } from '../ports/key-store.js';
import { sql, type Kysely } from 'kysely';
import { TotpSecretBox } from './totp-secrets.js';
import { accountName } from './account-names.js';

const TOKEN_PREFIX = 'cst_';

export interface AuthSettings {
  password: PasswordPolicy;
  lockout: { maxFailures: number; windowMinutes: number; lockMinutes: number };
  mfa: { requiredRoles: readonly string[]; requireForAll: boolean; issuer: string };
  session: { idleMinutes: number; absoluteHours: number };
}

export const DEFAULT_AUTH_SETTINGS: AuthSettings = {
  password: DEFAULT_PASSWORD_POLICY,
  lockout: { maxFailures: 5, windowMinutes: 15, lockMinutes: 15 },
  mfa: { requiredRoles: [], requireForAll: false, issuer: 'Custos' },
  session: { idleMinutes: 15, absoluteHours: 8 },
};

/** What the HTTP transport hands in to authenticate one request. */
export interface RequestCredentials {
  authorization: string | undefined;
  cookie: string | undefined;
  method: string;
  path: string;
  /** The X-Requested-With header (the CSRF rule for cookie-authenticated unsafe methods). */
  requestedWith: string | undefined;
  source: string;
  /** The interface the request came in by (docs/audit.md), recorded with a refusal as with every other record. */
  channel?: string;
}

/** HTTP authentication schemes (IANA registry, and common vendor ones) whose name a refusal's record may name. */
const KNOWN_SCHEMES = new Set([
  'basic',
  'bearer',
  'digest',
  'dpop',
  'hoba',
  'mutual',
  'negotiate',
  'ntlm',
  'oauth',
  'privatetoken',
  'scram-sha-1',
  'scram-sha-256',
  'vapid',
  'aws4-hmac-sha256',
  'token',
  'apikey',
]);

/** Where a request came from, for the principal and for the record of a refusal. */
interface Where {
  source: string;
  channel?: string;
}

const whereOf = (c: { source: string; channel?: string | undefined }): Where => ({
  source: c.source,
  ...(c.channel ? { channel: c.channel } : {}),
});

export interface LoginResult {
  username: string;
  role: string;
  displayName: string;
  department: string | null;
  mfaEnrolled: boolean;
  mfaRequired: boolean;
  mfaEnrollmentRequired: boolean;
  mustChangePassword: boolean;
  expiresAt: string;
  /** Bearer form of the session (scripts). */
  token: string;
  /** Value of the custos_session cookie. */
  sessionId: string;
}

export const SESSION_COOKIE = 'custos_session';

/** Paths a confined session (password to change, MFA to enrol) may still call. */
const CONFINED_PATHS = /^\/api\/auth\/(me|password|logout|mfa\/[a-z]+)$/;
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
export const CSRF_HEADER_VALUE = 'custos-console';

/** The console session a request came with (principal.via 'session:<pk>'), if it came with one. */
const sessionPk = (principal: Principal): number | undefined => {
  const m = /^session:(\d+)$/.exec(principal.via ?? '');
  return m ? Number(m[1]) : undefined;
};

export const hashToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

const unauthenticated = (message: string) =>
  new CustosError({ code: 'auth.unauthenticated', message, httpStatus: 401 });

export interface CreatedToken {
  id: number;
  token: string;
  expiresAt: string | null;
}

/**
 * Authentication: API tokens (stored as SHA-256, shown once) and password login (argon2id). Issue 4 adds
 * sessions, MFA, OIDC and SCIM behind this service.
 */
export class AuthService {
  readonly settings: AuthSettings;
  private readonly totpBox: TotpSecretBox | undefined;

  constructor(
    private readonly index: IndexDb,
    private readonly ledger: AuditLedger,
    private readonly clock: Clock,
    /** The organisation's identity provider, when OIDC is configured. */
    private readonly oidc?: IdentityTokenVerifier,
    opts: { settings?: AuthSettings; keys?: KeyStore } = {},
  ) {
    this.settings = opts.settings ?? DEFAULT_AUTH_SETTINGS;
    this.totpBox = opts.keys ? new TotpSecretBox(opts.keys) : undefined;
  }

  /** Whether the role must use a second factor (auth.mfa.requiredRoles, auth.mfa.requireForAll). */
  mfaRequired(role: string): boolean {
    return this.settings.mfa.requireForAll || this.settings.mfa.requiredRoles.includes(role);
  }

  /**
   * A JWT from the identity provider: verified against its JWKS, then refused if a local (e.g. SCIM-provisioned)
   * account of that name exists and is deactivated, so deprovisioning takes effect at once.
   */
  private async authenticateOidc(token: string, where: Where, path: string): Promise<Principal> {
    const refuse = async (reason: string, err: CustosError) => {
      await this.ledger.append({
        principal: {
          kind: 'user',
          id: asUserId('unknown'),
          name: 'unknown',
          role: 'none',
          ...where,
          via: 'oidc',
        },
        action: 'token-use',
        outcome: 'failure',
        policy: 'n/a',
        detail: { reason, ...(path ? { path } : {}) },
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
      .where('username', '=', await accountName(this.index.db, identity.username))
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
      ...where,
      via: 'oidc',
      ...(identity.department ? { department: identity.department } : {}),
    };
  }

  /** Bearer token only (tests, tools, DIMSE User Identity): a session's token is refused outside the paths a confined session may use. */
  async authenticateBearer(
    authorization: string | undefined,
    source: string,
    channel?: string,
  ): Promise<Principal> {
    return this.authenticate({
      authorization,
      cookie: undefined,
      method: 'GET',
      path: '',
      requestedWith: undefined,
      source,
      ...(channel ? { channel } : {}),
    });
  }

  /**
   * One request: `Authorization: Bearer` (API token, a session's login token, or an OIDC JWT) or, without it, the
   * custos_session cookie. Cookie-authenticated unsafe methods must carry X-Requested-With: custos-console
   * (a cross-site form cannot set it). A session whose account must change its password or enrol MFA reaches
   * only /api/auth/me, /api/auth/password, /api/auth/logout and /api/auth/mfa/*.
   *
   * Every refusal is recorded before the caller learns of it (`token-use`, docs/audit.md), with the account when
   * the credential named one, the source, the channel and the path: until 6 Dec 2026 a request without
   * credentials, with another scheme than Bearer, or from a confined session left no record, and an expired or
   * revoked token's record named no account.
   */
  async authenticate(c: RequestCredentials): Promise<Principal> {
    const where = whereOf(c);
    let resolved: { principal: Principal; confinement?: 'password' | 'mfa' };
    let byCookie = false;
    if (c.authorization) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(c.authorization);
      if (!m) {
        // A known scheme's name only: what follows it may be a password (Basic), and a header with no scheme may
        // be a bare token or password, which the ledger must never hold.
        const word = /^\s*(\S+)/.exec(c.authorization)?.[1] ?? '';
        const scheme = KNOWN_SCHEMES.has(word.toLowerCase()) ? word : undefined;
        return this.refuseToken(
          where,
          c.path,
          scheme === undefined
            ? 'Authorization header without a known scheme (its value is not recorded)'
            : scheme.toLowerCase() === 'bearer'
              ? 'malformed Bearer credentials'
              : `Authorization scheme '${scheme}' is not Bearer`,
          undefined,
          unauthenticated('the Authorization header must be "Bearer <token>"'),
        );
      }
      const token = m[1]!;
      if (this.oidc && !token.startsWith(TOKEN_PREFIX) && token.split('.').length === 3)
        return this.authenticateOidc(token, where, c.path);
      resolved =
        (await this.apiToken(token, where, c.path)) ??
        (await this.session('token_hash', token, where, c.path));
    } else {
      const sid = sessionCookie(c.cookie);
      if (sid === undefined)
        return this.refuseToken(
          where,
          c.path,
          'no credentials',
          undefined,
          unauthenticated('this request needs an Authorization: Bearer <token> header or a console session'),
        );
      byCookie = true;
      resolved = await this.session('id_hash', sid, where, c.path);
    }
    const { principal, confinement } = resolved;
    if (byCookie && UNSAFE.has(c.method.toUpperCase()) && c.requestedWith !== CSRF_HEADER_VALUE) {
      await this.ledger.append({
        principal,
        action: 'token-use',
        outcome: 'denied',
        policy: 'builtin:csrf',
        detail: { reason: 'cookie-authenticated request without X-Requested-With', path: c.path },
      });
      throw new CustosError({
        code: 'auth.csrf',
        message: `a ${c.method} with the session cookie must carry the header X-Requested-With: ${CSRF_HEADER_VALUE}`,
        httpStatus: 403,
      });
    }
    if (confinement && !CONFINED_PATHS.test(c.path)) {
      const err =
        confinement === 'password'
          ? new CustosError({
              code: 'auth.password-change-required',
              message:
                'this account has a one-time password: change it (POST /api/auth/password) before anything else',
              httpStatus: 403,
            })
          : new CustosError({
              code: 'auth.mfa-enrollment-required',
              message: `the role ${principal.role} needs a second factor: enrol TOTP (POST /api/auth/mfa/enroll, then /api/auth/mfa/confirm) before anything else`,
              httpStatus: 403,
            });
      await this.ledger.append({
        principal,
        action: 'token-use',
        outcome: 'denied',
        policy: 'builtin:confined-session',
        detail: { reason: err.code, ...(c.path ? { path: c.path } : {}) },
      });
      throw err;
    }
    return principal;
  }

  /**
   * A credential refused: one `token-use` failure record, naming the account when the token or session was found
   * (it expired, was revoked, or its account is inactive), then the 401.
   */
  private async refuseToken(
    where: Where,
    path: string,
    reason: string,
    account?: { pk: number; username: string; role: string; via: string },
    err: CustosError = unauthenticated('the bearer token or session is unknown, expired or revoked'),
  ): Promise<never> {
    await this.ledger.append({
      principal: account
        ? {
            kind: 'user',
            id: asUserId(String(account.pk)),
            name: account.username,
            role: account.role,
            via: account.via,
            ...where,
          }
        : { kind: 'user', id: asUserId('unknown'), name: 'unknown', role: 'none', ...where },
      action: 'token-use',
      outcome: 'failure',
      policy: 'n/a',
      detail: { reason, ...(path ? { path } : {}) },
    });
    throw err;
  }

  /** An API token (api_tokens); undefined when the token is not one, so the caller can try sessions. */
  private async apiToken(
    token: string,
    where: Where,
    path: string,
  ): Promise<{ principal: Principal } | undefined> {
    if (!token.startsWith(TOKEN_PREFIX)) return this.refuseToken(where, path, 'unknown token');
    const now = this.clock.now();
    const row = await this.index.db
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
        't.last_used_at',
      ])
      .where('t.token_hash', '=', hashToken(token))
      .executeTakeFirst();
    if (!row) return undefined;
    if (
      row.revoked_at !== null ||
      (row.expires_at !== null && row.expires_at <= now.toISOString()) ||
      !row.active
    )
      return this.refuseToken(where, path, 'token expired, revoked or account inactive', {
        ...row,
        via: `token:${row.token_pk}`,
      });
    // Last use to the minute: one write per token per minute, not per request.
    if (row.last_used_at === null || Date.parse(row.last_used_at) <= now.getTime() - 60_000)
      await this.index.db
        .updateTable('api_tokens')
        .set({ last_used_at: now.toISOString() })
        .where('pk', '=', row.token_pk)
        .execute();
    return {
      principal: await this.userPrincipal({ ...row, via: `token:${row.token_pk}` }, where),
    };
  }

  private async userPrincipal(
    row: {
      pk: number;
      username: string;
      role: string;
      department: string | null;
      physician_name: string | null;
      physician_id: string | null;
      via: string;
    },
    where: Where,
  ): Promise<Principal> {
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
      ...where,
      via: row.via,
      department: row.department,
      physicianName: row.physician_name,
      physicianId: row.physician_id,
      projects: projects.map((p) => p.project),
    };
  }

  /** A console session by its cookie or its login token: revoked, idle, past its absolute expiry → refused. */
  private async session(
    column: 'id_hash' | 'token_hash',
    secret: string,
    where: Where,
    path: string,
  ): Promise<{ principal: Principal; confinement?: 'password' | 'mfa' }> {
    const now = this.clock.now();
    const row = await this.index.db
      .selectFrom('sessions as s')
      .innerJoin('users as u', 'u.pk', 's.user_pk')
      .select([
        'u.pk',
        'u.username',
        'u.role',
        'u.active',
        'u.department',
        'u.physician_name',
        'u.physician_id',
        'u.must_change_password',
        'u.totp_secret',
        's.pk as session_pk',
        's.expires_at',
        's.last_seen_at',
        's.idle_seconds',
        's.revoked_at',
      ])
      .where(`s.${column}`, '=', hashToken(secret))
      .executeTakeFirst();
    if (!row) return this.refuseToken(where, path, 'unknown token or session');
    const idle = now.getTime() - Date.parse(row.last_seen_at) >= row.idle_seconds * 1000;
    const ended = row.expires_at <= now.toISOString();
    if (row.revoked_at !== null || !row.active || idle || ended) {
      if (row.revoked_at === null && (idle || ended))
        await this.index.db
          .updateTable('sessions')
          .set({ revoked_at: now.toISOString() })
          .where('pk', '=', row.session_pk)
          .execute();
      return this.refuseToken(
        where,
        path,
        row.revoked_at !== null || !row.active
          ? 'session ended or account inactive'
          : idle
            ? 'session idle timeout'
            : 'session absolute timeout',
        { ...row, via: `session:${row.session_pk}` },
      );
    }
    await this.index.db
      .updateTable('sessions')
      .set({ last_seen_at: now.toISOString() })
      .where('pk', '=', row.session_pk)
      .execute();
    const principal = await this.userPrincipal({ ...row, via: `session:${row.session_pk}` }, where);
    const confinement = row.must_change_password
      ? ('password' as const)
      : this.mfaRequired(row.role) && !row.totp_secret
        ? ('mfa' as const)
        : undefined;
    return confinement ? { principal, confinement } : { principal };
  }

  /** First start: create the administrator with a one-time password that is returned (and printed) once. */
  async bootstrapAdministrator(
    username = 'admin',
  ): Promise<{ username: string; password: string } | undefined> {
    const any = await this.index.db.selectFrom('users').select('pk').limit(1).executeTakeFirst();
    if (any) return undefined;
    const password = generatePassword(this.settings.password, username);
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
          must_change_password: 1,
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
    opts: { name?: string; ttlDays?: number; policy?: string } = {},
  ): Promise<CreatedToken> {
    const user = await this.index.db
      .selectFrom('users')
      .select(['pk', 'active'])
      .where('username', '=', await accountName(this.index.db, username))
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
    const id = await this.index.db.transaction().execute(async (trx) => {
      const created = await trx
        .insertInto('api_tokens')
        .values({
          user_pk: user.pk,
          token_hash: hashToken(token),
          name: opts.name ?? '',
          created_at: now.toISOString(),
          expires_at: expiresAt,
          revoked_at: null,
          last_used_at: null,
        })
        .returning('pk')
        .executeTakeFirstOrThrow();
      await this.ledger.appendIn(trx, {
        principal: actor,
        action: 'token-create',
        outcome: 'success',
        policy: opts.policy ?? 'builtin:local-operator',
        objects: { user: username, tokenId: created.pk, name: opts.name ?? '', expiresAt },
      });
      return created.pk;
    });
    return { id, token, expiresAt };
  }

  /** The local account name of the caller (own tokens); 404 for an OIDC identity without a local account. */
  async ownUsername(principal: Principal): Promise<string> {
    return (await this.localUser(principal)).username;
  }

  /** API tokens of one account (never the secrets), newest first. */
  async listTokens(username: string): Promise<TokenSummary[]> {
    const rows = await this.index.db
      .selectFrom('api_tokens as t')
      .innerJoin('users as u', 'u.pk', 't.user_pk')
      .select(['t.pk', 't.name', 't.created_at', 't.expires_at', 't.revoked_at', 't.last_used_at'])
      .where('u.username', '=', await accountName(this.index.db, username))
      .orderBy('t.pk', 'desc')
      .execute();
    return rows.map((r) => ({
      id: r.pk,
      name: r.name,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      revokedAt: r.revoked_at,
      lastUsedAt: r.last_used_at,
    }));
  }

  /** Revoke one token of one account; a token of another account is "not found" (owner scoping). */
  async revokeToken(actor: Principal, username: string, id: number, policy: string): Promise<void> {
    await this.index.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('api_tokens as t')
        .innerJoin('users as u', 'u.pk', 't.user_pk')
        .select(['t.pk', 't.revoked_at'])
        .where('u.username', '=', await accountName(trx, username))
        .where('t.pk', '=', id)
        .executeTakeFirst();
      if (!row)
        throw new CustosError({
          code: 'auth.no-such-token',
          message: `the account ${username} has no token ${id}`,
          httpStatus: 404,
        });
      if (row.revoked_at === null)
        await trx
          .updateTable('api_tokens')
          .set({ revoked_at: this.clock.now().toISOString() })
          .where('pk', '=', id)
          .execute();
      await this.ledger.appendIn(trx, {
        principal: actor,
        action: 'token-revoke',
        outcome: 'success',
        policy,
        objects: { user: username, tokenId: id },
        ...(row.revoked_at !== null ? { detail: { alreadyRevoked: row.revoked_at } } : {}),
      });
    });
  }

  /**
   * Password login with lockout and TOTP: a console session (cookie) whose bearer form is the returned token.
   * A locked account is refused with auth.locked before the password is looked at, so the answer says nothing
   * about the password.
   */
  async login(
    username: string,
    password: string,
    source: string,
    opts: { totp?: string; channel?: string } = {},
  ): Promise<LoginResult> {
    const now = this.clock.now();
    const user = await this.index.db
      .selectFrom('users')
      .selectAll()
      .where('username', '=', await accountName(this.index.db, username))
      .executeTakeFirst();
    const principal: Principal = {
      kind: 'user',
      id: asUserId(user ? String(user.pk) : 'unknown'),
      // The account's own name, however the user typed it: names are case-insensitive (docs/accounts.md).
      name: user?.username ?? username,
      role: user?.role ?? 'none',
      source,
      ...(opts.channel ? { channel: opts.channel } : {}),
      via: 'password',
    };
    const fail = async (reason: string, err: CustosError): Promise<never> => {
      await this.ledger.append({
        principal,
        action: 'login',
        outcome: 'failure',
        policy: 'n/a',
        detail: { reason },
      });
      throw err;
    };
    const wrong = unauthenticated('the username or password is wrong');
    if (!user || !user.active || !user.password_hash) {
      // Answered as an account would be, in timing and in lockout, so that neither tells which names are accounts
      // (until 6 Dec 2026 five wrong passwords locked a real account, 423, and never a made-up name).
      const why = !user ? 'no such account' : 'account inactive or without a password';
      const lockedAlready = await this.nameLockedUntil(username, now);
      if (lockedAlready) return fail(`${why} (answered as locked)`, lockedError(lockedAlready));
      await argon2.verify(DUMMY_HASH, password).catch(() => false);
      const locks = await this.countNameFailure(username, now);
      return fail(why, locks ? lockedError(locks) : wrong);
    }
    if (user.locked_until !== null && user.locked_until > now.toISOString())
      return fail('account locked', lockedError(user.locked_until));
    const passwordOk = await argon2.verify(user.password_hash, password);
    if (!passwordOk) return this.countFailure(user, principal, 'bad password', wrong);
    let mfaPassed = false;
    let totpStep: number | undefined;
    if (user.totp_secret) {
      if (!opts.totp)
        return fail(
          'second factor missing',
          new CustosError({
            code: 'auth.mfa-required',
            message: 'this account uses TOTP: send the current 6-digit code as "totp"',
            httpStatus: 401,
          }),
        );
      const secret = await this.box().open(user.totp_secret, user.pk);
      totpStep = matchTotp(secret, opts.totp, now);
      const invalid = new CustosError({
        code: 'auth.mfa-invalid',
        message: 'the TOTP code is wrong, expired or was already used',
        httpStatus: 401,
      });
      if (totpStep === undefined) return this.countFailure(user, principal, 'bad TOTP code', invalid);
      if (user.totp_last_step !== null && totpStep <= user.totp_last_step)
        return this.countFailure(user, principal, 'TOTP code reused', invalid);
      mfaPassed = true;
    }
    const settings = this.settings.session;
    const sessionId = randomBytes(32).toString('base64url');
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const expiresAt = new Date(now.getTime() + settings.absoluteHours * 3_600_000).toISOString();
    await this.index.db.transaction().execute(async (trx) => {
      const wasLocked = user.locked_until !== null;
      await trx
        .updateTable('users')
        .set({
          failed_logins: 0,
          failure_window_start: null,
          locked_until: null,
          ...(totpStep !== undefined ? { totp_last_step: totpStep } : {}),
        })
        .where('pk', '=', user.pk)
        .execute();
      if (wasLocked)
        await this.ledger.appendIn(trx, {
          principal: systemPrincipal('lockout'),
          action: 'account-change',
          outcome: 'success',
          policy: 'builtin:lockout',
          objects: { user: username, userPk: user.pk },
          detail: { change: 'unlock', reason: 'lock expired', lockedUntil: user.locked_until },
        });
      const created = await trx
        .insertInto('sessions')
        .values({
          id_hash: hashToken(sessionId),
          token_hash: hashToken(token),
          user_pk: user.pk,
          created_at: now.toISOString(),
          last_seen_at: now.toISOString(),
          expires_at: expiresAt,
          idle_seconds: settings.idleMinutes * 60,
          revoked_at: null,
          mfa_passed: mfaPassed ? 1 : 0,
          source,
        })
        .returning('pk')
        .executeTakeFirstOrThrow();
      await this.ledger.appendIn(trx, {
        principal: { ...principal, via: `session:${created.pk}` },
        action: 'login',
        outcome: 'success',
        policy: 'n/a',
        detail: { mfa: mfaPassed, expiresAt },
      });
    });
    return {
      ...this.accountState(user),
      expiresAt,
      token,
      sessionId,
    };
  }

  /** A failed password or code: counted in the lockout window; the failure that reaches the limit locks. */
  /** When a name that is no usable account is locked at `now` (countNameFailure), the end of its lock. */
  private async nameLockedUntil(username: string, now: Date): Promise<string | undefined> {
    const row = await this.index.db
      .selectFrom('sign_in_name_failures')
      .select('locked_until')
      .where('name_hash', '=', signInNameHash(username))
      .executeTakeFirst();
    return row?.locked_until && row.locked_until > now.toISOString() ? row.locked_until : undefined;
  }

  /**
   * Counts a failed sign-in under a name that is no usable account as countFailure counts an account's, in the
   * index, so that every worker process and node counts it together (until 6 Dec 2026 each process counted in its
   * own memory, and with `--workers` a made-up name took more guesses than an account before it locked). Returns
   * the end of the name's lock when this failure reached the limit.
   */
  private async countNameFailure(username: string, now: Date): Promise<string | undefined> {
    const { maxFailures, windowMinutes, lockMinutes } = this.settings.lockout;
    if (maxFailures === 0) return undefined;
    const at = now.toISOString();
    const cutoff = new Date(now.getTime() - windowMinutes * 60_000).toISOString();
    const nameHash = signInNameHash(username);
    return this.index.db.transaction().execute(async (trx) => {
      // Names whose count and lock have both run out are forgotten, so the table holds only names in play.
      await trx
        .deleteFrom('sign_in_name_failures')
        .where((eb) =>
          eb.and([
            eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', at)]),
            eb.or([eb('failure_window_start', 'is', null), eb('failure_window_start', '<=', cutoff)]),
          ]),
        )
        .execute();
      await trx
        .insertInto('sign_in_name_failures')
        .values({ name_hash: nameHash })
        .onConflict((oc) => oc.column('name_hash').doNothing())
        .execute();
      const counted = await trx
        .updateTable('sign_in_name_failures')
        .set(oneMoreFailure(cutoff, at))
        .where('name_hash', '=', nameHash)
        .returning(['failed_logins', 'locked_until'])
        .executeTakeFirstOrThrow();
      if (counted.locked_until !== null && counted.locked_until > at) return counted.locked_until;
      if (Number(counted.failed_logins) < maxFailures) return undefined;
      const lockedUntil = new Date(now.getTime() + lockMinutes * 60_000).toISOString();
      await trx
        .updateTable('sign_in_name_failures')
        .set({ failed_logins: 0, failure_window_start: null, locked_until: lockedUntil })
        .where('name_hash', '=', nameHash)
        .execute();
      return lockedUntil;
    });
  }

  private async countFailure(
    user: { pk: number; username: string },
    principal: Principal,
    reason: string,
    err: CustosError,
  ): Promise<never> {
    const now = this.clock.now();
    const { maxFailures, windowMinutes, lockMinutes } = this.settings.lockout;
    const cutoff = new Date(now.getTime() - windowMinutes * 60_000).toISOString();
    const lockedUntil = new Date(now.getTime() + lockMinutes * 60_000).toISOString();
    const locked = await this.index.db.transaction().execute(async (trx) => {
      const counted = await trx
        .updateTable('users')
        .set(oneMoreFailure(cutoff, now.toISOString()))
        .where('pk', '=', user.pk)
        .returning(['failed_logins', 'locked_until'])
        .executeTakeFirstOrThrow();
      const failures = Number(counted.failed_logins);
      await this.ledger.appendIn(trx, {
        principal,
        action: 'login',
        outcome: 'failure',
        policy: 'n/a',
        detail: { reason, failures },
      });
      if (counted.locked_until !== null && counted.locked_until > now.toISOString())
        return counted.locked_until;
      if (maxFailures === 0 || failures < maxFailures) return undefined;
      await trx
        .updateTable('users')
        .set({ failed_logins: 0, failure_window_start: null, locked_until: lockedUntil })
        .where('pk', '=', user.pk)
        .execute();
      await this.ledger.appendIn(trx, {
        principal: systemPrincipal('lockout'),
        action: 'account-change',
        outcome: 'success',
        policy: 'builtin:lockout',
        objects: { user: user.username, userPk: user.pk },
        detail: { change: 'lock', failures, windowMinutes, lockedUntil },
      });
      return lockedUntil;
    });
    throw locked ? lockedError(locked) : err;
  }

  /** The signed-in account as the console shows it. */
  /** What the console needs to know of an account: who, and what stands between it and the archive. */
  private accountState(user: {
    username: string;
    role: string;
    display_name: string;
    department: string | null;
    totp_secret: string | null;
    must_change_password: number;
  }) {
    const mfaRequired = this.mfaRequired(user.role);
    return {
      username: user.username,
      role: user.role,
      displayName: user.display_name,
      department: user.department,
      mfaEnrolled: !!user.totp_secret,
      mfaRequired,
      mfaEnrollmentRequired: mfaRequired && !user.totp_secret,
      mustChangePassword: !!user.must_change_password,
    };
  }

  async me(principal: Principal): Promise<Record<string, unknown>> {
    const user = await this.localUser(principal);
    const pk = sessionPk(principal);
    const session =
      pk !== undefined
        ? await this.index.db
            .selectFrom('sessions')
            .select(['expires_at', 'last_seen_at', 'idle_seconds'])
            .where('pk', '=', pk)
            .executeTakeFirst()
        : undefined;
    return {
      ...this.accountState(user),
      sessionExpiresAt: session?.expires_at ?? null,
      ...(session
        ? {
            sessionIdleExpiresAt: new Date(
              Date.parse(session.last_seen_at) + session.idle_seconds * 1000,
            ).toISOString(),
          }
        : {}),
    };
  }

  private box(): TotpSecretBox {
    if (!this.totpBox)
      throw new CustosError({
        code: 'auth.mfa-unavailable',
        message: 'TOTP needs the key store, which this process was started without',
        httpStatus: 500,
      });
    return this.totpBox;
  }

  private async localUser(principal: Principal) {
    const user =
      principal.kind === 'user' && /^\d+$/.test(principal.id)
        ? await this.index.db
            .selectFrom('users')
            .selectAll()
            .where('pk', '=', Number(principal.id))
            .executeTakeFirst()
        : undefined;
    if (!user)
      throw new CustosError({
        code: 'auth.not-a-local-account',
        message: `${principal.name} is not a local account`,
        httpStatus: 404,
      });
    return user;
  }

  /** Start TOTP enrolment: a new secret, kept pending until a code from it is confirmed. */
  async mfaEnroll(principal: Principal): Promise<{ secret: string; otpauthUri: string }> {
    const user = await this.localUser(principal);
    if (user.totp_secret)
      throw new CustosError({
        code: 'auth.mfa-already-enrolled',
        message: 'this account already has TOTP; an administrator resets it before a new enrolment',
        httpStatus: 409,
      });
    const secret = randomBytes(20);
    const sealed = await this.box().seal(secret, user.pk);
    await this.index.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ totp_pending: sealed }).where('pk', '=', user.pk).execute();
      await this.ledger.appendIn(trx, {
        principal,
        action: 'mfa',
        outcome: 'success',
        policy: 'builtin:self-service',
        objects: { user: user.username },
        detail: { change: 'enrol-start' },
      });
    });
    return {
      secret: base32Encode(secret),
      otpauthUri: otpauthUri(this.settings.mfa.issuer, user.username, secret),
    };
  }

  /** Confirm enrolment with a code from the new secret; from then on login asks for a code. */
  async mfaConfirm(principal: Principal, code: string): Promise<{ mfaEnrolled: true }> {
    const user = await this.localUser(principal);
    if (!user.totp_pending)
      throw new CustosError({
        code: 'auth.mfa-not-enrolling',
        message: 'no TOTP enrolment is pending: POST /api/auth/mfa/enroll first',
        httpStatus: 409,
      });
    const now = this.clock.now();
    const step = matchTotp(await this.box().open(user.totp_pending, user.pk), code, now);
    if (step === undefined) {
      await this.ledger.append({
        principal,
        action: 'mfa',
        outcome: 'failure',
        policy: 'builtin:self-service',
        objects: { user: user.username },
        detail: { change: 'enrol-confirm', reason: 'bad code' },
      });
      throw new CustosError({
        code: 'auth.mfa-invalid',
        message: 'the code does not match the secret being enrolled (check the device clock)',
        httpStatus: 400,
      });
    }
    await this.index.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('users')
        .set({
          totp_secret: user.totp_pending,
          totp_pending: null,
          totp_enrolled_at: now.toISOString(),
          totp_last_step: step,
        })
        .where('pk', '=', user.pk)
        .execute();
      const pk = sessionPk(principal);
      if (pk !== undefined)
        await trx.updateTable('sessions').set({ mfa_passed: 1 }).where('pk', '=', pk).execute();
      await this.ledger.appendIn(trx, {
        principal,
        action: 'mfa',
        outcome: 'success',
        policy: 'builtin:self-service',
        objects: { user: user.username },
        detail: { change: 'enrolled' },
      });
    });
    return { mfaEnrolled: true };
  }

  /** Change one's own password: the current one is checked, the new one must meet the policy. */
  async changePassword(principal: Principal, current: string, next: string): Promise<void> {
    const user = await this.localUser(principal);
    if (!user.password_hash || !(await argon2.verify(user.password_hash, current))) {
      await this.ledger.append({
        principal,
        action: 'account-change',
        outcome: 'failure',
        policy: 'builtin:self-service',
        objects: { user: user.username },
        detail: { change: 'password', reason: 'current password wrong' },
      });
      throw unauthenticated('the current password is wrong');
    }
    checkPassword(this.settings.password, user.username, next);
    if (await argon2.verify(user.password_hash, next))
      throw new CustosError({
        code: 'account.weak-password',
        message:
          'the password does not meet the password policy: the new password must differ from the current one',
        httpStatus: 400,
        detail: { rule: 'reuse' },
      });
    const hash = await argon2.hash(next, { type: argon2.argon2id });
    await this.index.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('users')
        .set({ password_hash: hash, must_change_password: 0 })
        .where('pk', '=', user.pk)
        .execute();
      await this.ledger.appendIn(trx, {
        principal,
        action: 'account-change',
        outcome: 'success',
        policy: 'builtin:self-service',
        objects: { user: user.username },
        detail: { change: 'password' },
      });
    });
  }

  /**
   * The principal of a local account acting through the command line (`--as`): it must exist and be active; its
   * role and facts are what the policy decision point sees, and the ledger names it.
   */
  async localPrincipal(username: string, source: string): Promise<Principal> {
    const row = await this.index.db
      .selectFrom('users')
      .select(['pk', 'username', 'role', 'active', 'department', 'physician_name', 'physician_id'])
      .where('username', '=', await accountName(this.index.db, username))
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
      channel: 'cli',
      via: 'cli',
      department: row.department,
      physicianName: row.physician_name,
      physicianId: row.physician_id,
    };
  }

  /** End a session: the token or session this request was made with stops working at once. */
  async logout(principal: Principal): Promise<void> {
    const m = /^(token|session):(\d+)$/.exec(principal.via ?? '');
    if (!m) {
      throw new CustosError({
        code: 'auth.not-a-session',
        message: 'logout ends the token or session this request was made with; this request used neither',
        httpStatus: 400,
      });
    }
    await this.index.db.transaction().execute(async (trx) => {
      await trx
        .updateTable(m[1] === 'token' ? 'api_tokens' : 'sessions')
        .set({ revoked_at: this.clock.now().toISOString() })
        .where('pk', '=', Number(m[2]))
        .where('revoked_at', 'is', null)
        .execute();
      await this.ledger.appendIn(trx, { principal, action: 'logout', outcome: 'success', policy: 'n/a' });
    });
  }
}

/** Every session and API token of an account ends now (deactivation, password reset): in the caller's transaction. */
export async function revokeCredentials(
  db: Kysely<DatabaseSchema>,
  userPk: number,
  now: string,
): Promise<void> {
  await db
    .updateTable('api_tokens')
    .set({ revoked_at: now })
    .where('user_pk', '=', userPk)
    .where('revoked_at', 'is', null)
    .execute();
  await db
    .updateTable('sessions')
    .set({ revoked_at: now })
    .where('user_pk', '=', userPk)
    .where('revoked_at', 'is', null)
    .execute();
}

export interface TokenSummary {
  id: number;
  name: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** The value of the custos_session cookie in a Cookie header. */
export function sessionCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const v = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{20,100}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

const lockedError = (until: string) =>
  new CustosError({
    code: 'auth.locked',
    message: `the account is locked after repeated failed sign-ins until ${until}, or until an administrator unlocks it`,
    httpStatus: 423,
    detail: { lockedUntil: until },
  });

// argon2id of a random string nobody knows: verified against for unknown accounts.
const DUMMY_HASH =
  '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$Jc0CD6bwsB8cN3L0gvUqR3rjMgWjQvztNrMH9NCqmf8';

/** The policy id the local operator's commands are recorded with: no Cedar decision, data-directory access. */
export const LOCAL_OPERATOR_POLICY = 'builtin:local-operator';

/** The operator at the command line (`systemPrincipal('cli')`), never a principal a request authenticated as. */
export const isLocalOperator = (p: Principal): boolean => p.kind === 'system' && p.name === 'system:cli';

export const systemPrincipal = (what: string): Principal => ({
  kind: 'system',
  id: asUserId('system'),
  name: `system:${what}`,
  role: ADMINISTRATOR_ROLE,
  source: 'cli',
  // The operator's commands (`cli`, `cli:<os user>`, `import`): the ledger names the command line as the channel.
  ...(what === 'cli' || what.startsWith('cli:') || what === 'import' ? { channel: 'cli' } : {}),
});

/**
 * One more failed sign-in, counted in the database (users and sign_in_name_failures alike), so that concurrent
 * failures cannot each read the same count and slip past the limit: added to the count while the window that began
 * after `cutoff` runs, else the first of a new window starting `at`.
 */
function oneMoreFailure(cutoff: string, at: string) {
  const inWindow = sql<boolean>`failure_window_start is not null and failure_window_start > ${cutoff}`;
  return {
    failed_logins: sql<number>`case when ${inWindow} then failed_logins + 1 else 1 end`,
    failure_window_start: sql<string>`case when ${inWindow} then failure_window_start else ${at} end`,
  };
}

/** The key of a sign-in name in sign_in_name_failures: names are case-insensitive (docs/accounts.md). */
function signInNameHash(username: string): string {
  return createHash('sha256').update(username.toLowerCase()).digest('hex');
}
