/**
 * Where STOW-RS metadata-and-bulk-data requests spool their bulk data parts (src/transports/dicomweb/stow-metadata.ts):
 * `<dataDir>/tmp/stow.<pid>.<start ticks>.<random>@<host>/`, one directory per process, named as the blob store
 * names its temp directories so that what a killed process left can be told from what a running one is writing.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ownerGone, ownTempDirName } from '../adapters/fs-blob/fs-blob-store.js';

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
