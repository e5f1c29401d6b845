import { describe, expect, it } from 'vitest';
import { CustosError } from '../../domain/errors.js';
import { parseAccept, parseMediaType } from './content-type.js';

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return e instanceof CustosError ? `${e.code}/${e.httpStatus}` : 'not a CustosError';
  }
  return undefined;
};

describe('parseMediaType', () => {
  it('lower-cases the type and parameter names but keeps values as sent', () => {
    expect(parseMediaType('Multipart/Related; Type="application/dicom"; Boundary=AbC')).toEqual({
      type: 'multipart/related',
      params: { type: 'application/dicom', boundary: 'AbC' },
    });
  });

  it('keeps ; and , inside quoted values and resolves backslash escapes', () => {
    expect(parseMediaType('multipart/related; boundary="a;b,c"; x="say \\"hi\\" \\\\ ok"')).toEqual({
      type: 'multipart/related',
      params: { boundary: 'a;b,c', x: 'say "hi" \\ ok' },
    });
  });

  it('tolerates whitespace everywhere OWS is allowed, and empty parameters', () => {
    expect(
      parseMediaType('  application/dicom ;charset = utf-8 ;; ; transfer-syntax=1.2.840.10008.1.2.1 ;  '),
    ).toEqual({
      type: 'application/dicom',
      params: { charset: 'utf-8', 'transfer-syntax': '1.2.840.10008.1.2.1' },
    });
  });

  it('keeps a parameter with a missing value as the empty string', () => {
    expect(parseMediaType('a/b; flag; empty=; q=""').params).toEqual({ flag: '', empty: '', q: '' });
  });

  it('accepts unquoted values with / and : that real clients send', () => {
    expect(parseMediaType('multipart/related;type=application/dicom;boundary=x:y/z=1').params).toEqual({
      type: 'application/dicom',
      boundary: 'x:y/z=1',
    });
  });

  it('refuses a parameter given more than once (RFC 6838 §4.3), whatever its case', () => {
    expect(() => parseMediaType('a/b; boundary=one; boundary=two')).toThrow(
      /the parameter 'boundary' is given more than once/,
    );
    expect(() => parseMediaType('a/b; type="x/y"; TYPE="x/y"')).toThrow(/'type' is given more than once/);
    expect(parseMediaType('a/b; boundary=one; type=x/y').params).toEqual({ boundary: 'one', type: 'x/y' });
  });

  it('returns an empty type for an empty header so a handler can answer 415 itself', () => {
    expect(parseMediaType('')).toEqual({ type: '', params: {} });
    expect(parseMediaType('   ')).toEqual({ type: '', params: {} });
  });

  it.each([
    'not a type',
    'text',
    'text/',
    '/plain',
    'text/plain garbage',
    'text/plain; boundary="unterminated',
    'text/plain; =value',
    'text/plain, text/html',
    'te xt/plain',
    'text/plain; a=b\u0001c',
  ])('refuses %j with http.bad-content-type (400)', (header) => {
    expect(codeOf(() => parseMediaType(header))).toBe('http.bad-content-type/400');
  });
});

describe('parseAccept', () => {
  it('reads the DICOMweb multipart forms with their parameters', () => {
    expect(
      parseAccept(
        'multipart/related; type="application/dicom"; transfer-syntax=*, multipart/related;type="application/octet-stream";transfer-syntax=1.2.840.10008.1.2.1',
      ),
    ).toEqual([
      { type: 'multipart/related', params: { type: 'application/dicom', 'transfer-syntax': '*' }, q: 1 },
      {
        type: 'multipart/related',
        params: { type: 'application/octet-stream', 'transfer-syntax': '1.2.840.10008.1.2.1' },
        q: 1,
      },
    ]);
  });

  it('orders by q, highest first, keeping the client order among equal weights', () => {
    const got = parseAccept('a/one;q=0.5, a/two, */*;q=0.1, a/three;q=0.5, a/four;q=1.0, a/five;q=0');
    expect(got.map((e) => `${e.type}:${e.q}`)).toEqual([
      'a/two:1',
      'a/four:1',
      'a/one:0.5',
      'a/three:0.5',
      '*/*:0.1',
      'a/five:0',
    ]);
  });

  it('does not split on a comma or semicolon inside a quoted string', () => {
    const got = parseAccept('a/b; x="1,2;3", c/d');
    expect(got).toEqual([
      { type: 'a/b', params: { x: '1,2;3' }, q: 1 },
      { type: 'c/d', params: {}, q: 1 },
    ]);
  });

  it('takes q out of the parameters and keeps extension parameters after it', () => {
    expect(parseAccept('application/dicom+json; q=0.9; ext=1')).toEqual([
      { type: 'application/dicom+json', params: { ext: '1' }, q: 0.9 },
    ]);
  });

  it('reads a bare * and a leading-dot q as Java clients send them', () => {
    expect(parseAccept('text/html, *; q=.2, */*; q=.2').map((e) => [e.type, e.q])).toEqual([
      ['text/html', 1],
      ['*/*', 0.2],
      ['*/*', 0.2],
    ]);
  });

  it('ignores empty list elements and yields nothing for a missing or blank header', () => {
    expect(parseAccept(' , a/b ,, ').map((e) => e.type)).toEqual(['a/b']);
    expect(parseAccept(undefined)).toEqual([]);
    expect(parseAccept('')).toEqual([]);
    expect(parseAccept('  ')).toEqual([]);
  });

  it.each(['a/b;q=2', 'a/b;q=-1', 'a/b;q=high', 'a/b;q=', 'a/b c/d', 'a/b; x="open', 'nonsense'])(
    'refuses %j with http.bad-accept (400)',
    (header) => {
      expect(codeOf(() => parseAccept(header))).toBe('http.bad-accept/400');
    },
  );
});
