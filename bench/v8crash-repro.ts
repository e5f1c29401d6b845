// The request sequence that crashed `custos serve` on Node 20 with a V8 fatal error (docs/dimse.md "Known
// issues"): STOW-RS a few hundred instances of the tiny set, page through every study with QIDO-RS, STOW-RS the
// rest, page through again. The per-row policy decisions of the second listing ran in optimized code that had
// inlined Cedar's wasm call; a lazy deoptimization inside it was fatal. No C-STORE is needed.
//   npm run build && npx tsx bench/v8crash-repro.ts [--runs 3] [--first 300]
// Prints one line per run: "no crash" or the server's exit and the last of its stderr.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCustos } from './custos.js';
import { DATASET_VERSION } from './dataset.js';
import { generateToDir } from './generate.js';
import { benchError, type Peer } from './proc.js';
import { stowFiles } from './stow-client.js';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, first: { type: 'string', default: '300' } },
});

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p)));
    else if (e.name.endsWith('.dcm')) out.push(p);
  }
  return out;
}

async function stow(peer: Peer, batch: string[]): Promise<number> {
  return (await stowFiles(peer, batch)).status;
}

/** Every study, 1,000 per page, as the benchmark counts instances. */
async function listAll(peer: Peer): Promise<void> {
  for (let offset = 0; ; offset += 1000) {
    const res = await fetch(`${peer.dicomweb}/studies?limit=1000&offset=${offset}&includefield=00201208`, {
      headers: { ...peer.headers, Accept: 'application/dicom+json' },
    });
    const rows = (await res.json()) as unknown[];
    if (rows.length < 1000) return;
  }
}

const tinyDir = join(import.meta.dirname, 'out', 'data', `tiny-42-v${DATASET_VERSION}`);
const all = await files(tinyDir).catch(() => [] as string[]);
if (all.length === 0) {
  await generateToDir('tiny', tinyDir, 42);
  all.push(...(await files(tinyDir)));
}
const first = Number(args.first);
for (let run = 1; run <= Number(args.runs); run++) {
  const peer = await startCustos();
  let exit: string | undefined;
  const t0 = performance.now();
  try {
    const steps: [string, () => Promise<unknown>][] = [
      ['STOW first', () => stow(peer, all.slice(0, first))],
      ['QIDO all', () => listAll(peer)],
      ...Array.from({ length: Math.ceil((all.length - first) / 100) }, (_, i) => {
        const part = all.slice(first + i * 100, first + (i + 1) * 100);
        return ['STOW rest', () => stow(peer, part)] as [string, () => Promise<unknown>];
      }),
      ['QIDO all', () => listAll(peer)],
      ['QIDO all', () => listAll(peer)],
    ];
    for (const [what, step] of steps) {
      const r = await step().catch((err: unknown) => {
        throw benchError('repro', `${what}: ${(err as Error).message}`);
      });
      if (typeof r === 'number' && r !== 200) throw benchError('repro', `${what} answered ${r}`);
    }
  } catch (err) {
    exit = (err as Error).message;
  } finally {
    await peer.stop();
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(0);
  console.log(
    `run ${run}: ${exit ? `FAILED (${exit}); see the server's exit above` : 'no crash'} (${secs} s)`,
  );
}
