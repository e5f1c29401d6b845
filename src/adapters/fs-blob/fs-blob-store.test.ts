import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CustosError } from '../../domain/errors.js';
import type { BlobId } from '../../domain/ids.js';
import { FsBlobStore, tempDirName } from './fs-blob-store.js';
import {
  FORMAT_VERSION,
  FORMAT_VERSION_1,
  HEADER_SIZE,
  TAG_SIZE,
  makeHeader,
  sealChunk,
  setHeaderLength,
} from './chunked-aead.js';

const CHUNK = 4096;
const SEALED = CHUNK + TAG_SIZE;
const key = randomBytes(32);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The pid of a process that has exited (and been reaped). */
const exitedPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

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

async function fileList(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const f of files(dir)) out.push(f);
  return out;
}

/** The error a read fails with (as a CustosError), or undefined when it succeeds. */
async function readError(it: AsyncIterable<Buffer>): Promise<CustosError | undefined> {
  try {
    await collect(it);
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(CustosError);
    return e as CustosError;
  }
}

describe.each([false, true])('FsBlobStore (page-cache calls inline: %s)', (inlineIo) => {
  let root: string;
  let store: FsBlobStore;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'custos-blob-'));
    store = new FsBlobStore({ root, chunkSize: CHUNK, inlineIo });
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const put = async (data: Buffer, pieces = 3, k = key, s = store) => {
    const w = await s.create(k);
    const step = Math.max(1, Math.ceil(data.length / pieces));
    for (let i = 0; i < data.length; i += step) await w.write(data.subarray(i, i + step));
    return w.commit();
  };
  const pathOf = (id: string) => join(root, 'objects', id.slice(0, 2), id);
  const patch = async (id: string, edit: (bytes: Buffer) => void) => {
    const bytes = await readFile(pathOf(id));
    edit(bytes);
    await writeFile(pathOf(id), bytes);
  };

  it('round-trips objects of every size around the chunk boundary, with size and SHA-256', async () => {
    for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * 1024 * 1024 + 17]) {
      for (const pieces of [1, 7]) {
        const data = randomBytes(size);
        const stored = await put(data, pieces);
        expect(stored).toMatchObject({ size, sha256: sha(data) });
        expect(stored.blobId).toMatch(/^[0-9a-f]{32}$/);
        expect(await store.exists(stored.blobId)).toBe(true);
        const back = await collect(store.read(stored.blobId, key, undefined, stored));
        expect(back.equals(data), `size ${size} in ${pieces} pieces`).toBe(true);
      }
    }
  });

  it('reads, finds and deletes objects of the earlier objects/ab/cd/<id> layout', async () => {
    const data = randomBytes(3 * CHUNK + 5);
    const stored = await put(data);
    const legacy = join(root, 'objects', stored.blobId.slice(0, 2), stored.blobId.slice(2, 4), stored.blobId);
    await mkdir(dirname(legacy), { recursive: true });
    await rename(pathOf(stored.blobId), legacy);
    expect(await store.exists(stored.blobId)).toBe(true);
    expect((await collect(store.read(stored.blobId, key, undefined, stored))).equals(data)).toBe(true);
    expect(
      (await collect(store.read(stored.blobId, key, { start: 1, end: 9 }))).equals(data.subarray(1, 9)),
    ).toBe(true);
    await store.delete(stored.blobId);
    expect(await store.exists(stored.blobId)).toBe(false);
    await expect(stat(legacy)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('lists committed blobs of both layouts by id prefix, with their stored size, and no temp file', async () => {
    const a = await put(randomBytes(CHUNK + 1));
    const b = await put(randomBytes(10));
    const legacy = join(root, 'objects', b.blobId.slice(0, 2), b.blobId.slice(2, 4), b.blobId);
    await mkdir(dirname(legacy), { recursive: true });
    await rename(pathOf(b.blobId), legacy);
    const open = await store.create(key);
    await open.write(randomBytes(100));
    const all = async (prefix: string) => {
      const out: { blobId: string; storedBytes: number }[] = [];
      for await (const l of store.list(prefix)) out.push({ blobId: l.blobId, storedBytes: l.storedBytes });
      return out.sort((x, y) => x.blobId.localeCompare(y.blobId));
    };
    expect(await all('')).toEqual(
      [
        { blobId: a.blobId, storedBytes: HEADER_SIZE + SEALED + TAG_SIZE + 1 },
        { blobId: b.blobId, storedBytes: HEADER_SIZE + TAG_SIZE + 10 },
      ].sort((x, y) => x.blobId.localeCompare(y.blobId)),
    );
    for (const { blobId } of [a, b]) {
      expect((await all(blobId.slice(0, 1))).map((l) => l.blobId)).toContain(blobId);
      expect((await all(blobId.slice(0, 3))).map((l) => l.blobId)).toContain(blobId);
      expect(await all(blobId)).toHaveLength(1);
    }
    const other = '0123456789abcdef'.split('').find((d) => d !== a.blobId[0] && d !== b.blobId[0])!;
    expect(await all(other)).toEqual([]);
    await open.abort();
  });

  it('lays objects out as objects/ab/<id> and writes one final chunk even for an empty object', async () => {
    const { blobId } = await put(Buffer.alloc(0));
    expect((await stat(pathOf(blobId))).size).toBe(HEADER_SIZE + TAG_SIZE);
    const full = await put(randomBytes(2 * CHUNK));
    expect((await stat(pathOf(full.blobId))).size).toBe(HEADER_SIZE + 2 * SEALED);
    expect(await fileList(join(root, 'tmp'))).toEqual([]);
  });

  it('writes with the default 64 KiB chunks and without fsync too', async () => {
    const plain = new FsBlobStore({ root, fsync: false, inlineIo });
    const data = randomBytes(5 * 64 * 1024 + 3);
    const stored = await put(data, 1, key, plain);
    expect((await stat(pathOf(stored.blobId))).size).toBe(HEADER_SIZE + data.length + 6 * TAG_SIZE);
    expect((await collect(plain.read(stored.blobId, key, undefined, stored))).equals(data)).toBe(true);
    // The chunk size is read from the header, so a store configured differently reads the same object.
    expect((await collect(store.read(stored.blobId, key))).equals(data)).toBe(true);
  });

  it('keeps what was written even when the caller reuses its buffer after write() resolves', async () => {
    const data = randomBytes(10 * CHUNK + 999);
    const w = await store.create(key);
    const scratch = Buffer.alloc(1500);
    for (let i = 0; i < data.length; i += scratch.length) {
      const n = data.copy(scratch, 0, i, i + scratch.length);
      await w.write(scratch.subarray(0, n));
      scratch.fill(0xee);
    }
    const stored = await w.commit();
    expect(stored.sha256).toBe(sha(data));
    expect((await collect(store.read(stored.blobId, key))).equals(data)).toBe(true);
  });

  it('reads any byte range as exactly the plaintext slice', async () => {
    const data = randomBytes(10 * CHUNK + 123);
    const { blobId } = await put(data);
    await fc.assert(
      fc.asyncProperty(fc.nat(data.length), fc.nat(data.length), async (a, b) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        const got = await collect(store.read(blobId, key, { start, end }));
        expect(got.equals(data.subarray(start, end)), `${start}-${end}`).toBe(true);
      }),
      { numRuns: 300 },
    );
    for (const [start, end] of [
      [CHUNK - 1, CHUNK + 1],
      [CHUNK, 2 * CHUNK],
      [0, data.length],
      [data.length, data.length],
      [10 * CHUNK, data.length],
    ] as const) {
      expect((await collect(store.read(blobId, key, { start, end }))).equals(data.subarray(start, end))).toBe(
        true,
      );
    }
    for (const range of [
      { start: 0, end: data.length + 1 },
      { start: 5, end: 4 },
      { start: -1, end: 4 },
      { start: 0.5, end: 4 },
    ]) {
      expect(await readError(store.read(blobId, key, range))).toMatchObject({
        code: 'blob.bad-range',
        httpStatus: 416,
      });
    }
  });

  it('detects a flipped byte in any chunk ciphertext or tag, naming the blob and the chunk', async () => {
    const data = randomBytes(3 * CHUNK + 100);
    const { blobId } = await put(data);
    const original = await readFile(pathOf(blobId));
    for (let chunk = 0; chunk < 4; chunk++) {
      const bodyLength = chunk < 3 ? CHUNK : 100;
      for (const within of [0, bodyLength - 1, bodyLength /* first tag byte */, bodyLength + TAG_SIZE - 1]) {
        const bytes = Buffer.from(original);
        bytes[HEADER_SIZE + chunk * SEALED + within]! ^= 0x01;
        await writeFile(pathOf(blobId), bytes);
        const err = await readError(store.read(blobId, key));
        expect(err, `chunk ${chunk} +${within}`).toMatchObject({
          code: 'blob.integrity',
          httpStatus: 500,
          detail: { blobId, chunk },
        });
        expect(err?.message).toContain(blobId);
        expect(err?.message).toContain(`chunk ${chunk}`);
      }
    }
  });

  it('detects a flipped bit in every header byte, on whole and on range reads', async () => {
    const data = randomBytes(3 * CHUNK + 100);
    const { blobId } = await put(data);
    const original = await readFile(pathOf(blobId));
    for (let offset = 0; offset < HEADER_SIZE; offset++) {
      const bytes = Buffer.from(original);
      bytes[offset]! ^= 0x01;
      await writeFile(pathOf(blobId), bytes);
      expect((await readError(store.read(blobId, key)))?.code, `header byte ${offset}`).toBe(
        'blob.integrity',
      );
      expect(
        (await readError(store.read(blobId, key, { start: 0, end: 10 })))?.code,
        `header byte ${offset}`,
      ).toBe('blob.integrity');
    }
  });

  it('detects truncation by one chunk, also when the header length is patched to match', async () => {
    const data = randomBytes(4 * CHUNK);
    const a = await put(data);
    await truncate(pathOf(a.blobId), HEADER_SIZE + 3 * SEALED);
    expect((await readError(store.read(a.blobId, key)))?.code).toBe('blob.integrity');
    // A range read that never touches the lost chunk still notices that the file is shorter than recorded.
    expect((await readError(store.read(a.blobId, key, { start: 0, end: 10 })))?.code).toBe('blob.integrity');

    const b = await put(data);
    await truncate(pathOf(b.blobId), HEADER_SIZE + 3 * SEALED);
    await patch(b.blobId, (bytes) => bytes.writeBigUInt64BE(BigInt(3 * CHUNK), 24));
    // Chunk 2 was sealed as "not final", so it cannot pass as the last chunk.
    expect(await readError(store.read(b.blobId, key))).toMatchObject({
      code: 'blob.integrity',
      detail: { chunk: 2 },
    });

    const c = await put(randomBytes(4 * CHUNK + 10));
    await truncate(pathOf(c.blobId), HEADER_SIZE + 4 * SEALED);
    expect((await readError(store.read(c.blobId, key)))?.code).toBe('blob.integrity');
  });

  it('detects two swapped chunks and a chunk spliced in from another object under the same key', async () => {
    const data = randomBytes(4 * CHUNK + 10);
    const b = await put(data);
    await patch(b.blobId, (bytes) => {
      const c0 = Buffer.from(bytes.subarray(HEADER_SIZE, HEADER_SIZE + SEALED));
      bytes.copy(bytes, HEADER_SIZE, HEADER_SIZE + SEALED, HEADER_SIZE + 2 * SEALED);
      c0.copy(bytes, HEADER_SIZE + SEALED);
    });
    expect(await readError(store.read(b.blobId, key))).toMatchObject({
      code: 'blob.integrity',
      detail: { chunk: 0 },
    });

    const c = await put(data);
    const d = await put(data);
    const donor = await readFile(pathOf(d.blobId));
    await patch(c.blobId, (bytes) =>
      donor.copy(bytes, HEADER_SIZE + SEALED, HEADER_SIZE + SEALED, HEADER_SIZE + 2 * SEALED),
    );
    expect(await readError(store.read(c.blobId, key))).toMatchObject({
      code: 'blob.integrity',
      detail: { chunk: 1 },
    });
    // Even the donor's header along with its chunk does not help: the other chunks then fail.
    await patch(c.blobId, (bytes) => donor.copy(bytes, 0, 0, HEADER_SIZE));
    expect((await readError(store.read(c.blobId, key)))?.code).toBe('blob.integrity');
  });

  it("refuses another object of the same study in this one's place, on range reads too, at its first chunk", async () => {
    // Until 6 Dec 2026 a chunk's tag covered neither the blob id nor the index's length: a file swapped with another
    // of the same study (same data key) decrypted cleanly on every range read that left out its final chunk.
    const a = randomBytes(3 * CHUNK + 100);
    const b = randomBytes(3 * CHUNK + 100);
    const sa = await put(a);
    const sb = await put(b);
    const fileA = await readFile(pathOf(sa.blobId));
    await writeFile(pathOf(sa.blobId), await readFile(pathOf(sb.blobId)));
    await writeFile(pathOf(sb.blobId), fileA);
    for (const [id, stored] of [
      [sa.blobId, sa],
      [sb.blobId, sb],
    ] as const) {
      for (const range of [{ start: 0, end: 10 }, { start: CHUNK + 5, end: 2 * CHUNK }, undefined]) {
        expect(await readError(store.read(id, key, range, stored)), JSON.stringify(range)).toMatchObject({
          code: 'blob.integrity',
          detail: { blobId: id, chunk: range ? Math.floor(range.start / CHUNK) : 0 },
        });
        // Without the index's expectations too: the tag binds the id.
        expect((await readError(store.read(id, key, range)))?.code).toBe('blob.integrity');
      }
    }
  });

  it("refuses a stored length that differs from the index's before reading, whole or range", async () => {
    const data = randomBytes(4 * CHUNK);
    const stored = await put(data);
    for (const size of [data.length - 1, data.length + 1, 3 * CHUNK]) {
      for (const range of [undefined, { start: 0, end: 10 }, { start: 3 * CHUNK, end: 3 * CHUNK + 1 }]) {
        const err = await readError(store.read(stored.blobId, key, range, { size }));
        expect(err, `${size} ${JSON.stringify(range)}`).toMatchObject({
          code: 'blob.integrity',
          detail: { chunk: 'header' },
        });
        expect(err?.message).toContain(`where the index records ${size}`);
      }
    }
    // A file cut by a chunk, its header's length edited to match: the range past the cut is not a 416 of a
    // shorter object, but damage.
    await truncate(pathOf(stored.blobId), HEADER_SIZE + 3 * SEALED);
    await patch(stored.blobId, (bytes) => bytes.writeBigUInt64BE(BigInt(3 * CHUNK), 24));
    expect(
      await readError(store.read(stored.blobId, key, { start: 3 * CHUNK, end: 3 * CHUNK + 1 }, stored)),
    ).toMatchObject({ code: 'blob.integrity' });
    expect(
      await readError(store.read(stored.blobId, key, { start: 3 * CHUNK, end: 3 * CHUNK + 1 })),
    ).toMatchObject({ code: 'blob.bad-range' });
  });

  it('reads objects of the format before 6 Dec 2026 (version 1, no object id in the tags), whole and by range', async () => {
    const writeV1 = async (data: Buffer) => {
      const id = randomBytes(16).toString('hex') as BlobId;
      const header = makeHeader(CHUNK, randomBytes(8), FORMAT_VERSION_1);
      setHeaderLength(header, data.length);
      const parts: Buffer[] = [header];
      const n = Math.max(1, Math.ceil(data.length / CHUNK));
      for (let i = 0; i < n; i++) {
        const final = i === n - 1 ? data.length : undefined;
        // Version 1 binds no object id: any id (here none of this object's) gives the same tags.
        parts.push(
          ...sealChunk(key, header, randomBytes(16), i, final, data.subarray(i * CHUNK, (i + 1) * CHUNK)),
        );
      }
      await mkdir(dirname(pathOf(id)), { recursive: true });
      await writeFile(pathOf(id), Buffer.concat(parts));
      return { blobId: id, size: data.length, sha256: sha(data) };
    };
    const data = randomBytes(3 * CHUNK + 100);
    const old = await writeV1(data);
    expect((await collect(store.read(old.blobId, key, undefined, old))).equals(data)).toBe(true);
    const range = { start: CHUNK - 3, end: 2 * CHUNK + 7 };
    expect(
      (await collect(store.read(old.blobId, key, range, old))).equals(data.subarray(range.start, range.end)),
    ).toBe(true);
    // Its header's version cannot be edited to 2 (nor 2 to 1): the header is in every tag.
    await patch(old.blobId, (bytes) => bytes.writeUInt32BE(FORMAT_VERSION, 8));
    expect((await readError(store.read(old.blobId, key, range)))?.code).toBe('blob.integrity');
    const current = await put(data);
    await patch(current.blobId, (bytes) => bytes.writeUInt32BE(FORMAT_VERSION_1, 8));
    expect((await readError(store.read(current.blobId, key, range)))?.code).toBe('blob.integrity');

    // What version 1 still cannot tell on a range read: another object of the same study and size in its place
    // (the whole read's SHA-256 finds it). Of another size, the index's length does.
    const other = await writeV1(randomBytes(data.length));
    const shorter = await writeV1(randomBytes(2 * CHUNK));
    await writeFile(pathOf(old.blobId), await readFile(pathOf(other.blobId)));
    expect((await collect(store.read(old.blobId, key, range, old))).length).toBe(range.end - range.start);
    expect((await readError(store.read(old.blobId, key, undefined, old)))?.detail).toMatchObject({
      chunk: 'sha256',
    });
    await writeFile(pathOf(old.blobId), await readFile(pathOf(shorter.blobId)));
    expect(await readError(store.read(old.blobId, key, { start: 0, end: 10 }, old))).toMatchObject({
      code: 'blob.integrity',
      detail: { chunk: 'header' },
    });
  });

  it('refuses to decrypt under a wrong key', async () => {
    const { blobId } = await put(randomBytes(CHUNK + 1));
    expect(await readError(store.read(blobId, randomBytes(32)))).toMatchObject({
      code: 'blob.integrity',
      detail: { chunk: 0 },
    });
    expect(
      (await readError(store.read(blobId, randomBytes(32), { start: CHUNK, end: CHUNK + 1 })))?.code,
    ).toBe('blob.integrity');
  });

  it('detects a SHA-256 mismatch and holds back the final chunk when it does', async () => {
    const data = randomBytes(3 * CHUNK + 7);
    const { blobId, sha256 } = await put(data);
    const wrong = sha256.replace(/^./, sha256[0] === 'a' ? 'b' : 'a');
    const got: Buffer[] = [];
    let failure: unknown;
    try {
      for await (const b of store.read(blobId, key, undefined, { sha256: wrong })) got.push(b);
    } catch (e) {
      failure = e;
    }
    expect(failure).toMatchObject({ code: 'blob.integrity', httpStatus: 500 });
    const prefix = Buffer.concat(got);
    expect(prefix.length).toBe(3 * CHUNK);
    expect(prefix.equals(data.subarray(0, prefix.length))).toBe(true);
    // The digest applies to whole reads only; a range read with a digest is served by the tags alone.
    expect(
      (await collect(store.read(blobId, key, { start: 1, end: 9 }, { sha256: wrong }))).equals(
        data.subarray(1, 9),
      ),
    ).toBe(true);
  });

  it('never yields a byte of a chunk that fails authentication', async () => {
    const data = randomBytes(3 * CHUNK);
    const { blobId } = await put(data);
    await patch(blobId, (bytes) => {
      bytes[HEADER_SIZE + 2 * SEALED + 1]! ^= 0xff;
    });
    const got: Buffer[] = [];
    await expect(
      (async () => {
        for await (const b of store.read(blobId, key)) got.push(b);
      })(),
    ).rejects.toThrow(/chunk 2/);
    const prefix = Buffer.concat(got);
    expect(prefix.length).toBeLessThanOrEqual(2 * CHUNK);
    expect(prefix.equals(data.subarray(0, prefix.length))).toBe(true);
  });

  it('leaves nothing in objects/ nor tmp/ after abort, and abort is idempotent', async () => {
    const w = await store.create(key);
    await w.write(randomBytes(3 * 1024 * 1024));
    await w.abort();
    await w.abort();
    expect(await fileList(root)).toEqual([]);
    await expect(w.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'blob.closed' });
    await expect(w.commit()).rejects.toMatchObject({ code: 'blob.closed' });
  });

  it('shows no blob after a crash before commit, and sweepTemp removes the temp file', async () => {
    const crashed = await store.create(key);
    await crashed.write(randomBytes(2 * 1024 * 1024 + 5));
    // The process "dies" here: its temp directory now bears the name of a process that has exited. A new store on
    // the same root sees no object, and sweeps the leftover.
    const [own] = await readdir(join(root, 'tmp'));
    await rename(join(root, 'tmp', own!), join(root, 'tmp', tempDirName(exitedPid(), '1', 'deadbeef')));
    const after = new FsBlobStore({ root, chunkSize: CHUNK, inlineIo });
    expect(await fileList(join(root, 'objects'))).toEqual([]);
    expect((await fileList(join(root, 'tmp'))).length).toBe(1);
    expect(await after.sweepTemp()).toBe(1);
    expect(await fileList(root)).toEqual([]);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect(await after.sweepTemp()).toBe(0);
  });

  it('leaves the temp files of live processes and other hosts alone, and sweeps a reused pid and the old layout', async () => {
    const w = await store.create(key);
    await w.write(randomBytes(100));
    const tmp = join(root, 'tmp');
    const [own] = await readdir(tmp);
    // Another store over the same root (a CLI command, another server process; here in this process) starts
    // while the first one writes.
    const other = new FsBlobStore({ root, chunkSize: CHUNK, inlineIo });
    expect(await other.sweepTemp()).toBe(0);
    // A process of another host sharing the directory: this host cannot tell whether it runs.
    const remote = tempDirName(process.pid, '1', 'abcdef01', 'other-host');
    // A process that died, whose pid now belongs to one started later (this one): the start ticks differ.
    const reused = tempDirName(process.pid, '1', 'abcdef02');
    for (const d of [remote, reused]) {
      await mkdir(join(tmp, d));
      await writeFile(join(tmp, d, `${'0'.repeat(32)}.partial`), 'x');
    }
    // A temp file of the layout before owner directories.
    await writeFile(join(tmp, `${'1'.repeat(32)}.partial`), 'y');
    expect(await other.sweepTemp()).toBe(2);
    expect((await readdir(tmp)).sort()).toEqual([own, remote].sort());
    const stored = await w.commit();
    expect((await collect(store.read(stored.blobId, key, undefined, stored))).length).toBe(100);
  });

  it('does not sweep the temp file of its own writer that is still open', async () => {
    const w = await store.create(key);
    await w.write(randomBytes(100));
    expect(await store.sweepTemp()).toBe(0);
    const stored = await w.commit();
    expect((await collect(store.read(stored.blobId, key, undefined, stored))).length).toBe(100);
  });

  it('refuses a write() that overlaps the previous one, and a data key of the wrong size', async () => {
    const w = await store.create(key);
    const first = w.write(randomBytes(3 * 1024 * 1024));
    await expect(w.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'blob.concurrent-write' });
    await first;
    await w.abort();
    await expect(store.create(randomBytes(16))).rejects.toMatchObject({ code: 'blob.bad-key' });
  });

  it('reports a missing blob as not found (404), and deletes idempotently', async () => {
    const { blobId } = await put(randomBytes(10));
    await store.delete(blobId);
    await store.delete(blobId);
    expect(await store.exists(blobId)).toBe(false);
    expect(await readError(store.read(blobId, key))).toMatchObject({
      code: 'blob.not-found',
      httpStatus: 404,
    });
    expect((await readError(store.read('../../etc/passwd' as BlobId, key)))?.code).toBe('blob.bad-id');
  });

  it('stores no plaintext: a marker written many times appears in no file, during or after the write', async () => {
    const marker = Buffer.from('DOE^JANE^CUSTOSMARKER');
    const many = Buffer.concat(Array.from({ length: 5000 }, () => marker));
    const open = await store.create(key);
    await open.write(many);
    await put(many, 9);
    await put(marker);
    const seen = await fileList(root);
    expect(seen.length).toBe(3);
    for (const f of seen) expect((await readFile(f)).includes(marker), f).toBe(false);
    await open.commit();
    for (const f of await fileList(root)) expect((await readFile(f)).includes(marker), f).toBe(false);
  });
});
