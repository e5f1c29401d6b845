import type { IncomingMessage } from 'node:http';
import { CustosError } from '../../domain/errors.js';
import type { BreakGlassFilter, BreakGlassService } from '../../services/break-glass-service.js';
import { sendJson } from '../dicomweb/responses.js';
import type { RequestContext, Route } from '../server/router.js';
import { parseInstant } from './audit-filter.js';

const JSON_TYPE = 'application/json';
const badRequest = (message: string, parameter?: string) =>
  new CustosError({
    code: 'break-glass.bad-request',
    message,
    httpStatus: 400,
    ...(parameter ? { detail: { parameter } } : {}),
  });

const LIST_KEYS = ['from', 'to', 'username', 'reviewed', 'limit'] as const;

function listFilter(ctx: RequestContext): BreakGlassFilter {
  for (const k of ctx.query.keys())
    if (!(LIST_KEYS as readonly string[]).includes(k))
      throw badRequest(`${k}: unknown parameter (known: ${LIST_KEYS.join(', ')})`, k);
  const f: BreakGlassFilter = {};
  const from = ctx.query.get('from');
  const to = ctx.query.get('to');
  const username = ctx.query.get('username');
  const reviewed = ctx.query.get('reviewed');
  const limit = ctx.query.get('limit');
  if (from) f.from = parseInstant('from', from);
  if (to) f.to = parseInstant('to', to);
  if (username) f.username = username;
  if (reviewed !== null) {
    if (reviewed !== 'true' && reviewed !== 'false')
      throw badRequest(`reviewed: must be true or false, got '${reviewed}'`, 'reviewed');
    f.reviewed = reviewed === 'true';
  }
  if (limit !== null) {
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000)
      throw badRequest(`limit: must be an integer from 1 to 1000, got '${limit}'`, 'limit');
    f.limit = Number(limit);
  }
  return f;
}

/**
 * Break-glass over the admin API (issue 4, item 4): clinicians open a window on a study with a reason; the
 * privacy officer lists and reviews them. Every call is decided by the policies inside the service.
 */
export function breakGlassRoutes(
  breakGlass: BreakGlassService,
  readJson: (req: IncomingMessage) => Promise<unknown>,
): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/break-glass',
      auth: 'bearer',
      summary:
        'open a study outside your scope in an emergency, giving a reason (recorded, alerts the privacy officer)',
      handler: async (ctx) => {
        const body = (await readJson(ctx.req)) as Record<string, unknown> | null;
        if (!body || typeof body !== 'object' || Array.isArray(body))
          throw badRequest('send a JSON object {"studyUid": "...", "reason": "..."}');
        const { studyUid, reason, minutes } = body;
        if (typeof studyUid !== 'string')
          throw badRequest('studyUid: required, the Study Instance UID', 'studyUid');
        if (reason === undefined || reason === null || reason === '')
          throw new CustosError({
            code: 'break-glass.reason-required',
            message: 'reason: required, say why you need this study; it is recorded and reviewed',
            httpStatus: 400,
            detail: { parameter: 'reason' },
          });
        if (typeof reason !== 'string') throw badRequest('reason: must be text', 'reason');
        if (minutes !== undefined && typeof minutes !== 'number')
          throw badRequest('minutes: must be a number', 'minutes');
        const opened = await breakGlass.open(ctx.principal, {
          studyUid,
          reason,
          ...(minutes !== undefined ? { minutes } : {}),
        });
        await sendJson(ctx.res, 201, opened, JSON_TYPE);
      },
    },
    {
      method: 'GET',
      path: '/api/break-glass/active',
      auth: 'bearer',
      summary: "the caller's own open break-glass windows",
      handler: async (ctx) => sendJson(ctx.res, 200, await breakGlass.active(ctx.principal), JSON_TYPE),
    },
    {
      method: 'GET',
      path: '/api/break-glass',
      auth: 'bearer',
      summary: "the privacy officer's report of break-glass windows (from, to, username, reviewed)",
      handler: async (ctx) => {
        // Decided before the parameters are read: 403 (recorded) for a caller who may not review, not a 400.
        await breakGlass.authorizeReview(ctx.principal);
        await sendJson(
          ctx.res,
          200,
          await breakGlass.list(ctx.principal, listFilter(ctx), 'admin-api'),
          JSON_TYPE,
        );
      },
    },
    {
      method: 'POST',
      path: '/api/break-glass/:id/review',
      auth: 'bearer',
      summary: 'record the privacy officer review of a break-glass window',
      handler: async (ctx) => {
        await breakGlass.authorizeReview(ctx.principal);
        const body = (await readJson(ctx.req)) as Record<string, unknown> | null;
        if (!body || typeof body !== 'object' || typeof body.note !== 'string')
          throw badRequest('send a JSON object {"note": "..."}', 'note');
        await sendJson(
          ctx.res,
          200,
          await breakGlass.review(ctx.principal, ctx.params.id!, body.note, 'admin-api'),
          JSON_TYPE,
        );
      },
    },
  ];
}
