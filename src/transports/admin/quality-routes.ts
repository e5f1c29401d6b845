import { CustosError } from '../../domain/errors.js';
import type { QualityKpiService } from '../../services/quality-kpi-service.js';
import { sendJson } from '../dicomweb/responses.js';
import type { Route } from '../server/router.js';

const KNOWN = ['from', 'to'];

/** Data-quality KPIs in the admin API (docs/quality-kpis.md). */
export function qualityRoutes(kpis: QualityKpiService): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/quality/kpis',
      auth: 'bearer',
      summary: 'data-quality KPIs for a period (from, to: YYYY-MM-DD, UTC days, both included)',
      handler: async (ctx) => {
        // Decided before the parameters are read: 403 (recorded) for a caller who may not read the KPIs.
        await kpis.authorize(ctx.principal);
        for (const k of ctx.query.keys())
          if (!KNOWN.includes(k))
            throw new CustosError({
              code: 'quality.bad-request',
              message: `${k}: unknown parameter (known: ${KNOWN.join(', ')})`,
              httpStatus: 400,
              detail: { parameter: k },
            });
        const from = ctx.query.get('from');
        const to = ctx.query.get('to');
        const body = await kpis.kpis(ctx.principal, {
          ...(from !== null ? { from } : {}),
          ...(to !== null ? { to } : {}),
        });
        await sendJson(ctx.res, 200, body, 'application/json');
      },
    },
  ];
}
