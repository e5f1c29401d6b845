import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, type Dirent } from 'node:fs';
import { mkdir, readdir, rm, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CustosError } from '../../domain/errors.js';
import { asBlobId, type BlobId } from '../../domain/ids.js';
import { storageFull, storageWriteError } from '../../domain/storage-full.js';
import type { BlobStore, BlobWriter, ExpectedBlob, ListedBlob, StoredBlob } from '../../ports/blob-store.js';
import { asyncFileIo, inlineFileIo, type BlobFileIo } from './blob-file-io.js';
import {
  HEADER_SIZE,
  MAX_CHUNKS,
  TAG_SIZE,
  chunkCount,
  expectedFileSize,
  isValidChunkSize,
  makeHeader,
  objectIdOf,
  openChunk,
  parseHeader,
  sealChunk,
  setHeaderLength,
} from './chunked-aead.js';

/** A write that found no room, or a volume that refuses writes, as the archive reports it (domain/storage-full.ts). */
const asStorageError = (e: unknown): unknown => storageWriteError('the blob volume', e);

export interface FsBlobStoreOptions {
  root: string;
  /** Plaintext bytes per authenticated chunk (default 64 KiB). Existing objects keep the size they were written with. */
  chunkSize?: number;
  /** fsync files and directories before a blob becomes visible (default true). */
  fsync?: boolean;
  /**
   * Writers and readers make the calls that only touch the page cache on the calling thread (blob-file-io.ts
   * `inlineFileIo`); for a store on a thread of its own, never on the server's event loop (default false).
   */
  inlineIo?: boolean;
}

export const DEFAULT_CHUNK_SIZE = 64 * 1024;
/**
 * Ciphertext gathered before one positional write in the pool: large sequential writes, few syscalls, and the
 * next batch is encrypted while one is written. With inline calls a write does not overlap anything, so each
 * sealed chunk is written at once and nothing more than a chunk of ciphertext is held per writer.
 */
const FLUSH_BYTES = 1024 * 1024;
/** Ciphertext fetched by one positional read (rounded to whole chunks). */
const READ_BATCH_BYTES = 1024 * 1024;
/** Batch buffers kept for reuse between reads (readBuffers). */
const READ_BUFFERS_KEPT = 4;
/**
 * With fsync on, a background fdatasync is started after this many bytes so the disk writes back while the
 * next bytes are encrypted, instead of all at once in commit().
 */
const EARLY_SYNC_BYTES = 32 * 1024 * 1024;
const TMP_SUFFIX = '.partial';
const BLOB_ID_RE = /^[0-9a-f]{32}$/;

const integrity = (blobId: string, chunk: number | string, why: string) =>
  new CustosError({
    code: 'blob.integrity',
    message: `stored object ${blobId} failed its integrity check at chunk ${chunk} (${why}); it is not served`,
    httpStatus: 500,
    detail: { blobId, chunk },
  });

const isErrno = (e: unknown, code: string) => (e as NodeJS.ErrnoException | undefined)?.code === code;

/** A two-hex-digit directory of objects/ (objects/ab/, and objects/ab/cd/ of the earlier layout). */
const SHARD_RE = /^[0-9a-f]{2}$/;
const entriesOf = async (dir: string): Promise<Dirent[]> =>
  readdir(dir, { withFileTypes: true }).catch(() => []);

/** `f` in `dir` as list() yields it, when it is a blob whose id starts with `prefix`. */
async function* listed(dir: string, f: Dirent, prefix: string): AsyncGenerator<ListedBlob> {
  if (!f.isFile() || !BLOB_ID_RE.test(f.name) || !f.name.startsWith(prefix)) return;
  const st = await stat(join(dir, f.name)).catch(() => undefined);
  if (st) yield { blobId: asBlobId(f.name), storedBytes: st.size, modifiedAt: st.mtime };
}

/** When a process started (clock ticks since boot, field 22 of /proc/<pid>/stat); undefined without /proc. */
function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** This machine's name as it appears in temp directory names. */
const HOST = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
/** `tmp/<pid>.<start ticks>.<8 hex>@<host>`: the temp directory of one store of one process. */
const OWNER_RE = /^(\d+)\.(\d+)\.[0-9a-f]{8}@(.+)$/;

/** The name of a store's temp directory under tmp/ (OWNER_RE); `ticks` '0' where /proc does not tell. */
export function tempDirName(pid: number, ticks: string, tag: string, host = HOST): string {
  return `${pid}.${ticks}.${tag}@${host}`;
}

