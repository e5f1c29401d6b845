import type { IncomingMessage } from 'node:http';
import { CustosError } from '../../domain/errors.js';

/** A small JSON request body (login, admin API, SCIM), bounded. */
export async function readSmallJson(req: IncomingMessage, max = 16 * 1024): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max)
      throw new CustosError({
        code: 'http.body-too-large',
        message: `the JSON body exceeds ${max} bytes`,
        httpStatus: 413,
      });
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
    throw new CustosError({
      code: 'http.bad-json',
      message: 'the request body is not valid JSON',
      httpStatus: 400,
    });
  }
}
