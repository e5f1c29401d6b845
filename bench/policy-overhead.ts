/**
 * What access-policy enforcement costs QIDO-RS (issue 4, item 7): p95 with enforcement on versus off on the
 * 10,000-instance tiny set, and the ratio, in one run; then decisions/s of the Cedar decision point
 * (bench/policy.ts). A measurement script, not a test: it prints, it asserts nothing but that both sides
 * answered the same.
 *
 *   npx tsx bench/policy-overhead.ts [--queries 100] [--seed 42] [--decisions 100000] [--prepared DIR]
 *
 * --prepared DIR keeps the prepared data directory (and token) in DIR and reuses it on the next run.
 *
 * One data directory is prepared in this process (the tiny set ingested through the ingest service, a
 * radiologist account of the Radiology department, which every tiny-set study belongs to, so both sides return
 * the same rows) and copied; two server processes (bench/policy-serve.ts) serve the copies: one with the real
 * access gate (Cedar decision per row, SQL narrowing from partial evaluation, break-glass window lookup, the
 * decision memo as shipped), one with the allow-all gate of bench/allow-all-gate.ts, which exists only in bench/.
 * The same QIDO list as bench/run.ts (PatientID, one-month StudyDate, PatientName prefix, ModalitiesInStudy) is
 * sent to both, one request at a time, in alternating blocks so that machine noise falls on both alike.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/app/config.js';
import { openApp } from '../src/app/custos-app.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { generateInstances } from './dataset.js';
import { qidoQueries } from './qido-queries.js';

const { values: args } = parseArgs({
  options: {
    queries: { type: 'string', default: '100' },
    seed: { type: 'string', default: '42' },
    decisions: { type: 'string', default: '100000' },
    prepared: { type: 'string' },
  },
});
const queryCount = Number(args.queries);
const seed = Number(args.seed);
const log = (s: string) => process.stderr.write(`${s}\n`);

const root = await mkdtemp(join(tmpdir(), 'custos-policy-bench-'));
const prepared = args.prepared ?? join(root, 'prepared');
const dirs = { on: join(root, 'on'), off: join(root, 'off') };
const children: ChildProcess[] = [];
let stopping = false;

async function prepare(): Promise<string> {
  const tokenFile = join(prepared, 'bench-token');
  const known = await readFile(tokenFile, 'utf8').catch(() => undefined);
  if (known) {
    log(`reusing the prepared data in ${prepared}`);
    return known.trim();
  }
  await rm(prepared, { recursive: true, force: true });
  const config = loadConfig({ env: {}, cwd: prepared, flags: { dataDir: prepared } });
  // Preparation only: the timed part reads the index, never the blobs, so the ingest need not fsync.
  const app = await openApp({ ...config, blob: { ...config.blob, fsync: false } });
  try {
    const principal = systemPrincipal('bench');
    const instances = generateInstances('tiny', seed);
    let stored = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let next = instances.next(); !next.done; next = instances.next()) {
          const r = await app.ingest.ingest(principal, Readable.from([next.value.bytes]), {
            channel: 'import',
          });
          if (r.status === 'stored') stored++;
          if (stored % 2000 === 0 && r.status === 'stored') log(`  ingested ${stored}`);
        }
      }),
    );
    log(`ingested ${stored} instances in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    await app.accounts.add(principal, {
      username: 'bench-rad',
      role: 'radiologist',
      department: 'Radiology',
    });
    const { token } = await app.auth.createToken(principal, 'bench-rad');
    await app.close();
    await writeFile(tokenFile, `${token}\n`);
    return token;
  } catch (err) {
    await app.close();
    throw err;
  }
}

async function serve(mode: 'on' | 'off'): Promise<string> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'policy-serve.ts'), dirs[mode], '--enforcement', mode],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CUSTOS_'))),
    },
  );
  children.push(child);
  return new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code, signal) => {
      // A server dying mid-run must say which one (the V8 crash in bench/README.md's note).
      if (!stopping) log(`policy-serve (enforcement ${mode}) exited during the run: ${code ?? signal}`);
      reject(new Error(`policy-serve (${mode}) exited with ${code ?? signal}`));
    });
  });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

try {
  log(`preparing the tiny set (seed ${seed}) in ${prepared} ...`);
  const token = await prepare();
  await cp(prepared, dirs.on, { recursive: true });
  await cp(prepared, dirs.off, { recursive: true });
  const base = { on: await serve('on'), off: await serve('off') };
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/dicom+json' };
  const qido = async (mode: 'on' | 'off', path: string) => {
    const t = performance.now();
    const res = await fetch(`${base[mode]}/dicom-web${path}`, { headers });
    const text = await res.text();
    if (res.status !== 200 && res.status !== 204) throw new Error(`${mode} ${path}: ${res.status} ${text}`);
    return { ms: performance.now() - t, count: text ? (JSON.parse(text) as unknown[]).length : 0 };
  };
  const all: Record<'on' | 'off', number[]> = { on: [], off: [] };
  const rows: string[] = [];
  const block = 20;
  for (const [kind, paths] of qidoQueries(queryCount, seed)) {
    const lat: Record<'on' | 'off', number[]> = { on: [], off: [] };
    let mismatches = 0;
    for (const p of paths.slice(0, 10)) for (const m of ['on', 'off'] as const) await qido(m, p); // warm-up
    for (let b = 0; b * block < paths.length; b++) {
      const part = paths.slice(b * block, (b + 1) * block);
      const counts: Record<string, number[]> = { on: [], off: [] };
      for (const m of b % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const))
        for (const p of part) {
          const r = await qido(m, p);
          lat[m].push(r.ms);
          counts[m]!.push(r.count);
        }
      mismatches += counts.on!.filter((c, i) => c !== counts.off![i]).length;
    }
    all.on.push(...lat.on);
    all.off.push(...lat.off);
    rows.push(
      `${kind.padEnd(24)} p50 ${pct(lat.on, 50).toFixed(2).padStart(7)} vs ${pct(lat.off, 50).toFixed(2).padStart(7)} ms   p95 ${pct(lat.on, 95).toFixed(2).padStart(7)} vs ${pct(lat.off, 95).toFixed(2).padStart(7)} ms   p95 ratio ${(pct(lat.on, 95) / pct(lat.off, 95)).toFixed(3)}${mismatches ? `   (${mismatches} queries answered differently!)` : ''}`,
    );
    log(rows.at(-1)!);
  }
  console.log(
    `\nQIDO-RS on the tiny set (10,000 instances, 5,000 studies) as a Radiology radiologist, ${queryCount} queries per kind, enforcement on vs off:`,
  );
  for (const r of rows) console.log(`  ${r}`);
  const p95on = pct(all.on, 95);
  const p95off = pct(all.off, 95);
  console.log(
    `  ${'all queries'.padEnd(24)} p50 ${pct(all.on, 50).toFixed(2).padStart(7)} vs ${pct(all.off, 50).toFixed(2).padStart(7)} ms   p95 ${p95on.toFixed(2).padStart(7)} vs ${p95off.toFixed(2).padStart(7)} ms   p95 ratio ${(p95on / p95off).toFixed(3)} (overhead ${((p95on / p95off - 1) * 100).toFixed(1)}%, target < 20%)`,
  );
} finally {
  stopping = true;
  for (const c of children) {
    if (c.exitCode === null) {
      await new Promise((resolve) => {
        c.once('exit', resolve);
        c.kill('SIGTERM');
      });
    }
  }
  await rm(root, { recursive: true, force: true });
}

console.log('\nCedar decision point (bench/policy.ts):');
console.log(
  execFileSync(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'policy.ts'), '--decisions', String(args.decisions)],
    { encoding: 'utf8' },
  ).trimEnd(),
);
