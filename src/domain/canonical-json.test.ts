import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';

describe('canonicalJson (RFC 8785)', () => {
  it('sorts members by UTF-16 code units and drops whitespace', () => {
    // RFC 8785 §3.2.3's sorting example: keys in code-unit order, including a non-BMP character.
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\u{1f600}': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const keys = Object.keys(JSON.parse(canonicalJson(input)) as object);
    expect(canonicalJson(input).startsWith('{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö"')).toBe(
      true,
    );
    expect(keys).toHaveLength(7);
    expect(canonicalJson(input).indexOf('\u{1f600}')).toBeLessThan(canonicalJson(input).indexOf('\ufb33'));
  });

  it('writes numbers in shortest ECMAScript form and literals as JSON does', () => {
    expect(canonicalJson({ b: [1e21, 1e-7, 0.000001, -0, 1 / 3, 4.5, 2e-3], a: null, c: true })).toBe(
      '{"a":null,"b":[1e+21,1e-7,0.000001,0,0.3333333333333333,4.5,0.002],"c":true}',
    );
  });

  it('gives the same text whatever order members were built in, and omits undefined members', () => {
    expect(canonicalJson({ z: { y: 1, x: [2, { b: 1, a: 2 }] }, a: undefined })).toBe(
      canonicalJson({ z: { x: [2, { a: 2, b: 1 }], y: 1 } }),
    );
    expect(canonicalJson({ z: 1, a: undefined })).toBe('{"z":1}');
  });

  it('escapes strings as JSON and refuses what has no canonical form', () => {
    expect(canonicalJson('a"b\\c\n\u0001é')).toBe('"a\\"b\\\\c\\n\\u0001é"');
    expect(() => canonicalJson('\ud800')).toThrow(/lone surrogate/);
    expect(() => canonicalJson(Number.NaN)).toThrow(/NaN/);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(/function/);
  });
});
