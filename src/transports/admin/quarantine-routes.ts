import { CustosError } from '../../domain/errors.js';
import { parseListSort } from '../../domain/list-sort.js';
import { QUARANTINE_SORT_KEYS } from '../../services/quarantine-sort.js';
import type { QuarantineService, QuarantineStatus } from '../../services/quarantine-service.js';
import { sendJson } from '../dicomweb/responses.js';
import { readSmallJson } from '../http/json-body.js';
import type { RequestContext, Route } from '../server/router.js';

const JSON_TYPE = 'application/json';
const STATUSES: readonly QuarantineStatus[] = ['quarantined', 'released', 'rejected'];

const badParam = (parameter: string, message: string) =>
  new CustosError({
    code: 'quarantine.bad-request',
    message: `${parameter}: ${message}`,
    httpStatus: 400,
    detail: { parameter },
  });

function intParam(ctx: RequestContext, name: string, fallback: number, max: number): number {
  const raw = ctx.query.get(name);
  if (raw === null) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) > max) throw badParam(name, `must be an integer 0..${max}`);
  return Number(raw);
}

function objectBody(body: unknown, what: string): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw badParam('body', `send a JSON object ${what}`);
  return body as Record<string, unknown>;
}

/** The data steward's quarantine workflow in the admin API (docs/validation.md). */
export function quarantineRoutes(q: QuarantineService): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/quarantine',
      auth: 'bearer',
      summary:
        'list quarantined objects, newest first (status=quarantined|released|rejected, limit, offset, sort, dir)',
      handler: async (ctx) => {
        // Each route decides before it reads its parameters or body: 403 (recorded) for a caller who may not work
        // the quarantine, whatever it sent.
        await q.authorize(ctx.principal);
        for (const k of ctx.query.keys())
          if (!['status', 'limit', 'offset', 'sort', 'dir'].includes(k))
            throw badParam(k, 'unknown parameter');
        const status = ctx.query.get('status') ?? 'quarantined';
        if (!STATUSES.includes(status as QuarantineStatus))
          throw badParam('status', `must be one of ${STATUSES.join(', ')}`);
        const limit = intParam(ctx, 'limit', 50, 1000);
        const offset = intParam(ctx, 'offset', 0, Number.MAX_SAFE_INTEGER);
        const sort = parseListSort(
          QUARANTINE_SORT_KEYS,
          ctx.query.get('sort'),
          ctx.query.get('dir'),
          'quarantine.bad-request',
        );
        const { entries, total } = await q.list(ctx.principal, {
          status: status as QuarantineStatus,
          limit,
          offset,
          ...(sort ? { sort } : {}),
        });
        const next = offset + entries.length < total ? { offset: offset + entries.length, limit } : null;
        await sendJson(ctx.res, 200, { entries, total, next }, JSON_TYPE);
      },
    },
    {
      method: 'GET',
      path: '/api/quarantine/:id',
      auth: 'bearer',
      summary: 'inspect a quarantined object: defects, corrections, header as DICOM JSON',
      handler: async (ctx) => sendJson(ctx.res, 200, await q.show(ctx.principal, ctx.params.id!), JSON_TYPE),
    },
    {
      method: 'POST',
      path: '/api/quarantine/:id/corrections',
      auth: 'bearer',
      summary: 'correct header attributes of a quarantined object: {"(0010,0020)": "new value", …}',
      handler: async (ctx) => {
        await q.authorize(ctx.principal);
        const body = objectBody(await readSmallJson(ctx.req), 'of {"(gggg,eeee)": "new value"}');
        await sendJson(ctx.res, 200, await q.correct(ctx.principal, ctx.params.id!, body), JSON_TYPE);
      },
    },
    {
      method: 'POST',
      path: '/api/quarantine/:id/release',
      auth: 'bearer',
      summary: 're-validate with the corrections and release into the archive',
      handler: async (ctx) =>
        await sendJson(ctx.res, 200, await q.release(ctx.principal, ctx.params.id!), JSON_TYPE),
    },
    {
      method: 'POST',
      path: '/api/quarantine/:id/reject',
      auth: 'bearer',
      summary: 'reject a quarantined object for good ({"reason": "…"}); the bytes stay encrypted',
      handler: async (ctx) => {
        await q.authorize(ctx.principal);
        const body = objectBody(await readSmallJson(ctx.req), '{"reason": "…"}');
        if (typeof body.reason !== 'string') throw badParam('reason', 'required, a string');
        await sendJson(ctx.res, 200, await q.reject(ctx.principal, ctx.params.id!, body.reason), JSON_TYPE);
      },
    },
  ];
}
