/**
 * Throughput check of the multipart reader (not a test; prints figures):
 *
 *     npx tsx bench/multipart-throughput.ts [totalMB=600] [chunkKiB=64]
 *
 * Feeds a generated multipart/related body through `readMultipart` in fixed-size chunks (re-sliced, so
 * delimiters fall at arbitrary offsets within chunks) and reports MB/s for: one huge part, DICOM-sized parts,
 * and an adversarial filler made of near misses of the delimiter. Memory stays bounded: the body is never
 * materialised, only one window of about two chunks.
 */
import { randomFillSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { readMultipart } from '../src/transports/http/multipart-reader.js';
import { multipartBoundary } from '../src/transports/http/multipart-writer.js';

interface Scenario {
  name: string;
  partBytes: number;
  filler: Buffer;
}

/**
 * The wire for `count` parts of `partBytes` bytes each, produced lazily as exact `chunkBytes` slices. Each
 * chunk is assembled into one of two alternating scratch buffers; the reader only ever holds the current
 * chunk and a lookahead from the previous one.
 */
async function* wireChunks(
  boundary: string,
  totalBytes: number,
  partBytes: number,
  filler: Buffer,
  chunkBytes: number,
): AsyncGenerator<Buffer> {
  const head = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1');
  const between = Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1');
  const close = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  const count = Math.max(1, Math.floor(totalBytes / partBytes));
  // The logical sequence of segments, each a view; no segment is copied except into a chunk.
  function* segments(): Generator<Buffer> {
    for (let p = 0; p < count; p++) {
      yield p === 0 ? head : between;
      for (let left = partBytes; left > 0; left -= filler.length)
        yield filler.subarray(0, Math.min(left, filler.length));
    }
    yield close;
  }
  const scratch = [Buffer.allocUnsafe(chunkBytes), Buffer.allocUnsafe(chunkBytes)];
  let which = 0;
  let chunk = scratch[which]!;
  let fill = 0;
  for (const seg of segments()) {
    let at = 0;
    while (at < seg.length) {
      const n = Math.min(seg.length - at, chunkBytes - fill);
      seg.copy(chunk, fill, at, at + n);
      fill += n;
      at += n;
      if (fill === chunkBytes) {
        yield chunk;
        which ^= 1;
        chunk = scratch[which]!;
        fill = 0;
      }
    }
  }
  if (fill > 0) yield chunk.subarray(0, fill);
}

async function measure(s: Scenario, totalBytes: number, chunkBytes: number) {
  const boundary = multipartBoundary();
  // Baseline: producing the chunks alone (the copy into the scratch chunk), to separate the reader's cost.
  let t0 = process.hrtime.bigint();
  let produced = 0;
  for await (const c of wireChunks(boundary, totalBytes, s.partBytes, s.filler, chunkBytes))
    produced += c.length;
  const baseNs = Number(process.hrtime.bigint() - t0);

  t0 = process.hrtime.bigint();
  let parts = 0;
  let bodyBytes = 0;
  let slices = 0;
  const source = wireChunks(boundary, totalBytes, s.partBytes, s.filler, chunkBytes);
  for await (const part of readMultipart(source, boundary, { maxParts: Number.POSITIVE_INFINITY })) {
    parts++;
    for await (const c of part.body) {
      bodyBytes += c.length;
      slices++;
    }
  }
  const ns = Number(process.hrtime.bigint() - t0);
  const mb = produced / 1e6;
  const readerOnlyNs = Math.max(1, ns - baseNs);
  console.log(
    `${s.name.padEnd(44)} ${mb.toFixed(0)} MB, ${parts} parts, ${slices} slices: ` +
      `${(mb / (ns / 1e9)).toFixed(0)} MB/s end to end (${(ns / 1e6).toFixed(0)} ms), ` +
      `${(mb / (readerOnlyNs / 1e9)).toFixed(0)} MB/s reader alone; ` +
      `rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
  );
  if (parts * s.partBytes !== bodyBytes)
    throw new Error(`lost bytes: ${bodyBytes} of ${parts * s.partBytes}`);
}

async function main() {
  const totalMB = Number(process.argv[2] ?? 600);
  const chunkKiB = Number(process.argv[3] ?? 64);
  const totalBytes = totalMB * 1e6;
  const chunkBytes = chunkKiB * 1024;
  const random = randomFillSync(Buffer.alloc(1 << 20));
  // Near misses: CRLF-- and the boundary's start, again and again (worst case for a skip-based search).
  const nearMiss = Buffer.alloc(1 << 20, Buffer.from('\r\n--custos-0123456789abcdef\r\n-', 'latin1'));
  const scenarios: Scenario[] = [
    { name: 'one part, random bytes', partBytes: totalBytes, filler: random },
    { name: 'CT-sized parts (514 KiB), random bytes', partBytes: 526_336, filler: random },
    { name: 'small parts (4 KiB), random bytes', partBytes: 4096, filler: random },
    { name: 'one part, delimiter near misses', partBytes: totalBytes, filler: nearMiss },
  ];
  console.log(`node ${process.version}, ${chunkKiB} KiB chunks`);
  for (const s of scenarios) await measure(s, totalBytes, chunkBytes);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
