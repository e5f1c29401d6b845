/** Test helpers shared by the multipart tests (not used by production code). */
import { readMultipart, type MultipartLimits } from './multipart-reader.js';

/** `wire` delivered in chunks of the given sizes, cycled (each at least 1 byte). */
export async function* chunked(wire: Buffer, sizes: readonly number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (let k = 0; at < wire.length; k++) {
    const n = Math.max(1, sizes[k % sizes.length] ?? 1);
    yield wire.subarray(at, at + n);
    at += n;
  }
}

/** `wire` delivered as exactly the pieces between the given cut offsets. */
export async function* splitAt(wire: Buffer, cuts: readonly number[]): AsyncGenerator<Buffer> {
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    yield wire.subarray(from, cut);
    from = cut;
  }
  yield wire.subarray(from);
}

export async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return Buffer.concat(out);
}

export interface ReadPart {
  headers: Record<string, string>;
  contentType: string | undefined;
  body: Buffer;
  /** The code of the part's header error, when its headers were refused. */
  error?: string;
}

/** Reads every part fully, in order; rejects with whatever the reader or a body throws. */
export async function readAll(
  source: AsyncIterable<Buffer>,
  boundary: string,
  limits?: MultipartLimits,
): Promise<ReadPart[]> {
  const parts: ReadPart[] = [];
  for await (const p of readMultipart(source, boundary, limits))
    parts.push({
      headers: p.headers,
      contentType: p.contentType,
      body: await collect(p.body),
      ...(p.error ? { error: p.error.code } : {}),
    });
  return parts;
}
