// Side-by-side benchmark: Custos and Orthanc in one run, same data, same client. Prints figures and ratios.
//   npm run build && npx tsx bench/run.ts [--only stow,qido,wado,big,cstore,cfind] [--large DIR] [--tiny DIR] [--seed 42]
//     [--concurrency 3] [--batch 20] [--queries 200] [--frames 500] [--workers N] [--cold] [--cstore-rounds 3]
//     [--stow-rounds 3]
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { generateToDir } from './generate.js';
import { QidoClient } from './qido-client.js';
import { qidoQueries } from './qido-queries.js';
import { stowFiles } from './stow-client.js';
import { DATASET_VERSION, multiframeFrame, multiframeHeader, type SetName } from './dataset.js';
import { BENCH_AE, startCustos } from './custos.js';
import { cfindLatency, cstore } from './dimse.js';
import { startOrthanc } from './orthanc.js';
import {
  benchError,
  cpuMs,
  descendants,
  exitedChildrenCpuMs,
  peakRss,
  resetPeakRss,
  threadCount,
  type Peer,
} from './proc.js';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'stow,qido,wado,big' },
    large: { type: 'string' },
    tiny: { type: 'string' },
    seed: { type: 'string', default: '42' },
    concurrency: { type: 'string', default: '3' },
    batch: { type: 'string', default: '20' },
    queries: { type: 'string', default: '200' },
    frames: { type: 'string', default: '500' },
    workers: { type: 'string' },
    cold: { type: 'boolean', default: false },
    'cstore-rounds': { type: 'string', default: '3' },
    'stow-rounds': { type: 'string', default: '3' },
  },
});
const only = new Set(args.only!.split(','));
const seed = Number(args.seed);
const concurrency = Number(args.concurrency);
/** Store the warm-up set into each server before its timed ingest (not with --cold). */
const warmUp = !args.cold;
const batchSize = Number(args.batch);
const queryCount = Number(args.queries);
/** C-STORE rounds per process count, each on fresh peers, the order alternating; the median round is reported. */
const cstoreRounds = Math.max(1, Number(args['cstore-rounds']));
/** STOW-RS rounds of the large set, each on fresh peers, the order alternating; the median round is reported. */
const stowRounds = Math.max(1, Number(args['stow-rounds']));
const OUT = join(import.meta.dirname, 'out');
const DATA = join(OUT, 'data');
const log = (s: string) => process.stderr.write(`${s}\n`);

// ---------------------------------------------------------------------------------------------- datasets

async function* walk(dir: string): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.name.endsWith('.dcm')) yield p;
  }
}

interface FileSet {
  dir: string;
  files: string[];
  bytes: number;
  /** Study Instance UIDs, from the <patient>/<study>/<series>/<n>.dcm layout. */
  studies: string[];
}

/** A set from --large/--tiny DIR as given, or from the cache keyed by set, seed and generator version. */
async function dataset(set: SetName, given: string | undefined): Promise<FileSet> {
  const dir = given ?? join(DATA, `${set}-${seed}-v${DATASET_VERSION}`);
  const marker = join(dir, '.complete');
  if (!(await stat(marker).catch(() => undefined)) && !(given && (await stat(dir).catch(() => undefined)))) {
    log(`generating the ${set} set (seed ${seed}) in ${dir} ...`);
    await rm(dir, { recursive: true, force: true });
    await generateToDir(set, dir, seed);
    await writeFile(marker, `${set} ${seed} v${DATASET_VERSION}\n`);
  }
  const files: string[] = [];
  let bytes = 0;
  for await (const f of walk(dir)) {
    files.push(f);
    bytes += (await stat(f)).size;
  }
  if (files.length === 0) throw benchError('no-data', `no .dcm files under ${dir}`);
  const studies = [...new Set(files.map((f) => f.split('/').at(-3)!))];
  return { dir, files, bytes, studies };
}

/** Cached sets of older generator versions would never be used again; they are large. */
async function dropStaleCaches(): Promise<void> {
  for (const name of await readdir(DATA).catch(() => [] as string[])) {
    const current = new RegExp(`-v${DATASET_VERSION}(\\.dcm)?$`);
    if (/^(large|tiny|multiframe)-/.test(name) && !current.test(name)) {
      log(`removing stale cached dataset ${name}`);
      await rm(join(DATA, name), { recursive: true, force: true });
    }
  }
}

/** Read every file once so that neither server pays for cold disk reads in the timed runs. */
async function warmPageCache(files: string[]): Promise<void> {
  for (const f of files) for await (const _ of createReadStream(f, { highWaterMark: 1 << 20 }));
}

