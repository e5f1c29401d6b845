import { constants } from 'node:fs';
import { open, stat, statfs, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import {
  isNoDescriptorErrno,
  isNoRoomErrno,
  storageFull,
  storageUnwritable,
} from '../../domain/storage-full.js';
import type { StorageSpace, VolumeSpace } from '../../ports/storage-space.js';

/** How long a measurement of free space is used before statfs is asked again. */
const FRESH_MS = 250;

interface Measurement {
  at: number;
  free: number;
  /** Why a small write to the volume failed ("EROFS: read-only file system"); undefined when it succeeded. */
  refused: string | undefined;
}

interface Volume {
  what: string;
  path: string;
  /** Whether the SQLite index is on it (its audit records too: then nothing is served while it is read-only). */
  holdsIndex: boolean;
  /** The SQLite index file and its inode when opened: a volume whose index file is gone or replaced refuses. */
  indexFile?: { path: string; ino: number } | undefined;
  /** Whether the last measurement was below the reserve, and whether the volume refused a write. */
  below?: boolean;
  refused?: string | undefined;
  measured?: Measurement;
  measuring?: Promise<Measurement>;
}

/**
 * Free space by statfs(2), as an unprivileged process may use it (f_bavail), measured at most every 250 ms: at the
 * benchmark's ~200 MB/s that lets ~50 MB in past the line, which the reserve is there to absorb. Paths on the same
 * file system are measured once. Whether a volume takes writes at all is tried alongside, by writing a few bytes to
 * a file in its directory (refusal() below): ext4 after an I/O error (`errors=remount-ro`, Debian's default) refuses every
 * write with EROFS, and on the kernels seen here (6.18) it does so without marking the mount read-only: the mount
 * stays `rw` (with `emergency_ro` among its options) and access(2) answers W_OK, so only a write tells.
 */
export class VolumeReserve implements StorageSpace {
  private readonly volumes: Volume[] = [];

  constructor(
    volumes: {
      what: string;
      path: string;
      device: number;
      holdsIndex?: boolean;
      indexFile?: { path: string; ino: number };
    }[],
    private readonly reserveBytes: number,
    private readonly now: () => number = () => performance.now(),
    /**
     * Told when a volume's measured free space crosses the reserve, either way, and when it starts or stops
     * refusing writes (for the operator's log).
     */
    private readonly onChange?: (line: string) => void,
  ) {
    const byDevice = new Map<number, Volume>();
    for (const v of volumes) {
      const same = byDevice.get(v.device);
      if (same) {
        same.holdsIndex ||= v.holdsIndex ?? false;
        same.indexFile ??= v.indexFile;
        continue;
      }
      const volume = {
        what: v.what,
        path: v.path,
        holdsIndex: v.holdsIndex ?? false,
        indexFile: v.indexFile,
      };
      byDevice.set(v.device, volume);
      this.volumes.push(volume);
    }
  }

  async ensureRoom(): Promise<void> {
    for (const v of this.volumes) {
      const m = await this.measure(v);
      if (m.refused) throw storageUnwritable(`${v.what} refuses writes: ${m.refused}`);
      if (v.below)
        throw storageFull(
          `${v.what} has ${mib(m.free)} free, less than the ${mib(this.reserveBytes)} reserve (blob.minFreeBytes)`,
        );
    }
  }

  async report(): Promise<VolumeSpace[]> {
    const out: VolumeSpace[] = [];
    for (const v of this.volumes) {
      const m = await this.measure(v);
      out.push({
        what: v.what,
        freeBytes: m.free,
        reserveBytes: this.reserveBytes,
        belowReserve: v.below ?? false,
        refusesWrites: m.refused !== undefined,
      });
    }
    return out;
  }

  /**
   * Measures every `everyMs` as well, so that the operator's log says when a volume refuses writes or fills while
   * nothing is being stored (reads fail then too, with the SQLite index on it). Returns the function that stops it.
   */
  watch(everyMs: number): () => void {
    const timer = setInterval(() => void this.report().catch(() => undefined), everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  private measure(v: Volume): Promise<Measurement> {
    const m = v.measured;
    if (m && this.now() - m.at < FRESH_MS) return Promise.resolve(m);
    v.measuring ??= Promise.all([
      statfs(v.path).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      }),
      refusal(v.path),
      indexFileGone(v.indexFile),
    ]).then(
      ([s, refused, gone]) => {
        v.measuring = undefined;
        const measured = {
          at: this.now(),
          free: s ? s.bavail * s.bsize : 0,
          refused:
            gone ??
            (s
              ? refused
              : `its directory ${v.path} is gone (deleted while the server ran): stop Custos and restore the data directory (docs/storage.md, Backups)`),
        };
        v.measured = measured;
        this.tell(v, measured);
        return measured;
      },
      (e: unknown) => {
        v.measuring = undefined;
        throw e;
      },
    );
    return v.measuring;
  }

  private tell(v: Volume, m: Measurement): void {
    const below = this.reserveBytes > 0 && m.free < this.reserveBytes;
    if (below !== (v.below ?? false))
      this.onChange?.(
        below
          ? `${v.what} has ${mib(m.free)} free, less than the ${mib(this.reserveBytes)} reserve (blob.minFreeBytes): new objects are refused until space is freed`
          : `${v.what} has ${mib(m.free)} free again, above the ${mib(this.reserveBytes)} reserve: new objects are accepted`,
      );
    v.below = below;
    if ((m.refused === undefined) !== (v.refused === undefined))
      this.onChange?.(
        m.refused
          ? `${v.what} (${v.path}) refuses writes (${m.refused}): nothing can be stored${v.holdsIndex ? ' or recorded, so nothing is served either,' : ''} until it takes writes again (a file system that turned itself read-only after an error needs repair, and custos a restart)`
          : `${v.what} (${v.path}) takes writes again`,
      );
    v.refused = m.refused;
  }
}

/**
 * Why the SQLite index file the server has open is no longer the one at its path, or undefined when it is. A
 * deleted (or replaced) index file keeps taking writes through the open handle, and all of them, stores and audit
 * records alike, are lost when the server stops: until 6 Dec 2026 stores were acknowledged all the same.
 */
async function indexFileGone(file: { path: string; ino: number } | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    if ((await stat(file.path)).ino === file.ino) return undefined;
    return `the index file ${file.path} was replaced while the server ran: stop Custos, and keep the file it had open out of the way`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
    return `the index file ${file.path} was deleted while the server ran, so nothing written now would survive a restart: stop Custos and restore the index (docs/storage.md, Backups)`;
  }
}

