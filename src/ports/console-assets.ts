import type { Readable } from 'node:stream';

/** One file of the built web console. */
export interface ConsoleAsset {
  size: number;
  /** Whether it is a hashed build asset (under /assets/), which never changes under its name. */
  immutable: boolean;
  /** Its bytes, read when the answer is sent. */
  open(): Readable;
}

/**
 * The built web console's files (a single-page app), wherever they are kept. The HTTP transport decides what a
 * request is answered with; this says only what is there.
 */
export interface ConsoleAssets {
  /**
   * The regular file at `path` (decoded, starting with '/', relative to the console's root), if there is one. A
   * path that would leave the root, or holds a NUL, has none.
   */
  file(path: string): Promise<ConsoleAsset | undefined>;
}
