import type { IncomingMessage } from 'node:http';
import { CustosError } from '../../domain/errors.js';

/** A small JSON request body (login, admin actions), refused past `max` bytes. */
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
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new CustosError({
      code: 'http.bad-json',
      message: 'the request body is not valid JSON',
      httpStatus: 400,
    });
  }
}
