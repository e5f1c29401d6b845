import { randomBytes } from 'node:crypto';

export function multipartBoundary(): string {
  return `custos-${randomBytes(16).toString('hex')}`;
}

export interface OutgoingPart {
  contentType: string;
  headers?: Record<string, string>;
  body: AsyncIterable<Buffer> | Buffer;
}

/** A multipart/related body (RFC 2046 §5.1.1, RFC 2387), streamed part by part. */
export async function* writeMultipart(
  parts: AsyncIterable<OutgoingPart>,
  boundary: string,
): AsyncGenerator<Buffer> {
  for await (const part of parts) {
    let head = `--${boundary}\r\nContent-Type: ${part.contentType}\r\n`;
    for (const [k, v] of Object.entries(part.headers ?? {})) head += `${k}: ${v}\r\n`;
    yield Buffer.from(head + '\r\n', 'latin1');
    if (Buffer.isBuffer(part.body)) yield part.body;
    else yield* part.body;
    yield Buffer.from('\r\n', 'latin1');
  }
  yield Buffer.from(`--${boundary}--\r\n`, 'latin1');
}
