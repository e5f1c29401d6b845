import { CustosError } from '../../domain/errors.js';
import type { AuditService } from '../../services/audit-service.js';
import { AUDIT_EXPORT_FORMATS, exportRecords, type AuditExportFormat } from '../../services/audit-export.js';
import { sendJson } from '../dicomweb/responses.js';
import type { RequestContext, Route } from '../server/router.js';
import { AUDIT_FILTER_KEYS, parseAuditFilter, parseInstant, type AuditFilterInput } from './audit-filter.js';

const JSON_TYPE = 'application/json';

function filterInput(ctx: RequestContext): AuditFilterInput {
  const input: AuditFilterInput = {};
  for (const k of AUDIT_FILTER_KEYS) {
    const v = ctx.query.get(k);
    if (v !== null) input[k] = v;
  }
  return input;
}

/**
 * Refuses a parameter the route does not know, and one given twice: only the first of a repeated one would be
 * read, so `patient=A&patient=B` would silently show an auditor A's records alone, as if B had none.
 */
function rejectUnknown(ctx: RequestContext, known: readonly string[]): void {
  for (const k of new Set(ctx.query.keys())) {
    if (!known.includes(k))
      throw new CustosError({
        code: 'audit.bad-filter',
        message: `${k}: unknown parameter (known: ${known.join(', ')})`,
        httpStatus: 400,
        detail: { parameter: k },
      });
    if (ctx.query.getAll(k).length > 1)
      throw new CustosError({
        code: 'audit.bad-filter',
        message:
          k === 'action'
            ? `${k}: may be given once; join several actions with a comma (action=view-pixels,query)`
            : `${k}: may be given once (only one value would be used; search once for each)`,
        httpStatus: 400,
        detail: { parameter: k },
      });
  }
}

/** The audit part of the admin API: search, accounting of disclosures, verification, export. */
export function auditRoutes(audit: AuditService): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/audit/records',
      auth: 'bearer',
      summary: 'search the audit ledger (newest first; page with before=<seq of the last record>)',
      handler: async (ctx) => {
        // Each reading of the ledger decides before it reads its parameters: 403 (recorded), not a 400.
        await audit.authorize(ctx.principal);
        rejectUnknown(ctx, AUDIT_FILTER_KEYS);
        const filter = parseAuditFilter(filterInput(ctx), { limit: 100, maxLimit: 1000 });
        const { records, more } = await audit.searchPage(ctx.principal, filter, 'admin-api');
        const last = records[records.length - 1];
        // A next page only when a record lies beyond this one: never an empty page at the end.
        const next =
          more && last ? (filter.order === 'asc' ? { after: last.seq } : { before: last.seq }) : null;
        await sendJson(ctx.res, 200, { records, next }, JSON_TYPE);
      },
    },
    {
      method: 'GET',
      path: '/api/audit/disclosures',
      auth: 'bearer',
      summary: "accounting of disclosures: everyone who accessed one patient's studies",
      handler: async (ctx) => {
        await audit.authorize(ctx.principal);
        rejectUnknown(ctx, ['patient', 'since', 'until']);
        const patient = ctx.query.get('patient');
        if (!patient)
          throw new CustosError({
            code: 'audit.bad-filter',
            message: 'patient: required (the Patient ID whose disclosures to account for)',
            httpStatus: 400,
            detail: { parameter: 'patient' },
          });
        const since = ctx.query.get('since');
        const until = ctx.query.get('until');
        const result = await audit.disclosures(
          ctx.principal,
          patient,
          {
            ...(since ? { since: parseInstant('since', since) } : {}),
            ...(until ? { until: parseInstant('until', until) } : {}),
          },
          'admin-api',
        );
        await sendJson(ctx.res, 200, result, JSON_TYPE);
      },
    },
    {
      method: 'GET',
      path: '/api/audit/verify',
      auth: 'bearer',
      summary: 'recompute the hash chain and check every signed checkpoint',
      handler: async (ctx) => {
        await audit.authorize(ctx.principal);
        rejectUnknown(ctx, []);
        const report = await audit.verify(ctx.principal, 'admin-api');
        await sendJson(ctx.res, report.ok ? 200 : 409, report, JSON_TYPE);
      },
    },
    {
      method: 'GET',
      path: '/api/audit/export',
      auth: 'bearer',
      summary:
        'export audit records oldest first: format=jsonl, dicom (PS3.15 A.5 XML per line), fhir (AuditEvent NDJSON) or csv',
      handler: async (ctx) => {
        await audit.authorize(ctx.principal);
        rejectUnknown(ctx, [...AUDIT_FILTER_KEYS.filter((k) => k !== 'limit' && k !== 'before'), 'format']);
        const format = ctx.query.get('format') ?? 'jsonl';
        if (format !== 'jsonl' && !(AUDIT_EXPORT_FORMATS as readonly string[]).includes(format))
          throw new CustosError({
            code: 'audit.bad-filter',
            message: `format: must be jsonl, ${AUDIT_EXPORT_FORMATS.join(' or ')}, got '${format}'`,
            httpStatus: 400,
            detail: { parameter: 'format' },
          });
        const {
          limit: _l,
          order: _o,
          beforeSeq: _b,
          ...filter
        } = parseAuditFilter(filterInput(ctx), {
          limit: 1,
          maxLimit: 1,
        });
        const records = audit.export(ctx.principal, filter, format, 'admin-api');
        const lines =
          format === 'jsonl'
            ? (async function* () {
                for await (const r of records) yield `${JSON.stringify(r)}\n`;
              })()
            : exportRecords(records, format as AuditExportFormat)[Symbol.asyncIterator]();
        // Pull the first line before the status line, so a refusal still becomes a problem+json response.
        const first = await lines.next();
        ctx.res.writeHead(
          200,
          format === 'csv'
            ? {
                'Content-Type': 'text/csv; charset=utf-8; header=present',
                'Content-Disposition': 'attachment; filename="custos-audit.csv"',
              }
            : {
                'Content-Type': `${format === 'fhir' ? 'application/fhir+ndjson' : 'application/x-ndjson'}; charset=utf-8`,
              },
        );
        if (!first.done) ctx.res.write(first.value);
        for (let next = await lines.next(); !next.done; next = await lines.next()) {
          if (!ctx.res.write(next.value)) await new Promise((res) => ctx.res.once('drain', res));
        }
        ctx.res.end();
      },
    },
  ];
}
