import { CustosError } from '../../domain/errors.js';

export interface MultipartPart {
  /** Header names lower-cased. */
  headers: Record<string, string>;
  contentType: string | undefined;
  /** The part's bytes, streamed. Throws `multipart.truncated` if the body ends before the part does. */
  body: AsyncIterable<Buffer>;
}

export interface MultipartLimits {
  maxParts?: number;
  maxHeaderBytes?: number;
}

const err = (code: string, message: string) =>
  new CustosError({ code: `multipart.${code}`, message, httpStatus: 400 });
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * Streaming reader for multipart/related bodies (RFC 2046 §5.1, RFC 2387). Parts are yielded in order; each
 * part's body streams with back-pressure and only a delimiter's length of lookahead is held. Moving to the
 * next part drains what the consumer left of the previous one.
 */
export async function* readMultipart(
  source: AsyncIterable<Buffer>,
  boundary: string,
  limits: MultipartLimits = {},
): AsyncGenerator<MultipartPart> {
  const maxParts = limits.maxParts ?? 100_000;
  const maxHeaderBytes = limits.maxHeaderBytes ?? 16 * 1024;
  if (boundary.length === 0 || boundary.length > 200)
    throw err('no-boundary', 'the multipart boundary must be 1 to 200 characters');
  const it = source[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  let ended = false;
  const pull = async (): Promise<boolean> => {
    if (ended) return false;
    const r = await it.next();
    if (r.done) {
      ended = true;
      return false;
    }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    return true;
  };

  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');

  // Preamble: up to the first dash-boundary (at the very start, or after a CRLF).
  for (;;) {
    const i = buf.indexOf(dash);
    if (i >= 0 && (i === 0 || (i >= 2 && buf[i - 2] === 0x0d && buf[i - 1] === 0x0a))) {
      buf = buf.subarray(i + dash.length);
      break;
    }
    if (i >= 0) {
      buf = buf.subarray(i + 1);
      continue;
    }
    if (buf.length > dash.length + 2) buf = buf.subarray(buf.length - dash.length - 2);
    if (!(await pull())) throw err('no-boundary', `the body does not contain the boundary '${boundary}'`);
  }

  let parts = 0;
  for (;;) {
    // After a delimiter: "--" closes the body; otherwise optional whitespace and CRLF, then headers.
    while (buf.length < 2)
      if (!(await pull())) throw err('truncated', 'the body ends right after a boundary');
    if (buf[0] === 0x2d && buf[1] === 0x2d) return;
    let eol = buf.indexOf(CRLF);
    while (eol < 0) {
      if (buf.length > 1024) throw err('bad-header', 'garbage after a boundary delimiter');
      if (!(await pull())) throw err('truncated', 'the body ends inside a boundary line');
      eol = buf.indexOf(CRLF);
    }
    if (buf.subarray(0, eol).toString('latin1').trim() !== '')
      throw err('bad-header', 'unexpected characters after a boundary delimiter');
    buf = buf.subarray(eol + 2);

    if (++parts > maxParts) throw err('too-many-parts', `more than ${maxParts} parts`);
    // Headers end at an empty line (which may come immediately: a part with no headers).
    let headerEnd = buf.subarray(0, 2).equals(CRLF) ? -2 : buf.indexOf(HEADER_END);
    while (headerEnd === -1) {
      if (buf.length > maxHeaderBytes) throw err('bad-header', `part headers exceed ${maxHeaderBytes} bytes`);
      if (!(await pull())) throw err('truncated', 'the body ends inside part headers');
      headerEnd = buf.length >= 2 && buf.subarray(0, 2).equals(CRLF) ? -2 : buf.indexOf(HEADER_END);
    }
    const headers: Record<string, string> = {};
    if (headerEnd >= 0) {
      for (const line of buf.subarray(0, headerEnd).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon <= 0) throw err('bad-header', `malformed part header line '${line.slice(0, 80)}'`);
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      buf = buf.subarray(headerEnd + 4);
    } else {
      buf = buf.subarray(2);
    }

    let done = false;
    const gen = (async function* (): AsyncGenerator<Buffer> {
      for (;;) {
        const i = buf.indexOf(delimiter);
        if (i >= 0) {
          const out = buf.subarray(0, i);
          buf = buf.subarray(i + delimiter.length);
          done = true;
          if (out.length) yield out;
          return;
        }
        const safe = buf.length - (delimiter.length - 1);
        if (safe > 0) {
          const out = buf.subarray(0, safe);
          buf = buf.subarray(safe);
          yield out;
        }
        if (!(await pull())) {
          done = true;
          throw err(
            'truncated',
            'the request body ended inside a part (no closing boundary): the part is incomplete',
          );
        }
      }
    })();
    // The consumer may stop early (break / return): that must not end the underlying generator, which the
    // reader drains before the next part.
    const body: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]: () => ({
        next: () => (done ? Promise.resolve({ done: true, value: undefined }) : gen.next()),
        return: async () => ({ done: true, value: undefined }),
      }),
    };
    yield { headers, contentType: headers['content-type'], body };
    while (!done) {
      const r = await gen.next();
      if (r.done) break;
    }
  }
}
