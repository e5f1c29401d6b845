import { CustosError, DicomStatus } from '../../domain/errors.js';

export interface MultipartPart {
  /** Part header names lower-cased; repeated headers joined with ', ' (RFC 9110 §5.3). */
  headers: Record<string, string>;
  /** The part's raw Content-Type header, if any (RFC 2387 §3.1: absent means the root `type`). */
  contentType: string | undefined;
  /**
   * The part's bytes, streamed with back-pressure. It throws `multipart.truncated` when the request body ends
   * before the part's closing delimiter, so a half-received part is never mistaken for a complete one. Read it
   * before asking the reader for the next part: the reader then drains whatever is left, and a body read after
   * that throws `multipart.part-skipped`.
   */
  body: AsyncIterable<Buffer>;
  /**
   * Set when the part's headers are malformed (a line without a valid name, a header that may appear once given
   * twice, text after the delimiter, headers over `maxHeaderBytes` or ended by a bare LF) but the next delimiter
   * could still be found: the part cannot be used (`headers` is empty), the parts after it can. Its body, if any,
   * is still given, to be drained or skipped like any other.
   */
  error?: CustosError;
}

export interface MultipartLimits {
  /** Most parts accepted in one body (default 100,000); more throws `multipart.too-many-parts` (413). */
  maxParts?: number;
  /** Most bytes of headers in one part (default 16 KiB); more throws `multipart.bad-header` (400). */
  maxHeaderBytes?: number;
}

const fail = (code: string, message: string, httpStatus = 400) =>
  new CustosError({ code: `multipart.${code}`, message, httpStatus });

/**
 * A part the body ended inside of is an object cut short: for STOW-RS, FailureReason 0xC000 (cannot understand),
 * as the same object truncated inside a complete body gets (until 5 Dec 2026 0x0110, processing failure).
 */
const truncated = (where: string) =>
  new CustosError({
    code: 'multipart.truncated',
    message: `the request body ended ${where}, before the closing multipart delimiter`,
    httpStatus: 400,
    dicomStatus: DicomStatus.CannotUnderstand,
  });

const CRLF = Buffer.from('\r\n', 'latin1');
const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
/** RFC 2046 §5.1.1 limits boundaries to 70 characters; be lenient, but keep the lookahead small. */
const MAX_BOUNDARY = 200;
/** Transport padding (RFC 2046 §5.1.1 LWSP after a delimiter) tolerated before its CRLF. */
const MAX_PADDING = 1024;

const toBuffer = (c: Buffer | Uint8Array | string): Buffer =>
  Buffer.isBuffer(c)
    ? c
    : typeof c === 'string'
      ? Buffer.from(c, 'latin1')
      : Buffer.from(c.buffer, c.byteOffset, c.byteLength);

/**
 * The byte stream of one request body with the primitives the multipart grammar needs. It holds at most the
 * current source chunk plus a pattern's length of carried-over lookahead; large chunks are sliced, never copied.
 */
