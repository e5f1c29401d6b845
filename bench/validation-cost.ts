// What header validation costs at ingest (issue 6, target: under 10 %). Two server processes built by
// validation-serve.ts, the same code with validation on (the default) and off (a code-level switch, see there);
// the same instances STOW-RS'd into each, in alternating blocks so machine noise falls on both; instances/s of
// each and the ratio. Then, in this process, the CPU time of validateHeader alone per instance, beside the
// server's time per instance, as a second view of the same cost.
//   npx tsx bench/validation-cost.ts [--instances 8000] [--batch 50] [--blocks 40]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { validateHeader } from '../src/domain/validation/validate-header.js';
import { generateInstances } from './dataset.js';
import { cpuMs, stopChild, tail } from './proc.js';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '8000' },
    batch: { type: 'string', default: '50' },
    blocks: { type: 'string', default: '40' },
    // A/A run: both servers validate, so the printed "cost" is the harness's own noise floor.
    same: { type: 'boolean', default: false },
  },
});
const total = Number(values.instances);
const batch = Number(values.batch);
const blocks = Number(values.blocks);

interface Server {
  name: string;
  url: string;
  token: string;
  child: ChildProcess;
  dir: string;
  ms: number;
  /** CPU time of the server process (all its threads) spent in the counted requests. */
  cpu: number;
  stored: number;
}

async function start(name: string, args: string[]): Promise<Server> {
  const dir = await mkdtemp(join(tmpdir(), 'custos-validation-cost-'));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'validation-serve.ts'), dir, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const errors = tail(child.stderr);
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`${name} exited ${code}: ${errors()}`)));
  });
  const { url, token } = JSON.parse(line) as { url: string; token: string };
  return { name, url, token, child, dir, ms: 0, cpu: 0, stored: 0 };
}

async function stow(s: Server, parts: Buffer[]): Promise<void> {
  const boundary = `vc-${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`),
      p,
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  const started = performance.now();
  const cpuBefore = cpuMs(s.child.pid!);
  const res = await fetch(`${s.url}/dicom-web/studies`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${s.token}`,
      'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
    },
    body: Buffer.concat(chunks),
  });
  const text = await res.text();
  s.ms += performance.now() - started;
  s.cpu += cpuMs(s.child.pid!) - cpuBefore;
  if (res.status !== 200) throw new Error(`${s.name}: STOW answered ${res.status}: ${text.slice(0, 500)}`);
  s.stored += parts.length;
}

const instances: Buffer[] = [];
for (const i of generateInstances('tiny', 42)) {
  instances.push(Buffer.from(i.bytes));
  if (instances.length >= total) break;
}
const on = await start('validation on', []);
const off = values.same
  ? await start('validation on (second server, --same)', [])
  : await start('validation off', ['--no-validation']);
try {
  // Warm both (JIT, SQLite page cache) with one batch that is not counted.
  const warm = instances.splice(0, batch);
  await stow(on, warm);
  await stow(off, warm);
  on.ms = off.ms = on.cpu = off.cpu = on.stored = off.stored = 0;
  const perBlock = Math.ceil(instances.length / blocks);
  for (let b = 0; b < blocks; b++) {
    const block = instances.slice(b * perBlock, (b + 1) * perBlock);
    // Alternate which server goes first, so neither always meets the other's leftover I/O.
    for (const s of b % 2 ? [off, on] : [on, off])
      for (let i = 0; i < block.length; i += batch) await stow(s, block.slice(i, i + batch));
  }
} finally {
  for (const s of [on, off]) {
    await stopChild(s.child);
    await rm(s.dir, { recursive: true, force: true });
  }
}
const rate = (s: Server) => (s.stored / s.ms) * 1000;
console.log(
  `STOW-RS ingest, ${on.stored} instances of the tiny set, ${batch} per request, one request at a time`,
);
console.log(
  `  validation on:  ${rate(on).toFixed(1)} instances/s (${(on.ms / on.stored).toFixed(2)} ms per instance)`,
);
console.log(
  `  validation off: ${rate(off).toFixed(1)} instances/s (${(off.ms / off.stored).toFixed(2)} ms per instance)`,
);
console.log(
  `  ratio on/off: ${(rate(on) / rate(off)).toFixed(3)} (validation costs ${((1 - rate(on) / rate(off)) * 100).toFixed(1)} % of throughput)`,
);
// Server CPU per instance: less sensitive than wall-clock to fsync latency and other processes' load.
const cpuPer = (s: Server) => s.cpu / s.stored;
console.log(
  `  server CPU per instance: on ${cpuPer(on).toFixed(2)} ms, off ${cpuPer(off).toFixed(2)} ms, ratio ${(cpuPer(on) / cpuPer(off)).toFixed(3)}`,
);

// validateHeader alone, on the same instances' parsed headers.
const parsed = await Promise.all(instances.slice(0, 500).map((b) => parsePart10(b)));
for (const p of parsed) validateHeader(p.dataset); // warm
const t0 = performance.now();
const rounds = 5;
for (let r = 0; r < rounds; r++) for (const p of parsed) validateHeader(p.dataset);
const us = ((performance.now() - t0) * 1000) / (rounds * parsed.length);
console.log(
  `validateHeader alone: ${us.toFixed(1)} µs per instance = ${((us / 1000 / (off.ms / off.stored)) * 100).toFixed(1)} % of the server's ${(off.ms / off.stored).toFixed(2)} ms per instance without it`,
);