/** The ~1 GB multi-frame object, written frame by frame (never whole in memory). */
async function multiframeFile(frames: number): Promise<{ file: string; studyUid: string; size: number }> {
  const rows = 1024;
  const columns = 1024;
  const file = join(DATA, `multiframe-${frames}x${rows}x${columns}-${seed}-v${DATASET_VERSION}.dcm`);
  const { header, pixelBytes, studyUid } = multiframeHeader(frames, rows, columns, seed);
  if (!(await stat(file).catch(() => undefined))) {
    log(
      `generating the ${((header.length + pixelBytes) / 1e9).toFixed(2)} GB multi-frame object in ${file} ...`,
    );
    const partial = `${file}.partial`;
    const out = createWriteStream(partial);
    const write = async (b: Buffer) => {
      if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
    };
    await write(header);
    for (let i = 0; i < frames; i++) await write(multiframeFrame(rows, columns, i));
    await new Promise<void>((resolve, reject) =>
      out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    await rename(partial, file);
  }
  return { file, studyUid, size: (await stat(file)).size };
}

// ---------------------------------------------------------------------------------------------- DICOMweb client

/** STOW-RS every file, `batch` per request, `concurrency` requests in flight; seconds taken. */
async function stow(peer: Peer, files: string[], batch: number): Promise<number> {
  const batches: string[][] = [];
  for (let i = 0; i < files.length; i += batch) batches.push(files.slice(i, i + batch));
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batches.length) {
        const b = batches[next++]!;
        const r = await stowFiles(peer, b);
        // PS3.18 §10.5.3: 200 only when every instance was stored.
        if (r.status !== 200 || r.failed > 0 || r.stored !== b.length)
          throw benchError(
            'stow-failed',
            `${peer.name} STOW-RS answered ${r.status}, ${r.stored}/${b.length} stored, ${r.failed} failed: ${r.detail}`,
          );
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

async function qido(peer: Peer, path: string): Promise<Record<string, { Value?: unknown[] }>[]> {
  const res = await fetch(`${peer.dicomweb}${path}`, {
    headers: { ...peer.headers, Accept: 'application/dicom+json' },
  });
  if (res.status === 204) {
    await res.arrayBuffer();
    return [];
  }
  if (res.status !== 200)
    throw benchError('qido-failed', `${peer.name} ${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, { Value?: unknown[] }>[];
}

/** Instances held, summed from NumberOfStudyRelatedInstances over every study. */
async function countInstances(peer: Peer): Promise<number> {
  let n = 0;
  for (let offset = 0; ; offset += 1000) {
    const rows = await qido(peer, `/studies?limit=1000&offset=${offset}&includefield=00201208`);
    for (const r of rows) n += Number(r['00201208']?.Value?.[0] ?? 0);
    if (rows.length < 1000) break;
  }
  return n;
}

async function expectCount(peer: Peer, expected: number): Promise<void> {
  const n = await countInstances(peer);
  if (n !== expected)
    throw benchError('count-mismatch', `${peer.name} holds ${n} instances, expected ${expected}`);
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

/** Whole-study retrieve runs per server (the median is reported): one run of ~3 s wanders by ±30 % here. */
const WADO_PASSES = 5;

/** The machine's CPU ticks from /proc/stat: all, and idle + iowait. */
function machineTicks(): { total: number; idle: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { total: f.reduce((a, b) => a + b, 0), idle: f[3]! + f[4]! };
}

/**
 * Share of the machine's CPU time left idle between two readings: near 0 means the run was bound by CPU (server,
 * benchmark client and kernel together), not by the disk or by waiting.
 */
function idlePercent(a: { total: number; idle: number }, b: { total: number; idle: number }): number {
  return (100 * (b.idle - a.idle)) / Math.max(1, b.total - a.total);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Writes out the page cache's dirty pages before a timed phase: Orthanc stores without fsync, so the kernel writes
 * its data back during whatever runs next, and a Custos phase after it would wait behind that writeback in each
 * of its own fsyncs (a QIDO-RS answer waits for its audit record's WAL sync). Each phase starts clean.
 */
function settle(): void {
  execFileSync('sync');
}

async function latency(
  peer: Peer,
  paths: string[],
): Promise<{ p50: number; p95: number; parseP95: number; counts: number[] }> {
  settle();
  const client = new QidoClient(peer);
  try {
    for (const p of paths.slice(0, 10)) await client.get(p); // warm-up: connection, caches, JIT
    const times: number[] = [];
    const parse: number[] = [];
    const counts: number[] = [];
    for (const p of paths) {
      const r = await client.get(p);
      times.push(r.ms);
      parse.push(r.parseMs);
      counts.push(r.rows);
    }
    times.sort((a, b) => a - b);
    parse.sort((a, b) => a - b);
    return { p50: pct(times, 50), p95: pct(times, 95), parseP95: pct(parse, 95), counts };
  } finally {
    client.close();
  }
}

async function retrieveStudies(peer: Peer, studies: string[]): Promise<{ bytes: number; secs: number }> {
  let bytes = 0;
  const t0 = performance.now();
  for (const s of studies) {
    const res = await fetch(`${peer.dicomweb}/studies/${s}`, {
      headers: { ...peer.headers, Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
    });
    if (res.status !== 200 || !res.body)
      throw benchError('wado-failed', `${peer.name} WADO-RS ${s} answered ${res.status}`);
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) bytes += c.length;
  }
  return { bytes, secs: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------- memory

/** Peak RSS of a server: its own VmHWM plus that of any worker processes (an upper bound if there are any). */
function treePeak(pid: number): { bytes: number; processes: number; threads: number } {
  const pids = [pid, ...descendants(pid)];
  return {
    bytes: pids.reduce((sum, p) => sum + (peakRss(p) || 0), 0),
    processes: pids.length,
    threads: threadCount(pid),
  };
}

/** Samples the current RSS of a process tree every 50 ms; the maximum, independent of VmHWM resets. */
function sampleRss(pid: number): { stop(): number } {
  let max = 0;
  const read = () => {
    let sum = 0;
    for (const p of [pid, ...descendants(pid)]) {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
        sum += m ? Number(m[1]) * 1024 : 0;
      } catch {
        /* gone */
      }
    }
    max = Math.max(max, sum);
  };
  const timer = setInterval(read, 50);
  read();
  return {
    stop() {
      clearInterval(timer);
      read();
      return max;
    },
  };
}

// ---------------------------------------------------------------------------------------------- report

type Row = { metric: string; custos: number; orthanc: number; unit: string; better: 'higher' | 'lower' };
const rows: Row[] = [];
const notes: string[] = [];
const record = (metric: string, custos: number, orthanc: number, unit: string, better: Row['better']) => {
  rows.push({ metric, custos, orthanc, unit, better });
  log(`  ${metric}: Custos ${custos.toFixed(2)} ${unit}, Orthanc ${orthanc.toFixed(2)} ${unit}`);
};
const note = (s: string) => {
  notes.push(s);
  log(`  note: ${s}`);
};

function versions(): Record<string, string> {
  const v = (cmd: string, a: string[]) => {
    try {
      return execFileSync(cmd, a, { encoding: 'utf8' }).split('\n')[0]!.trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    node: process.version,
    orthanc: v('Orthanc', ['--version']),
    orthancDicomweb: v('dpkg-query', ['-W', '-f=${Version}', 'orthanc-dicomweb']),
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
  };
}

async function main() {
  const started = performance.now();
  await mkdir(DATA, { recursive: true });
  await dropStaleCaches();
  const large = only.has('stow') || only.has('wado') ? await dataset('large', args.large) : undefined;
  const warm = large && warmUp ? await dataset('warmup', undefined) : undefined;
  const tiny = only.has('qido') ? await dataset('tiny', args.tiny) : undefined;
  const big = only.has('big') ? await multiframeFile(Number(args.frames)) : undefined;
  if (large) await warmPageCache(large.files);
  if (warm) await warmPageCache(warm.files);
  if (tiny) await warmPageCache(tiny.files);

  const summary: Record<string, unknown> = {};
  if (only.has('cstore') || only.has('cfind')) await cstoreBench(summary);
  if (!['stow', 'wado', 'qido', 'big'].some((k) => only.has(k))) return report(started, summary);

  const custosOpts = args.workers ? { workers: Number(args.workers) } : {};
  let peers = await startPeers(custosOpts);
  const held: Record<keyof typeof peers, number> = { custos: 0, orthanc: 0 };
  try {
    if (large) {
      const label = `${large.files.length} instances, ${(large.bytes / 1e6).toFixed(0)} MB in ${large.studies.length} studies`;
      // Without 'stow' the set is stored once, for WADO-RS.
      const rounds = only.has('stow') ? stowRounds : 1;
      log(
        `STOW-RS of the large set: ${label} (${concurrency} concurrent requests of ${batchSize}), ${rounds} round(s) on fresh peers, the order alternating`,
      );
      const rates: Record<keyof typeof peers, number[]> = { custos: [], orthanc: [] };
      const cpuPerMb: Record<keyof typeof peers, number[]> = { custos: [], orthanc: [] };
      const mb = large.bytes / 1e6;
      if (warm) log(`  each server first stores the warm-up set (${warm.files.length} instances), untimed`);
      for (let round = 0; round < rounds; round++) {
        // Fresh peers each round (the set would be duplicates the second time); the last round's peers stay for
        // what follows (WADO-RS, QIDO-RS, the 1 GB object).
        if (round > 0) {
          await stopPeers(peers);
          peers = await startPeers(custosOpts);
          held.custos = held.orthanc = 0;
        }
        const order = roundOrder(round);
        for (const k of order) {
          const p = peers[k];
          if (warm) {
            await stow(p, warm.files, batchSize);
            held[k] += warm.files.length;
          }
          settle();
          const before = { server: cpuMs(p.pid), client: process.cpuUsage(), machine: machineTicks() };
          const secs = await stow(p, large.files, batchSize);
          const client = process.cpuUsage(before.client);
          const machine = machineTicks();
          cpuPerMb[k].push((cpuMs(p.pid) - before.server) / mb);
          rates[k].push(mb / secs);
          note(
            `STOW-RS into ${p.name}, round ${round + 1}: ${(mb / secs).toFixed(1)} MB/s, server CPU ${cpuPerMb[k].at(-1)!.toFixed(2)} ms/MB, ` +
              `benchmark client ${((client.user + client.system) / 1000 / mb).toFixed(2)} ms/MB; ` +
              `machine idle ${idlePercent(before.machine, machine).toFixed(0)} % of ${cpus().length} cores`,
          );
          held[k] += large.files.length;
          await expectCount(p, held[k]);
        }
        const [c, o] = [rates.custos.at(-1)!, rates.orthanc.at(-1)!];
        log(
          `  round ${round + 1} (${order.join(' first, ')} second): Custos ${c.toFixed(1)} MB/s, Orthanc ${o.toFixed(1)} MB/s, ${(c / o).toFixed(2)}×`,
        );
      }
      summary.large = {
        dir: large.dir,
        instances: large.files.length,
        bytes: large.bytes,
        studies: large.studies.length,
        warmUp: warm ? { instances: warm.files.length, bytes: warm.bytes } : false,
        stowRounds: rounds,
      };
      if (only.has('stow')) {
        const perInstance = large.files.length / mb;
        const suffix = rounds > 1 ? `, median of ${rounds} rounds` : '';
        const [c, o] = [median(rates.custos), median(rates.orthanc)];
        record(
          `STOW-RS server CPU per MB${suffix}`,
          median(cpuPerMb.custos),
          median(cpuPerMb.orthanc),
          'ms',
          'lower',
        );
        record(`STOW-RS ingest${suffix}`, c * perInstance, o * perInstance, 'inst/s', 'higher');
        record(`STOW-RS ingest${suffix}`, c, o, 'MB/s', 'higher');
        if (rounds > 1) perRoundNote('STOW-RS', rates, 'MB/s');
      }
    }
    if (large && only.has('wado')) {
      log(
        `WADO-RS whole-study retrieve of ${large.studies.length} studies, ${WADO_PASSES} passes per server, alternating`,
      );
      const rates: Record<string, number[]> = { custos: [], orthanc: [] };
      const cpuPerMb: Record<string, { server: number[]; client: number[] }> = {
        custos: { server: [], client: [] },
        orthanc: { server: [], client: [] },
      };
      // Untimed, like the warm-up ingest: each server retrieves the warm-up set's studies once first.
      if (warm) for (const p of Object.values(peers)) await retrieveStudies(p, warm.studies);
      for (let pass = 0; pass < WADO_PASSES; pass++) {
        for (const [k, p] of Object.entries(peers)) {
          settle();
          const before = { server: cpuMs(p.pid), client: process.cpuUsage() };
          const r = await retrieveStudies(p, large.studies);
          const client = process.cpuUsage(before.client);
          cpuPerMb[k]!.server.push((cpuMs(p.pid) - before.server) / (r.bytes / 1e6));
          cpuPerMb[k]!.client.push((client.user + client.system) / 1000 / (r.bytes / 1e6));
          // Multipart framing adds bytes; a short answer means instances went missing.
          if (r.bytes < large.bytes)
            throw benchError(
              'wado-short',
              `${p.name} returned ${r.bytes} bytes for ${large.bytes} bytes stored`,
            );
          rates[k]!.push(r.bytes / 1e6 / r.secs);
        }
      }
      for (const [k, v] of Object.entries(rates))
        log(`  ${k} passes: ${v.map((x) => x.toFixed(1)).join(', ')} MB/s`);
      record(
        'WADO-RS study retrieve (median pass)',
        median(rates.custos!),
        median(rates.orthanc!),
        'MB/s',
        'higher',
      );
      // CPU per MB is steadier than the rate on a shared machine, and shows where the time goes: the server, or
      // the benchmark's own HTTP client on the same two cores.
      record(
        'WADO-RS server CPU per MB (median pass)',
        median(cpuPerMb.custos!.server),
        median(cpuPerMb.orthanc!.server),
        'ms',
        'lower',
      );
      note(
        `WADO-RS benchmark client CPU per MB (median pass): from Custos ${median(cpuPerMb.custos!.client).toFixed(2)} ms, from Orthanc ${median(cpuPerMb.orthanc!.client).toFixed(2)} ms`,
      );
    }
    if (tiny) {
      log(
        `ingesting the tiny set (${tiny.files.length} instances in ${tiny.studies.length} studies) into both`,
      );
      const secs: Record<string, number> = {};
      for (const [k, p] of Object.entries(peers) as [keyof typeof peers, Peer][]) {
        settle();
        secs[k] = await stow(p, tiny.files, 100);
        held[k] += tiny.files.length;
        await expectCount(p, held[k]);
      }
      summary.tiny = {
        dir: tiny.dir,
        instances: tiny.files.length,
        bytes: tiny.bytes,
        studies: tiny.studies.length,
      };
      record(
        'STOW-RS small instances (tiny set)',
        tiny.files.length / secs.custos!,
        tiny.files.length / secs.orthanc!,
        'inst/s',
        'higher',
      );
      log(`QIDO-RS: ${queryCount} queries of each kind, one at a time, keep-alive, timed to the last byte`);
      for (const [label, paths] of qidoQueries(queryCount, seed)) {
        const r = {
          custos: await latency(peers.custos, paths),
          orthanc: await latency(peers.orthanc, paths),
        };
        const differ = paths.filter((_, i) => r.custos.counts[i] !== r.orthanc.counts[i]);
        const total = (c: number[]) => c.reduce((a, b) => a + b, 0);
        if (differ.length)
          note(
            `QIDO ${label}: ${differ.length}/${paths.length} queries returned different study counts ` +
              `(Custos ${total(r.custos.counts)} rows, Orthanc ${total(r.orthanc.counts)}), e.g. ${differ.slice(0, 3).join(' ')}`,
          );
        record(`QIDO ${label} p50`, r.custos.p50, r.orthanc.p50, 'ms', 'lower');
        record(`QIDO ${label} p95`, r.custos.p95, r.orthanc.p95, 'ms', 'lower');
        note(
          `QIDO ${label}: the client's JSON decoding after the last byte (not in the latencies), p95 ` +
            `Custos ${r.custos.parseP95.toFixed(2)} ms, Orthanc ${r.orthanc.parseP95.toFixed(2)} ms`,
        );
      }
      // A modality no study of the tiny set holds: Custos alone (Orthanc reads every study for it, ~1 s a query).
      // Until 8 Dec 2026 Custos read every study for it too (QueryService.fewSeriesOf).
      const absent = await latency(
        peers.custos,
        Array.from({ length: queryCount }, () => '/studies?ModalitiesInStudy=NM'),
      );
      for (const [at, ms] of [
        ['p50', absent.p50],
        ['p95', absent.p95],
      ] as const)
        rows.push({
          metric: `Custos QIDO by a modality no study holds (NM) ${at}`,
          custos: ms,
          orthanc: NaN,
          unit: 'ms',
          better: 'lower',
        });
    }
    const rss = { custos: treePeak(peers.custos.pid), orthanc: treePeak(peers.orthanc.pid) };
    record('peak RSS (VmHWM) over the run', rss.custos.bytes / 1e6, rss.orthanc.bytes / 1e6, 'MB', 'lower');
    note(
      `process structure: Custos ${rss.custos.processes} process(es), ${rss.custos.threads} threads in the main one; ` +
        `Orthanc ${rss.orthanc.processes} process(es), ${rss.orthanc.threads} threads (peak RSS sums the process tree)`,
    );

    if (big) {
      log(
        `STOW-RS of one ${(big.size / 1e9).toFixed(2)} GB multi-frame object to Custos, streamed from disk`,
      );
      settle();
      const reset = [peers.custos.pid, ...descendants(peers.custos.pid)].every(resetPeakRss);
      const sampler = sampleRss(peers.custos.pid);
      const t0 = performance.now();
      const r = await stowFiles(peers.custos, [big.file]);
      const secs = (performance.now() - t0) / 1000;
      const sampled = sampler.stop();
      const peak = reset ? treePeak(peers.custos.pid).bytes : sampled;
      if (r.status !== 200 || r.stored !== 1)
        throw benchError('big-stow-failed', `Custos answered ${r.status} to the 1 GB object: ${r.detail}`);
      const [study] = await qido(
        peers.custos,
        `/studies?StudyInstanceUID=${big.studyUid}&includefield=00201208`,
      );
      if (Number(study?.['00201208']?.Value?.[0]) !== 1)
        throw benchError('big-missing', 'Custos did not list the 1 GB object after storing it');
      log(`  stored in ${secs.toFixed(1)} s (${(big.size / 1e6 / secs).toFixed(0)} MB/s)`);
      rows.push({
        metric: '1 GB object STOW: Custos peak RSS',
        custos: peak / 1e6,
        orthanc: NaN,
        unit: 'MB',
        better: 'lower',
      });
      rows.push({
        metric: '1 GB object STOW: Custos rate',
        custos: big.size / 1e6 / secs,
        orthanc: NaN,
        unit: 'MB/s',
        better: 'higher',
      });
      log(
        `  Custos peak RSS while ingesting: ${(peak / 1e6).toFixed(0)} MB (target < 300 MB; sampled VmRSS max ${(sampled / 1e6).toFixed(0)} MB)`,
      );

      const sampler2 = sampleRss(peers.custos.pid);
      const back = await retrieveStudies(peers.custos, [big.studyUid]);
      const retrievePeak = sampler2.stop();
      if (back.bytes < big.size)
        throw benchError('big-short', `Custos returned ${back.bytes} of ${big.size} bytes`);
      rows.push({
        metric: '1 GB object WADO: Custos max RSS',
        custos: retrievePeak / 1e6,
        orthanc: NaN,
        unit: 'MB',
        better: 'lower',
      });
      rows.push({
        metric: '1 GB object WADO: Custos rate',
        custos: back.bytes / 1e6 / back.secs,
        orthanc: NaN,
        unit: 'MB/s',
        better: 'higher',
      });
      summary.big = { file: big.file, bytes: big.size, peakRssTargetMet: peak < 300e6 };
    }
  } finally {
    await stopPeers(peers);
  }
  await report(started, summary);
}

