import type { AuditService } from '../../services/audit-service.js';
import type { ScimService } from '../../services/scim-service.js';
import type { AeRegistry } from '../../services/ae-registry.js';
import type { AuthService } from '../../services/auth-service.js';
import type { UserAdminService } from '../../services/user-admin-service.js';
import { accountRoutes } from '../admin/account-routes.js';
import { aeRoutes } from '../admin/ae-routes.js';
import type { IngestService } from '../../services/ingest-service.js';
import type { QueryService } from '../../services/query-service.js';
import type { RetrieveService } from '../../services/retrieve-service.js';
import { acceptQueryParameter } from '../dicomweb/negotiation.js';
import { qidoHandler } from '../dicomweb/qido-handler.js';
import { sendJson } from '../dicomweb/responses.js';
import { stowHandler } from '../dicomweb/stow-handler.js';
import {
  bulkdataHandler,
  bulkdataSetHandler,
  framesHandler,
  metadataHandler,
  retrieveInstancesHandler,
  renderedHandler,
  renderedSetHandler,
  thumbnailHandler,
  wadoUriHandler,
} from '../dicomweb/wado-handler.js';
import { auditRoutes } from '../admin/audit-routes.js';
import { fhirRoutes } from '../fhir/fhir-routes.js';
import { readSmallJson } from '../http/json-body.js';
import { scimRoutes } from '../scim/scim-routes.js';
import { quarantineRoutes } from '../admin/quarantine-routes.js';
import { qualityRoutes } from '../admin/quality-routes.js';
import type { QuarantineService } from '../../services/quarantine-service.js';
import type { QualityKpiService } from '../../services/quality-kpi-service.js';
import { Router, type Handler, type Route } from './router.js';
import { CustosError } from '../../domain/errors.js';
import { isValidUid } from '../../domain/ids.js';
import { consoleRoutes } from '../admin/console-routes.js';
import type { ConsoleService } from '../../services/console-service.js';
import { breakGlassRoutes } from '../admin/break-glass-routes.js';
import type { BreakGlassService } from '../../services/break-glass-service.js';
import type { StorageSpace } from '../../ports/storage-space.js';
import type { BulkSpools } from '../../ports/bulk-spool.js';

export interface RouteServices {
  auth: AuthService;
  ingest: IngestService;
  query: QueryService;
  retrieve: RetrieveService;
  audit: AuditService;
  scim: ScimService;
  quarantine: QuarantineService;
  qualityKpis: QualityKpiService;
  aes: AeRegistry;
  consoleData: ConsoleService;
  userAdmin: UserAdminService;
  breakGlass: BreakGlassService;
  space: StorageSpace;
  indexAnswers(): Promise<boolean>;
  config: { limits: { maxRequestBytes: number; maxHeaderBytes: number; maxInstanceBytes: number } };
  /** Where STOW-RS bulk data parts wait, encrypted, inside the data directory. */
  stowSpools: BulkSpools;
}

const DW = '/dicom-web';
const INSTANCE = `${DW}/studies/:study/series/:series/instances/:instance`;

const UID_PARAMETERS = {
  study: 'Study Instance UID',
  series: 'Series Instance UID',
  instance: 'SOP Instance UID',
};

/**
 * A study, series or instance in a DICOMweb path must be a UID (PS3.18 §8.2, PS3.5 §9.1): anything else is a
 * 400 naming it, not an empty search (200 []), a 404 or, for STOW-RS, a 409 for each instance.
 */
function uidParameters(handler: Handler): Handler {
  return (ctx) => {
    for (const [param, name] of Object.entries(UID_PARAMETERS)) {
      const value = ctx.params[param];
      if (value !== undefined && !isValidUid(value))
        throw new CustosError({
          code: 'dicomweb.bad-uid',
          message: `${name} '${value.length > 64 ? `${value.slice(0, 64)}…` : value}' in the path is not a valid UID (PS3.5 §9.1: up to 64 digits and dots${uidFault(value)})`,
          httpStatus: 400,
          detail: { parameter: param },
        });
    }
    return handler(ctx);
  };
}

/**
 * What is wrong with a UID that has only digits and dots and is short enough: a component with a leading zero, or
 * an empty one (until 6 Dec 2026 the message named only the length and the characters).
 */