/** Linux's O_TMPFILE (include/uapi/asm-generic/fcntl.h: __O_TMPFILE | O_DIRECTORY); Node does not export it. */
const O_TMPFILE = 0o20000000 | 0o200000;
/** What open(2) answers where the file system or the kernel has no O_TMPFILE. */
const NO_TMPFILE = new Set(['EOPNOTSUPP', 'EISDIR', 'EINVAL', 'ENOTSUP']);

/**
 * Why a write of a few bytes to `dir` failed, or undefined when it did not. The file written has no name (O_TMPFILE)
 * and is gone when closed, so nothing is left in the archive's directories; where O_TMPFILE is not to be had, a
 * file `.write-probe` is rewritten instead. No room is not a refusal: the reserve speaks of that, and the last
 * bytes of a full volume are no sign of a failed one.
 */
async function refusal(dir: string): Promise<string | undefined> {
  try {
    if (process.platform === 'linux') {
      let file: FileHandle | undefined;
      try {
        file = await open(dir, O_TMPFILE | constants.O_WRONLY, 0o600);
        await file.write('custos\n');
        return undefined;
      } catch (e) {
        if (!NO_TMPFILE.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
      } finally {
        await file?.close();
      }
    }
    await writeFile(join(dir, '.write-probe'), 'custos\n');
    return undefined;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // Nor is a process that has used up its file descriptors (EMFILE, ENFILE): the volume is not to blame, and the
    // stores refused meanwhile say why (until 6 Dec 2026 the log called the volume failed and asked for a repair).
    if (isNoRoomErrno(err.code) || isNoDescriptorErrno(err.code)) return undefined;
    return `${err.code ?? 'no code'}: ${err.message.replace(/^[A-Z]+: /, '').replace(/, open '.*'$/, '')}`;
  }
}

const mib = (n: number) => `${(n / 1024 ** 2).toFixed(n < 1024 ** 2 ? 2 : 0)} MiB`;
