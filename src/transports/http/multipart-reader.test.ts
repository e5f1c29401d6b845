import { describe, expect, it } from 'vitest';
import { CustosError } from '../../domain/errors.js';
import { readMultipart } from './multipart-reader.js';
import { chunked, collect, readAll, splitAt } from './multipart-test-support.js';

const wire = (s: string) => Buffer.from(s, 'latin1');

/** Two parts, hand-written per RFC 2046 §5.1.1 (independent of the writer), with preamble and epilogue. */
const EXAMPLE = wire(
  'This is the preamble.\r\n' +
    '--simple boundary\r\n' +
    'Content-Type: application/dicom\r\n' +
    'Content-Location: /a\r\n' +
    '\r\n' +
    'first body\r\n' +
    '--simple boundary \t\r\n' +
    '\r\n' +
    'second\r\nbody\r\n\r\n' +
    '--simple boundary--\r\n' +
    'This is the epilogue.\r\n',
);
const EXAMPLE_PARTS = [
  {
    headers: { 'content-type': 'application/dicom', 'content-location': '/a' },
    contentType: 'application/dicom',
    body: wire('first body'),
  },
  { headers: {}, contentType: undefined, body: wire('second\r\nbody\r\n') },
];

async function outcome(source: AsyncIterable<Buffer>, boundary: string) {
  try {
    return { parts: await readAll(source, boundary) };
  } catch (e) {
    return { error: e };
  }
}

const errorCode = (e: unknown) => (e instanceof CustosError ? e.code : `not a CustosError: ${String(e)}`);

