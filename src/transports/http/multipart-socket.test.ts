import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustosError } from '../../domain/errors.js';
import { parseMediaType } from './content-type.js';
import { readMultipart } from './multipart-reader.js';
import { multipartBoundary, writeMultipart } from './multipart-writer.js';
import { collect } from './multipart-test-support.js';
import { createHash } from 'node:crypto';

/**
 * The reader on a real socket: a node:http server parses the request body as it arrives and answers with what
 * it saw per part (length and SHA-256), or the error code.
 */
async function describeUpload(req: IncomingMessage) {
  const { params } = parseMediaType(req.headers['content-type'] ?? '');
  const parts: { type: string | undefined; length: number; sha256: string }[] = [];
  try {
    for await (const part of readMultipart(req, params.boundary ?? '')) {
      const hash = createHash('sha256');
      let length = 0;
      for await (const chunk of part.body) {
        hash.update(chunk);
        length += chunk.length;
      }
      parts.push({ type: part.contentType, length, sha256: hash.digest('hex') });
    }
    return { parts };
  } catch (e) {
    return { parts, error: e instanceof CustosError ? e.code : 'unexpected' };
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A request body stream that sends `wire` in uneven pieces, yielding to the event loop between them. */
function unevenStream(wire: Buffer, pieces: number[]): ReadableStream<Uint8Array> {
  let at = 0;
  let k = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (at >= wire.length) {
        controller.close();
        return;
      }
      const n = pieces[k++ % pieces.length]!;
      controller.enqueue(wire.subarray(at, at + n));
      at += n;
      await new Promise((r) => setImmediate(r));
    },
  });
}

describe('multipart/related over a real socket', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      void describeUpload(req).then((seen) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(seen));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const post = (body: ReadableStream<Uint8Array>, boundary: string) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': `multipart/related; type="application/dicom"; boundary="${boundary}"` },
      body,
      duplex: 'half',
    } as RequestInit & { duplex: 'half' });

  it('reads every part of a body posted in uneven chunks', async () => {
    const boundary = multipartBoundary();
    const bodies = [
      Buffer.alloc(700_001, 7),
      Buffer.alloc(0),
      Buffer.from(`--${boundary} inside, not at a line start`),
      Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) & 0xff)),
    ];
    const wire = await collect(
      writeMultipart(
        bodies.map((body) => ({ contentType: 'application/dicom', body })),
        boundary,
      ),
    );
    const res = await post(
      unevenStream(wire, [1, 997, 13, 65_537, 3, 40_000, boundary.length + 3]),
      boundary,
    );
    expect(await res.json()).toEqual({
      parts: bodies.map((b) => ({ type: 'application/dicom', length: b.length, sha256: sha256(b) })),
    });
  });

  it('reports a truncated upload as truncated, not as a shorter part', async () => {
    const boundary = multipartBoundary();
    const wire = await collect(
      writeMultipart([{ contentType: 'application/dicom', body: Buffer.alloc(100_000, 1) }], boundary),
    );
    const res = await post(unevenStream(wire.subarray(0, 60_000), [4096, 17]), boundary);
    expect(await res.json()).toEqual({ parts: [], error: 'multipart.truncated' });
  });
});
