import type { ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { asciiText } from '../../domain/ascii-text.js';
import type { DicomJsonObject } from '../../domain/dicom-levels.js';
import { nativeDicomXml } from '../../dicom/dicom-xml.js';
import { multipartBoundary } from '../http/multipart-writer.js';

const gzipAsync = promisify(gzip);

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  contentType = 'application/dicom+json',
): Promise<void> {
  return sendJsonBytes(res, status, encodeJson(body), contentType);
}

/** A piece of a JSON body: UTF-8 bytes, or text that is encoded as it is written. */
export type JsonPiece = Buffer | string;

/** Bodies smaller than this go uncompressed: gzip's header and trailer would eat the gain. */
const GZIP_MIN_BYTES = 1024;

/**
 * A body already encoded as JSON, whole or in pieces. Pieces are written as they are (one gathered write), not
 * joined first: a large answer would otherwise be copied once more into a buffer that only lives until sent.
 * When the request's Accept-Encoding takes gzip (a viewer's browser always does), a body of 1 KiB or more is sent
 * gzip-compressed (RFC 9110 §8.4), compressed off the event loop: study metadata of a 2,000-slice CT is several
 * MB of JSON that compresses about tenfold.
 */
export function sendJsonBytes(
  res: ServerResponse,
  status: number,
  body: Buffer | readonly JsonPiece[],
  contentType = 'application/dicom+json',
): Promise<void> {
  return sendText(res, status, body, `${contentType}; charset=utf-8`);
}

/**
 * QIDO-RS results or WADO-RS metadata as `multipart/related; type="application/dicom+xml"`: one Native DICOM
 * Model document per data set (PS3.18 §8.7.3.3, PS3.19). No data set is a 204, a multipart body needing a part.
 */
export function sendDicomXml(res: ServerResponse, objects: readonly DicomJsonObject[]): Promise<void> {
  if (objects.length === 0) {
    res.writeHead(204);
    res.end();
    return Promise.resolve();
  }
  const boundary = multipartBoundary();
  const pieces: JsonPiece[] = [];
  for (const o of objects)
    pieces.push(
      `--${boundary}\r\nContent-Type: application/dicom+xml; charset=utf-8\r\n\r\n`,
      nativeDicomXml(o),
      '\r\n',
    );
  pieces.push(`--${boundary}--\r\n`);
  return sendText(res, 200, pieces, `multipart/related; type="application/dicom+xml"; boundary=${boundary}`);
}

/** One data set as a DICOM XML document (the STOW-RS response when the client prefers XML, PS3.18 §10.5.3). */
export function sendDicomXmlDocument(
  res: ServerResponse,
  status: number,
  obj: DicomJsonObject,
): Promise<void> {
  return sendText(res, status, [nativeDicomXml(obj)], 'application/dicom+xml; charset=utf-8');
}

/** Text in pieces, gzip-compressed when the request takes it (sendJsonBytes). */
async function sendText(
  res: ServerResponse,
  status: number,
  body: Buffer | readonly JsonPiece[],
  contentType: string,
): Promise<void> {
  const pieces = Buffer.isBuffer(body) ? [body] : body;
  let length = 0;
  for (const p of pieces) length += typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.length;
  const vary = res.getHeader('Vary');
  const headers = {
    'Content-Type': contentType,
    Vary: vary ? `${String(vary)}, Accept-Encoding` : 'Accept-Encoding',
  };
  if (length >= GZIP_MIN_BYTES && acceptsGzip(res.req?.headers['accept-encoding'])) {
    const plain = Buffer.concat(
      pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)),
      length,
    );
    const packed = await gzipAsync(plain, { level: 4 });
    res.writeHead(status, { ...headers, 'Content-Encoding': 'gzip', 'Content-Length': packed.length });
    res.end(packed);
    return;
  }
  res.writeHead(status, { ...headers, 'Content-Length': length });
  if (pieces.length === 1) {
    res.end(pieces[0]);
    return;
  }
  res.cork();
  for (const p of pieces) res.write(p);
  res.uncork();
  res.end();
}

/** Whether an Accept-Encoding header takes gzip: named (or `*`) with a q above 0 (RFC 9110 §12.5.3). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  let star: boolean | undefined;
  for (const entry of header.split(',')) {
    const [coding, ...params] = entry.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const allowed = q === undefined || Number(q.slice(2)) > 0;
    if (coding === 'gzip' || coding === 'x-gzip') return allowed;
    if (coding === '*') star = allowed;
  }
  return star ?? false;
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

/**
 * The UTF-8 bytes of JSON.stringify(body), as the pieces to send. An array (a QIDO result, a metadata response)
 * is encoded element by element: one name outside Latin-1 makes V8 hold the whole text as UTF-16, and
 * transcoding a few hundred KiB of it costs more than encoding the elements apart, most of which stay one-byte.
 * Encoded once: the length sent is the length of these bytes.
 */