/** A temp directory name (OWNER_RE) for this process, for other temp areas of the data directory (STOW-RS spool). */
export function ownTempDirName(tag: string): string {
  return tempDirName(process.pid, startTicks(process.pid) ?? '0', tag);
}

/** Whether a temp directory name (OWNER_RE) is that of a process of this host that no longer runs. */
export function ownerGone(name: string): boolean {
  const owner = OWNER_RE.exec(name);
  return owner !== null && owner[3] === HOST && !ownerAlive(Number(owner[1]), owner[2]!);
}

/**
 * Whether the process that named a temp directory still runs: its pid exists and, where /proc tells, started
 * when the name says (a pid reused by another process after a crash does not keep the leftovers alive).
 */
function ownerAlive(pid: number, ticks: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (isErrno(e, 'ESRCH')) return false;
  }
  const now = ticks === '0' ? undefined : startTicks(pid);
  return now === undefined || now === ticks;
}

/**
 * Encrypted, checksummed blobs on the local filesystem (format: chunked-aead.ts).
 *
 * Layout: `root/objects/ab/<blobId>` for committed objects (`objects/ab/cd/<blobId>` in archives written before,
 * still read) and `root/tmp/<owner>/<blobId>.partial` for writes in flight, where `<owner>` names the store and
 * its process (`<pid>.<start ticks>.<random>@<host>`). A writer encrypts into its temp file, fdatasyncs, renames
 * into objects/ and fsyncs the directory, so an object is either complete and durable or absent; `sweepTemp()`
 * removes what a crash left in tmp/: the temp directories of processes of this host that no longer run, never
 * those of a server or command still writing (a CLI command opens the data directory while the server runs).
 */
export class FsBlobStore implements BlobStore {
  readonly root: string;
  private readonly chunkSize: number;
  private readonly fsync: boolean;
  private readonly io: BlobFileIo;
  /** Directories known to exist (and, for those this process created, whose entry is durable). */
  private readonly dirs = new Map<string, Promise<void>>();
  /** This store's own temp directory (tmp/<owner>), created with its first writer. */
  private readonly tmpDir: string;
  /** Temp files of writers of this instance that are still open: sweepTemp leaves them alone. */
  private readonly inFlight = new Set<string>();
  /**
   * Ciphertext batch buffers of finished reads, for the next ones: a retrieve of many objects would otherwise
   * allocate two for each, and the C heap keeps the high-water mark of what was freed but not yet collected.
   */
  private readonly readBuffers: Buffer[] = [];

  constructor(opts: FsBlobStoreOptions) {
    this.root = resolve(opts.root);
    this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.fsync = opts.fsync ?? true;
    this.io = opts.inlineIo ? inlineFileIo : asyncFileIo;
    const tag = randomBytes(4).toString('hex');
    this.tmpDir = join(this.root, 'tmp', tempDirName(process.pid, startTicks(process.pid) ?? '0', tag));
    if (!isValidChunkSize(this.chunkSize)) {
      throw new CustosError({
        code: 'config.invalid',
        message: `blob chunk size ${this.chunkSize} is not an integer between 1 and 64 MiB`,
      });
    }
  }

  /**
   * Where an object is written: `objects/ab/<id>`, 256 directories that exist after the first few hundred
   * objects, so an object's commit seldom has a directory to create and make durable first.
   */
  private pathOf(id: string): string {
    if (!BLOB_ID_RE.test(id))
      throw new CustosError({ code: 'blob.bad-id', message: `'${id}' is not a blob id`, httpStatus: 400 });
    return join(this.root, 'objects', id.slice(0, 2), id);
  }

  /** Where archives written before the flatter layout keep their objects (`objects/ab/cd/<id>`); still read. */
  private legacyPathOf(id: string): string {
    return join(this.root, 'objects', id.slice(0, 2), id.slice(2, 4), id);
  }

  /**
   * mkdir -p that also makes each newly created entry durable (fsync of its parent), memoised so that concurrent
   * commits into a new directory all wait for the same fsync.
   */
  private ensureDir(dir: string): Promise<void> {
    let p = this.dirs.get(dir);
    if (!p) {
      p = (async () => {
        if (dir === this.root || dirname(dir) === dir) {
          await mkdir(dir, { recursive: true, mode: 0o700 });
          return;
        }
        await this.ensureDir(dirname(dir));
        try {
          await this.io.mkdir(dir);
        } catch (e) {
          if (isErrno(e, 'EEXIST')) return;
          throw e;
        }
        if (this.fsync) await this.io.syncDir(dirname(dir));
      })();
      this.dirs.set(dir, p);
      p.catch(() => this.dirs.delete(dir));
    }
    return p;
  }

