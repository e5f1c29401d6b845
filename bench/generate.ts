// npx tsx bench/generate.ts --set large|tiny|warmup --out DIR [--seed N]
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateInstances, type SetName } from './dataset.js';

export async function generateToDir(
  set: SetName,
  out: string,
  seed = 42,
): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const inst of generateInstances(set, seed)) {
    const p = join(out, inst.path);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, inst.bytes);
    files++;
    bytes += inst.bytes.length;
  }
  return { files, bytes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      set: { type: 'string', default: 'tiny' },
      out: { type: 'string' },
      seed: { type: 'string', default: '42' },
    },
  });
  if (!values.out || !['large', 'tiny', 'warmup'].includes(values.set!)) {
    console.error('usage: npx tsx bench/generate.ts --set large|tiny|warmup --out DIR [--seed N]');
    process.exit(2);
  }
  const r = await generateToDir(values.set as SetName, values.out, Number(values.seed));
  console.log(`${values.set}: ${r.files} files, ${(r.bytes / 1e6).toFixed(1)} MB in ${values.out}`);
}
