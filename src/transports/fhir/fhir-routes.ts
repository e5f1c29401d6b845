import { auditSearchset, toFhirAuditEvent } from '../../domain/audit-fhir.js';
import { CustosError } from '../../domain/errors.js';
import type { AuditService } from '../../services/audit-service.js';
import { sendJson } from '../dicomweb/responses.js';
import type { RequestContext, Route } from '../server/router.js';
import { parseAuditEventSearch } from './audit-event-params.js';

const FHIR_JSON = 'application/fhir+json';
export const FHIR_BASE = '/fhir/r4';

/**
 * FHIR R4 read-only endpoint for the audit ledger (IHE BALP consumers, e.g. an ATNA FHIR repository or a privacy
 * dashboard): AuditEvent search and read. Both go through AuditService, so the 'read-audit' decision is taken
 * and the read itself is recorded in the ledger before any record leaves.
 */
export function fhirRoutes(audit: AuditService): Route[] {
  return [
    {
      method: 'GET',
      path: `${FHIR_BASE}/metadata`,
      auth: 'public',
      summary: 'FHIR R4 CapabilityStatement: what this endpoint serves (carries no data)',
      // A FHIR client reads the capability statement first (FHIR R4 §3.1.0.11); like a SMART server's, it needs no
      // credentials, and names only resource types, interactions and search parameters. Until 6 Dec 2026 there
      // was none (404).
      handler: async (ctx: RequestContext) => {
        await sendJson(ctx.res, 200, capabilityStatement(`${ctx.origin}${FHIR_BASE}`), FHIR_JSON);
      },
    },
    {
      method: 'GET',
      path: `${FHIR_BASE}/AuditEvent`,
      auth: 'bearer',
      summary: 'FHIR R4 AuditEvent search (patient, date, agent, entity, action, _count), newest first',
      handler: async (ctx: RequestContext) => {
        // Decided before the parameters are read: 403 (recorded) for a caller who may not read the ledger.
        await audit.authorize(ctx.principal);
        const filter = parseAuditEventSearch(ctx.query);
        const records = await audit.search(ctx.principal, filter, 'fhir');
        const base = `${ctx.origin}${FHIR_BASE}`;
        const self = `${base}/AuditEvent${ctx.query.size ? `?${ctx.query.toString()}` : ''}`;
        const last = records[records.length - 1];
        let next: string | undefined;
        if (last && records.length === filter.limit) {
          const q = new URLSearchParams(ctx.query);
          q.set('_cursor', String(last.seq));
          next = `${base}/AuditEvent?${q.toString()}`;
        }
        const bundle = auditSearchset({
          events: records.map((r) => toFhirAuditEvent(r)),
          baseUrl: base,
          selfUrl: self,
          ...(next ? { nextUrl: next } : {}),
        });
        await sendJson(ctx.res, 200, bundle, FHIR_JSON);
      },
    },
    {
      method: 'GET',
      path: `${FHIR_BASE}/AuditEvent/:id`,
      auth: 'bearer',
      summary: 'FHIR R4 AuditEvent read (id = ledger sequence number)',
      handler: async (ctx: RequestContext) => {
        await audit.authorize(ctx.principal);
        const id = ctx.params.id!;
        if (!/^[1-9]\d{0,15}$/.test(id))
          throw new CustosError({
            code: 'fhir.bad-parameter',
            message: `id: an AuditEvent id is a ledger sequence number (1, 2, …), got '${id}'`,
            httpStatus: 400,
            detail: { parameter: 'id' },
          });
        for (const k of ctx.query.keys())
          if (k !== '_format')
            throw new CustosError({
              code: 'fhir.bad-parameter',
              message: `${k}: unknown parameter for a read`,
              httpStatus: 400,
              detail: { parameter: k },
            });
        const seq = Number(id);
        const [record] = await audit.search(
          ctx.principal,
          { afterSeq: seq - 1, order: 'asc', limit: 1 },
          'fhir',
        );
        if (!record || record.seq !== seq)
          throw new CustosError({
            code: 'fhir.not-found',
            message: `no AuditEvent ${id}`,
            httpStatus: 404,
          });
        await sendJson(ctx.res, 200, toFhirAuditEvent(record), FHIR_JSON);
      },
    },
  ];
}

/** The search parameters of AuditEvent as a CapabilityStatement declares them (docs/audit-out.md). */
const AUDIT_EVENT_SEARCH: { name: string; type: string; documentation: string }[] = [
  { name: 'patient', type: 'reference', documentation: 'the Patient ID the record names' },
  { name: 'date', type: 'date', documentation: 'when it was recorded; prefixes eq, ge, le, gt, lt' },
  { name: 'agent', type: 'reference', documentation: 'account name or AE title of the requestor' },
  { name: 'entity', type: 'reference', documentation: 'Study Instance UID' },
  { name: 'action', type: 'token', documentation: 'C, R, U, D or E' },
  { name: '_count', type: 'number', documentation: 'page size, 1-1000 (default 100)' },
];

/** FHIR R4 CapabilityStatement of this read-only AuditEvent endpoint. */
export function capabilityStatement(baseUrl: string): Record<string, unknown> {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    // The day this statement last changed (R4 requires a date).
    date: '2026-12-06',
    publisher: 'Custos',
    kind: 'instance',
    software: { name: 'Custos' },
    implementation: { description: 'Custos audit ledger (read-only AuditEvent)', url: baseUrl },
    fhirVersion: '4.0.1',
    format: [FHIR_JSON, 'json'],
    rest: [
      {
        mode: 'server',
        security: {
          service: [
            {
              coding: [
                { system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'OAuth' },
              ],
            },
          ],
          description:
            'A bearer token (Custos API token or OIDC access token) whose principal may read-audit; every read is recorded in the ledger',
        },
        resource: [
          {
            type: 'AuditEvent',
            interaction: [{ code: 'read' }, { code: 'search-type' }],
            searchParam: AUDIT_EVENT_SEARCH,
          },
        ],
      },
    ],
  };
}