describe('readMultipart', () => {
  it('reads parts, headers, transport padding, and ignores preamble and epilogue', async () => {
    expect(await readAll(chunked(EXAMPLE, [1000]), 'simple boundary')).toEqual(EXAMPLE_PARTS);
  });

  it('finds every delimiter wherever the body is split into two or three chunks', async () => {
    for (let a = 0; a <= EXAMPLE.length; a++) {
      expect(await readAll(splitAt(EXAMPLE, [a]), 'simple boundary')).toEqual(EXAMPLE_PARTS);
      for (let b = a; b <= EXAMPLE.length; b += 7)
        expect(await readAll(splitAt(EXAMPLE, [a, b]), 'simple boundary')).toEqual(EXAMPLE_PARTS);
    }
  });

  it('reads a body delivered one byte at a time', async () => {
    expect(await readAll(chunked(EXAMPLE, [1]), 'simple boundary')).toEqual(EXAMPLE_PARTS);
  });

  it('accepts a first boundary at the very start, parts without headers and empty bodies', async () => {
    const body = wire('--b\r\n\r\n\r\n--b\r\nX-A: 1\r\n\r\n\r\n--b--');
    expect(await readAll(chunked(body, [3]), 'b')).toEqual([
      { headers: {}, contentType: undefined, body: Buffer.alloc(0) },
      { headers: { 'x-a': '1' }, contentType: undefined, body: Buffer.alloc(0) },
    ]);
  });

  it('treats the boundary text as data unless it starts a line with CRLF--', async () => {
    // Every near miss of the delimiter CRLF--b: a bare LF or CR, a single dash, another boundary, no CRLF.
    const data = 'b--b--b \n--b\r--b\r\n-b\r\n--c --b-- x--b\r\n--\r\n-\r\n-- b end';
    const body = wire(`--b\r\n\r\n${data}\r\n--b--\r\n`);
    for (const size of [1, 2, 3, 5, 64])
      expect((await readAll(chunked(body, [size]), 'b')).map((p) => p.body.toString('latin1'))).toEqual([
        data,
      ]);
  });

  it('unfolds folded header lines and joins repeated headers', async () => {
    const body = wire('--b\r\nX-Long: one\r\n  two\r\nX-Rep: 1\r\nx-rep: 2\r\n\r\nz\r\n--b--');
    const [part] = await readAll(chunked(body, [4]), 'b');
    expect(part!.headers).toEqual({ 'x-long': 'one two', 'x-rep': '1, 2' });
  });

  it('drains a part the consumer stopped reading and goes on with the next', async () => {
    const body = wire(`--B\r\n\r\n${'\u0001'.repeat(1000)}\r\n--B\r\n\r\nsecond\r\n--B--`);
    const firstBytes: string[] = [];
    for await (const p of readMultipart(chunked(body, [64]), 'B')) {
      for await (const c of p.body) {
        firstBytes.push(c.subarray(0, 1).toString('latin1'));
        break;
      }
    }
    expect(firstBytes).toEqual(['\u0001', 's']);
  });

  it('throws part-skipped when a body is read after the reader moved on, instead of yielding nothing', async () => {
    const body = wire('--B\r\n\r\nfirst\r\n--B\r\n\r\nsecond\r\n--B--');
    const parts = [];
    for await (const p of readMultipart(chunked(body, [5]), 'B')) parts.push(p);
    expect(parts).toHaveLength(2);
    await expect(collect(parts[0]!.body)).rejects.toMatchObject({ code: 'multipart.part-skipped' });
    // The last part too: the reader drained it while looking for the close delimiter.
    await expect(collect(parts[1]!.body)).rejects.toMatchObject({ code: 'multipart.part-skipped' });
  });

  it('holds no more than a chunk plus lookahead: every yielded slice is a view of a source chunk', async () => {
    const big = Buffer.alloc(1 << 20, 0x41);
    const body = Buffer.concat([wire('--B\r\n\r\n'), big, wire('\r\n--B--')]);
    const sources: Buffer[] = [];
    const source = (async function* () {
      for await (const c of chunked(body, [65_536])) {
        // Each chunk in its own memory, so a slice can be traced to the chunk it came from.
        const own = Buffer.from(c);
        sources.push(own);
        yield own;
      }
    })();
    let total = 0;
    for await (const p of readMultipart(source, 'B')) {
      for await (const c of p.body) {
        total += c.length;
        // The slice shares memory with the chunk that was last pulled (or its predecessor, for the carry).
        const recent = sources.slice(-2);
        expect(recent.some((s) => s.buffer === c.buffer)).toBe(true);
      }
    }
    expect(total).toBe(big.length);
  });

  describe('errors', () => {
    it('throws no-boundary when the first delimiter never comes', async () => {
      for (const body of ['', 'no boundary here', '-b\r\n', 'x--b\r\n\r\nbody'])
        expect(errorCode((await outcome(chunked(wire(body), [2]), 'b')).error)).toBe('multipart.no-boundary');
    });

    it('refuses an empty or multi-line boundary', async () => {
      for (const boundary of ['', 'a\r\nb', 'x'.repeat(201)])
        expect(errorCode((await outcome(chunked(EXAMPLE, [50]), boundary)).error)).toBe(
          'multipart.no-boundary',
        );
    });

    it('fails a part whose headers are oversize with bad-header and reads the next part, in any chunking', async () => {
      const header = `X-Big: ${'v'.repeat(2000)}\r\n`;
      // Over the limit with and without the transport padding allowance: the part is skipped to the next delimiter.
      const body = wire(`--b\r\n${header}${header}\r\nz\r\n--b\r\nX-A: 1\r\n\r\nnext\r\n--b--`);
      for (const size of [body.length, 100, 7]) {
        // Until 6 Dec 2026 the first bad part threw, and the parts after it were never read.
        const parts = await readAll(chunked(body, [size]), 'b', { maxHeaderBytes: 1000 });
        expect(parts).toEqual([
          expect.objectContaining({ headers: {}, contentType: undefined, error: 'multipart.bad-header' }),
          { headers: { 'x-a': '1' }, contentType: undefined, body: wire('next') },
        ]);
      }
      expect(
        (await readAll(chunked(body, [100]), 'b', { maxHeaderBytes: 5000 }))[0]!.headers['x-big'],
      ).toHaveLength(2 * 2000 + 2);
      // With no delimiter after them the framing is lost: that ends the body.
      const cut = wire(`--b\r\n${header}${'v'.repeat(2000)}`);
      const r = await readAll(chunked(cut, [100]), 'b', { maxHeaderBytes: 1000 }).catch((e: unknown) => e);
      expect(errorCode(r)).toBe('multipart.bad-header');
    });

    it('names bare LF line endings when the end of the headers never comes', async () => {
      // A script writing "\n" where multipart needs CRLF: the reader used to say the headers were too long.
      const body = wire(`--b\nContent-Type: application/dicom\n\n${'x'.repeat(3000)}\n--b--\n`);
      // Past maxHeaderBytes, and (a small object) cut off by the end of the body first.
      for (const [size, maxHeaderBytes] of [
        [body.length, 1000],
        [64, 1000],
        [64, 16384],
      ] as const) {
        const r = (await readAll(chunked(body, [size]), 'b', { maxHeaderBytes }).catch(
          (e: unknown) => e,
        )) as CustosError;
        expect(errorCode(r)).toBe('multipart.bad-header');
        expect(r.message).toBe(
          'the headers of part 1 end with a bare LF, not CRLF: multipart/related needs CRLF line endings (RFC 2046 section 5.1.1)',
        );
      }
    });

    it('fails a part with header lines without a name, a repeated Content-Type, text after a delimiter or no header end, and reads on', async () => {
      for (const first of [
        '--b\r\nno colon\r\n\r\nz\r\n',
        '--b\r\n: v\r\n\r\nz\r\n',
        '--bx\r\n\r\nz\r\n',
        '--b\r\nContent-Type: a/b\r\ncontent-type: a/b\r\n\r\nz\r\n',
        '--b\r\nX-A: 1\r\n',
        '--b\nContent-Type: a/b\n\nz\n\r\n',
      ])
        for (const size of [1, 4, 1000])
          expect(await readAll(chunked(wire(`${first}--b\r\n\r\nnext\r\n--b--`), [size]), 'b')).toEqual([
            expect.objectContaining({ headers: {}, contentType: undefined, error: 'multipart.bad-header' }),
            { headers: {}, contentType: undefined, body: wire('next') },
          ]);
    });

    it('throws too-many-parts (413) past maxParts', async () => {
      const body = wire('--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b--');
      const e = await readAll(chunked(body, [7]), 'b', { maxParts: 2 }).catch((err: unknown) => err);
      expect(e).toMatchObject({ code: 'multipart.too-many-parts', httpStatus: 413 });
    });

    it('never yields a shortened part when the body is cut at any offset', async () => {
      const closing = EXAMPLE.indexOf('--simple boundary--') + '--simple boundary--'.length;
      for (let cut = 0; cut < EXAMPLE.length; cut++) {
        for (const size of [1, 3, 1000]) {
          const r = await outcome(chunked(EXAMPLE.subarray(0, cut), [size]), 'simple boundary');
          if (cut >= closing) {
            // Only the epilogue (or the CRLF after the close delimiter) is missing: the body is complete.
            expect(r.parts).toEqual(EXAMPLE_PARTS);
          } else {
            expect(r.parts).toBeUndefined();
            expect(['multipart.truncated', 'multipart.no-boundary']).toContain(errorCode(r.error));
            expect((r.error as CustosError).httpStatus).toBe(400);
          }
        }
      }
    });

    it('reports truncation from the body iterator of the part being received', async () => {
      const cut = wire('--b\r\n\r\ncomplete\r\n--b\r\nContent-Type: application/dicom\r\n\r\nhalf a pa');
      const seen: string[] = [];
      const reader = readMultipart(chunked(cut, [4]), 'b');
      const first = await reader.next();
      seen.push((await collect(first.value!.body)).toString());
      const second = await reader.next();
      const received: Buffer[] = [];
      const bodyError = await (async () => {
        for await (const c of second.value!.body) received.push(c);
      })().catch((e: unknown) => e);
      expect(seen).toEqual(['complete']);
      expect(errorCode(bodyError)).toBe('multipart.truncated');
      // The reader also refuses to go on once a part was truncated, even if the consumer swallowed the error.
      await expect(reader.next()).rejects.toMatchObject({ code: 'multipart.truncated' });
    });

    it('passes on an error of the source itself, from the body and then from the reader', async () => {
      const limitError = new CustosError({
        code: 'stow.too-large',
        message: 'over the limit',
        httpStatus: 413,
      });
      const source = (async function* () {
        yield wire('--b\r\n\r\nsome bytes of a large part');
        throw limitError;
      })();
      const reader = readMultipart(source, 'b');
      const part = await reader.next();
      await expect(collect(part.value!.body)).rejects.toBe(limitError);
      await expect(reader.next()).rejects.toBe(limitError);
    });

    it('reports truncation of a part the consumer skipped from the reader itself', async () => {
      const cut = wire('--b\r\n\r\nnever closed');
      const reader = readMultipart(chunked(cut, [4]), 'b');
      expect((await reader.next()).done).toBe(false);
      await expect(reader.next()).rejects.toMatchObject({ code: 'multipart.truncated' });
    });
  });
});
