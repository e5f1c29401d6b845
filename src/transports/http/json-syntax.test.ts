import { describe, expect, it } from 'vitest';
import { jsonSyntaxFault } from './json-syntax.js';

describe('jsonSyntaxFault', () => {
  it('names the line, column and what was expected where a text stops being JSON', () => {
    for (const [text, line, column, expected] of [
      ['', 1, 1, 'a value before the end of the body'],
      ['{"a":1,}', 1, 8, 'a member name in double quotes'],
      ['{"a" 1}', 1, 6, "':'"],
      ['{"a":1 "b":2}', 1, 8, "',' or '}'"],
      ['[1 2]', 1, 4, "',' or ']'"],
      ['{\n  "username": "x",\n  "password": "hunter2"\n  "totp": 1\n}', 4, 3, "',' or '}'"],
      ['{\r\n"a": tru }', 2, 9, "'true'"],
      ['{"a": nul', 1, 10, "'null' before the end of the body"],
      ["{'a': 1}", 1, 2, "a member name in double quotes or '}'"],
      ['{"é": "ü" x', 1, 11, "',' or '}'"],
      ['{"a": "b', 1, 9, "'\"' closing the string before the end of the body"],
      ['{"a": "b\nc"}', 1, 9, 'no control character in a string (escape it: \\n, \\t, \\u0000)'],
      ['"\\x"', 1, 3, 'an escape: one of " \\ / b f n r t u after \\'],
      ['"\\u12g4"', 1, 6, 'four hexadecimal digits after \\u'],
      ['01', 1, 2, 'the end of the body'],
      ['-', 1, 2, 'a digit before the end of the body'],
      ['1.', 1, 3, "a digit after '.' before the end of the body"],
      ['1e+', 1, 4, 'a digit in the exponent before the end of the body'],
      ['{} {}', 1, 4, 'the end of the body'],
      ['[', 1, 2, "a value or ']' before the end of the body"],
      ['NaN', 1, 1, 'a value'],
    ] as const)
      expect(jsonSyntaxFault(text), text).toEqual({ line, column, expected });
  });

  it('finds no fault in JSON, and one in every text JSON.parse refuses', () => {
    const valid = [
      '{}',
      '[]',
      ' {"a": [1, -0.5e+3, true, false, null, "\\u00e9\\n\\"\\\\\\/"], "b": {"c": {}}} ',
      '"x"',
      '0',
      '\r\n[\t]\n',
    ];
    for (const text of valid) expect(jsonSyntaxFault(text), text).toBeUndefined();
    // Every prefix and every one-character change of a few documents: the scanner and JSON.parse agree.
    const alphabet = ['{', '}', '[', ']', ',', ':', '"', '\\', '0', '1', '-', '.', 'e', 't', ' ', '\n', 'x'];
    for (const doc of valid.slice(0, 3))
      for (let k = 0; k <= doc.length; k++) {
        const variants = [doc.slice(0, k), ...alphabet.map((c) => doc.slice(0, k) + c + doc.slice(k + 1))];
        for (const text of variants) {
          let parses = true;
          try {
            JSON.parse(text);
          } catch {
            parses = false;
          }
          expect(jsonSyntaxFault(text) === undefined, text).toBe(parses);
        }
      }
  });

  it('reads a body nested far deeper than the call stack goes', () => {
    expect(jsonSyntaxFault(`${'['.repeat(200_000)}1${']'.repeat(200_000)}`)).toBeUndefined();
    expect(jsonSyntaxFault(`${'['.repeat(200_000)}1`)).toEqual({
      line: 1,
      column: 200_002,
      expected: "',' or ']' before the end of the body",
    });
  });
});
