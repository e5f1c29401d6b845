import { randomBytes } from 'node:crypto';
import { CustosError } from '../../domain/errors.js';

/**
 * A fresh boundary for one response: 32 hex digits (128 random bits), so it cannot plausibly occur in any part
 * (RFC 2046 §5.1.1 requires that it does not). Only token characters, so it needs no quoting in Content-Type.
 */
export function multipartBoundary(): string {
  return randomBytes(16).toString('hex');
}

export interface OutgoingPart {
  /** The part's Content-Type, e.g. `application/dicom; transfer-syntax=1.2.840.10008.1.2.1`. */
  contentType: string;
  /** Further part headers (e.g. Content-Location, PS3.18 §8.6.1.2). */
  headers?: Record<string, string>;
  body: AsyncIterable<Buffer | Uint8Array> | Buffer;
}

const badPart = (message: string) =>
  new CustosError({ code: 'multipart.bad-header', message, httpStatus: 500 });

// RFC 2046 §5.1.1 bchars; at most 70, not ending in a space.
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function headerLine(name: string, value: string): string {
  // A CR or LF in a value would let it inject headers or end the header block (response splitting).
  if (!HEADER_NAME.test(name) || /[\r\n\0]/.test(value))
    throw badPart(
      `refusing to write the multipart header '${name.slice(0, 60)}': invalid name or line break`,
    );
  return `${name}: ${value}\r\n`;
}

/** What goes before a part's body: the delimiter (with the CRLF that ends the body before it) and its headers. */
function partHead(part: PartHead, first: boolean, boundary: string): string {
  let head = `${first ? '' : '\r\n'}--${boundary}\r\n${headerLine('Content-Type', part.contentType)}`;
  for (const [name, value] of Object.entries(part.headers ?? {})) {
    if (name.toLowerCase() === 'content-type') continue;
    head += headerLine(name, value);
  }
  return `${head}\r\n`;
}

const closeDelimiter = (first: boolean, boundary: string) => `${first ? '' : '\r\n'}--${boundary}--\r\n`;

function assertBoundary(boundary: string): void {
  if (!BOUNDARY.test(boundary))
    throw badPart(`'${boundary.slice(0, 80)}' is not a valid multipart boundary (RFC 2046 §5.1.1)`);
}

export type PartHead = Pick<OutgoingPart, 'contentType' | 'headers'>;

/**
 * The exact length of the body writeMultipart writes for parts with these heads and body lengths, for a
 * Content-Length: a client then knows how much is coming (a progress bar), and reads the body without HTTP/1.1
 * chunked framing. At least one part (writeMultipart's zero-part body is not sent).
 */
export function multipartLength(parts: readonly (PartHead & { size: number })[], boundary: string): number {
  assertBoundary(boundary);
  let length = 0;
  parts.forEach(
    (part, i) => (length += Buffer.byteLength(partHead(part, i === 0, boundary), 'latin1') + part.size),
  );
  return length + Buffer.byteLength(closeDelimiter(parts.length === 0, boundary), 'latin1');
}

/**
 * A multipart/related body (RFC 2387; framing per RFC 2046 §5.1.1), streamed part by part with back-pressure
 * (the consumer pulls). The wire is, for parts P1..Pn:
 *
 *     --b CRLF headers CRLF body1  CRLF --b CRLF headers CRLF body2 ... CRLF --b-- CRLF
 *
 * The CRLF before each `--b` belongs to the delimiter, not to the preceding body, so bodies go out unchanged
 * (a body may itself end in CRLF). Zero parts produce only the close delimiter, which RFC 2046 does not allow:
 * callers answer an empty result with a status code instead of a multipart body.
 */
export async function* writeMultipart(
  parts: AsyncIterable<OutgoingPart> | Iterable<OutgoingPart>,
  boundary: string,
): AsyncGenerator<Buffer> {
  assertBoundary(boundary);
  let first = true;
  for await (const part of parts) {
    const head = partHead(part, first, boundary);
    first = false;
    yield Buffer.from(head, 'latin1');
    if (Buffer.isBuffer(part.body)) {
      if (part.body.length > 0) yield part.body;
    } else {
      for await (const chunk of part.body) {
        if (chunk.length === 0) continue;
        yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
    }
  }
  yield Buffer.from(closeDelimiter(first, boundary), 'latin1');
}
