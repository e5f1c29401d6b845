import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServerResponse, IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { acceptsGzip, encodeJson, warning299 } from './responses.js';

describe('encodeJson', () => {
  it('gives the UTF-8 bytes of JSON.stringify in pieces, for arrays element by element', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.array(fc.jsonValue()), fc.jsonValue(), fc.array(fc.string({ unit: 'binary' }))),
        (v) => {
          expect(Buffer.concat(encodeJson(v)).equals(Buffer.from(JSON.stringify(v), 'utf8'))).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
    const odd = [undefined, () => 1, Symbol('s'), 'Πα', 'Müller', 1];
    expect(Buffer.concat(encodeJson(odd)).toString()).toBe(JSON.stringify(odd));
  });
});

describe('warning299', () => {
  const service = 'http://127.0.0.1:8042/dicom-web';
  it('makes a header value Node takes of any text, keeping printable ASCII as it is', () => {
    const res = new ServerResponse(new IncomingMessage(new Socket()));
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const value = warning299(service, text);
        expect(() => res.setHeader('Warning', [value])).not.toThrow();
        expect(value.startsWith(`299 ${service} "`)).toBe(true);
        expect(value.slice(`299 ${service} "`.length)).toMatch(/^[\x20-\x7e]*"$/);
        expect(value.slice(`299 ${service} "`.length, -1)).not.toMatch(/["\\]/);
      }),
      { numRuns: 2000 },
    );
    expect(warning299(service, `PatientName 'Doe\0^Jane': bad`)).toBe(
      `299 ${service} "PatientName 'DoeU+0000^Jane': bad"`,
    );
    expect(warning299(service, '山田^太郎 "x" a\\b\r\n')).toBe(
      `299 ${service} "U+5C71U+7530^U+592AU+90CE 'x' a/bU+000DU+000A"`,
    );
    expect(warning299(service, '🙂')).toBe(`299 ${service} "U+1F642"`);
  });
});

describe('acceptsGzip', () => {
  it('takes gzip when named or covered by * with a q above 0', () => {
    expect(acceptsGzip('gzip, deflate, br')).toBe(true);
    expect(acceptsGzip('br;q=1.0, GZIP;q=0.5')).toBe(true);
    expect(acceptsGzip('x-gzip')).toBe(true);
    expect(acceptsGzip('*')).toBe(true);
    expect(acceptsGzip('gzip;q=0')).toBe(false);
    expect(acceptsGzip('gzip;q=0, *')).toBe(false);
    expect(acceptsGzip('*;q=0')).toBe(false);
    expect(acceptsGzip('br, deflate')).toBe(false);
    expect(acceptsGzip('identity')).toBe(false);
    expect(acceptsGzip(undefined)).toBe(false);
  });
});