  async create(dataKey: Buffer): Promise<BlobWriter> {
    if (dataKey.length !== 32)
      throw new CustosError({ code: 'blob.bad-key', message: 'a blob data key must be 32 bytes (AES-256)' });
    const id = randomBytes(16).toString('hex');
    const tmpPath = join(this.tmpDir, id + TMP_SUFFIX);
    let fd: number;
    try {
      await this.ensureDir(this.tmpDir);
      fd = await this.io.openNew(tmpPath);
    } catch (e) {
      throw asStorageError(e);
    }
    this.inFlight.add(tmpPath);
    return new FsBlobWriter(
      {
        publish: (fd) => this.publish(fd, tmpPath, id),
        discard: (fd) => this.discard(fd, tmpPath),
      },
      this.io,
      fd,
      id,
      dataKey,
      this.chunkSize,
      this.fsync,
      this.io === inlineFileIo ? 0 : FLUSH_BYTES,
    );
  }

  private async publish(fd: number, tmpPath: string, id: string): Promise<void> {
    try {
      if (this.fsync) await this.io.datasync(fd);
    } finally {
      await this.io.close(fd);
    }
    const finalPath = this.pathOf(id);
    const dir = dirname(finalPath);
    await this.ensureDir(dir);
    await this.io.rename(tmpPath, finalPath);
    this.inFlight.delete(tmpPath);
    if (this.fsync) {
      try {
        await this.io.syncDir(dir);
      } catch (e) {
        // The caller will treat the write as failed, so the object must not stay visible as an orphan.
        await this.io.remove(finalPath);
        throw e;
      }
    }
  }

  private async discard(fd: number | undefined, tmpPath: string): Promise<void> {
    if (fd !== undefined) await this.io.close(fd).catch(() => undefined);
    await this.io.remove(tmpPath);
    this.inFlight.delete(tmpPath);
  }

