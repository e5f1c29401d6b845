import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Names (not paths) of every file below `dir`, recursively; none when `dir` does not exist. */
export async function fileNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) out.push(...(await fileNames(join(dir, e.name))));
    else out.push(e.name);
  }
  return out;
}
