import { CustosError } from '../../domain/errors.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../../domain/principal.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Set for every route whose `auth` is not 'public'. */
  principal: Principal;
  /** Absolute base URL of this server as clients reach it (RetrieveURL, BulkDataURI): http.publicUrl, or as addressed. */
  origin: string;
  /** Client address, recorded in audit records. */
  source: string;
  /**
   * Set by a handler once it recorded an access as a success: called when the request fails before its response
   * has started, to record that nothing was served after all.
   */
  unserved?: (err: unknown) => Promise<void>;
}

export type Handler = (ctx: RequestContext) => Promise<void>;

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
  /** Path pattern: literal segments and `:name` parameters. */
  path: string;
  /**
   * 'bearer': an authenticated principal is required (the default, and the only choice for anything that
   * returns data). 'public': carries no data (health, login); the route enumeration test lists these.
   */
  auth: 'bearer' | 'public';
  summary: string;
  handler: Handler;
}

interface Compiled {
  route: Route;
  segments: string[];
}

export class Router {
  private readonly compiled: Compiled[] = [];

  add(...routes: Route[]): this {
    for (const route of routes)
      this.compiled.push({ route, segments: route.path.split('/').filter(Boolean) });
    return this;
  }

  /** Every route, for documentation and for the test that proves none bypasses authentication. */
  routes(): readonly Route[] {
    return this.compiled.map((c) => c.route);
  }

  match(
    method: string,
    pathname: string,
  ): { route: Route; params: Record<string, string> } | { allowed: string[] } | undefined {
    const parts = pathname.split('/').filter(Boolean);
    const allowed: string[] = [];
    for (const c of this.compiled) {
      if (c.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const seg = c.segments[i]!;
        const part = parts[i]!;
        if (seg.startsWith(':')) {
          try {
            params[seg.slice(1)] = decodeURIComponent(part);
          } catch {
            // A 400 naming it, not "no resource" (404) as until 5 Dec 2026.
            throw new CustosError({
              code: 'http.bad-url',
              message: `the path segment '${part.slice(0, 100)}' is not valid percent-encoding (RFC 3986 §2.1)`,
              httpStatus: 400,
            });
          }
        } else if (seg !== part) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (c.route.method === method || (method === 'HEAD' && c.route.method === 'GET'))
        return { route: c.route, params };
      allowed.push(c.route.method);
    }
    // A GET route answers HEAD too (RFC 9110 §9.3.2), so Allow names it (until 6 Dec 2026 it did not).
    if (allowed.includes('GET') && !allowed.includes('HEAD')) allowed.push('HEAD');
    return allowed.length ? { allowed } : undefined;
  }
}