class ByteStream {
  /**
   * Unconsumed bytes: a slice of the current chunk, or a small carry (< 2 × pattern length) joined to one, or
   * bytes given back (`unread`, at most a part's header block).
   */
  private buf: Buffer;
  private ended = false;
  private readonly it: AsyncIterator<Buffer | Uint8Array | string>;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>, initial: Buffer) {
    this.it = source[Symbol.asyncIterator]();
    this.buf = initial;
  }

  private async nextChunk(): Promise<Buffer | undefined> {
    while (!this.ended) {
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        return undefined;
      }
      const chunk = toBuffer(r.value);
      if (chunk.length > 0) return chunk;
    }
    return undefined;
  }

  /** Make at least `n` bytes available (fewer only at the end of the stream); only used for n ≤ 2. */
  async fill(n: number): Promise<boolean> {
    while (this.buf.length < n) {
      const chunk = await this.nextChunk();
      if (!chunk) return false;
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    }
    return true;
  }

  startsWith(pattern: Buffer): boolean {
    return (
      this.buf.length >= pattern.length &&
      this.buf.compare(pattern, 0, pattern.length, 0, pattern.length) === 0
    );
  }

  /** Puts bytes read too far back in front of the stream (bounded by the caller: a header block at most). */
  unread(bytes: Buffer): void {
    if (bytes.length > 0) this.buf = this.buf.length === 0 ? bytes : Buffer.concat([bytes, this.buf]);
  }

  skip(n: number): void {
    this.buf = this.buf.subarray(n);
  }

  /**
   * Yields the bytes before the next occurrence of `pattern` and consumes the pattern; returns whether it was
   * found (false: the stream ended first, and everything before the end was yielded).
   *
   * The search inside a chunk is `Buffer#indexOf`, which Node implements natively with the Boyer–Moore–Horspool
   * family of searches (src/string_search.h, the V8 algorithm), so each byte is examined about once and usually
   * far less. A match split across chunks is found by searching only a window of `carry + pattern.length - 1`
   * bytes of the next chunk, so a large chunk is never concatenated or searched twice.
   */
  async *until(pattern: Buffer): AsyncGenerator<Buffer, boolean> {
    const keep = pattern.length - 1;
    for (;;) {
      const i = this.buf.indexOf(pattern);
      if (i >= 0) {
        const out = this.buf.subarray(0, i);
        this.buf = this.buf.subarray(i + pattern.length);
        if (out.length > 0) yield out;
        return true;
      }
      // No match: all but the last `keep` bytes are settled (they cannot start a match).
      if (this.buf.length > keep) {
        const out = this.buf.subarray(0, this.buf.length - keep);
        this.buf = this.buf.subarray(this.buf.length - keep);
        yield out;
      }
      const chunk = await this.nextChunk();
      if (!chunk) {
        const rest = this.buf;
        this.buf = Buffer.alloc(0);
        if (rest.length > 0) yield rest;
        return false;
      }
      const carry = this.buf;
      if (carry.length === 0) {
        this.buf = chunk;
      } else if (chunk.length < pattern.length) {
        // Both small (carry < pattern length): joining them costs less than the bookkeeping.
        this.buf = Buffer.concat([carry, chunk]);
      } else {
        // A match starting inside the carry ends within the first `keep` bytes of the chunk.
        const window = Buffer.concat([carry, chunk.subarray(0, keep)]);
        const j = window.indexOf(pattern);
        if (j >= 0) {
          this.buf = chunk.subarray(j + pattern.length - carry.length);
          if (j > 0) yield carry.subarray(0, j);
          return true;
        }
        this.buf = chunk;
        yield carry;
      }
    }
  }
}

type BodyState = 'open' | 'complete' | 'failed' | 'skipped';

/**
 * Streaming reader for a multipart/related request body (RFC 2387, grammar of RFC 2046 §5.1.1), as STOW-RS
 * sends it (PS3.18 §10.5). Parts are yielded in order, each with its body as a stream; the reader never holds
 * more than one source chunk plus a delimiter's length of lookahead, whatever the part sizes.
 *
 * - The preamble before the first `--boundary` line and the epilogue after `--boundary--` are ignored (§5.1.1).
 * - A delimiter is `CRLF--boundary` (the CRLF belongs to the delimiter, not to the body); the boundary text
 *   elsewhere in a body (not at the start of a line) is data.
 * - Errors are `CustosError`s: `multipart.no-boundary` (the first delimiter never comes), `multipart.truncated`
 *   (the body ends before `--boundary--`; thrown by the part's body iterator when it happens inside a part),
 *   `multipart.bad-header` (part headers malformed or over `maxHeaderBytes`, or text after a delimiter),
 *   `multipart.too-many-parts`.
 * - The reader never closes or destroys `source` (an HTTP request must stay usable for the response); stopping
 *   early leaves the rest of the source unread.
 * - One consumer at a time: do not ask for the next part while a `body.next()` is pending.
 */
