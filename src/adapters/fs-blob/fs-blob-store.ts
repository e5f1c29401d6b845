import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CustosError } from '../../domain/errors.js';
import { asBlobId, type BlobId } from '../../domain/ids.js';
import type { BlobStore, BlobWriter, StoredBlob } from '../../ports/blob-store.js';
import { HEADER_SIZE, TAG_SIZE, makeHeader, openChunk, parseHeader, sealChunk } from './chunked-aead.js';

export interface FsBlobStoreOptions {
  root: string;
  /** Plaintext bytes per authenticated chunk (default 64 KiB). */
  chunkSize?: number;
  /** fsync files and directories before a blob becomes visible (default true). */
  fsync?: boolean;
}

const FLUSH_BYTES = 1024 * 1024;
const READ_BATCH_BYTES = 1024 * 1024;

const integrity = (blobId: string, chunk: number | string) =>
  new CustosError({
    code: 'blob.integrity',
    message: `stored object ${blobId} failed its integrity check at chunk ${chunk}: it will not be served`,
    httpStatus: 500,
  });

/**
 * Encrypted, checksummed blobs on the local filesystem (see chunked-aead.ts for the format). Writes go to tmp/,
 * are fsynced and renamed into objects/ab/cd/<id>, then the directory is fsynced: a blob is either complete
 * and durable or invisible.
 */
export class FsBlobStore implements BlobStore {
  private readonly chunkSize: number;
  private readonly fsync: boolean;
  private readonly knownDirs = new Set<string>();

  constructor(private readonly opts: FsBlobStoreOptions) {
    this.chunkSize = opts.chunkSize ?? 64 * 1024;
    this.fsync = opts.fsync ?? true;
  }

  private pathOf(id: string): string {
    if (!/^[0-9a-f]{32}$/.test(id))
      throw new CustosError({ code: 'blob.bad-id', message: `'${id}' is not a blob id`, httpStatus: 400 });
    return join(this.opts.root, 'objects', id.slice(0, 2), id.slice(2, 4), id);
  }

  async create(dataKey: Buffer): Promise<BlobWriter> {
    const tmpDir = join(this.opts.root, 'tmp');
    if (!this.knownDirs.has(tmpDir)) {
      await mkdir(tmpDir, { recursive: true, mode: 0o700 });
      this.knownDirs.add(tmpDir);
    }
    const id = randomBytes(16).toString('hex');
    const tmpPath = join(tmpDir, `${id}.partial`);
    const fh = await open(tmpPath, 'wx', 0o600);
    return new FsBlobWriter(this, fh, tmpPath, id, dataKey, this.chunkSize);
  }

  /** @internal the writer's commit: durable rename into place. */
  async publish(fh: FileHandle, tmpPath: string, id: string): Promise<void> {
    if (this.fsync) await fh.datasync();
    await fh.close();
    const finalPath = this.pathOf(id);
    const dir = join(finalPath, '..');
    if (!this.knownDirs.has(dir)) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      this.knownDirs.add(dir);
    }
    await rename(tmpPath, finalPath);
    if (this.fsync) {
      const d = await open(dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    }
  }

