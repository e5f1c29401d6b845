import { connect } from 'node:net';
import { readMultipart } from '../../src/transports/http/multipart-reader.js';
import { parseMediaType } from '../../src/transports/http/content-type.js';

export async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of it) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Read a multipart/related response into its parts (tests only handle small bodies). */
export async function multipartParts(
  res: Response,
): Promise<{ contentType: string | undefined; headers: Record<string, string>; body: Buffer }[]> {
  const ct = parseMediaType(res.headers.get('content-type') ?? '');
  const boundary = ct.params.boundary;
  if (!boundary) throw new Error(`response is not multipart: ${res.headers.get('content-type')}`);
  const source = (async function* () {
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) yield Buffer.from(c);
  })();
  const out: { contentType: string | undefined; headers: Record<string, string>; body: Buffer }[] = [];
  for await (const part of readMultipart(source, boundary))
    out.push({ contentType: part.contentType, headers: part.headers, body: await collect(part.body) });
  return out;
}

/** Send raw bytes on one connection; resolves with everything the server sent until it closed the connection (or `ms` passed). */
export function exchange(
  port: number,
  request: string | Buffer,
  ms = 5000,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text: Buffer.concat(got).toString('latin1'), closed: false });
    }, ms);
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(got).toString('latin1'), closed: true });
    });
    socket.write(request);
  });
}
