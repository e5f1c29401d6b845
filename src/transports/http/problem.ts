import { STATUS_CODES, type ServerResponse } from 'node:http';
import { CustosError } from '../../domain/errors.js';

/** RFC 9457 problem details for an error; unexpected errors never leak their message or stack. */
export function problemBody(err: unknown, instance?: string): Record<string, unknown> {
  if (err instanceof CustosError) {
    return {
      type: `urn:custos:problem:${err.code}`,
      title: STATUS_CODES[err.httpStatus] ?? 'Error',
      status: err.httpStatus,
      detail: err.message,
      code: err.code,
      ...(instance ? { instance } : {}),
      ...(err.detail ?? {}),
    };
  }
  return {
    type: 'urn:custos:problem:internal',
    title: 'Internal Server Error',
    status: 500,
    detail: 'internal error; the incident was logged',
    code: 'internal',
    ...(instance ? { instance } : {}),
  };
}

export function sendProblem(res: ServerResponse, err: unknown, instance?: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(problemBody(err, instance));
  const status = err instanceof CustosError ? err.httpStatus : 500;
  res.writeHead(status, {
    'Content-Type': 'application/problem+json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}