export function encodeJson(body: unknown): Buffer[] {
  if (!Array.isArray(body)) return [Buffer.from(JSON.stringify(body), 'utf8')];
  // JSON.stringify writes an array's undefined, function or symbol elements as null.
  return jsonArray(body.map((e) => Buffer.from(JSON.stringify(e) ?? 'null', 'utf8')));
}

/** A JSON array of elements already encoded, as the pieces to send. */
export function jsonArray<T extends JsonPiece>(elements: readonly T[]): (T | Buffer)[] {
  const parts: (T | Buffer)[] = [OPEN];
  for (let i = 0; i < elements.length; i++) {
    if (i > 0) parts.push(COMMA);
    parts.push(elements[i]!);
  }
  parts.push(CLOSE);
  return parts;
}

/**
 * The body with its first chunk already read, so that a failure there (an object whose file is missing or damaged,
 * found on opening it) is thrown before the status line is written and can be answered as problem+json; after
 * the headers, pipeBody can only cut the connection. A HEAD request reads nothing.
 */
export async function primed(
  res: ServerResponse,
  body: AsyncIterable<Buffer>,
): Promise<AsyncIterable<Buffer>> {
  if (res.req?.method === 'HEAD') return body;
  const it = body[Symbol.asyncIterator]();
  const first = await it.next();
  return (async function* () {
    try {
      if (first.done) return;
      yield first.value;
      for (let next = await it.next(); !next.done; next = await it.next()) yield next.value;
    } finally {
      // A client gone mid-body: the source (a blob being decrypted) is closed too.
      await it.return?.();
    }
  })();
}

/** The parts of a multipart body with the first part's body primed (see primed): for the same reason. */
export async function primedParts<T extends { body: AsyncIterable<Buffer> }>(
  res: ServerResponse,
  parts: AsyncIterable<T>,
): Promise<AsyncIterable<T>> {
  if (res.req?.method === 'HEAD') return parts;
  const it = parts[Symbol.asyncIterator]();
  const first = await it.next();
  const head = first.done ? undefined : { ...first.value, body: await primed(res, first.value.body) };
  return (async function* () {
    try {
      if (!head) return;
      yield head;
      for (let next = await it.next(); !next.done; next = await it.next()) yield next.value;
    } finally {
      await it.return?.();
    }
  })();
}

/**
 * Write an async byte stream to the response with back-pressure; a mid-stream failure aborts the connection. A
 * HEAD request gets the headers alone: the body is not read (no object is decrypted only to be thrown away).
 * `exactLength`: the Content-Length written was computed ahead (multipartLength); a body that turns out longer or
 * shorter is a failure that cuts the connection, rather than bytes a keep-alive client would read as the next
 * response, or a wait for bytes that never come.
 */
export async function pipeBody(
  res: ServerResponse,
  body: AsyncIterable<Buffer>,
  exactLength = false,
): Promise<void> {
  if (exactLength) res.strictContentLength = true;
  if (res.req?.method === 'HEAD') {
    await body[Symbol.asyncIterator]().return?.();
    res.end();
    return;
  }
  try {
    for await (const chunk of body) {
      // A client gone while the chunk was being made (an animated GIF's next image rendered, a frame decoded): the
      // write would be dropped and the 'close' waited for below was already emitted, so the response, and the
      // source with what it holds, waited for ever (until 7 Dec 2026). Stopping here closes the source.
      if (res.destroyed) throw new Error('client closed the connection');
      if (!res.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = () => {
            res.off('close', onClose);
            resolve();
          };
          const onClose = () => {
            res.off('drain', onDrain);
            reject(new Error('client closed the connection'));
          };
          res.once('drain', onDrain);
          res.once('close', onClose);
        });
      }
    }
    res.end();
  } catch (err) {
    // Headers are gone: the only honest signal left is to cut the connection so the client sees a broken body.
    res.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}

/**
 * A `Warning: 299` header value (RFC 7234 §5.5) carrying `text`, which often quotes a value from a stored object:
 * in printable ASCII (asciiText), with `"` and `\` written as `'` and `/` inside the quoted string. The agent is
 * the service's base URI, as PS3.18 writes its warnings (`299 {+SERVICE}: …`, §8.3.4.2); until 6 Dec 2026 it was
 * `custos`.
 */
export function warning299(service: string, text: string): string {
  return `299 ${asciiText(service).replace(/[\s"]/g, '')} "${asciiText(text).replace(/["\\]/g, (c) => (c === '"' ? "'" : '/'))}"`;
}