/**
 * Issue 3: C-STORE with dcmtk's storescu into each peer (the large set, one process, then 4 processes on fresh
 * peers), and STUDY-level C-FIND p95 next to QIDO-RS p95 on the tiny (10,000-instance) set.
 */
async function cstoreBench(summary: Record<string, unknown>) {
  const large = await dataset('large', args.large);
  const tiny = await dataset('tiny', args.tiny);
  const warm = warmUp && only.has('cstore') ? await dataset('warmup', undefined) : undefined;
  await warmPageCache(large.files);
  await warmPageCache(tiny.files);
  if (warm) await warmPageCache(warm.files);
  const patientDirs = (set: FileSet) => [
    ...new Set(set.files.map((f) => f.split('/').slice(0, -3).join('/'))),
  ];
  const patients = patientDirs(large);
  /** The warm-up set by one storescu, untimed; the number of instances it added. */
  const warmDimse = async (p: Peer) => {
    if (!warm) return 0;
    await cstore(p, BENCH_AE, [patientDirs(warm)]);
    return warm.files.length;
  };
  if (warm)
    log(`  each server first stores the warm-up set (${warm.files.length} instances) by C-STORE, untimed`);
  const label = `${large.files.length} instances, ${(large.bytes / 1e6).toFixed(0)} MB`;
  summary.cstore = { instances: large.files.length, bytes: large.bytes, patients: patients.length };
  // --only cfind: the C-FIND comparison alone (it runs on the peers of the 4-process C-STORE).
  for (const parallel of only.has('cstore') ? [1, 4] : [4]) {
    const groups: string[][] = Array.from({ length: parallel }, () => []);
    patients.forEach((p, i) => groups[i % parallel]!.push(p));
    const rounds = only.has('cstore') ? cstoreRounds : 1;
    log(
      `C-STORE of the large set (${label}) with ${parallel} storescu process(es), ${rounds} round(s) on fresh peers, the order alternating`,
    );
    const n = large.files.length;
    const rates: Record<keyof Peers, number[]> = { custos: [], orthanc: [] };
    /** Server CPU time (all threads and processes) per MB stored, each round. */
    const cpuPerMb: Record<string, number[]> = { custos: [], orthanc: [] };
    /** The storescu processes' CPU time per MB, each round. */
    const clientPerMb: Record<string, number[]> = { custos: [], orthanc: [] };
    let peers: Peers | undefined;
    const held: Record<string, number> = { custos: 0, orthanc: 0 };
    try {
      for (let round = 0; round < rounds; round++) {
        // Fresh peers each round (the set would be duplicates the second time); the last round's peers stay for
        // what follows (C-FIND).
        if (peers) await stopPeers(peers);
        peers = undefined;
        peers = await startPeers();
        held.custos = held.orthanc = 0;
        if (!only.has('cstore')) break;
        const order = roundOrder(round);
        for (const k of order) {
          const p = peers[k];
          held[k] = await warmDimse(p);
          settle();
          const cpu0 = { server: cpuMs(p.pid), client: exitedChildrenCpuMs() };
          const secs = await cstore(p, BENCH_AE, groups);
          cpuPerMb[k]!.push((cpuMs(p.pid) - cpu0.server) / (large.bytes / 1e6));
          clientPerMb[k]!.push((exitedChildrenCpuMs() - cpu0.client) / (large.bytes / 1e6));
          held[k] += n;
          await expectCount(p, held[k]);
          rates[k]!.push(n / secs);
        }
        const [c, o] = [rates.custos!.at(-1)!, rates.orthanc!.at(-1)!];
        log(
          `  round ${round + 1} (${order.join(' first, ')} second): Custos ${c.toFixed(1)} inst/s, Orthanc ${o.toFixed(1)} inst/s, ${(c / o).toFixed(2)}×`,
        );
      }
      const what = parallel === 1 ? 'C-STORE ingest (1 storescu)' : `C-STORE ingest (${parallel} storescu)`;
      const mbPerInstance = large.bytes / 1e6 / n;
      if (only.has('cstore')) {
        const [c, o] = [median(rates.custos!), median(rates.orthanc!)];
        const suffix = rounds > 1 ? `, median of ${rounds} rounds` : '';
        record(`${what}${suffix}`, c, o, 'inst/s', 'higher');
        record(`${what}${suffix}`, c * mbPerInstance, o * mbPerInstance, 'MB/s', 'higher');
        record(
          `${what}: server CPU per MB${suffix}`,
          median(cpuPerMb.custos!),
          median(cpuPerMb.orthanc!),
          'ms',
          'lower',
        );
        note(
          `${what}: storescu CPU per MB (median) into Custos ${median(clientPerMb.custos!).toFixed(2)} ms, into Orthanc ${median(clientPerMb.orthanc!).toFixed(2)} ms`,
        );
        if (rounds > 1) perRoundNote(what, rates, 'inst/s');
      }
      if (!peers) throw benchError('no-peers', 'no C-STORE round ran');
      const custos = peers.custos;
      if (parallel === 1) {
        // The same with dicom.storeAck 'received': success once received and validated, commit in the background.
        const early = await startCustos({ storeAck: 'received' });
        try {
          const before = await warmDimse(early);
          settle();
          const t0 = performance.now();
          const t = await cstore(early, BENCH_AE, groups);
          // Background commits finish after the last answer: wait until every instance is indexed.
          for (let i = 0; (await countInstances(early)) < before + n; i++) {
            if (i > 600)
              throw benchError('count-mismatch', 'storeAck=received: not all instances were committed');
            await new Promise((r) => setTimeout(r, 100));
          }
          await expectCount(early, before + n);
          const all = (performance.now() - t0) / 1000;
          // One run, next to the median of the rounds' Orthanc rates.
          const o = median(rates.orthanc!);
          record(`${what}, storeAck=received`, n / t, o, 'inst/s', 'higher');
          record(`${what}, storeAck=received`, (n / t) * mbPerInstance, o * mbPerInstance, 'MB/s', 'higher');
          note(
            `storeAck=received: storescu done after ${t.toFixed(1)} s, every instance committed after ${all.toFixed(1)} s`,
          );
        } finally {
          await early.stop();
        }
      }
      if (parallel === 4) {
        log(`STUDY-level C-FIND vs QIDO-RS on Custos with the tiny set (${tiny.files.length} instances)`);
        await stow(custos, tiny.files, 100);
        await expectCount(custos, held.custos! + tiny.files.length);
        for (const [name, paths] of qidoQueries(queryCount, seed)) {
          const identifiers = paths.map((p) =>
            [...new URL(p, 'http://x').searchParams].map(([k, v]) => {
              const spec: Record<string, [number, string]> = {
                PatientID: [0x00100020, 'LO'],
                StudyDate: [0x00080020, 'DA'],
                PatientName: [0x00100010, 'PN'],
                ModalitiesInStudy: [0x00080061, 'CS'],
              };
              const [key, vr] = spec[k]!;
              return { key, vr, value: v };
            }),
          );
          // CPU time per query next to the latencies: on a busy machine wall-clock percentiles wander, CPU less so.
          const cpu = () => ({ server: cpuMs(custos.pid), client: process.cpuUsage() });
          const perQuery = (a: ReturnType<typeof cpu>) => {
            const b = cpu();
            const client = process.cpuUsage(a.client);
            return {
              server: (b.server - a.server) / (paths.length + 10),
              client: (client.user + client.system) / 1000 / (paths.length + 10),
            };
          };
          let t = cpu();
          const q = await latency(custos, paths);
          const qCpu = perQuery(t);
          t = cpu();
          settle();
          const c = await cfindLatency(custos, BENCH_AE, identifiers);
          const cCpu = perQuery(t);
          const differ = paths.filter((_, i) => q.counts[i] !== c.counts[i]).length;
          if (differ)
            note(
              `C-FIND ${name}: ${differ}/${paths.length} queries matched a different number of studies than QIDO`,
            );
          rows.push({
            metric: `Custos QIDO-RS ${name} p95`,
            custos: q.p95,
            orthanc: NaN,
            unit: 'ms',
            better: 'lower',
          });
          rows.push({
            metric: `Custos C-FIND STUDY ${name} p95`,
            custos: c.p95,
            orthanc: NaN,
            unit: 'ms',
            better: 'lower',
          });
          note(
            `C-FIND STUDY ${name}: p50 ${c.p50.toFixed(2)} ms, p95 ${c.p95.toFixed(2)} ms; QIDO p50 ${q.p50.toFixed(2)}, p95 ${q.p95.toFixed(2)} ms; ` +
              `C-FIND p95 − QIDO p95 = ${(c.p95 - q.p95).toFixed(2)} ms (target ≤ 5 ms); ` +
              `CPU per query (incl. warm-up): C-FIND server ${cCpu.server.toFixed(2)} + client ${cCpu.client.toFixed(2)} ms, ` +
              `QIDO server ${qCpu.server.toFixed(2)} + client ${qCpu.client.toFixed(2)} ms`,
          );
        }
      }
    } finally {
      if (peers) await stopPeers(peers);
    }
  }
}