export async function* readMultipart(
  source: AsyncIterable<Buffer | Uint8Array | string>,
  boundary: string,
  limits: MultipartLimits = {},
): AsyncGenerator<MultipartPart> {
  const maxParts = limits.maxParts ?? 100_000;
  const maxHeaderBytes = limits.maxHeaderBytes ?? 16 * 1024;
  if (boundary.length === 0 || boundary.length > MAX_BOUNDARY || /[\r\n]/.test(boundary))
    throw fail('no-boundary', `the multipart boundary must be 1 to ${MAX_BOUNDARY} characters on one line`);

  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  const closeMark = Buffer.from('--', 'latin1');
  // RFC 2046 §5.1.1: the first dash-boundary may open the body without a preceding CRLF; a virtual CRLF in
  // front lets the same delimiter search find it and treats the preamble as a discarded part.
  const input = new ByteStream(source, CRLF);

  const preamble = input.until(delimiter);
  for (;;) {
    const r = await preamble.next();
    if (r.done) {
      if (!r.value)
        throw fail('no-boundary', `the body does not contain the multipart boundary '${boundary}'`);
      break;
    }
  }

  let parts = 0;
  for (;;) {
    // After a delimiter: `--` closes the body, otherwise transport padding, CRLF, then the part.
    if (!(await input.fill(2))) throw truncated('right after a boundary delimiter');
    if (input.startsWith(closeMark)) return;

    if (++parts > maxParts) throw fail('too-many-parts', `the body has more than ${maxParts} parts`, 413);

    const headerBytes: Buffer[] = [];
    let headerLength = 0;
    // The delimiter line's own CRLF is left in front of the headers, so "no headers" is simply CRLF CRLF.
    const headerScan = input.until(HEADER_END);
    let headerEnd = false;
    let overLimit = false;
    for (;;) {
      const r = await headerScan.next();
      if (r.done) {
        headerEnd = r.value;
        break;
      }
      headerLength += r.value.length;
      headerBytes.push(r.value);
      if (headerLength > maxHeaderBytes + MAX_PADDING) {
        overLimit = true;
        break;
      }
    }
    const block = Buffer.concat(headerBytes, headerLength);
    // Most often not long or cut headers but lines ended by a bare LF: the CRLF CRLF that ends them never comes.
    const lfOnly = /(^|[^\r])\n(\r?\n)/.test(block.toString('latin1'));
    const bareLf = () =>
      fail(
        'bad-header',
        `the headers of part ${parts} end with a bare LF, not CRLF: multipart/related needs CRLF line endings (RFC 2046 section 5.1.1)`,
      );
    const scanned = headerEnd ? Buffer.concat([block, HEADER_END]) : block;
    // The next delimiter came before the end of this part's headers: this part is unusable, the next one is not.
    // What was read past that delimiter is given back (until 6 Dec 2026 a bad part header ended the request).
    const early = scanned.indexOf(delimiter);
    if (early >= 0) {
      input.unread(scanned.subarray(early + delimiter.length));
      yield badPart(
        lfOnly
          ? bareLf()
          : fail(
              'bad-header',
              `the headers of part ${parts} do not end (CRLF CRLF) before the next boundary`,
            ),
      );
      continue;
    }
    if (overLimit) {
      const error = lfOnly
        ? bareLf()
        : fail('bad-header', `the headers of part ${parts} exceed ${maxHeaderBytes} bytes`);
      // Skip to the next delimiter, which may begin in the last bytes read; if the body ends first, so does the
      // request.
      input.unread(scanned.subarray(Math.max(0, scanned.length - (delimiter.length - 1))));
      const skip = input.until(delimiter);
      let r: IteratorResult<Buffer, boolean>;
      do r = await skip.next();
      while (!r.done);
      if (!r.value) throw error;
      yield badPart(error);
      continue;
    }
    if (!headerEnd) throw lfOnly ? bareLf() : truncated(`in the headers of part ${parts}`);
    let headers: Record<string, string> = {};
    let headerError: CustosError | undefined;
    try {
      headers = parseHeaders(block, parts, maxHeaderBytes);
    } catch (e) {
      if (!(e instanceof CustosError)) throw e;
      // The headers ended where they should: the part's body is read (and discarded) up to the next delimiter.
      headerError = e;
    }

    let state = 'open' as BodyState;
    let failure: unknown;
    const scan = input.until(delimiter);
    const partNo = parts;
    const next = async (): Promise<IteratorResult<Buffer, undefined>> => {
      if (state === 'complete') return { done: true, value: undefined };
      if (state === 'failed') throw failure;
      if (state === 'skipped')
        throw fail(
          'part-skipped',
          `part ${partNo} was read after the reader moved on to the next part; its bytes are gone`,
          500,
        );
      let r: IteratorResult<Buffer, boolean>;
      try {
        r = await scan.next();
      } catch (e) {
        // The source failed (socket error, a size limit upstream): that error, not `truncated`, is the cause.
        state = 'failed';
        failure = e;
        throw e;
      }
      if (!r.done) return r;
      if (r.value) {
        state = 'complete';
        return { done: true, value: undefined };
      }
      state = 'failed';
      failure = truncated(`inside part ${partNo}`);
      throw failure;
    };
    // A consumer that stops reading early (break) must not end the scan: the reader drains it below.
    const iterator: AsyncIterator<Buffer, undefined> = {
      next,
      return: async () => ({ done: true, value: undefined }),
    };
    yield {
      headers,
      contentType: headers['content-type'],
      body: { [Symbol.asyncIterator]: () => iterator },
      ...(headerError ? { error: headerError } : {}),
    };
    if (state === 'failed') throw failure;
    if (state === 'open') {
      // The consumer moved on: discard the rest of this part (this throws `truncated` if it never ends).
      while (!(await next()).done);
      state = 'skipped';
    }
  }
}

