import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeJson } from './responses.js';

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