type Peers = { custos: Peer; orthanc: Peer };

/** A fresh Custos and a fresh Orthanc; Custos is stopped again if Orthanc does not start. */
async function startPeers(custosOpts: Parameters<typeof startCustos>[0] = {}): Promise<Peers> {
  const custos = await startCustos(custosOpts);
  const orthanc = await startOrthanc().catch(async (e: unknown) => {
    await custos.stop();
    throw e;
  });
  return { custos, orthanc };
}

async function stopPeers(peers: Peers) {
  await peers.custos.stop();
  await peers.orthanc.stop();
}

/** The order of the servers in a round: Custos first in the odd rounds (counted from 1), Orthanc in the even. */
function roundOrder(round: number): (keyof Peers)[] {
  return round % 2 === 0 ? ['custos', 'orthanc'] : ['orthanc', 'custos'];
}

/**
 * The note with each round's ratio and rates, and the median of the rounds' ratios: each ratio pairs two runs of
 * the same minutes, so a slow round of one server does not move it the way it moves the ratio of the medians.
 */
function perRoundNote(what: string, rates: Record<keyof Peers, number[]>, unit: string) {
  const ratios = rates.custos.map((r, i) => r / rates.orthanc[i]!);
  note(
    `${what}: per round Custos/Orthanc ${ratios.map((r) => r.toFixed(2)).join(', ')}×, median ${median(ratios).toFixed(2)}× ` +
      `(Custos ${rates.custos.map((r) => r.toFixed(1)).join(', ')}; Orthanc ${rates.orthanc.map((r) => r.toFixed(1)).join(', ')} ${unit})`,
  );
}

