import { CustosError } from '../../domain/errors.js';
import { SCIM_ERROR, scimError, type ScimService } from '../../services/scim-service.js';
import { readSmallJson } from '../http/json-body.js';
import type { Handler, RequestContext, Route } from '../server/router.js';

const BASE = '/scim/v2';
const SCIM_JSON = 'application/scim+json; charset=utf-8';

function send(ctx: RequestContext, status: number, body?: unknown): void {
  if (body === undefined) {
    ctx.res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  ctx.res.writeHead(status, { 'Content-Type': SCIM_JSON, 'Content-Length': Buffer.byteLength(text) });
  ctx.res.end(text);
}

/** SCIM clients expect RFC 7644 §3.12 errors, not problem+json: every SCIM handler answers in that form. */
function scim(handler: Handler): Handler {
  return async (ctx) => {
    try {
      await handler(ctx);
    } catch (err) {
      if (!(err instanceof CustosError) || ctx.res.headersSent) throw err;
      const scimType = (err.detail as { scimType?: string } | undefined)?.scimType;
      send(ctx, err.httpStatus, {
        schemas: [SCIM_ERROR],
        status: String(err.httpStatus),
        ...(scimType ? { scimType } : {}),
        detail: err.message,
      });
    }
  };
}

/** `startIndex` and `count` of a list request. */
const page = (ctx: RequestContext): [number, number] => [
  intParam(ctx, 'startIndex', 1, 1, Number.MAX_SAFE_INTEGER),
  intParam(ctx, 'count', 100, 0, 1000),
];

const base = (ctx: RequestContext) => `${ctx.origin}${BASE}`;

/**
 * `startIndex` and `count` (RFC 7644 §3.4.2.4): a value below `min` is taken as `min` (a startIndex under 1 as 1, a
 * negative count as 0), and a count above 1,000 as 1,000. Only the count is capped: a startIndex beyond the
 * results gives an empty page, where a capped one would hand a client paging past 1,000 users the same page again.
 */
function intParam(ctx: RequestContext, name: string, fallback: number, min: number, max: number): number {
  const raw = ctx.query.get(name);
  if (raw === null) return fallback;
  if (!/^-?\d+$/.test(raw)) throw scimError(400, `${name} must be an integer, got '${raw}'`, 'invalidValue');
  return Math.min(Math.max(Number(raw), min), max);
}

async function body(ctx: RequestContext): Promise<Record<string, unknown>> {
  // SCIM's own media type (RFC 7644), and application/json, which identity providers send as well.
  let b: unknown;
  try {
    b = await readSmallJson(ctx.req, 256 * 1024, ['application/scim+json', 'application/json']);
  } catch (err) {
    // RFC 7644 §3.12: a body that is not JSON is scimType invalidSyntax, as a body of the wrong shape is (until
    // 7 Dec 2026 it had no scimType).
    if (err instanceof CustosError && err.code === 'http.bad-json')
      throw scimError(400, err.message, 'invalidSyntax');
    throw err;
  }
  if (!b || typeof b !== 'object' || Array.isArray(b))
    throw scimError(400, 'the body must be a JSON object', 'invalidSyntax');
  return b as Record<string, unknown>;
}

/** SCIM 2.0 service provider at /scim/v2 (Users, Groups), for the organisation's identity provider. */
export function scimRoutes(svc: ScimService): Route[] {
  const route = (method: Route['method'], path: string, summary: string, handler: Handler): Route => ({
    method,
    path: `${BASE}${path}`,
    auth: 'bearer',
    summary: `SCIM ${summary}`,
    handler: scim(handler),
  });
  /** A Users or Groups route: the 'administer' decision first, then the body and parameters are read. */
  const administered = (method: Route['method'], path: string, summary: string, handler: Handler): Route =>
    route(method, path, summary, async (ctx) => {
      await svc.authorize(ctx.principal);
      await handler(ctx);
    });
  return [
    route('GET', '/ServiceProviderConfig', 'service provider configuration', async (ctx) =>
      send(ctx, 200, {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
        patch: { supported: true },
        bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
        filter: { supported: true, maxResults: 1000 },
        changePassword: { supported: false },
        sort: { supported: false },
        etag: { supported: false },
        authenticationSchemes: [
          {
            type: 'oauthbearertoken',
            name: 'Bearer token',
            description: 'a Custos API token or an OIDC token',
            primary: true,
          },
        ],
      }),
    ),
    administered('GET', '/Users', 'list users (filter userName eq / externalId eq)', async (ctx) =>
      send(
        ctx,
        200,
        await svc.listUsers(ctx.principal, ctx.query.get('filter') ?? undefined, ...page(ctx), base(ctx)),
      ),
    ),
    administered('POST', '/Users', 'create a user', async (ctx) => {
      const created = await svc.createUser(ctx.principal, await body(ctx), base(ctx));
      ctx.res.setHeader('Location', (created.meta as { location: string }).location);
      send(ctx, 201, created);
    }),
    administered('GET', '/Users/:id', 'read a user', async (ctx) =>
      send(ctx, 200, await svc.getUser(ctx.principal, ctx.params.id!, base(ctx))),
    ),
    administered('PUT', '/Users/:id', 'replace a user', async (ctx) =>
      send(ctx, 200, await svc.replaceUser(ctx.principal, ctx.params.id!, await body(ctx), base(ctx))),
    ),
    administered('PATCH', '/Users/:id', 'patch a user (active=false deactivates at once)', async (ctx) =>
      send(ctx, 200, await svc.patchUser(ctx.principal, ctx.params.id!, await body(ctx), base(ctx))),
    ),
    administered(
      'DELETE',
      '/Users/:id',
      'delete a user (never signs in again; kept for the audit trail)',
      async (ctx) => {
        await svc.deleteUser(ctx.principal, ctx.params.id!);
        send(ctx, 204);
      },
    ),
    administered('GET', '/Groups', 'list groups (filter displayName eq)', async (ctx) =>
      send(
        ctx,
        200,
        await svc.listGroups(ctx.principal, ctx.query.get('filter') ?? undefined, ...page(ctx), base(ctx)),
      ),
    ),
    administered('POST', '/Groups', 'create a group', async (ctx) => {
      const created = await svc.createGroup(ctx.principal, await body(ctx), base(ctx));
      send(ctx, 201, created);
    }),
    administered('GET', '/Groups/:id', 'read a group', async (ctx) =>
      send(ctx, 200, await svc.getGroup(ctx.principal, ctx.params.id!, base(ctx))),
    ),
    administered('PATCH', '/Groups/:id', 'patch a group (members, displayName)', async (ctx) =>
      send(ctx, 200, await svc.patchGroup(ctx.principal, ctx.params.id!, await body(ctx), base(ctx))),
    ),
    administered('DELETE', '/Groups/:id', 'delete a group', async (ctx) => {
      await svc.deleteGroup(ctx.principal, ctx.params.id!);
      send(ctx, 204);
    }),
  ];
}