  /**
   * Yields plaintext [start, end) of the blob. Each chunk's GCM tag is verified before any byte of that chunk
   * is yielded, so a failure stops the stream at the first bad chunk; in the current format the tag binds the
   * blob id too, so another object's file in this one's place fails at its first chunk. The header's length is
   * checked against the file size and `expected.size` before anything is decrypted (a range is judged against
   * the index's length, never a substituted file's). With `expected.sha256` on a whole-object read the digest is
   * checked too; the final chunk is held back until the digest matches, so a consumer that sees the stream end
   * normally has received exactly the recorded bytes (earlier chunks were already yielded, each authenticated by
   * its tag).
   */
  async *read(
    blobId: BlobId,
    dataKey: Buffer,
    range?: { start: number; end: number },
    expected?: ExpectedBlob,
  ): AsyncGenerator<Buffer> {
    const expectSha256 = expected?.sha256;
    let fd: number;
    try {
      fd = await this.io.openRead(this.pathOf(blobId)).catch((e: unknown) => {
        if (isErrno(e, 'ENOENT')) return this.io.openRead(this.legacyPathOf(blobId));
        throw e;
      });
    } catch (cause) {
      if (isErrno(cause, 'ENOENT')) {
        throw new CustosError({
          code: 'blob.not-found',
          message: `stored object ${blobId} is missing from the blob store`,
          httpStatus: 404,
          detail: { blobId },
          cause,
        });
      }
      throw cause;
    }
    let prefetch: Promise<unknown> | undefined;
    const bufs: Buffer[] = [];
    let pooled = false;
    try {
      // pathOf() above refused anything but 32 lowercase hex digits.
      const objectId = objectIdOf(blobId);
      const fileSize = await this.io.size(fd);
      const header = Buffer.alloc(HEADER_SIZE);
      const headerRead = await this.io.read(fd, header, HEADER_SIZE, 0);
      const parsed = headerRead === HEADER_SIZE ? parseHeader(header) : undefined;
      if (!parsed) throw integrity(blobId, 'header', 'not a CUSTOSB1 version 1 or 2 header');
      const { chunkSize, plaintextLength: length } = parsed;
      if (fileSize !== expectedFileSize(length, chunkSize))
        throw integrity(blobId, 'header', 'file size does not match the recorded length');
      // Before 6 Dec 2026 a range was judged against the file's own length: another, shorter object in this one's
      // place answered 416 "outside the object", and a longer one of the same size class served its bytes.
      if (expected?.size !== undefined && length !== expected.size)
        throw integrity(
          blobId,
          'header',
          `it holds ${length} bytes where the index records ${expected.size}`,
        );

      const start = range?.start ?? 0;
      const end = range?.end ?? length;
      if (
        !Number.isSafeInteger(start) ||
        !Number.isSafeInteger(end) ||
        start < 0 ||
        end > length ||
        start > end
      ) {
        throw new CustosError({
          code: 'blob.bad-range',
          message: `byte range ${start}-${end} is outside the object of ${length} bytes`,
          httpStatus: 416,
        });
      }
      const whole = start === 0 && end === length;
      if (start === end && !whole) return;
      const hash = whole && expectSha256 !== undefined ? createHash('sha256') : undefined;

      const chunks = chunkCount(length, chunkSize);
      const sealedSize = chunkSize + TAG_SIZE;
      const first = Math.floor(start / chunkSize);
      const last = Math.min(chunks - 1, Math.max(first, Math.ceil(end / chunkSize) - 1));
      const perBatch = Math.max(1, Math.floor(READ_BATCH_BYTES / sealedSize));
      // Whole sealed chunks from chunk i up to the batch size, the last wanted chunk, or the end of the file.
      const batchBytes = (i: number) =>
        Math.min(Math.min(perBatch, last - i + 1) * sealedSize, fileSize - (HEADER_SIZE + i * sealedSize));
      // Two buffers when there is more than one batch: the next batch is read (in the libuv pool) while this one
      // is decrypted.
      pooled = perBatch * sealedSize <= READ_BATCH_BYTES;
      const take = () =>
        pooled
          ? (this.readBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_BATCH_BYTES))
          : Buffer.allocUnsafe(batchBytes(first));
      bufs.push(take());
      if (last - first + 1 > perBatch) bufs.push(take());
      const readBatch = (i: number, buf: Buffer) => {
        const len = batchBytes(i);
        return this.io.read(fd, buf, len, HEADER_SIZE + i * sealedSize).then((bytesRead) => {
          if (bytesRead !== len) throw integrity(blobId, i, 'short read');
          return buf.subarray(0, len);
        });
      };
      let pending = readBatch(first, bufs[0]!);
      prefetch = pending;
      let held: Buffer | undefined;
      for (let i = first, turn = 0; i <= last; i += perBatch, turn ^= 1) {
        const batch = await pending;
        if (i + perBatch <= last) {
          pending = readBatch(i + perBatch, bufs[turn ^ 1]!);
          // A consumer that stops early must not leave a read racing the close below.
          prefetch = pending.catch(() => undefined);
        }
        const n = Math.min(perBatch, last - i + 1);
        for (let k = 0; k < n; k++) {
          const index = i + k;
          const sealed = batch.subarray(k * sealedSize, Math.min(batch.length, (k + 1) * sealedSize));
          const isFinal = index === chunks - 1;
          let plain: Buffer;
          try {
            plain = openChunk(dataKey, header, objectId, index, isFinal ? length : undefined, sealed);
          } catch (cause) {
            throw Object.assign(integrity(blobId, index, 'authentication tag mismatch'), { cause });
          }
          hash?.update(plain);
          const chunkStart = index * chunkSize;
          const from = Math.max(start, chunkStart) - chunkStart;
          const to = Math.min(end, chunkStart + plain.length) - chunkStart;
          const slice = plain.subarray(from, to);
          if (hash && isFinal) held = slice;
          else if (slice.length > 0) yield slice;
        }
      }
      if (hash) {
        if (hash.digest('hex') !== expectSha256?.toLowerCase()) {
          throw new CustosError({
            code: 'blob.integrity',
            message: `stored object ${blobId} does not match its recorded SHA-256; it is not served`,
            httpStatus: 500,
            detail: { blobId, chunk: 'sha256' },
          });
        }
        if (held && held.length > 0) yield held;
      }
    } finally {
      await prefetch?.catch(() => undefined);
      await this.io.close(fd);
      if (pooled)
        for (const b of bufs) if (this.readBuffers.length < READ_BUFFERS_KEPT) this.readBuffers.push(b);
    }
  }

  async exists(blobId: BlobId): Promise<boolean> {
    for (const path of [this.pathOf(blobId), this.legacyPathOf(blobId)]) {
      try {
        await stat(path);
        return true;
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e;
      }
    }
    return false;
  }

  /** objects/ab/<id> and, of the earlier layout, objects/ab/cd/<id>; temp files are not listed. */
  async *list(prefix: string): AsyncGenerator<ListedBlob> {
    const top = join(this.root, 'objects');
    for (const ab of await entriesOf(top)) {
      if (!ab.isDirectory() || !SHARD_RE.test(ab.name) || !ab.name.startsWith(prefix.slice(0, 2))) continue;
      const dir = join(top, ab.name);
      for (const e of await entriesOf(dir)) {
        if (!e.isDirectory()) yield* listed(dir, e, prefix);
        else if (SHARD_RE.test(e.name))
          for (const f of await entriesOf(join(dir, e.name))) yield* listed(join(dir, e.name), f, prefix);
      }
    }
  }

  async delete(blobId: BlobId): Promise<void> {
    for (const path of [this.pathOf(blobId), this.legacyPathOf(blobId)]) {
      try {
        await unlink(path);
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e;
      }
    }
  }

  /**
   * Removes what crashed writers left in tmp/: this store's temp files but those of its open writers, the temp
   * directories of processes of this host that no longer run, and temp files of the layout before owner
   * directories (tmp/<blobId>.partial). Directories of live processes (a server receiving objects while a CLI
   * command starts, another store of this process) and of other hosts are left alone. Returns the files removed.
   */
  async sweepTemp(): Promise<number> {
    const dir = join(this.root, 'tmp');
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return 0;
      throw e;
    }
    let removed = 0;
    for (const e of entries) {
      const p = join(dir, e.name);
      if (!e.isDirectory()) {
        await rm(p, { force: true });
        removed++;
        continue;
      }
      const own = p === this.tmpDir;
      if (!own && !ownerGone(e.name)) continue;
      for (const n of await readdir(p).catch(() => [])) {
        if (own && this.inFlight.has(join(p, n))) continue;
        await rm(join(p, n), { force: true, recursive: true });
        removed++;
      }
      if (!own) await rm(p, { force: true, recursive: true });
    }
    return removed;
  }
}