/** A part whose headers were refused and whose body was already skipped (the reader is past its delimiter). */
function badPart(error: CustosError): MultipartPart {
  return {
    headers: {},
    contentType: undefined,
    body: {
      [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }),
    },
    error,
  };
}

/** Headers a part may carry once (RFC 2045 §§5, 6; RFC 9110 §8.6): two of them leave the part ambiguous. */
const SINGLE = new Set(['content-type', 'content-transfer-encoding', 'content-length']);

/**
 * RFC 2046 §5.1.1 / RFC 5322 §2.2 header block. `block` starts with the CRLF that ended the delimiter line,
 * preceded by optional transport padding; obsolete line folding (RFC 5322 §2.2.3) is unfolded.
 */
function parseHeaders(block: Buffer, part: number, maxHeaderBytes: number): Record<string, string> {
  const text = block.toString('latin1');
  const firstBreak = text.indexOf('\r\n');
  const padding = firstBreak < 0 ? text : text.slice(0, firstBreak);
  if (padding.length > MAX_PADDING || !/^[ \t]*$/.test(padding))
    throw fail('bad-header', `unexpected text after the boundary delimiter before part ${part}`);
  const lines = firstBreak < 0 ? '' : text.slice(firstBreak + 2);
  if (lines.length > maxHeaderBytes)
    throw fail('bad-header', `the headers of part ${part} exceed ${maxHeaderBytes} bytes`);
  const headers: Record<string, string> = {};
  if (lines === '') return headers;
  const unfolded: string[] = [];
  for (const line of lines.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && unfolded.length > 0)
      unfolded[unfolded.length - 1] += ` ${line.trim()}`;
    else unfolded.push(line);
  }
  for (const line of unfolded) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).toLowerCase() : '';
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name))
      throw fail('bad-header', `part ${part} has a malformed header line '${line.slice(0, 80)}'`);
    const value = line.slice(colon + 1).trim();
    if (SINGLE.has(name) && name in headers)
      throw fail('bad-header', `part ${part} has more than one ${name} header`);
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}
