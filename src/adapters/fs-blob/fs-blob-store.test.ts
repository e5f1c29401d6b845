import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CustosError } from '../../domain/errors.js';
import type { BlobId } from '../../domain/ids.js';
import { FsBlobStore } from './fs-blob-store.js';
import { HEADER_SIZE, TAG_SIZE } from './chunked-aead.js';

const CHUNK = 4096;
const key = randomBytes(32);

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return Buffer.concat(out);
}

async function* files(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else yield p;
  }
}

const code = async (p: Promise<unknown>) =>
  p.then(
    () => 'no error',
    (e: unknown) => (e instanceof CustosError ? e.code : String(e)),
  );

describe('FsBlobStore', () => {
  let root: string;
  let store: FsBlobStore;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'custos-blob-'));
    store = new FsBlobStore({ root, chunkSize: CHUNK });
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const put = async (data: Buffer, pieces = 3, k = key) => {
    const w = await store.create(k);
    const step = Math.max(1, Math.ceil(data.length / pieces));
    for (let i = 0; i < data.length; i += step) await w.write(data.subarray(i, i + step));
    return w.commit();
  };
  const pathOf = (id: string) => join(root, 'objects', id.slice(0, 2), id.slice(2, 4), id);

  it('round-trips objects of every size around the chunk boundary, with SHA-256', async () => {
    for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * 1024 * 1024 + 17]) {
      const data = randomBytes(size);
      const stored = await put(data, 7);
      expect(stored.size).toBe(size);
      expect(stored.sha256).toBe(
        (await import('node:crypto')).createHash('sha256').update(data).digest('hex'),
      );
      expect((await collect(store.read(stored.blobId, key, undefined, stored.sha256))).equals(data)).toBe(
        true,
      );
    }
  });

  it('reads arbitrary ranges by decrypting only the chunks that cover them', async () => {
    const data = randomBytes(10 * CHUNK + 123);
    const { blobId } = await put(data);
    for (let i = 0; i < 200; i++) {
      const a = Math.floor(Math.random() * data.length);
      const b = a + Math.floor(Math.random() * (data.length - a));
      expect(
        (await collect(store.read(blobId, key, { start: a, end: b }))).equals(data.subarray(a, b)),
        `${a}-${b}`,
      ).toBe(true);
    }
    expect(await code(collect(store.read(blobId, key, { start: 0, end: data.length + 1 })))).toBe(
      'blob.bad-range',
    );
  });

  it('detects a flipped byte in ciphertext, tag or header, a wrong key, and a wrong checksum', async () => {
    const data = randomBytes(3 * CHUNK);
    for (const offset of [
      HEADER_SIZE + 5,
      HEADER_SIZE + CHUNK + 3 /* first tag */,
      12 /* header: chunk size */,
      20 /* nonce prefix */,
    ]) {
      const { blobId } = await put(data);
      const bytes = await readFile(pathOf(blobId));
      bytes[offset]! ^= 0x01;
      await writeFile(pathOf(blobId), bytes);
      expect(await code(collect(store.read(blobId, key)))).toBe('blob.integrity');
    }
    const { blobId, sha256 } = await put(data);
    expect(await code(collect(store.read(blobId, randomBytes(32))))).toBe('blob.integrity');
    expect(
      await code(
        collect(store.read(blobId, key, undefined, sha256.replace(/^./, sha256[0] === 'a' ? 'b' : 'a'))),
      ),
    ).toBe('blob.integrity');
  });

  it('detects truncation, swapped chunks and a chunk spliced in from another object', async () => {
    const data = randomBytes(4 * CHUNK + 10);
    const sealed = CHUNK + TAG_SIZE;
    const a = await put(data);
    await truncate(pathOf(a.blobId), HEADER_SIZE + 4 * sealed);
    expect(await code(collect(store.read(a.blobId, key)))).toBe('blob.integrity');

    const b = await put(data);
    const bytes = await readFile(pathOf(b.blobId));
    const c1 = Buffer.from(bytes.subarray(HEADER_SIZE, HEADER_SIZE + sealed));
    bytes.copy(bytes, HEADER_SIZE, HEADER_SIZE + sealed, HEADER_SIZE + 2 * sealed);
    c1.copy(bytes, HEADER_SIZE + sealed);
    await writeFile(pathOf(b.blobId), bytes);
    expect(await code(collect(store.read(b.blobId, key)))).toBe('blob.integrity');

    const c = await put(data);
    const d = await put(data);
    const cb = await readFile(pathOf(c.blobId));
    const db = await readFile(pathOf(d.blobId));
    db.copy(cb, HEADER_SIZE + sealed, HEADER_SIZE + sealed, HEADER_SIZE + 2 * sealed);
    await writeFile(pathOf(c.blobId), cb);
    expect(await code(collect(store.read(c.blobId, key)))).toBe('blob.integrity');
  });

  it('never yields a byte of a chunk that fails authentication', async () => {
    const data = randomBytes(3 * CHUNK);
    const { blobId } = await put(data);
    const bytes = await readFile(pathOf(blobId));
    bytes[HEADER_SIZE + 2 * (CHUNK + TAG_SIZE) + 1]! ^= 0xff;
    await writeFile(pathOf(blobId), bytes);
    const got: Buffer[] = [];
    await expect(
      (async () => {
        for await (const b of store.read(blobId, key)) got.push(b);
      })(),
    ).rejects.toThrow(/chunk 2/);
    // Whatever was yielded before the failure is a verified prefix that stops before the bad chunk.
    const prefix = Buffer.concat(got);
    expect(prefix.length).toBeLessThanOrEqual(2 * CHUNK);
    expect(prefix.equals(data.subarray(0, prefix.length))).toBe(true);
  });

  it('leaves nothing behind on abort, and nothing visible after a crash before commit', async () => {
    const w = await store.create(key);
    await w.write(randomBytes(3 * CHUNK));
    await w.abort();
    await w.abort();
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect(await readdir(join(root, 'objects')).catch(() => [])).toEqual([]);

    const crashed = await store.create(key);
    await crashed.write(randomBytes(2 * 1024 * 1024));
    // The process "dies" here: a new store on the same root sees no object and sweeps the temp file.
    const after = new FsBlobStore({ root, chunkSize: CHUNK });
    expect(await readdir(join(root, 'objects')).catch(() => [])).toEqual([]);
    expect(await after.sweepTemp()).toBe(1);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('reports a missing blob as not found, and deletes idempotently', async () => {
    const { blobId } = await put(randomBytes(10));
    expect(await store.exists(blobId)).toBe(true);
    await store.delete(blobId);
    await store.delete(blobId);
    expect(await store.exists(blobId)).toBe(false);
    expect(await code(collect(store.read(blobId, key)))).toBe('blob.not-found');
    expect(await code(collect(store.read('../../etc/passwd' as BlobId, key)))).toBe('blob.bad-id');
  });

  it('stores no plaintext: a marker written many times appears in no file', async () => {
    const marker = Buffer.from('DOE^JANE^CUSTOSMARKER');
    await put(Buffer.concat(Array.from({ length: 2000 }, () => marker)));
    await put(marker);
    let n = 0;
    for await (const f of files(root)) {
      n++;
      expect((await readFile(f)).includes(marker)).toBe(false);
    }
    expect(n).toBe(2);
  });
});
