import type { IncomingMessage } from 'node:http';
import { CustosError } from '../../domain/errors.js';
import { contentCodings, parseMediaType } from './content-type.js';
import { jsonSyntaxFault } from './json-syntax.js';

/**
 * RFC 9110 §15.5.16: a JSON route reads only a body that says it is JSON, one of `accepted` (charset, if given, UTF-8:
 * RFC 8259 §8.1), and answers anything else with 415 naming what it wants, before reading a byte of it. Until 7 Dec
 * 2026 the type was not looked at: a body sent as `text/plain` (what a cross-site HTML form or a `fetch` without
 * preflight may send, RFC 9110 and the Fetch standard's CORS-safelisted types) or with no type at all was read as
 * JSON, so a page on any site could post a login to /api/auth/login in the visitor's browser.
 */
function contentTypeProblem(req: IncomingMessage, accepted: readonly string[]): CustosError | undefined {
  const header = req.headers['content-type'];
  const wanted = accepted.join(' or ');
  const refuse = (what: string) =>
    new CustosError({
      code: 'http.unsupported-media-type',
      message: `${what}: send the JSON body as ${wanted} (RFC 9110 §15.5.16)`,
      httpStatus: 415,
      detail: { header: 'Content-Type', accepted },
    });
  const type = parseMediaType(header ?? '');
  if (type.type === '') return refuse('the request has no Content-Type');
  if (!accepted.includes(type.type))
    return refuse(`Content-Type '${type.type.slice(0, 80)}' is not JSON here`);
  const charset = type.params.charset;
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8')
    return refuse(`charset '${charset.slice(0, 40)}' is not UTF-8 (RFC 8259 §8.1)`);
  return codingProblem(req);
}

/**
 * RFC 9110 §8.4, §15.5.16: a content coding (gzip, deflate, br) is refused with 415, as STOW-RS refuses it, not read
 * as if it were none: until 7 Dec 2026 a gzip JSON body was a 400 'not UTF-8', and a coding label on a plain body
 * was ignored.
 */
function codingProblem(req: IncomingMessage): CustosError | undefined {
  const coding = contentCodings(req.headers['content-encoding']);
  if (!coding.length) return undefined;
  return new CustosError({
    code: 'http.unsupported-content-encoding',
    message: `Content-Encoding '${coding.join(', ').slice(0, 80)}' is not supported: send the JSON body without a content coding (RFC 9110 §8.4)`,
    httpStatus: 415,
    detail: { header: 'Content-Encoding' },
  });
}

/**
 * A small JSON request body (login, admin API, SCIM), bounded, of a JSON media type (`accepted`: application/json
 * unless the route says otherwise).
 */
export async function readSmallJson(
  req: IncomingMessage,
  max = 16 * 1024,
  accepted: readonly string[] = ['application/json'],
): Promise<unknown> {
  const typeProblem = contentTypeProblem(req, accepted);
  if (typeProblem) throw typeProblem;
  const tooLarge = () =>
    new CustosError({
      code: 'http.body-too-large',
      message: `the JSON body exceeds ${max} bytes`,
      httpStatus: 413,
      detail: { limit: max },
    });
  // A declared length over the limit is refused before a byte is read, so that a client that sent
  // `Expect: 100-continue` is not asked for a body only to have it refused (until 7 Dec 2026 it got 100 Continue,
  // and the 413 once it had sent 16 KiB and more; one that waited for the body's end before reading the answer hung).
  if (Number(req.headers['content-length'] ?? 0) > max) throw tooLarge();
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) throw tooLarge();
    chunks.push(c);
  }
  let text: string;
  try {
    // RFC 8259 §8.1: JSON is UTF-8. Bytes that are not were read as U+FFFD until 7 Dec 2026, without a word: a
    // token name or an account's display name kept the replacement character, and any two passwords that differ only in
    // such bytes (Latin-1 'é' and 'è') were read as the same one.
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new CustosError({
      code: 'http.bad-json',
      message: 'the request body is not UTF-8: send JSON encoded in UTF-8 (RFC 8259 §8.1)',
      httpStatus: 400,
    });
  }
  try {
    return JSON.parse(text);
  } catch {
    // Where, by line and column, and what was expected there; never the text, which may hold a password. Until
    // 7 Dec 2026 the answer said only 'not valid JSON', which left a client to find the fault in its body alone.
    const fault = jsonSyntaxFault(text);
    throw new CustosError({
      code: 'http.bad-json',
      message: fault
        ? `the request body is not valid JSON: expected ${fault.expected} at line ${fault.line}, column ${fault.column} (RFC 8259)`
        : 'the request body is not valid JSON',
      httpStatus: 400,
      ...(fault ? { detail: { line: fault.line, column: fault.column } } : {}),
    });
  }
}