interface WriterHooks {
  /** Makes the written file durable and visible under its id; closes `fd` whatever happens. */
  publish(fd: number): Promise<void>;
  /** Removes the temp file; closes `fd` unless publish already did (undefined). */
  discard(fd: number | undefined): Promise<void>;
}

/**
 * Encrypts as bytes arrive. Whole chunks are sealed straight from the caller's buffer; only a partial tail is
 * copied (into `staging`), so the caller may reuse its buffer once write() resolves. Ciphertext is gathered up to
 * FLUSH_BYTES and written with one positional writev while the next batch is being encrypted; write() waits only
 * when a second batch is full before the first has reached the disk (back-pressure, bounded memory).
 */
class FsBlobWriter implements BlobWriter {
  readonly #key: Buffer;
  private readonly hash = createHash('sha256');
  private readonly header: Buffer;
  /** The blob id, bound into every chunk's AAD (chunked-aead.ts). */
  private readonly objectId: Buffer;
  private readonly staging: Buffer;
  private staged = 0;
  private out: Buffer[] = [];
  private outBytes = 0;
  private filePos = HEADER_SIZE;
  private inflight: Promise<void> | undefined;
  private syncing: Promise<void> | undefined;
  private syncedTo = 0;
  private failure: unknown;
  private index = 0;
  private size = 0;
  private state: 'open' | 'committing' | 'done' = 'open';
  private writing = false;

  /** Set once publish() has closed the file. */
  private closed = false;

  constructor(
    private readonly hooks: WriterHooks,
    private readonly io: BlobFileIo,
    private readonly fd: number,
    private readonly id: string,
    key: Buffer,
    private readonly chunkSize: number,
    private readonly earlySync: boolean,
    private readonly flushBytes: number,
  ) {
    this.#key = key;
    this.header = makeHeader(chunkSize, randomBytes(8));
    this.objectId = objectIdOf(id);
    this.staging = Buffer.allocUnsafe(chunkSize);
  }

  private seal(plaintext: Buffer, finalLength: number | undefined) {
    if (this.index >= MAX_CHUNKS) {
      throw new CustosError({
        code: 'blob.too-large',
        message: `an object may have at most 2^32 chunks of ${this.chunkSize} bytes`,
        httpStatus: 413,
      });
    }
    const [body, tag] = sealChunk(
      this.#key,
      this.header,
      this.objectId,
      this.index++,
      finalLength,
      plaintext,
    );
    this.out.push(body, tag);
    this.outBytes += body.length + TAG_SIZE;
  }

