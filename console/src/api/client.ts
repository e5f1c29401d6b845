import createClient from 'openapi-fetch';
import { answered, fromGateway, noAnswer, Unreachable } from '../connection';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];

/**
 * The one client of the admin API, typed from its OpenAPI description. The session is the HttpOnly cookie set
 * at login: no token is kept by the console. Every request carries the header the server requires of
 * cookie-authenticated unsafe requests (CSRF defence). A request that gets no answer fails with Unreachable (not the
 * browser's "Failed to fetch") and tells connection.tsx, which pauses the queries until the server answers again; so
 * does a reverse proxy's 502, 503 or 504 saying that Custos behind it did not answer (fromGateway).
 */
export const api = createClient<paths>({
  baseUrl: window.location.origin,
  credentials: 'same-origin',
  headers: { 'X-Requested-With': 'custos-console' },
  fetch: async (request) => {
    let response: Response;
    try {
      response = await fetch(request);
    } catch (err) {
      if (request.signal.aborted) throw err;
      noAnswer();
      throw new Unreachable();
    }
    if (fromGateway(response)) {
      void response.body?.cancel();
      noAnswer();
      throw new Unreachable();
    }
    answered();
    return response;
  },
});

/**
 * A refused or failed call, with the problem+json code, the server's message and, when the server names it, the
 * request field it is about (problem+json `parameter`), for a form to mark that field.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly parameter?: string,
  ) {
    super(message);
  }
}

interface Problem {
  code?: string;
  detail?: string;
  title?: string;
  parameter?: string;
}

/** The data of an openapi-fetch result, or an ApiError naming what the server said. */
export function unwrap<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (!r.response.ok) {
    const p = (r.error ?? {}) as Problem;
    throw new ApiError(
      r.response.status,
      p.code ?? `http.${r.response.status}`,
      p.detail ?? p.title ?? r.response.statusText,
      typeof p.parameter === 'string' ? p.parameter : undefined,
    );
  }
  return r.data as T;
}
