import { describe, expect, it } from 'vitest';
import { CustosError } from '../../domain/errors.js';
import { parseByteRange } from './byte-range.js';

describe('parseByteRange', () => {
  it('reads one bytes range: closed, open-ended, a suffix, an end past the value', () => {
    expect(parseByteRange('bytes=0-99', 1000)).toEqual({ start: 0, end: 99, total: 1000 });
    expect(parseByteRange('bytes=900-', 1000)).toEqual({ start: 900, end: 999, total: 1000 });
    expect(parseByteRange('bytes=-10', 1000)).toEqual({ start: 990, end: 999, total: 1000 });
    expect(parseByteRange('bytes=-5000', 1000)).toEqual({ start: 0, end: 999, total: 1000 });
    expect(parseByteRange('bytes=990-5000', 1000)).toEqual({ start: 990, end: 999, total: 1000 });
    expect(parseByteRange(' Bytes = 5 - 5 ', 1000)).toEqual({ start: 5, end: 5, total: 1000 });
  });

  it('leaves the value whole for no header, several ranges, another unit or a malformed field', () => {
    for (const h of [
      undefined,
      'bytes=0-1,4-5',
      'items=0-1',
      'bytes=5-1',
      'bytes=-',
      'bytes=a-b',
      'bytes 0-1',
    ])
      expect(parseByteRange(h, 1000), String(h)).toBeUndefined();
  });

  it('refuses a range that starts past the end, or an empty suffix, with 416', () => {
    for (const h of ['bytes=1000-', 'bytes=1000-2000', 'bytes=-0']) {
      let err: unknown;
      try {
        parseByteRange(h, 1000);
      } catch (e) {
        err = e;
      }
      expect(err, h).toBeInstanceOf(CustosError);
      expect((err as CustosError).httpStatus).toBe(416);
      expect((err as CustosError).code).toBe('http.range-not-satisfiable');
    }
  });
});
