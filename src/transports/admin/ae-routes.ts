import { clientCertificateFingerprint } from '../../domain/client-certificate.js';
import type { IncomingMessage } from 'node:http';
import { CustosError } from '../../domain/errors.js';
import type { AeRegistry } from '../../services/ae-registry.js';
import { sendJson } from '../dicomweb/responses.js';
import type { Route } from '../server/router.js';

const badRequest = (message: string) => new CustosError({ code: 'ae.bad-request', message, httpStatus: 400 });

/**
 * Admin API for the AE registry (issue 3), the twin of `custos ae`: every call passes the 'administer'
 * decision inside the registry; errors leave as problem+json through the HTTP server.
 */
export function aeRoutes(aes: AeRegistry, readJson: (req: IncomingMessage) => Promise<unknown>): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/admin/aes',
      auth: 'bearer',
      summary: 'list registered DICOM application entities',
      handler: async (ctx) => sendJson(ctx.res, 200, await aes.list(ctx.principal), 'application/json'),
    },
    {
      method: 'POST',
      path: '/api/admin/aes',
      auth: 'bearer',
      summary: 'register a DICOM application entity',
      handler: async (ctx) => {
        // Decided before the body is read: a caller who may not administer gets 403 (recorded), not a 400.
        await aes.authorize(ctx.principal);
        const body = (await readJson(ctx.req)) as Record<string, unknown> | null;
        if (!body || typeof body !== 'object')
          throw badRequest('send a JSON object {"title", "host", "port"}');
        const { title, host, port, user, certificate, certSha256 } = body;
        if (typeof title !== 'string') throw badRequest('"title" must be a string');
        if (typeof host !== 'string') throw badRequest('"host" must be a string');
        if (typeof port !== 'number') throw badRequest('"port" must be a number');
        if (user !== undefined && typeof user !== 'string')
          throw badRequest('"user" must be an account name');
        let fingerprint: string | undefined;
        if (typeof certificate === 'string')
          fingerprint = clientCertificateFingerprint(certificate, new Date(), '"certificate"');
        else if (typeof certSha256 === 'string') fingerprint = certSha256;
        else if (certificate !== undefined || certSha256 !== undefined)
          throw badRequest('"certificate" must be PEM text and "certSha256" a hex string');
        const entry = await aes.add(ctx.principal, {
          title,
          host,
          port,
          ...(user ? { user } : {}),
          ...(fingerprint ? { certSha256: fingerprint } : {}),
        });
        await sendJson(ctx.res, 201, entry, 'application/json');
      },
    },
    {
      method: 'DELETE',
      path: '/api/admin/aes/:title',
      auth: 'bearer',
      summary: 'remove a registered DICOM application entity',
      handler: async (ctx) => {
        await aes.remove(ctx.principal, ctx.params.title!);
        ctx.res.writeHead(204).end();
      },
    },
  ];
}