async function report(started: number, summary: Record<string, unknown>) {
  const w = Math.max(...rows.map((r) => r.metric.length));
  const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(2).padStart(10) : '-'.padStart(10));
  console.log(
    `\n${'metric'.padEnd(w)}  ${'Custos'.padStart(10)}  ${'Orthanc'.padStart(10)}  unit    Custos/Orthanc`,
  );
  for (const r of rows) {
    const ratio = r.custos / r.orthanc;
    console.log(
      `${r.metric.padEnd(w)}  ${fmt(r.custos)}  ${fmt(r.orthanc)}  ${r.unit.padEnd(6)}  ` +
        `${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '-'}${Number.isFinite(ratio) ? (r.better === 'lower' ? ' (lower is better)' : ' (higher is better)') : ''}`,
    );
  }
  for (const n of notes) console.log(`note: ${n}`);
  const minutes = (performance.now() - started) / 60_000;
  console.log(`\nwhole run: ${minutes.toFixed(1)} min`);
  const file = join(OUT, `summary-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(
    file,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        args,
        environment: versions(),
        datasets: summary,
        rows: rows.map((r) => ({ ...r, ratio: r.custos / r.orthanc })),
        notes,
        minutes,
      },
      (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
      2,
    ),
  );
  console.log(`summary: ${file}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