  /** Starts writing the gathered ciphertext; waits for the previous write first (at most one in flight). */
  private async flush(): Promise<void> {
    if (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
    // abort() may have closed the file while a write() that was not awaited was still encrypting.
    if (this.state === 'done') throw this.closedError('write');
    const bufs = this.out;
    const len = this.outBytes;
    const pos = this.filePos;
    this.out = [];
    this.outBytes = 0;
    this.filePos += len;
    this.inflight = this.io.writev(this.fd, bufs, pos).then(
      (bytesWritten) => {
        // A regular file takes fewer bytes than asked only when its volume (or the writer's quota) has no room.
        if (bytesWritten !== len) this.failure = storageFull('the blob volume took a short write');
      },
      (e: unknown) => {
        this.failure = asStorageError(e);
      },
    );
    if (this.earlySync && !this.syncing && this.filePos - this.syncedTo >= EARLY_SYNC_BYTES) {
      const upTo = this.filePos;
      const written = this.inflight;
      // Linux may report a writeback error to one fsync only, so a failed early sync fails the commit.
      this.syncing = written
        .then(() => this.io.datasync(this.fd))
        .then(
          () => {
            this.syncedTo = upTo;
            this.syncing = undefined;
          },
          (e: unknown) => {
            this.failure = asStorageError(e);
            this.syncing = undefined;
          },
        );
    }
  }

  /** Resolves when no write or background sync of this writer is running. */
  private async settle(): Promise<void> {
    await this.inflight;
    await this.syncing;
  }

  private closedError(what: string) {
    return new CustosError({
      code: 'blob.closed',
      message: `${what} on a blob writer that was committed or aborted`,
    });
  }

  private overlapError(what: string) {
    return new CustosError({
      code: 'blob.concurrent-write',
      message: `${what} was called before the previous write() resolved`,
    });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.state !== 'open') throw this.closedError('write');
    if (this.writing) throw this.overlapError('write()');
    if (this.failure) throw this.failure;
    this.writing = true;
    try {
      await this.accept(chunk);
    } finally {
      this.writing = false;
    }
  }

  private async accept(chunk: Buffer): Promise<void> {
    const cs = this.chunkSize;
    this.hash.update(chunk);
    this.size += chunk.length;
    let off = 0;
    // A chunk is sealed only once a byte after it exists, so the final chunk is always known to be final.
    while (off < chunk.length) {
      if (this.staged === cs) {
        this.seal(this.staging, undefined);
        this.staged = 0;
      }
      if (this.staged === 0 && chunk.length - off > cs) {
        this.seal(chunk.subarray(off, off + cs), undefined);
        off += cs;
        // One large write() must not turn into an equally large ciphertext backlog.
        if (this.outBytes > 0 && this.outBytes >= this.flushBytes) await this.flush();
        continue;
      }
      const n = Math.min(cs - this.staged, chunk.length - off);
      chunk.copy(this.staging, this.staged, off, off + n);
      this.staged += n;
      off += n;
    }
    if (this.outBytes > 0 && this.outBytes >= this.flushBytes) await this.flush();
  }

  async commit(sealed?: (blob: StoredBlob) => void): Promise<StoredBlob> {
    if (this.state !== 'open') throw this.closedError('commit');
    if (this.writing) throw this.overlapError('commit()');
    this.state = 'committing';
    try {
      if (this.failure) throw this.failure;
      this.seal(this.staging.subarray(0, this.staged), this.size);
      setHeaderLength(this.header, this.size);
      const stored = { blobId: asBlobId(this.id), size: this.size, sha256: this.hash.digest('hex') };
      sealed?.(stored);
      if (this.filePos === HEADER_SIZE) {
        // Nothing flushed yet (a small object): header and chunks in one write.
        this.out.unshift(this.header);
        this.outBytes += HEADER_SIZE;
        this.filePos = 0;
        await this.flush();
      } else {
        await this.flush();
        await this.io.write(this.fd, this.header, 0);
      }
      await this.settle();
      if (this.failure) throw this.failure;
      this.closed = true;
      await this.hooks.publish(this.fd);
      this.state = 'done';
      return stored;
    } catch (e) {
      this.state = 'done';
      await this.settle();
      await this.hooks.discard(this.closed ? undefined : this.fd).catch(() => undefined);
      throw asStorageError(e);
    }
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'done';
    await this.settle();
    await this.hooks.discard(this.fd);
  }
}
