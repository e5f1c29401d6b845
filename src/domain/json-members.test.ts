import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonMembers } from './json-members.js';

describe('jsonMembers', () => {
  it('splits a JSON object into member texts that parse back to the members', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const text = JSON.stringify(obj);
        const members = jsonMembers(text);
        // Member names with characters JSON escapes are refused; every other object is split.
        const plainNames = Object.keys(obj).every((k) => JSON.stringify(k) === `"${k}"`);
        if (!plainNames) return;
        expect(members).toBeDefined();
        expect([...members!.keys()]).toEqual(Object.keys(JSON.parse(text) as object));
        for (const [k, v] of members!)
          expect(JSON.parse(v)).toEqual((JSON.parse(text) as Record<string, unknown>)[k]);
      }),
      { numRuns: 2000 },
    );
  });

  it('handles DICOM JSON elements with nested sequences, escapes and numbers', () => {
    const el = {
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'O"Brien^Ann\\ ,}]{[' }] },
      '00081115': { vr: 'SQ', Value: [{ '00081150': { vr: 'UI', Value: ['1.2'] } }, {}] },
      '00280010': { vr: 'US', Value: [512, -0.5, 1e21] },
      '00100020': { vr: 'LO' },
    };
    const m = jsonMembers(JSON.stringify(el))!;
    expect([...m.keys()]).toEqual(Object.keys(el));
    for (const [k, v] of m) expect(JSON.parse(v)).toEqual(el[k as keyof typeof el]);
    expect(jsonMembers(' { "a" : 1 , "b" : [ 2 ] } ')).toEqual(
      new Map([
        ['a', '1'],
        ['b', '[ 2 ]'],
      ]),
    );
    expect(jsonMembers('{}')).toEqual(new Map());
  });

  it('refuses what is not one object with plain member names', () => {
    for (const bad of ['', '[]', '"x"', '{"a":1', '{"a":"x}', '{"a\\"b":1}', '{"a":1}{', '{"a" 1}', '{a:1}'])
      expect(jsonMembers(bad), bad).toBeUndefined();
  });
});
