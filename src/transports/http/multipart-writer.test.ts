import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CustosError } from '../../domain/errors.js';
import { multipartBoundary, multipartLength, writeMultipart, type OutgoingPart } from './multipart-writer.js';
import { chunked, collect, readAll } from './multipart-test-support.js';

async function* asyncOf<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

describe('writeMultipart', () => {
  it('frames parts exactly per RFC 2046 §5.1.1', async () => {
    const out = await collect(
      writeMultipart(
        asyncOf<OutgoingPart>([
          {
            contentType: 'application/dicom',
            headers: { 'Content-Location': '/x' },
            body: Buffer.from('one'),
          },
          {
            contentType: 'application/octet-stream',
            body: asyncOf([Buffer.from('t'), new Uint8Array([0x77, 0x6f])]),
          },
          { contentType: 'text/plain', body: Buffer.alloc(0) },
        ]),
        'BND',
      ),
    );
    expect(out.toString('latin1')).toBe(
      '--BND\r\nContent-Type: application/dicom\r\nContent-Location: /x\r\n\r\none' +
        '\r\n--BND\r\nContent-Type: application/octet-stream\r\n\r\ntwo' +
        '\r\n--BND\r\nContent-Type: text/plain\r\n\r\n' +
        '\r\n--BND--\r\n',
    );
  });

  it('leaves a body that ends in CRLF unchanged', async () => {
    const body = Buffer.from('line\r\n\r\n');
    const wire = await collect(writeMultipart([{ contentType: 'a/b', body }], 'q'));
    expect((await readAll(chunked(wire, [3]), 'q'))[0]!.body).toEqual(body);
  });

  it('refuses header values with line breaks and invalid boundaries', async () => {
    const bad = [
      writeMultipart([{ contentType: 'a/b\r\nX-Injected: 1', body: Buffer.alloc(0) }], 'b'),
      writeMultipart([{ contentType: 'a/b', headers: { 'X-A': 'v\nw' }, body: Buffer.alloc(0) }], 'b'),
      writeMultipart([{ contentType: 'a/b', headers: { 'Bad Name': 'v' }, body: Buffer.alloc(0) }], 'b'),
      writeMultipart([], 'ends in space '),
      writeMultipart([], 'x'.repeat(71)),
      writeMultipart([], ''),
    ];
    for (const gen of bad) {
      const e = await collect(gen).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(CustosError);
      expect((e as CustosError).code).toBe('multipart.bad-header');
    }
  });

  it('makes distinct token-only boundaries', () => {
    const seen = new Set(Array.from({ length: 100 }, () => multipartBoundary()));
    expect(seen.size).toBe(100);
    for (const b of seen) expect(b).toMatch(/^[0-9a-f]{32}$/);
  });
});

/** Deterministic filler bytes sprinkled with near misses of the delimiter (the boundary without CRLF--). */
function partBody(size: number, seed: number, boundary: string): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  const traps = [`--${boundary}`, `\r\n-${boundary}`, `\n--${boundary}`, `\r--${boundary}`, '\r\n--', '\r\n'];
  for (let at = seed % 97; at < size; at += 53 + (seed % 31)) {
    const trap = Buffer.from(traps[at % traps.length]!, 'latin1');
    trap.copy(out, at, 0, Math.min(trap.length, size - at));
  }
  // A real delimiter inside a body is invalid input (RFC 2046 §5.1.1), not a near miss: break any that the
  // filler produced by chance (likely for a one-letter boundary).
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  for (let i = out.indexOf(delimiter); i >= 0; i = out.indexOf(delimiter, i)) out[i + 2] = 0x2e;
  return out;
}

const CHUNK = 64 * 1024;

describe('writer → reader round trip', () => {
  it('returns every part byte for byte under any sizes and chunking', async () => {
    const partSize = fc.oneof(
      fc.constantFrom(0, 1, 2),
      fc.integer({ min: 0, max: 300 }),
      fc.integer({ min: 4096 - 3, max: 4096 + 3 }),
      fc.integer({ min: CHUNK - 40, max: CHUNK + 40 }),
    );
    const chunkSize = fc.oneof(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 30, max: 60 }),
      fc.integer({ min: 1000, max: 5000 }),
      fc.integer({ min: CHUNK - 2, max: CHUNK + 2 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ size: partSize, seed: fc.nat() }), { minLength: 1, maxLength: 6 }),
        fc.array(chunkSize, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('b', 'bnd-42', multipartBoundary(), "odd'()+_,-./:=? boundary"),
        async (specs, sizes, boundary) => {
          const bodies = specs.map((s) => partBody(s.size, s.seed, boundary));
          const wire = await collect(
            writeMultipart(
              asyncOf(
                bodies.map((body, i) => ({
                  contentType: 'application/dicom',
                  headers: { 'X-Index': `${i}` },
                  body,
                })),
              ),
              boundary,
            ),
          );
          const got = await readAll(chunked(wire, sizes), boundary);
          expect(got.length).toBe(bodies.length);
          got.forEach((part, i) => {
            expect(part.contentType).toBe('application/dicom');
            expect(part.headers['x-index']).toBe(`${i}`);
            expect(part.body.equals(bodies[i]!)).toBe(true);
          });
        },
      ),
      { numRuns: 500, seed: 20_240_601 },
    );
  });
});

describe('multipartLength', () => {
  it('is the length of what writeMultipart writes, for any parts, headers and boundary', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            size: fc.oneof(fc.constantFrom(0, 1, 2), fc.integer({ min: 0, max: 5000 })),
            type: fc.constantFrom(
              'application/dicom',
              'application/dicom; transfer-syntax=1.2.840.10008.1.2.1',
            ),
            headers: fc.dictionary(
              fc.constantFrom('Content-Length', 'Content-Location', 'X-Index'),
              fc.string(),
            ),
          }),
          { minLength: 0, maxLength: 5 },
        ),
        fc.constantFrom('b', multipartBoundary(), "odd'()+_,-./:=? boundary"),
        async (specs, boundary) => {
          // Values with line breaks are refused by both (headerLine), so leave them out here.
          const heads = specs.map((s) => ({
            contentType: s.type,
            headers: Object.fromEntries(Object.entries(s.headers).filter(([, v]) => !/[\r\n\0]/.test(v))),
            size: s.size,
          }));
          const wire = await collect(
            writeMultipart(
              heads.map((h) => ({ ...h, body: Buffer.alloc(h.size, 0x41) })),
              boundary,
            ),
          );
          expect(multipartLength(heads, boundary)).toBe(wire.length);
        },
      ),
      { numRuns: 300, seed: 20_261_206 },
    );
  });
});
