import { STATUS_CODES, type ServerResponse } from 'node:http';
import { CustosError } from '../../domain/errors.js';

/** RFC 9457 members (and ours) that an error's `detail` fields must not override. */
const RESERVED = new Set(['type', 'title', 'status', 'detail', 'code', 'instance']);

/** An error status to send: a CustosError's own if it is a 4xx/5xx, otherwise 500. */
const statusOf = (err: unknown): number =>
  err instanceof CustosError &&
  Number.isInteger(err.httpStatus) &&
  err.httpStatus >= 400 &&
  err.httpStatus <= 599
    ? err.httpStatus
    : 500;

/**
 * RFC 9457 problem details for an error. A CustosError's message is written for the user and is sent as
 * `detail`, its `detail` fields are added as extension members (they are non-sensitive by contract, see
 * domain/errors.ts). Anything else is an unexpected failure: a generic 500 that never carries the message or
 * stack, which could hold internals or PHI; the caller logs the original.
 */
export function problemBody(err: CustosError | unknown, instance?: string): Record<string, unknown> {
  const status = statusOf(err);
  if (err instanceof CustosError) {
    const extensions = Object.fromEntries(Object.entries(err.detail ?? {}).filter(([k]) => !RESERVED.has(k)));
    return {
      type: `urn:custos:problem:${err.code}`,
      title: STATUS_CODES[status] ?? 'Error',
      status,
      detail: err.message,
      code: err.code,
      ...(instance ? { instance } : {}),
      ...extensions,
    };
  }
  return {
    type: 'urn:custos:problem:internal',
    title: STATUS_CODES[500],
    status: 500,
    detail: 'internal error',
    code: 'internal',
    ...(instance ? { instance } : {}),
  };
}

/**
 * Answers with `application/problem+json`. Once the status line has gone out (e.g. a multipart response failed
 * halfway) no error can be signalled in-band, so the connection is destroyed: the client sees an incomplete
 * body (no closing delimiter, or a short Content-Length) rather than a response that looks complete.
 */
export function sendProblem(res: ServerResponse, err: CustosError | unknown, instance?: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(problemBody(err, instance));
  const retryAfter = err instanceof CustosError ? err.detail?.retryAfterSeconds : undefined;
  res.writeHead(statusOf(err), {
    'Content-Type': 'application/problem+json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    // RFC 9110 §10.2.3: with a 503, when to try again.
    ...(typeof retryAfter === 'number' ? { 'Retry-After': String(retryAfter) } : {}),
  });
  res.end(body);
}
