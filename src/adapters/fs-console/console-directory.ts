import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { ConsoleAsset, ConsoleAssets } from '../../ports/console-assets.js';

/** The built console in one directory of the file system (dist/console, or `http.consoleDir`). */
export function consoleDirectory(root: string): ConsoleAssets {
  const base = resolve(root);
  const assets = join(base, 'assets') + sep;
  return {
    async file(path: string): Promise<ConsoleAsset | undefined> {
      if (path.includes('\0')) return undefined;
      const file = resolve(base, `.${path}`);
      // Nothing outside the root, however many '..' the path holds.
      if (file !== base && !file.startsWith(base + sep)) return undefined;
      let size: number;
      try {
        const s = await stat(file);
        if (!s.isFile()) return undefined;
        size = s.size;
      } catch {
        return undefined;
      }
      return { size, immutable: file.startsWith(assets), open: () => createReadStream(file) };
    },
  };
}
