import {
  TOKEN_DAYS_RULE,
  TOKEN_NAME_RULE,
  tokenDaysProblem,
  tokenName,
} from '../../domain/api-token-rules.js';
import { CustosError } from '../../domain/errors.js';
import { SESSION_COOKIE, type AuthService } from '../../services/auth-service.js';
import type { UserAdminService, UserChange } from '../../services/user-admin-service.js';
import { sendJson } from '../dicomweb/responses.js';
import { readSmallJson } from '../http/json-body.js';
import type { RequestContext, Route } from '../server/router.js';

const JSON_TYPE = 'application/json';
const COOKIE_ATTRIBUTES = 'HttpOnly; Secure; SameSite=Strict; Path=/';

const bad = (code: string, message: string, parameter?: string) =>
  new CustosError({ code, message, httpStatus: 400, ...(parameter ? { detail: { parameter } } : {}) });

async function objectBody(
  ctx: RequestContext,
  code: string,
  shape: string,
): Promise<Record<string, unknown>> {
  const body = await readSmallJson(ctx.req);
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw bad(code, `send a JSON object ${shape}`);
  return body as Record<string, unknown>;
}

/** A body-less POST: whatever was sent is drained so keep-alive stays usable. */
const drain = (ctx: RequestContext) => {
  if (!ctx.req.complete) ctx.req.resume();
};

function tokenRequest(body: Record<string, unknown>): { name: string; ttlDays?: number } {
  const { name, ttlDays } = body;
  if (typeof name !== 'string') throw bad('auth.bad-request', `"name" must be ${TOKEN_NAME_RULE}`, 'name');
  const named = tokenName(name);
  if ('problem' in named) throw bad('auth.bad-request', `"name": ${named.problem}`, 'name');
  if (ttlDays !== undefined) {
    const problem = typeof ttlDays === 'number' ? tokenDaysProblem(ttlDays) : `expected ${TOKEN_DAYS_RULE}`;
    if (problem)
      throw bad('auth.bad-request', `"ttlDays": ${problem}; got ${JSON.stringify(ttlDays)}`, 'ttlDays');
  }
  return { name: named.name, ...(ttlDays !== undefined ? { ttlDays: ttlDays as number } : {}) };
}

function tokenId(raw: string): number {
  if (!/^\d{1,15}$/.test(raw)) throw bad('auth.bad-request', 'a token id is a number', 'id');
  return Number(raw);
}

const optionalText = (body: Record<string, unknown>, key: string): string | null | undefined => {
  const v = body[key];
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (typeof v !== 'string' || v.length > 200)
    throw bad('account.bad-request', `"${key}" must be a string of at most 200 characters or null`, key);
  return v;
};

/**
 * Sign-in, the signed-in account's own settings (password, TOTP, API tokens) and user administration
 * (docs/accounts.md). Login is the one public route; everything else passes authentication, and user
 * administration the 'administer' decision inside UserAdminService.
 */
