import {
  close,
  closeSync,
  fdatasync,
  fstat,
  fstatSync,
  fsync,
  mkdir,
  mkdirSync,
  open,
  openSync,
  read,
  readSync,
  rename,
  renameSync,
  rm,
  rmSync,
  writeSync,
  writev,
  writevSync,
} from 'node:fs';
import { promisify } from 'node:util';

/**
 * The file system calls a blob writer and reader make, on file descriptors. Two ways to make them:
 *
 * - `asyncFileIo`: every call in the libuv pool, for a writer on the server's event loop, which must never wait
 *   for the disk.
 * - `inlineFileIo`: the calls that only touch the page cache (open, write, close, rename, mkdir, unlink) made
 *   directly on the calling thread, and only the ones that wait for the disk (fdatasync, fsync) in the pool. For
 *   a writer on a thread of its own (blob-writer-worker.ts): each hop to the pool and back is two thread
 *   wake-ups, which cost more than the call itself on a virtual machine with two cores.
 */
export interface BlobFileIo {
  /** Create `path` exclusively (O_EXCL), owner-only. */
  openNew(path: string): Promise<number>;
  writev(fd: number, bufs: Buffer[], position: number): Promise<number>;
  write(fd: number, buf: Buffer, position: number): Promise<number>;
  datasync(fd: number): Promise<void>;
  close(fd: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** mkdir without -p; rejects with EEXIST when it exists. */
  mkdir(dir: string): Promise<void>;
  /** Makes the directory's entries durable (fsync of the directory). */
  syncDir(dir: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** Open an existing file for reading. */
  openRead(path: string): Promise<number>;
  /** Size in bytes of an open file. */
  size(fd: number): Promise<number>;
  /** Read up to `length` bytes at `position` into the start of `buf`; the number read. */
  read(fd: number, buf: Buffer, length: number, position: number): Promise<number>;
}

const p = {
  open: promisify(open),
  fstat: promisify(fstat),
  close: promisify(close),
  fdatasync: promisify(fdatasync),
  fsync: promisify(fsync),
  rename: promisify(rename),
  mkdir: promisify(mkdir),
  rm: promisify(rm),
};

function writevAsync(fd: number, bufs: Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    writev(fd, bufs, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

export const asyncFileIo: BlobFileIo = {
  openNew: (path) => p.open(path, 'wx', 0o600),
  writev: writevAsync,
  write: (fd, buf, position) => writevAsync(fd, [buf], position),
  datasync: (fd) => p.fdatasync(fd),
  close: (fd) => p.close(fd),
  rename: (from, to) => p.rename(from, to),
  mkdir: async (dir) => {
    await p.mkdir(dir, { mode: 0o700 });
  },
  syncDir: async (dir) => {
    const fd = await p.open(dir, 'r');
    try {
      await p.fsync(fd);
    } finally {
      await p.close(fd);
    }
  },
  remove: (path) => p.rm(path, { force: true }),
  openRead: (path) => p.open(path, 'r'),
  size: async (fd) => (await p.fstat(fd)).size,
  read: (fd, buf, length, position) =>
    new Promise((resolve, reject) =>
      read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))),
    ),
};

/** Runs `fn` now and reports its outcome as a promise (a throw becomes a rejection). */
const now = <T>(fn: () => T): Promise<T> => {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
};

export const inlineFileIo: BlobFileIo = {
  openNew: (path) => now(() => openSync(path, 'wx', 0o600)),
  writev: (fd, bufs, position) => now(() => writevSync(fd, bufs, position)),
  write: (fd, buf, position) => now(() => writeSync(fd, buf, 0, buf.length, position)),
  datasync: (fd) => p.fdatasync(fd),
  close: (fd) => now(() => closeSync(fd)),
  rename: (from, to) => now(() => renameSync(from, to)),
  mkdir: (dir) => now(() => void mkdirSync(dir, { mode: 0o700 })),
  syncDir: async (dir) => {
    const fd = openSync(dir, 'r');
    try {
      await p.fsync(fd);
    } finally {
      closeSync(fd);
    }
  },
  remove: (path) => now(() => rmSync(path, { force: true })),
  openRead: (path) => now(() => openSync(path, 'r')),
  size: (fd) => now(() => fstatSync(fd).size),
  read: (fd, buf, length, position) => now(() => readSync(fd, buf, 0, length, position)),
};
