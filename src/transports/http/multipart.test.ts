import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CustosError } from '../../domain/errors.js';
import { parseAccept, parseMediaType } from './content-type.js';
import { readMultipart } from './multipart-reader.js';
import { writeMultipart } from './multipart-writer.js';

async function* chunks(b: Buffer, sizes: number[]) {
  let i = 0;
  let k = 0;
  while (i < b.length) {
    const n = Math.max(1, sizes[k++ % sizes.length]!);
    yield b.subarray(i, i + n);
    i += n;
  }
}

async function collectAll(it: AsyncIterable<Buffer>) {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return Buffer.concat(out);
}

async function readAll(body: Buffer, boundary: string, sizes = [7]) {
  const parts: { type: string | undefined; body: Buffer }[] = [];
  for await (const p of readMultipart(chunks(body, sizes), boundary))
    parts.push({ type: p.contentType, body: await collectAll(p.body) });
  return parts;
}

async function write(parts: Buffer[], boundary: string) {
  async function* gen() {
    for (const p of parts) yield { contentType: 'application/dicom', body: p };
  }
  return collectAll(writeMultipart(gen(), boundary));
}

describe('media types', () => {
  it('parses quoted parameters with separators inside', () => {
    expect(parseMediaType('Multipart/Related; type="application/dicom"; boundary="a;b,c"')).toEqual({
      type: 'multipart/related',
      params: { type: 'application/dicom', boundary: 'a;b,c' },
    });
    expect(parseMediaType('')).toEqual({ type: '', params: {} });
    expect(() => parseMediaType('not a type')).toThrow(CustosError);
  });
  it('orders Accept entries by q, stable, and does not split quoted commas', () => {
    const a = parseAccept(
      'application/json;q=0.5, multipart/related; type="application/dicom"; transfer-syntax=*, */*;q=0.1',
    );
    expect(a.map((e) => e.type)).toEqual(['multipart/related', 'application/json', '*/*']);
    expect(a[0]!.params).toEqual({ type: 'application/dicom', 'transfer-syntax': '*' });
    expect(parseAccept('a/b; x="1,2"').length).toBe(1);
    expect(parseAccept(undefined)).toEqual([]);
  });
});

describe('multipart/related', () => {
  it('round-trips any parts under any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(fc.uint8Array({ maxLength: 3 }), fc.uint8Array({ minLength: 60, maxLength: 200 })),
          { minLength: 1, maxLength: 5 },
        ),
        fc.array(fc.integer({ min: 1, max: 80 }), { minLength: 1, maxLength: 4 }),
        async (parts, sizes) => {
          const bodies = parts.map((p) => Buffer.from(p));
          const wire = await write(bodies, 'bnd-42');
          const got = await readAll(wire, 'bnd-42', sizes);
          expect(got.map((g) => g.body)).toEqual(bodies);
          expect(got.every((g) => g.type === 'application/dicom')).toBe(true);
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });

  it('does not split on the boundary string without a preceding CRLF', async () => {
    const tricky = Buffer.from('abc--bnd-42def\n--bnd-42 and \r--bnd-42 too');
    const got = await readAll(await write([tricky, Buffer.from('x')], 'bnd-42'), 'bnd-42', [3]);
    expect(got.map((g) => g.body.toString())).toEqual([tricky.toString(), 'x']);
  });

  it('ignores a preamble and an epilogue', async () => {
    const wire = Buffer.concat([
      Buffer.from('preamble text\r\n'),
      await write([Buffer.from('one')], 'B'),
      Buffer.from('epilogue'),
    ]);
    expect((await readAll(wire, 'B')).map((g) => g.body.toString())).toEqual(['one']);
  });

  it('never returns a shortened part from a truncated body', async () => {
    const wire = await write([Buffer.from('first part'), Buffer.from('second part')], 'B');
    for (let cut = 0; cut < wire.length - '--B--\r\n'.length + 1; cut++) {
      const result = await readAll(wire.subarray(0, cut), 'B', [5]).then(
        (parts) => ({ parts }),
        (e: unknown) => ({ error: e }),
      );
      if ('error' in result) {
        expect(result.error).toBeInstanceOf(CustosError);
        expect((result.error as CustosError).code).toMatch(/^multipart\.(truncated|no-boundary|bad-header)$/);
      } else {
        // A cut inside the closing delimiter can only happen after both parts were complete.
        expect(result.parts.map((p) => p.body.toString())).toEqual(['first part', 'second part']);
      }
    }
  });

  it('drains a part the consumer did not read', async () => {
    const wire = await write([Buffer.alloc(1000, 1), Buffer.from('second')], 'B');
    const seen: string[] = [];
    for await (const p of readMultipart(chunks(wire, [64]), 'B')) {
      for await (const c of p.body) {
        seen.push(c.subarray(0, 1).toString('hex'));
        break;
      }
    }
    expect(seen).toEqual(['01', '73']);
  });

  it('reads a body posted over a real socket in uneven chunks', async () => {
    const parts = [Buffer.alloc(300_000, 7), Buffer.from('tail')];
    const wire = await write(parts, 'sock-b');
    const server = createServer(async (req, res) => {
      const got: number[] = [];
      for await (const p of readMultipart(req as AsyncIterable<Buffer>, 'sock-b'))
        got.push((await collectAll(p.body)).length);
      res.end(JSON.stringify(got));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const stream = new ReadableStream<Uint8Array>({
      async start(c) {
        for (let i = 0, k = 1; i < wire.length; i += k * 997, k++)
          c.enqueue(wire.subarray(i, Math.min(wire.length, i + k * 997)));
        c.close();
      },
    });
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(await res.json()).toEqual([300_000, 4]);
    server.close();
  });
});