export function accountRoutes(auth: AuthService, users: UserAdminService): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/auth/login',
      auth: 'public',
      summary:
        'sign in with username, password (and TOTP code): a console session cookie and its bearer token',
      handler: async (ctx) => {
        const body = await objectBody(ctx, 'auth.bad-request', '{"username", "password", "totp"?}');
        const { username, password, totp } = body;
        if (typeof username !== 'string' || typeof password !== 'string')
          throw bad('auth.bad-request', 'send {"username": "...", "password": "..."}');
        if (totp !== undefined && typeof totp !== 'string')
          throw bad('auth.bad-request', '"totp" must be the 6-digit code as a string', 'totp');
        const r = await auth.login(username, password, ctx.source, {
          ...(totp ? { totp } : {}),
          ...(ctx.principal.channel ? { channel: ctx.principal.channel } : {}),
        });
        ctx.res.setHeader('Set-Cookie', `${SESSION_COOKIE}=${r.sessionId}; ${COOKIE_ATTRIBUTES}`);
        ctx.res.setHeader('Cache-Control', 'no-store');
        const { sessionId: _cookie, ...shown } = r;
        void _cookie;
        await sendJson(ctx.res, 200, shown, JSON_TYPE);
      },
    },
    {
      method: 'POST',
      path: '/api/auth/logout',
      auth: 'bearer',
      summary: 'end the session or revoke the token this request carries; clears the session cookie',
      handler: async (ctx) => {
        drain(ctx);
        await auth.logout(ctx.principal);
        ctx.res.setHeader('Set-Cookie', `${SESSION_COOKIE}=; ${COOKIE_ATTRIBUTES}; Max-Age=0`);
        ctx.res.writeHead(204).end();
      },
    },
    {
      method: 'GET',
      path: '/api/auth/me',
      auth: 'bearer',
      summary: 'the signed-in account: role, MFA state, session expiry',
      handler: async (ctx) => sendJson(ctx.res, 200, await auth.me(ctx.principal), JSON_TYPE),
    },
    {
      method: 'POST',
      path: '/api/auth/password',
      auth: 'bearer',
      summary: 'change one\'s own password: {"currentPassword", "newPassword"}',
      handler: async (ctx) => {
        const body = await objectBody(ctx, 'auth.bad-request', '{"currentPassword", "newPassword"}');
        if (typeof body.currentPassword !== 'string' || typeof body.newPassword !== 'string')
          throw bad('auth.bad-request', 'send {"currentPassword": "...", "newPassword": "..."}');
        await auth.changePassword(ctx.principal, body.currentPassword, body.newPassword);
        ctx.res.writeHead(204).end();
      },
    },
    {
      method: 'POST',
      path: '/api/auth/mfa/enroll',
      auth: 'bearer',
      summary: 'start TOTP enrolment: a new secret (base32) and its otpauth:// URI',
      handler: async (ctx) => {
        drain(ctx);
        ctx.res.setHeader('Cache-Control', 'no-store');
        await sendJson(ctx.res, 200, await auth.mfaEnroll(ctx.principal), JSON_TYPE);
      },
    },
    {
      method: 'POST',
      path: '/api/auth/mfa/confirm',
      auth: 'bearer',
      summary: 'confirm TOTP enrolment with a current code: {"code"}',
      handler: async (ctx) => {
        const body = await objectBody(ctx, 'auth.bad-request', '{"code": "123456"}');
        if (typeof body.code !== 'string') throw bad('auth.bad-request', '"code" must be a string', 'code');
        await sendJson(ctx.res, 200, await auth.mfaConfirm(ctx.principal, body.code), JSON_TYPE);
      },
    },
    {
      method: 'GET',
      path: '/api/auth/tokens',
      auth: 'bearer',
      summary: "the caller's own API tokens (never the secrets)",
      handler: async (ctx) =>
        await sendJson(ctx.res, 200, await auth.listTokens(await auth.ownUsername(ctx.principal)), JSON_TYPE),
    },
    {
      method: 'POST',
      path: '/api/auth/tokens',
      auth: 'bearer',
      summary: 'create an API token for oneself: {"name", "ttlDays"}; the token is shown once',
      handler: async (ctx) => {
        const req = tokenRequest(await objectBody(ctx, 'auth.bad-request', '{"name", "ttlDays"}'));
        const t = await auth.createToken(ctx.principal, await auth.ownUsername(ctx.principal), {
          ...req,
          policy: 'builtin:self-service',
        });
        ctx.res.setHeader('Cache-Control', 'no-store');
        await sendJson(ctx.res, 201, { id: t.id, token: t.token, expiresAt: t.expiresAt }, JSON_TYPE);
      },
    },
    {
      method: 'DELETE',
      path: '/api/auth/tokens/:id',
      auth: 'bearer',
      summary: "revoke one of the caller's own API tokens",
      handler: async (ctx) => {
        await auth.revokeToken(
          ctx.principal,
          await auth.ownUsername(ctx.principal),
          tokenId(ctx.params.id!),
          'builtin:self-service',
        );
        ctx.res.writeHead(204).end();
      },
    },
    // ---- user administration ('administer') ----
    {
      method: 'GET',
      path: '/api/admin/users',
      auth: 'bearer',
      summary: 'list accounts with role, state, MFA and lock',
      handler: async (ctx) => sendJson(ctx.res, 200, await users.list(ctx.principal), JSON_TYPE),
    },
    {
      method: 'POST',
      path: '/api/admin/users',
      auth: 'bearer',
      summary: 'create an account; answers its one-time password (to be changed at first sign-in)',
      handler: async (ctx) => {
        // Each user administration route decides before it reads its body or parameters (403, recorded, not 400).
        await users.authorize(ctx.principal);
        const body = await objectBody(ctx, 'account.bad-request', '{"username", "role", …}');
        if (typeof body.username !== 'string')
          throw bad('account.bad-request', '"username" is required', 'username');
        if (typeof body.role !== 'string') throw bad('account.bad-request', '"role" is required', 'role');
        const text = (k: string) => optionalText(body, k) ?? undefined;
        const created = await users.create(ctx.principal, {
          username: body.username,
          role: body.role,
          ...(text('displayName') !== undefined ? { displayName: text('displayName')! } : {}),
          ...(text('department') !== undefined ? { department: text('department')! } : {}),
          ...(text('physicianName') !== undefined ? { physicianName: text('physicianName')! } : {}),
          ...(text('physicianId') !== undefined ? { physicianId: text('physicianId')! } : {}),
        });
        ctx.res.setHeader('Cache-Control', 'no-store');
        await sendJson(ctx.res, 201, created, JSON_TYPE);
      },
    },
    {
      method: 'PATCH',
      path: '/api/admin/users/:username',
      auth: 'bearer',
      summary:
        'change an account (active, role, names, department); active:false ends its sessions and tokens',
      handler: async (ctx) => {
        await users.authorize(ctx.principal);
        const body = await objectBody(ctx, 'account.bad-request', '{"active"?, "role"?, …}');
        const known = ['active', 'role', 'displayName', 'department', 'physicianName', 'physicianId'];
        for (const k of Object.keys(body))
          if (!known.includes(k))
            throw bad('account.bad-request', `"${k}" is not a field that can be changed`, k);
        if (body.active !== undefined && typeof body.active !== 'boolean')
          throw bad('account.bad-request', '"active" must be true or false', 'active');
        if (body.role !== undefined && typeof body.role !== 'string')
          throw bad('account.bad-request', '"role" must be a string', 'role');
        const displayName = optionalText(body, 'displayName');
        const change: UserChange = {
          ...(body.active !== undefined ? { active: body.active as boolean } : {}),
          ...(body.role !== undefined ? { role: body.role as string } : {}),
          ...(displayName !== undefined ? { displayName: displayName ?? '' } : {}),
        };
        for (const k of ['department', 'physicianName', 'physicianId'] as const) {
          const v = optionalText(body, k);
          if (v !== undefined) change[k] = v;
        }
        await sendJson(
          ctx.res,
          200,
          await users.change(ctx.principal, ctx.params.username!, change),
          JSON_TYPE,
        );
      },
    },
    {
      method: 'POST',
      path: '/api/admin/users/:username/mfa/reset',
      auth: 'bearer',
      summary: "remove an account's TOTP (it enrols again)",
      handler: async (ctx) => {
        drain(ctx);
        await users.resetMfa(ctx.principal, ctx.params.username!);
        ctx.res.writeHead(204).end();
      },
    },
    {
      method: 'POST',
      path: '/api/admin/users/:username/unlock',
      auth: 'bearer',
      summary: 'unlock an account locked by failed sign-ins',
      handler: async (ctx) => {
        drain(ctx);
        await users.unlock(ctx.principal, ctx.params.username!);
        ctx.res.writeHead(204).end();
      },
    },
    {
      method: 'POST',
      path: '/api/admin/users/:username/password/reset',
      auth: 'bearer',
      summary: 'new one-time password; ends every session and token of the account',
      handler: async (ctx) => {
        drain(ctx);
        ctx.res.setHeader('Cache-Control', 'no-store');
        await sendJson(
          ctx.res,
          200,
          await users.resetPassword(ctx.principal, ctx.params.username!),
          JSON_TYPE,
        );
      },
    },
    {
      method: 'GET',
      path: '/api/admin/users/:username/tokens',
      auth: 'bearer',
      summary: "an account's API tokens",
      handler: async (ctx) =>
        await sendJson(ctx.res, 200, await users.listTokens(ctx.principal, ctx.params.username!), JSON_TYPE),
    },
    {
      method: 'POST',
      path: '/api/admin/users/:username/tokens',
      auth: 'bearer',
      summary: 'create an API token for an account (a named system): {"name", "ttlDays"}',
      handler: async (ctx) => {
        await users.authorize(ctx.principal);
        const req = tokenRequest(await objectBody(ctx, 'auth.bad-request', '{"name", "ttlDays"}'));
        const t = await users.createToken(ctx.principal, ctx.params.username!, req);
        ctx.res.setHeader('Cache-Control', 'no-store');
        await sendJson(ctx.res, 201, { id: t.id, token: t.token, expiresAt: t.expiresAt }, JSON_TYPE);
      },
    },
    {
      method: 'DELETE',
      path: '/api/admin/users/:username/tokens/:id',
      auth: 'bearer',
      summary: "revoke one of an account's API tokens",
      handler: async (ctx) => {
        await users.authorize(ctx.principal);
        await users.revokeToken(ctx.principal, ctx.params.username!, tokenId(ctx.params.id!));
        ctx.res.writeHead(204).end();
      },
    },
  ];
}