function uidFault(value: string): string {
  if (value.length > 64 || !/^[0-9.]+$/.test(value)) return '';
  const components = value.split('.');
  const zero = components.find((c) => c.length > 1 && c.startsWith('0'));
  if (zero !== undefined) return `, no leading zero in a component: '${zero}'`;
  if (components.includes('')) return ', no empty component';
  return '';
}

/** Every HTTP route of Custos. Anything that returns data is 'bearer'; the route-enumeration test holds that. */
export function buildRouter(s: RouteServices): Router {
  const r = new Router();
  // Bulk data parts of STOW-RS metadata-and-bulk-data requests are spooled here, inside the data directory.
  const stowOptions = { ...s.config.limits, spools: s.stowSpools, space: s.space };
  const dicomweb: Route[] = [
    {
      method: 'POST',
      path: `${DW}/studies`,
      auth: 'bearer',
      summary: 'STOW-RS store instances',
      handler: stowHandler(s.ingest, stowOptions),
    },
    {
      method: 'POST',
      path: `${DW}/studies/:study`,
      auth: 'bearer',
      summary: 'STOW-RS store instances of one study',
      handler: stowHandler(s.ingest, stowOptions),
    },
    {
      method: 'GET',
      path: `${DW}/studies`,
      auth: 'bearer',
      summary: 'QIDO-RS search studies',
      handler: qidoHandler(s.query, 'study'),
    },
    {
      method: 'GET',
      path: `${DW}/series`,
      auth: 'bearer',
      summary: 'QIDO-RS search all series',
      handler: qidoHandler(s.query, 'series'),
    },
    {
      method: 'GET',
      path: `${DW}/instances`,
      auth: 'bearer',
      summary: 'QIDO-RS search all instances',
      handler: qidoHandler(s.query, 'instance'),
    },
    {
      method: 'GET',
      path: `${DW}/studies/:study/series`,
      auth: 'bearer',
      summary: "QIDO-RS search a study's series",
      handler: qidoHandler(s.query, 'series'),
    },
    {
      method: 'GET',
      path: `${DW}/studies/:study/instances`,
      auth: 'bearer',
      summary: "QIDO-RS search a study's instances",
      handler: qidoHandler(s.query, 'instance'),
    },
    {
      method: 'GET',
      path: `${DW}/studies/:study/series/:series/instances`,
      auth: 'bearer',
      summary: "QIDO-RS search a series' instances",
      handler: qidoHandler(s.query, 'instance'),
    },
    {
      method: 'GET',
      path: `${DW}/studies/:study`,
      auth: 'bearer',
      summary: 'WADO-RS retrieve study',
      handler: retrieveInstancesHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${DW}/studies/:study/series/:series`,
      auth: 'bearer',
      summary: 'WADO-RS retrieve series',
      handler: retrieveInstancesHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: INSTANCE,
      auth: 'bearer',
      summary: 'WADO-RS retrieve instance',
      handler: retrieveInstancesHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${DW}/studies/:study/metadata`,
      auth: 'bearer',
      summary: 'WADO-RS study metadata',
      handler: metadataHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${DW}/studies/:study/series/:series/metadata`,
      auth: 'bearer',
      summary: 'WADO-RS series metadata',
      handler: metadataHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${INSTANCE}/metadata`,
      auth: 'bearer',
      summary: 'WADO-RS instance metadata',
      handler: metadataHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${INSTANCE}/frames/:frames`,
      auth: 'bearer',
      summary: 'WADO-RS frames',
      handler: framesHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${INSTANCE}/bulkdata/:tagpath`,
      auth: 'bearer',
      summary: 'WADO-RS bulk data',
      handler: bulkdataHandler(s.retrieve),
    },
    ...(['study', 'series', 'instance'] as const).flatMap((level) => {
      const at = {
        study: `${DW}/studies/:study`,
        series: `${DW}/studies/:study/series/:series`,
        instance: INSTANCE,
      }[level];
      return [
        {
          method: 'GET' as const,
          path: `${at}/bulkdata`,
          auth: 'bearer' as const,
          summary: `WADO-RS ${level} bulk data: every BulkDataURI's value, multipart/related`,
          handler: bulkdataSetHandler(s.retrieve, 'bulkdata'),
        },
        {
          method: 'GET' as const,
          path: `${at}/pixeldata`,
          auth: 'bearer' as const,
          summary: `WADO-RS ${level} pixel data: each instance's pixel data, multipart/related`,
          handler: bulkdataSetHandler(s.retrieve, 'pixeldata'),
        },
      ];
    }),
    {
      method: 'GET',
      path: `${DW}/studies/:study/rendered`,
      auth: 'bearer',
      summary: "WADO-RS rendered study: each instance's first frame (JPEG, PNG or GIF), multipart/related",
      handler: renderedSetHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${DW}/studies/:study/series/:series/rendered`,
      auth: 'bearer',
      summary: "WADO-RS rendered series: each instance's first frame (JPEG, PNG or GIF), multipart/related",
      handler: renderedSetHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${INSTANCE}/rendered`,
      auth: 'bearer',
      summary: 'WADO-RS rendered instance (JPEG, PNG or GIF)',
      handler: renderedHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${INSTANCE}/frames/:frames/rendered`,
      auth: 'bearer',
      summary: 'WADO-RS rendered frame (JPEG, PNG or GIF)',
      handler: renderedHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${DW}/studies/:study/thumbnail`,
      auth: 'bearer',
      summary: 'WADO-RS study thumbnail (JPEG, PNG or GIF)',
      handler: thumbnailHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${DW}/studies/:study/series/:series/thumbnail`,
      auth: 'bearer',
      summary: 'WADO-RS series thumbnail (JPEG, PNG or GIF)',
      handler: thumbnailHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${INSTANCE}/thumbnail`,
      auth: 'bearer',
      summary: 'WADO-RS instance thumbnail (JPEG, PNG or GIF)',
      handler: thumbnailHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: `${INSTANCE}/frames/:frames/thumbnail`,
      auth: 'bearer',
      summary: 'WADO-RS frame thumbnail (JPEG, PNG or GIF)',
      handler: thumbnailHandler(s.retrieve),
    },
    {
      method: 'GET',
      path: '/wado',
      auth: 'bearer',
      summary: 'WADO-URI retrieve one instance',
      handler: wadoUriHandler(s.retrieve),
    },
  ];
  const api: Route[] = [
    {
      method: 'GET',
      path: '/api/health',
      auth: 'public',
      summary:
        'liveness, whether storage refuses writes or is below the reserve at which ingest is refused, and whether the index database answers: carries no data',
      handler: async (ctx) => {
        // A monitor watching this learns that new objects are refused, or that nothing can be served, before a
        // modality or a viewer reports it. The process answering is what 200 and "status" say: restarting it
        // would mend neither a full disk nor a database that is away.
        const [storage, index] = await Promise.all([
          s.space.report().then(
            (volumes) =>
              volumes.some((v) => v.refusesWrites)
                ? 'unwritable'
                : volumes.some((v) => v.belowReserve)
                  ? 'below-reserve'
                  : 'ok',
            () => 'unknown',
          ),
          s.indexAnswers().then(
            (ok) => (ok ? 'ok' : 'unavailable'),
            () => 'unavailable',
          ),
        ]);
        await sendJson(ctx.res, 200, { status: 'ok', storage, index }, 'application/json');
      },
    },
  ];
  return r.add(
    ...dicomweb.map((route) =>
      route.path.startsWith(DW)
        ? { ...route, handler: uidParameters(acceptQueryParameter(route.handler)) }
        : route,
    ),
    ...api,
    ...auditRoutes(s.audit),
    ...quarantineRoutes(s.quarantine),
    ...qualityRoutes(s.qualityKpis),
    ...scimRoutes(s.scim),
    ...fhirRoutes(s.audit),
    ...aeRoutes(s.aes, (req) => readSmallJson(req, 64 * 1024)),
    ...consoleRoutes(s.query, s.consoleData),
    ...accountRoutes(s.auth, s.userAdmin),
    ...breakGlassRoutes(s.breakGlass, (req) => readSmallJson(req, 16 * 1024)),
  );
}
