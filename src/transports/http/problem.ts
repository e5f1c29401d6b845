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

/** FHIR R4 IssueType (http://hl7.org/fhir/R4/valueset-issue-type.html) for an HTTP error status. */
function issueType(status: number): string {
  if (status === 401) return 'login';
  if (status === 403) return 'forbidden';
  if (status === 404 || status === 410) return 'not-found';
  if (status === 405 || status === 406 || status === 415 || status === 501) return 'not-supported';
  if (status === 409 || status === 412) return 'conflict';
  if (status === 413) return 'too-costly';
  if (status === 429) return 'throttled';
  if (status === 503) return 'transient';
  return status < 500 ? 'invalid' : 'exception';
}

/**
 * A FHIR R4 OperationOutcome for an error, as FHIR clients read errors: one issue whose `diagnostics` is the
 * message, `details` codes the Custos problem code, and `expression` names the search parameter at fault. As
 * problemBody, an unexpected failure carries no message.
 */
export function operationOutcomeBody(err: CustosError | unknown): Record<string, unknown> {
  const status = statusOf(err);
  const known = err instanceof CustosError;
  const code = known ? err.code : 'internal';
  const message = known ? err.message : 'internal error';
  const parameter = known ? err.detail?.parameter : undefined;
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: issueType(status),
        details: { coding: [{ system: 'urn:custos:problem', code }], text: message },
        diagnostics: message,
        ...(typeof parameter === 'string' ? { expression: [parameter] } : {}),
      },
    ],
  };
}

/**
 * Answers with `application/problem+json`, or under `/fhir` (`as: 'fhir'`) with a FHIR OperationOutcome in
 * `application/fhir+json`. Once the status line has gone out (e.g. a multipart response failed halfway) no error
 * can be signalled in-band, so the connection is destroyed: the client sees an incomplete body (no closing
 * delimiter, or a short Content-Length) rather than a response that looks complete.
 */
export function sendProblem(
  res: ServerResponse,
  err: CustosError | unknown,
  instance?: string,
  as: 'problem' | 'fhir' = 'problem',
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(as === 'fhir' ? operationOutcomeBody(err) : problemBody(err, instance));
  const retryAfter = err instanceof CustosError ? err.detail?.retryAfterSeconds : undefined;
  res.writeHead(statusOf(err), {
    ...unsupportedBodyHeaders(res, err),
    'Content-Type': as === 'fhir' ? 'application/fhir+json' : 'application/problem+json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    // RFC 9110 §10.2.3: with a 503, when to try again.
    ...(typeof retryAfter === 'number' ? { 'Retry-After': String(retryAfter) } : {}),
  });
  res.end(body);
}

/**
 * RFC 9110 §15.5.16: a 415 says what would have been accepted. For a content coding, Accept-Encoding (identity: no
 * coding is read); for a JSON body's media type, its `accepted` types as Accept-Post (W3C LDP 1.0 §7.1) on a POST
 * and Accept-Patch (RFC 5789 §3.1) on a PATCH. Until 7 Dec 2026 a JSON route's 415 said it in the text alone.
 */
function unsupportedBodyHeaders(res: ServerResponse, err: unknown): Record<string, string> {
  if (!(err instanceof CustosError) || err.httpStatus !== 415) return {};
  if (err.detail?.header === 'Content-Encoding') return { 'Accept-Encoding': 'identity' };
  const accepted = err.detail?.accepted;
  if (!Array.isArray(accepted) || res.hasHeader('Accept-Post')) return {};
  const method = res.req?.method;
  const name = method === 'POST' ? 'Accept-Post' : method === 'PATCH' ? 'Accept-Patch' : undefined;
  return name ? { [name]: accepted.join(', ') } : {};
}
