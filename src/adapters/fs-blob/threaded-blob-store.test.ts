import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore, tempDirName } from './fs-blob-store.js';
import { ThreadedBlobStore } from './threaded-blob-store.js';
import { asBlobId } from '../../domain/ids.js';
import { expectedFileSize } from './chunked-aead.js';

const CHUNK = 4096;
const key = randomBytes(32);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return Buffer.concat(out);
}

async function fileList(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await fileList(p)));
    else out.push(p);
  }
  return out;
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('ThreadedBlobStore', () => {
  let root: string;
  let store: ThreadedBlobStore;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'custos-tblob-'));
    store = new ThreadedBlobStore({ root, chunkSize: CHUNK });
  });
  afterEach(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  const put = async (data: Buffer, pieces = 3) => {
    const w = await store.create(key);
    const step = Math.max(1, Math.ceil(data.length / pieces));
    for (let i = 0; i < data.length; i += step) await w.write(data.subarray(i, i + step));
    return w.commit();
  };

  it('writes on its thread what FsBlobStore reads back: every size around the chunk and staging boundaries', async () => {
    const plain = new FsBlobStore({ root, chunkSize: CHUNK });
    const mib = 1024 * 1024;
    for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, mib - 1, mib, mib + 1, 3 * mib + 17]) {
      for (const pieces of [1, 7]) {
        const data = randomBytes(size);
        const stored = await put(data, pieces);
        expect(stored).toMatchObject({ size, sha256: sha(data) });
        expect((await stat(join(root, 'objects', stored.blobId.slice(0, 2), stored.blobId))).size).toBe(
          expectedFileSize(size, CHUNK),
        );
        const back = await collect(plain.read(stored.blobId, key, undefined, stored));
        expect(back.equals(data), `size ${size} in ${pieces} pieces`).toBe(true);
        if (size > 1) {
          const range = await collect(store.read(stored.blobId, key, { start: 1, end: size - 1 }));
          expect(range.equals(data.subarray(1, size - 1))).toBe(true);
        }
      }
    }
    expect(await fileList(join(root, 'tmp'))).toEqual([]);
  });

  it('keeps what was written even when the caller reuses its buffer after write() resolves', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 999);
    const w = await store.create(key);
    const scratch = Buffer.alloc(70_000);
    for (let i = 0; i < data.length; i += scratch.length) {
      const n = data.copy(scratch, 0, i, i + scratch.length);
      await w.write(scratch.subarray(0, n));
      scratch.fill(0xee);
    }
    const stored = await w.commit();
    expect(stored.sha256).toBe(sha(data));
    expect((await collect(store.read(stored.blobId, key))).equals(data)).toBe(true);
  });

  it('keeps concurrent writers apart', async () => {
    const datas = Array.from({ length: 12 }, (_, i) => randomBytes(200_000 * i + 5));
    const stored = await Promise.all(datas.map((d, i) => put(d, 1 + (i % 5))));
    for (const [i, s] of stored.entries()) {
      expect(s.sha256).toBe(sha(datas[i]!));
      expect((await collect(store.read(s.blobId, key, undefined, s))).equals(datas[i]!)).toBe(true);
    }
  });

  it('leaves nothing behind after abort, and abort is idempotent', async () => {
    const w = await store.create(key);
    await w.write(randomBytes(3 * 1024 * 1024));
    await w.abort();
    await w.abort();
    expect(await fileList(root)).toEqual([]);
    await expect(w.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'blob.closed' });
    await expect(w.commit()).rejects.toMatchObject({ code: 'blob.closed' });
  });

  it('refuses a write() that overlaps the previous one, and a data key of the wrong size', async () => {
    const w = await store.create(key);
    // More than the thread may hold for one writer: the first write waits for the thread.
    const first = w.write(randomBytes(5 * 1024 * 1024));
    await expect(w.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'blob.concurrent-write' });
    await expect(w.commit()).rejects.toMatchObject({ code: 'blob.concurrent-write' });
    await first;
    await w.abort();
    await expect(store.create(randomBytes(16))).rejects.toMatchObject({ code: 'blob.bad-key' });
  });

  it('reports a file system failure on the thread as a CustosError, stores nothing, and goes on working', async () => {
    // tmp/ is a file: the thread cannot create the object's temp file.
    await writeFile(join(root, 'tmp'), 'not a directory');
    const w = await store.create(key);
    const failed = (async () => {
      await w.write(randomBytes(3 * 1024 * 1024));
      return w.commit();
    })();
    await expect(failed).rejects.toMatchObject({ code: 'blob.write-failed' });
    await w.abort();
    expect(await fileList(join(root, 'objects'))).toEqual([]);
    await rm(join(root, 'tmp'));
    // A new store: FsBlobStore remembers the directories it has seen, and it saw a tmp/ (the file).
    await store.close();
    store = new ThreadedBlobStore({ root, chunkSize: CHUNK });
    const data = randomBytes(10_000);
    expect((await put(data)).sha256).toBe(sha(data));
  });

  it('sends the last staged bytes with the commit and gets the staging buffer back, also when the write fails', async () => {
    const pooled = () => (store as unknown as { free: ArrayBuffer[] }).free.length;
    const sent: string[] = [];
    const post = store.post.bind(store);
    store.post = (worker, m, transfer) => {
      sent.push(m.op);
      post(worker, m, transfer);
    };
    const data = randomBytes(300_000);
    const w = await store.create(key);
    await w.write(data);
    expect(pooled()).toBe(0); // the one staging buffer holds the object, not yet sent
    let sealedPooled = -1;
    const stored = await w.commit(() => (sealedPooled = pooled()));
    expect(sealedPooled).toBe(1); // back with the `sealed` answer, before the blob is durable
    expect(pooled()).toBe(1);
    expect(sent).toEqual(['create', 'commit']);
    expect(await collect(new FsBlobStore({ root, chunkSize: CHUNK }).read(stored.blobId, key))).toEqual(data);
    // A commit whose file cannot be created fails and still gives the buffer back.
    await rm(join(root, 'tmp'), { recursive: true, force: true });
    await writeFile(join(root, 'tmp'), 'not a directory');
    await store.close();
    store = new ThreadedBlobStore({ root, chunkSize: CHUNK });
    const failing = await store.create(key);
    await failing.write(data);
    await expect(failing.commit()).rejects.toMatchObject({ code: 'blob.write-failed' });
    expect(pooled()).toBe(1);
  });

  it("tells commit()'s caller the id, size and digest once sealed, before the blob is durable", async () => {
    const data = randomBytes(1_500_000);
    const events: string[] = [];
    let seen: unknown;
    const w = await store.create(key);
    await w.write(data);
    const stored = await w
      .commit((blob) => {
        events.push('sealed');
        seen = blob;
      })
      .finally(() => events.push('committed'));
    expect(events).toEqual(['sealed', 'committed']);
    expect(seen).toEqual(stored);
    expect(stored).toMatchObject({ size: data.length, sha256: sha(data) });
    expect((await collect(store.read(stored.blobId, key, undefined, stored))).equals(data)).toBe(true);
  });

  it('fails a commit whose blob cannot be published after it was sealed, and leaves nothing behind', async () => {
    // objects/ is a file: the sealed object cannot be renamed into place.
    await writeFile(join(root, 'objects'), 'not a directory');
    const w = await store.create(key);
    await w.write(randomBytes(200_000));
    let sealed = 0;
    await expect(w.commit(() => sealed++)).rejects.toMatchObject({ code: 'blob.write-failed' });
    expect(sealed).toBe(1);
    expect(await fileList(join(root, 'tmp'))).toEqual([]);
  });

  it('fails the open writers when the thread is stopped, and starts a new thread for the next writer', async () => {
    const w = await store.create(key);
    await w.write(randomBytes(1000));
    await store.close();
    await expect(w.commit()).rejects.toMatchObject({ code: 'blob.write-failed' });
    const data = randomBytes(5000);
    const stored = await put(data);
    expect((await collect(store.read(stored.blobId, key, undefined, stored))).equals(data)).toBe(true);
  });

  it('does not sweep the temp files of its open writers nor those of a live store, and sweeps a crashed one', async () => {
    const crashed = new ThreadedBlobStore({ root, chunkSize: CHUNK });
    const left = await crashed.create(key);
    await left.write(randomBytes(2 * 1024 * 1024 + 5));
    await until(async () => (await fileList(join(root, 'tmp'))).length === 1);
    const [theirs] = await readdir(join(root, 'tmp'));
    const w = await store.create(key);
    await w.write(randomBytes(2 * 1024 * 1024 + 5));
    await until(async () => (await fileList(join(root, 'tmp'))).length === 2);
    // Both writers belong to stores of a running process: nothing to sweep.
    expect(await store.sweepTemp()).toBe(0);
    // The other store's process "dies": its temp directory now bears the name of a process that has exited.
    const dead = tempDirName(spawnSync(process.execPath, ['-e', '']).pid!, '1', 'deadbeef');
    await rename(join(root, 'tmp', theirs!), join(root, 'tmp', dead));
    expect(await store.sweepTemp()).toBe(1);
    expect((await fileList(join(root, 'tmp'))).length).toBe(1);
    const stored = await w.commit();
    expect(stored.size).toBe(2 * 1024 * 1024 + 5);
    await crashed.close();
  });

  /** Descriptors this process holds open (the thread's among them: it is a thread of this process). */
  const openFds = async () => (await readdir('/proc/self/fd')).length;

  it('reads on its thread: whole objects and ranges as FsBlobStore reads them, more than a message at a time', async () => {
    const plain = new FsBlobStore({ root, chunkSize: CHUNK });
    const mib = 1024 * 1024;
    for (const size of [0, 1, CHUNK - 1, CHUNK + 1, mib + 3, 5 * mib + 17]) {
      const data = randomBytes(size);
      const stored = await put(data);
      const pieces: Buffer[] = [];
      for await (const b of store.read(stored.blobId, key, undefined, stored)) pieces.push(b);
      expect(Buffer.concat(pieces).equals(data), `size ${size}`).toBe(true);
      // The same pieces as the reader on the event loop yields, one decrypted chunk each.
      const direct: number[] = [];
      for await (const b of plain.read(stored.blobId, key, undefined, stored)) direct.push(b.length);
      expect(pieces.map((b) => b.length)).toEqual(direct);
      for (const [start, end] of [
        [0, size],
        [Math.floor(size / 3), Math.floor((2 * size) / 3)],
        [size, size],
      ] as const) {
        const range = await collect(store.read(stored.blobId, key, { start, end }));
        expect(range.equals(data.subarray(start, end)), `size ${size} range ${start}-${end}`).toBe(true);
      }
    }
  });

  it('serves concurrent reads and writes on the one thread without mixing them up', async () => {
    const datas = Array.from({ length: 6 }, (_, i) => randomBytes(700_000 * i + 11));
    const stored = await Promise.all(datas.map((d) => put(d)));
    const more = datas.map(() => randomBytes(1_500_000));
    const [back, written] = await Promise.all([
      Promise.all(stored.map((s) => collect(store.read(s.blobId, key, undefined, s)))),
      Promise.all(more.map((d) => put(d, 4))),
    ]);
    for (const [i, b] of back.entries()) expect(b.equals(datas[i]!)).toBe(true);
    for (const [i, s] of written.entries()) expect(s.sha256).toBe(sha(more[i]!));
  });

  it('stops a read its consumer leaves early, closing the file, and goes on serving', async () => {
    const data = randomBytes(8 * 1024 * 1024);
    const stored = await put(data);
    await collect(store.read(stored.blobId, key)); // the thread is running and has settled
    const before = await openFds();
    for (let i = 0; i < 5; i++) {
      for await (const b of store.read(stored.blobId, key, undefined, stored)) {
        expect(b.equals(data.subarray(0, b.length))).toBe(true);
        break;
      }
    }
    await until(async () => (await openFds()) === before);
    expect(await openFds()).toBe(before);
    expect((await collect(store.read(stored.blobId, key, undefined, stored))).equals(data)).toBe(true);
  });

  it('reports what the thread finds wrong as FsBlobStore does: missing, tampered, another digest, bad range', async () => {
    await expect(collect(store.read(asBlobId('ab'.repeat(16)), key))).rejects.toMatchObject({
      code: 'blob.not-found',
      httpStatus: 404,
    });
    const data = randomBytes(5 * CHUNK + 100);
    const stored = await put(data);
    await expect(
      collect(store.read(stored.blobId, key, { start: 10, end: data.length + 1 })),
    ).rejects.toMatchObject({
      code: 'blob.bad-range',
      httpStatus: 416,
    });
    // Another digest: every piece but the final one arrives, then the failure; the final piece never does.
    const got: Buffer[] = [];
    await expect(
      (async () => {
        for await (const b of store.read(stored.blobId, key, undefined, {
          sha256: sha(Buffer.from('other')),
        }))
          got.push(b);
      })(),
    ).rejects.toMatchObject({ code: 'blob.integrity' });
    expect(Buffer.concat(got).equals(data.subarray(0, 5 * CHUNK))).toBe(true);
    // One flipped ciphertext byte in the third chunk: the first two arrive, then the failure names the chunk.
    const path = join(root, 'objects', stored.blobId.slice(0, 2), stored.blobId);
    const fh = await open(path, 'r+');
    const at = 32 + 2 * (CHUNK + 16) + 7;
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0]! ^= 1;
    await fh.write(b, 0, 1, at);
    await fh.close();
    got.length = 0;
    await expect(
      (async () => {
        for await (const piece of store.read(stored.blobId, key)) got.push(piece);
      })(),
    ).rejects.toMatchObject({ code: 'blob.integrity', detail: { blobId: stored.blobId, chunk: 2 } });
    expect(Buffer.concat(got).equals(data.subarray(0, 2 * CHUNK))).toBe(true);
  });

  it('fails a read in progress when the thread is stopped, and reads again on a new thread', async () => {
    const data = randomBytes(6 * 1024 * 1024);
    const stored = await put(data);
    const reading = (async () => {
      let n = 0;
      for await (const b of store.read(stored.blobId, key, undefined, stored)) {
        n += b.length;
        if (n === b.length) await store.close();
      }
      return n;
    })();
    await expect(reading).rejects.toMatchObject({ code: 'blob.read-failed' });
    expect((await collect(store.read(stored.blobId, key, undefined, stored))).equals(data)).toBe(true);
  });

  it('stores no plaintext: a marker written many times appears in no file, during or after the write', async () => {
    const marker = Buffer.from('DOE^JANE^CUSTOSMARKER');
    const many = Buffer.concat(Array.from({ length: 100_000 }, () => marker));
    const open = await store.create(key);
    await open.write(many);
    await put(many, 9);
    await until(async () => (await fileList(root)).length === 2);
    for (const f of await fileList(root)) expect((await readFile(f)).includes(marker), f).toBe(false);
    const stored = await open.commit();
    expect(stored.size).toBe(many.length);
    for (const f of await fileList(root)) expect((await readFile(f)).includes(marker), f).toBe(false);
  });
});
