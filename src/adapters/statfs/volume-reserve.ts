import { statfs } from 'node:fs/promises';
import { storageFull } from '../../domain/storage-full.js';
import type { StorageSpace, VolumeSpace } from '../../ports/storage-space.js';

/** How long a measurement of free space is used before statfs is asked again. */
const FRESH_MS = 250;

interface Volume {
  what: string;
  path: string;
  /** Whether the last measurement was below the reserve. */
  below?: boolean;
  measured?: { at: number; free: number };
  measuring?: Promise<number>;
}

/**
 * Free space by statfs(2), as an unprivileged process may use it (f_bavail), measured at most every 250 ms: at the
 * benchmark's ~200 MB/s that lets ~50 MB in past the line, which the reserve is there to absorb. Paths on the same
 * file system are measured once.
 */
export class VolumeReserve implements StorageSpace {
  private readonly volumes: Volume[] = [];

  constructor(
    volumes: { what: string; path: string; device: number }[],
    private readonly reserveBytes: number,
    private readonly now: () => number = () => performance.now(),
    /** Told when a volume's measured free space crosses the reserve, either way (for the operator's log). */
    private readonly onCross?: (line: string) => void,
  ) {
    const seen = new Set<number>();
    for (const v of volumes) {
      if (seen.has(v.device)) continue;
      seen.add(v.device);
      this.volumes.push({ what: v.what, path: v.path });
    }
  }

  async ensureRoom(): Promise<void> {
    if (this.reserveBytes === 0) return;
    for (const v of this.volumes) {
      const free = await this.free(v);
      if (v.below)
        throw storageFull(
          `${v.what} has ${mib(free)} free, less than the ${mib(this.reserveBytes)} reserve (blob.minFreeBytes)`,
        );
    }
  }

  async report(): Promise<VolumeSpace[]> {
    const out: VolumeSpace[] = [];
    for (const v of this.volumes)
      out.push({
        what: v.what,
        freeBytes: await this.free(v),
        reserveBytes: this.reserveBytes,
        belowReserve: v.below ?? false,
      });
    return out;
  }

  private free(v: Volume): Promise<number> {
    const m = v.measured;
    if (m && this.now() - m.at < FRESH_MS) return Promise.resolve(m.free);
    v.measuring ??= statfs(v.path).then(
      (s) => {
        v.measuring = undefined;
        const free = s.bavail * s.bsize;
        v.measured = { at: this.now(), free };
        const below = free < this.reserveBytes;
        if (below !== (v.below ?? false))
          this.onCross?.(
            below
              ? `${v.what} has ${mib(free)} free, less than the ${mib(this.reserveBytes)} reserve (blob.minFreeBytes): new objects are refused until space is freed`
              : `${v.what} has ${mib(free)} free again, above the ${mib(this.reserveBytes)} reserve: new objects are accepted`,
          );
        v.below = below;
        return free;
      },
      (e: unknown) => {
        v.measuring = undefined;
        throw e;
      },
    );
    return v.measuring;
  }
}

const mib = (n: number) => `${(n / 1024 ** 2).toFixed(n < 1024 ** 2 ? 2 : 0)} MiB`;
