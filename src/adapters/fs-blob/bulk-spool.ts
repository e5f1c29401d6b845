/**
 * The bulk data spool of STOW-RS metadata-and-bulk-data requests (ports/bulk-spool.ts) on the file system:
 * `<dataDir>/tmp/stow.<pid>.<start ticks>.<random>@<host>/`, one directory per process, named as the blob store
 * names its temp directories so that what a killed process left can be told from what a running one is writing;
 * in it one directory per request, one file per part, removed when the request ends whatever its outcome.
 */
import { once } from 'node:events';
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CustosError, DicomStatus } from '../../domain/errors.js';
import type { BulkSpools, RequestSpool, SpooledBytes } from '../../ports/bulk-spool.js';
import { ownerGone, ownTempDirName } from './fs-blob-store.js';

const PREFIX = 'stow.';

/** This process's spool directory (not made until a request spools something). */
export function stowSpoolDir(dataDir: string): string {
  return join(dataDir, 'tmp', `${PREFIX}${ownTempDirName(randomBytes(4).toString('hex'))}`);
}

/**
 * Removes the spool directories of processes of this host that no longer run (a server killed during a request);
 * those of running processes (another worker, a second server on the data directory) stay. Returns how many.
 */
export async function sweepStowSpools(dataDir: string): Promise<number> {
  const tmp = join(dataDir, 'tmp');
  const entries = await readdir(tmp).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
  let removed = 0;
  for (const name of entries) {
    if (!name.startsWith(PREFIX) || !ownerGone(name.slice(PREFIX.length))) continue;
    await rm(join(tmp, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

/** The spools of this process, under `dir` (stowSpoolDir). */
export class FsBulkSpools implements BulkSpools {
  constructor(readonly dir: string) {}

  open(): RequestSpool {
    return new FsRequestSpool(join(this.dir, randomUUID()));
  }
}

class FsRequestSpool implements RequestSpool {
  private made = false;

  constructor(private readonly dir: string) {}

  async keep(name: string, body: AsyncIterable<Buffer>, maxBytes: number): Promise<SpooledBytes> {
    if (!this.made) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      this.made = true;
    }
    const path = join(this.dir, name);
    const file = createWriteStream(path, { mode: 0o600 });
    // Encrypted at rest like everything else of the archive (ARCHITECTURE.md invariant 4), under a key that lives
    // only as long as the request: a spool a crash leaves behind is noise.
    const key = randomBytes(32);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    let length = 0;
    let tooLarge = false;
    let failed: unknown;
    file.on('error', (e) => (failed ??= e));
    let tag: Buffer | undefined;
    try {
      for await (const chunk of body) {
        length += chunk.length;
        if (length > maxBytes) tooLarge = true;
        if (tooLarge || failed) continue;
        if (!file.write(cipher.update(chunk))) await Promise.race([once(file, 'drain'), once(file, 'close')]);
      }
    } finally {
      if (!file.destroyed) {
        file.end(cipher.final());
        tag = cipher.getAuthTag();
        await once(file, 'close');
      }
    }
    if (failed)
      throw new CustosError({
        code: 'stow.spool-failed',
        message: `bulk data part ${name} could not be spooled to the data directory (${(failed as Error).message ?? String(failed)}): nothing of the request was stored`,
        httpStatus: 507,
        dicomStatus: DicomStatus.OutOfResources,
      });
    return { length, tooLarge, read: () => unsealed(path, name, key, iv, tag!) };
  }

  async close(): Promise<void> {
    if (this.made) await rm(this.dir, { recursive: true, force: true });
  }
}

/** A spooled part's bytes, decrypted; throws at the end if the file is not what was written. */
async function* unsealed(
  path: string,
  name: string,
  key: Buffer,
  iv: Buffer,
  tag: Buffer,
): AsyncGenerator<Buffer> {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(tag);
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>)
    yield decipher.update(chunk);
  try {
    const rest = decipher.final();
    if (rest.length) yield rest;
  } catch {
    throw new CustosError({
      code: 'stow.spool-changed',
      message: `spooled bulk data part ${name} was changed on disk while the request was read`,
      httpStatus: 500,
    });
  }
}
