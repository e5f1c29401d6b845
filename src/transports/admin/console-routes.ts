import { CustosError } from '../../domain/errors.js';
import { parseListSort } from '../../domain/list-sort.js';
import { parseQidoQuery } from '../../domain/qido-query.js';
import type { ConsoleService } from '../../services/console-service.js';
import type { QueryService } from '../../services/query-service.js';
import { STUDY_SORT_KEYS } from '../../services/study-sort.js';
import { sendJson } from '../dicomweb/responses.js';
import type { RequestContext, Route } from '../server/router.js';
import { OPENAPI } from './openapi.js';

const JSON_TYPE = 'application/json';
const STUDY_KEYS = ['PatientName', 'PatientID', 'StudyDate', 'ModalitiesInStudy', 'AccessionNumber'] as const;
const MAX_LIMIT = 500;

function rejectUnknown(ctx: RequestContext, known: readonly string[], code: string): void {
  for (const k of ctx.query.keys())
    if (!known.includes(k))
      throw new CustosError({
        code,
        message: `${k}: unknown parameter (known: ${known.join(', ')})`,
        httpStatus: 400,
        detail: { parameter: k },
      });
}

function pageParam(ctx: RequestContext, name: string, fallback: number, min: number, max: number): number {
  const raw = ctx.query.get(name);
  if (raw === null) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max)
    throw new CustosError({
      code: 'studies.bad-parameter',
      message: `${name}: must be an integer from ${min} to ${max}, got '${raw}'`,
      httpStatus: 400,
      detail: { parameter: name },
    });
  return Number(raw);
}

/**
 * What the web console reads beyond the audit, quarantine and account APIs (docs/console.md): the study
 * browser (the QIDO query service with governance columns), one study's governance page, the activity
 * figures of the dashboard, and this API's OpenAPI description.
 */
export function consoleRoutes(query: QueryService, console: ConsoleService): Route[] {
  const openApiText = JSON.stringify(OPENAPI);
  return [
    {
      method: 'GET',
      path: '/api/openapi.json',
      auth: 'public',
      summary: 'the OpenAPI 3.1 description of the admin API: carries no data',
      handler: async (ctx) => {
        ctx.res.writeHead(200, {
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Length': Buffer.byteLength(openApiText),
        });
        ctx.res.end(openApiText);
      },
    },
    {
      method: 'GET',
      path: '/api/studies',
      auth: 'bearer',
      summary:
        'study browser: QIDO-like study search with governance columns, narrowed to what the caller may see',
      handler: async (ctx) => {
        rejectUnknown(ctx, [...STUDY_KEYS, 'limit', 'offset', 'sort', 'dir'], 'studies.bad-parameter');
        const sort = parseListSort(
          STUDY_SORT_KEYS,
          ctx.query.get('sort'),
          ctx.query.get('dir'),
          'studies.bad-parameter',
        );
        const limit = pageParam(ctx, 'limit', 50, 1, MAX_LIMIT);
        const offset = pageParam(ctx, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
        const params = new URLSearchParams();
        for (const k of STUDY_KEYS) {
          const v = ctx.query.get(k);
          if (v !== null && v.trim() !== '') params.set(k, v.trim());
        }
        const q = { ...parseQidoQuery(params, 'study'), limit, offset };
        await sendJson(
          ctx.res,
          200,
          await query.browseStudies(ctx.principal, q, 'admin-api', sort),
          JSON_TYPE,
        );
      },
    },
    {
      method: 'GET',
      path: '/api/studies/:uid',
      auth: 'bearer',
      summary:
        "one study's governance state, series and own access history, as far as the caller may see them",
      handler: async (ctx) => {
        rejectUnknown(ctx, [], 'studies.bad-parameter');
        await sendJson(
          ctx.res,
          200,
          await console.study(ctx.principal, ctx.params.uid!, 'admin-api'),
          JSON_TYPE,
        );
      },
    },
    {
      method: 'GET',
      path: '/api/kpis/activity',
      auth: 'bearer',
      summary: 'ingest volume, denied accesses and break-glass openings per day (from, to: YYYY-MM-DD)',
      handler: async (ctx) => {
        // Decided before the parameters are read: 403 (recorded) for a caller who may not view it, not a 400.
        await console.authorizeActivity(ctx.principal);
        rejectUnknown(ctx, ['from', 'to'], 'kpi.bad-range');
        const from = ctx.query.get('from');
        const to = ctx.query.get('to');
        await sendJson(
          ctx.res,
          200,
          await console.activity(
            ctx.principal,
            { ...(from ? { from } : {}), ...(to ? { to } : {}) },
            'admin-api',
          ),
          JSON_TYPE,
        );
      },
    },
  ];
}
