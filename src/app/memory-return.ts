// Returning freed memory to the operating system: the native helper in native/memory-return.c, how it is
// built (`npm run build`, with the system C compiler, when there is one) and how the server starts it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The C source, from src/app and dist/app alike. */
export const MEMORY_RETURN_SOURCE = fileURLToPath(new URL('../../native/memory-return.c', import.meta.url));
/** Where `npm run build` puts the built helper, from src/app and dist/app alike. */
export const MEMORY_RETURN_MODULE = fileURLToPath(
  new URL('../../dist/native/memory-return.node', import.meta.url),
);

/** How often the helper's thread looks at the resident set and CPU time; the longest stretch of work untrimmed. */
const INTERVAL_MS = 250;
const PERIOD_MS = 30_000;

export interface MemoryReturn {
  /** Starts the trimming thread once per process; true if this call started it. */
  start(intervalMs: number, growthBytes: number, periodMs: number): boolean;
  /** Returns freed memory now, on the calling thread. */
  trim(): void;
  /** Trims run in this process so far. */
  trims(): number;
}

export type Built = { built: true; file: string } | { built: false; reason: string };

/**
 * Compiles the helper into `outFile` with the system C compiler (`$CC`, else `cc`) against the Node-API headers
 * of the running Node. Only glibc Linux has malloc_trim; elsewhere, or without a compiler or headers, nothing is
 * built and the reason is returned: the server runs without it.
 */
export async function buildMemoryReturn(outFile = MEMORY_RETURN_MODULE): Promise<Built> {
  if (process.platform !== 'linux') return { built: false, reason: `${process.platform} has no malloc_trim` };
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header;
  if (!header?.glibcVersionRuntime) return { built: false, reason: 'the C library is not glibc' };
  const includes = [
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ].filter((d) => existsSync(join(d, 'node_api.h')));
  if (!includes.length)
    return { built: false, reason: 'the Node-API headers (node_api.h) of this Node are not installed' };
  await mkdir(dirname(outFile), { recursive: true });
  const cc = process.env.CC || 'cc';
  const args = ['-O2', '-Wall', '-shared', '-fPIC', '-pthread', `-I${includes[0]}`, '-o', outFile];
  try {
    await promisify(execFile)(cc, [...args, MEMORY_RETURN_SOURCE], { timeout: 120_000 });
  } catch (err) {
    const e = err as { code?: string; stderr?: string; message: string };
    const why = e.code === 'ENOENT' ? `no C compiler (${cc})` : (e.stderr?.trim() || e.message).slice(0, 500);
    return { built: false, reason: why };
  }
  return { built: true, file: outFile };
}

/** The built helper, or why there is none. */
export function loadMemoryReturn(file = MEMORY_RETURN_MODULE): MemoryReturn | { unavailable: string } {
  if (!existsSync(file)) return { unavailable: `${file} is not built (npm run build builds it)` };
  try {
    return createRequire(import.meta.url)(file) as MemoryReturn;
  } catch (err) {
    return { unavailable: `${file} does not load: ${(err as Error).message}` };
  }
}

/**
 * Starts returning freed memory for this process as configured (`memory.trimGrowthMiB`, 0: off); the sentence
 * says what runs, for the start-up banner.
 */
export function startMemoryReturn(trimGrowthMiB: number, file = MEMORY_RETURN_MODULE): string {
  if (trimGrowthMiB === 0)
    return 'freed memory is returned to the system as the C library decides (memory.trimGrowthMiB is 0)';
  const helper = loadMemoryReturn(file);
  if ('unavailable' in helper)
    return `freed memory is returned to the system as the C library decides: ${helper.unavailable}`;
  helper.start(INTERVAL_MS, trimGrowthMiB * 1024 * 1024, PERIOD_MS);
  return `freed memory is returned to the system when work ends, and every ${PERIOD_MS / 1000} s or ${trimGrowthMiB} MiB of growth while it goes on`;
}
