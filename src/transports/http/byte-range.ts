import { CustosError } from '../../domain/errors.js';

/** Bytes `start` to `end` (inclusive, RFC 9110 §14.1.2) of a value `total` bytes long. */
export interface ByteSpan {
  start: number;
  end: number;
  total: number;
}

const SPEC = /^bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i;

/**
 * The one byte range a `Range` header asks of a value `total` bytes long (RFC 9110 §14.2), or undefined when the
 * value goes out whole: no header, a unit other than bytes, a malformed field, or several ranges (a server may
 * ignore the field, §14.2; a frame or bulk value is read by one client at one offset, and several ranges would
 * need multipart/byteranges inside a multipart answer). A range that starts past the end, or a zero suffix, is
 * a 416 (§15.5.17), whose sender adds the value's length in a Content-Range header.
 */
export function parseByteRange(header: string | undefined, total: number): ByteSpan | undefined {
  if (header === undefined) return undefined;
  const m = SPEC.exec(header.trim());
  if (!m) return undefined;
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return undefined;
  let start: number;
  let end: number;
  if (first === '') {
    // A suffix: the last N bytes.
    const n = Number(last);
    if (n === 0) throw unsatisfiable(header, total);
    start = Math.max(0, total - n);
    end = total - 1;
  } else {
    start = Number(first);
    end = last === '' ? total - 1 : Math.min(Number(last), total - 1);
    if (last !== '' && Number(last) < start) return undefined; // invalid (§14.1.1): ignored
    if (start >= total) throw unsatisfiable(header, total);
  }
  return { start, end, total };
}

function unsatisfiable(header: string, total: number): CustosError {
  return new CustosError({
    code: 'http.range-not-satisfiable',
    message: `Range '${header}' asks for no byte of a value of ${total} bytes`,
    httpStatus: 416,
    detail: { length: total },
  });
}