  async *read(
    blobId: BlobId,
    dataKey: Buffer,
    range?: { start: number; end: number },
    expectSha256?: string,
  ): AsyncGenerator<Buffer> {
    let fh: FileHandle;
    try {
      fh = await open(this.pathOf(blobId), 'r');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CustosError({
          code: 'blob.not-found',
          message: `stored object ${blobId} is missing`,
          httpStatus: 404,
          cause,
        });
      }
      throw cause;
    }
    try {
      const { size: fileSize } = await fh.stat();
      const header = Buffer.alloc(HEADER_SIZE);
      if (
        fileSize < HEADER_SIZE + TAG_SIZE ||
        (await fh.read(header, 0, HEADER_SIZE, 0)).bytesRead !== HEADER_SIZE
      )
        throw integrity(blobId, 'header');
      const parsed = parseHeader(header);
      if (!parsed) throw integrity(blobId, 'header');
      const { chunkSize, noncePrefix } = parsed;
      const sealedSize = chunkSize + TAG_SIZE;
      const chunks = Math.max(1, Math.ceil((fileSize - HEADER_SIZE) / sealedSize));
      const plainSize = fileSize - HEADER_SIZE - chunks * TAG_SIZE;
      if (plainSize < 0) throw integrity(blobId, 'length');
      const start = range?.start ?? 0;
      const end = range?.end ?? plainSize;
      if (start < 0 || end > plainSize || start > end) {
        throw new CustosError({
          code: 'blob.bad-range',
          message: `range ${start}-${end} is outside the object of ${plainSize} bytes`,
          httpStatus: 416,
        });
      }
      const whole = start === 0 && end === plainSize;
      const hash: Hash | undefined = whole && expectSha256 ? createHash('sha256') : undefined;
      if (start === end && !whole) return;
      const first = Math.floor(start / chunkSize);
      const last = Math.max(first, Math.ceil(end / chunkSize) - 1);
      const perBatch = Math.max(1, Math.floor(READ_BATCH_BYTES / sealedSize));
      // Ciphertext lands in one reused buffer; each decrypted chunk is fresh memory that the consumer keeps.
      let buf: Buffer | undefined;
      for (let i = first; i <= Math.min(last, chunks - 1); i += perBatch) {
        const n = Math.min(perBatch, Math.min(last, chunks - 1) - i + 1);
        const pos = HEADER_SIZE + i * sealedSize;
        const len = Math.min(n * sealedSize, fileSize - pos);
        if (!buf || buf.length < len)
          buf = Buffer.allocUnsafe(Math.min(perBatch * sealedSize, fileSize - pos));
        const { bytesRead } = await fh.read(buf, 0, len, pos);
        if (bytesRead !== len) throw integrity(blobId, i);
        for (let k = 0; k < n; k++) {
          const index = i + k;
          const sealed = buf.subarray(k * sealedSize, Math.min(len, (k + 1) * sealedSize));
          let plain: Buffer;
          try {
            plain = openChunk(dataKey, header, noncePrefix, index, index === chunks - 1, sealed);
          } catch {
            throw integrity(blobId, index);
          }
          const chunkStart = index * chunkSize;
          const from = Math.max(start, chunkStart) - chunkStart;
          const to = Math.min(end, chunkStart + plain.length) - chunkStart;
          hash?.update(plain);
          if (to > from) yield plain.subarray(from, to);
        }
      }
      if (hash && hash.digest('hex') !== expectSha256) {
        throw new CustosError({
          code: 'blob.integrity',
          message: `stored object ${blobId} does not match its recorded SHA-256`,
          httpStatus: 500,
        });
      }
    } finally {
      await fh.close();
    }
  }

  async exists(blobId: BlobId): Promise<boolean> {
    return stat(this.pathOf(blobId)).then(
      () => true,
      () => false,
    );
  }

  async delete(blobId: BlobId): Promise<void> {
    await unlink(this.pathOf(blobId)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  async sweepTemp(): Promise<number> {
    const dir = join(this.opts.root, 'tmp');
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names) await rm(join(dir, n), { force: true });
    return names.length;
  }
}

class FsBlobWriter implements BlobWriter {
  private readonly hash = createHash('sha256');
  private readonly header: Buffer;
  private readonly noncePrefix = randomBytes(8);
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private out: Buffer[] = [];
  private outBytes = 0;
  private filePos = 0;
  private index = 0;
  private size = 0;
  private closed = false;

  constructor(
    private readonly store: FsBlobStore,
    private readonly fh: FileHandle,
    private readonly tmpPath: string,
    private readonly id: string,
    private readonly key: Buffer,
    private readonly chunkSize: number,
  ) {
    this.header = makeHeader(chunkSize, this.noncePrefix);
    this.out.push(this.header);
    this.outBytes = HEADER_SIZE;
  }

  /** Take `n` bytes off the pending list as pieces, without copying. */
  private takePending(n: number): Buffer[] {
    const pieces: Buffer[] = [];
    while (n > 0) {
      const head = this.pending[0]!;
      if (head.length <= n) {
        pieces.push(head);
        this.pending.shift();
        n -= head.length;
        this.pendingBytes -= head.length;
      } else {
        pieces.push(head.subarray(0, n));
        this.pending[0] = head.subarray(n);
        this.pendingBytes -= n;
        n = 0;
      }
    }
    return pieces;
  }

  private seal(final: boolean, pieces: Buffer[]) {
    for (const b of sealChunk(this.key, this.header, this.noncePrefix, this.index++, final, pieces)) {
      this.out.push(b);
      this.outBytes += b.length;
    }
  }

  private async flush() {
    if (this.outBytes === 0) return;
    const bufs = this.out;
    const len = this.outBytes;
    this.out = [];
    this.outBytes = 0;
    const { bytesWritten } = await this.fh.writev(bufs, this.filePos);
    if (bytesWritten !== len)
      throw new CustosError({ code: 'blob.write-failed', message: 'short write to the blob store' });
    this.filePos += len;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.closed) throw new CustosError({ code: 'blob.closed', message: 'write after commit or abort' });
    if (chunk.length === 0) return;
    this.hash.update(chunk);
    this.size += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // A chunk is sealed only once a byte after it exists, so the final chunk is always known as final.
    while (this.pendingBytes > this.chunkSize) this.seal(false, this.takePending(this.chunkSize));
    if (this.outBytes >= FLUSH_BYTES) await this.flush();
  }

  async commit(): Promise<StoredBlob> {
    if (this.closed) throw new CustosError({ code: 'blob.closed', message: 'commit after commit or abort' });
    this.seal(true, this.takePending(this.pendingBytes));
    await this.flush();
    this.closed = true;
    await this.store.publish(this.fh, this.tmpPath, this.id);
    return { blobId: asBlobId(this.id), size: this.size, sha256: this.hash.digest('hex') };
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => undefined);
    await rm(this.tmpPath, { force: true });
  }
}
