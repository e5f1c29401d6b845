/**
 * Throughput figures for FsBlobStore (a measurement script, not a test: it prints, it asserts nothing).
 *
 *   npx tsx bench/blob-throughput.ts [--mb 600] [--small 10000] [--small-size 8192]
 *     [--piece 65536] [--concurrency 1] [--no-fsync] [--dir /path/on/the/target/disk]
 *
 * Writes one large stream fed in `--piece`-byte pieces, reads it back with SHA-256 verification, then writes and
 * reads `--small` objects of `--small-size` bytes. Reads come from the page cache unless the caller drops it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { StoredBlob } from '../src/ports/blob-store.js';
import { FsBlobStore } from '../src/adapters/fs-blob/fs-blob-store.js';

const { values: args } = parseArgs({
  options: {
    mb: { type: 'string', default: '600' },
    small: { type: 'string', default: '10000' },
    'small-size': { type: 'string', default: '8192' },
    piece: { type: 'string', default: '65536' },
    concurrency: { type: 'string', default: '1' },
    'no-fsync': { type: 'boolean', default: false },
    dir: { type: 'string' },
  },
});

const MiB = 1024 * 1024;
const totalBytes = Number(args.mb) * MiB;
const piece = Number(args.piece);
const smallCount = Number(args.small);
const smallSize = Number(args['small-size']);
const concurrency = Math.max(1, Number(args.concurrency));
const fsync = !args['no-fsync'];

const rate = (bytes: number, ms: number) => `${((bytes / MiB / ms) * 1000).toFixed(0)} MiB/s`;

async function main() {
  const root = await mkdtemp(join(args.dir ?? tmpdir(), 'custos-blob-bench-'));
  const store = new FsBlobStore({ root, fsync });
  const key = randomBytes(32);
  // A 16 MiB pool of random bytes sliced into pieces: incompressible, and cheap to produce.
  const pool = randomBytes(16 * MiB);
  try {
    let t = performance.now();
    const w = await store.create(key);
    for (let off = 0; off < totalBytes; off += piece) {
      const at = off % pool.length;
      await w.write(pool.subarray(at, Math.min(at + piece, pool.length, at + totalBytes - off)));
    }
    const big = await w.commit();
    const writeMs = performance.now() - t;

    t = performance.now();
    let readBytes = 0;
    for await (const b of store.read(big.blobId, key, undefined, big)) readBytes += b.length;
    const readMs = performance.now() - t;
    console.log(
      `large: ${args.mb} MiB in ${piece}-byte pieces, fsync ${fsync}: write ${rate(big.size, writeMs)} ` +
        `(${writeMs.toFixed(0)} ms), read+verify ${rate(readBytes, readMs)} (${readMs.toFixed(0)} ms)`,
    );
    await store.delete(big.blobId);
    if (smallCount === 0) return;

    const small: StoredBlob[] = [];
    t = performance.now();
    let next = 0;
    const writeOne = async () => {
      while (next < smallCount) {
        const i = next++;
        const sw = await store.create(key);
        const at = (i * smallSize) % (pool.length - smallSize);
        await sw.write(pool.subarray(at, at + smallSize));
        small[i] = await sw.commit();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, writeOne));
    const smallWriteMs = performance.now() - t;

    t = performance.now();
    let smallRead = 0;
    next = 0;
    const readOne = async () => {
      while (next < smallCount) {
        const s = small[next++]!;
        for await (const b of store.read(s.blobId, key, undefined, s)) smallRead += b.length;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, readOne));
    const smallReadMs = performance.now() - t;
    const n = smallCount * smallSize;
    console.log(
      `small: ${smallCount} x ${smallSize} B, concurrency ${concurrency}, fsync ${fsync}: ` +
        `write ${rate(n, smallWriteMs)} = ${((smallCount / smallWriteMs) * 1000).toFixed(0)} objects/s, ` +
        `read+verify ${rate(smallRead, smallReadMs)} = ${((smallCount / smallReadMs) * 1000).toFixed(0)} objects/s`,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
