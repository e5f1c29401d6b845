// Side-by-side benchmark: Custos and Orthanc in one run, same data, same client. Prints figures and ratios.
//   npm run build && npx tsx bench/run.ts [--only stow,qido,wado,big] [--concurrency 3] [--batch 20]
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateToDir } from './generate.js';
import { mulberry32, multiframeHeader, type SetName } from './dataset.js';
import { startCustos } from './custos.js';
import { startOrthanc } from './orthanc.js';
import { peakRss, resetPeakRss, type Peer } from './proc.js';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'stow,qido,wado,big' },
    concurrency: { type: 'string', default: '3' },
    batch: { type: 'string', default: '20' },
    queries: { type: 'string', default: '200' },
  },
});
const only = new Set(args.only!.split(','));
const OUT = join(import.meta.dirname, 'out');
const DATA = join(OUT, 'data');

async function* walk(dir: string): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}

async function dataset(set: SetName): Promise<{ files: string[]; bytes: number }> {
  const dir = join(DATA, `${set}-42`);
  const marker = join(dir, '.complete');
  if (!(await stat(marker).catch(() => undefined))) {
    process.stderr.write(`generating the ${set} set in ${dir} ...\n`);
    await generateToDir(set, dir, 42);
    await writeFile(marker, 'ok');
  }
  const files: string[] = [];
  let bytes = 0;
  for await (const f of walk(dir)) {
    if (f.endsWith('.complete')) continue;
    files.push(f);
    bytes += (await stat(f)).size;
  }
  return { files, bytes };
}

/** POST one STOW-RS request whose parts are streamed from disk. Returns the HTTP status. */
function stowFiles(peer: Peer, files: string[]): Promise<{ status: number; body: string }> {
  const boundary = 'bench-boundary-2f9c1e';
  const url = new URL(`${peer.dicomweb}/studies`);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent: false,
        headers: {
          ...peer.headers,
          'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
          'Transfer-Encoding': 'chunked',
        },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: `${res.headers.warning ?? ''} ${body.slice(0, 2000)}`,
          }),
        );
      },
    );
    req.on('error', reject);
    req.setNoDelay(true);
    (async () => {
      for (const f of files) {
        req.write(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
        for await (const chunk of createReadStream(f, { highWaterMark: 1 << 20 })) {
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        }
        req.write('\r\n');
      }
      req.end(`--${boundary}--\r\n`);
    })().catch(reject);
  });
}

async function stow(peer: Peer, files: string[], concurrency: number, batch: number): Promise<number> {
  const batches: string[][] = [];
  for (let i = 0; i < files.length; i += batch) batches.push(files.slice(i, i + batch));
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batches.length) {
        const { status, body } = await stowFiles(peer, batches[next++]!);
        if (status !== 200) throw new Error(`${peer.name} STOW-RS answered ${status}: ${body}`);
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

async function countInstances(peer: Peer): Promise<number> {
  let n = 0;
  for (let offset = 0; ; offset += 1000) {
    const res = await fetch(`${peer.dicomweb}/studies?limit=1000&offset=${offset}&includefield=00201208`, {
      headers: { ...peer.headers, Accept: 'application/dicom+json' },
    });
    if (res.status === 204) break;
    const rows = (await res.json()) as Record<string, { Value?: number[] }>[];
    for (const r of rows) n += Number(r['00201208']?.Value?.[0] ?? 0);
    if (rows.length < 1000) break;
  }
  return n;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function latency(peer: Peer, paths: string[]): Promise<{ p50: number; p95: number; results: number }> {
  const times: number[] = [];
  let results = 0;
  for (const p of paths.slice(0, 10))
    await (await fetch(`${peer.dicomweb}${p}`, { headers: peer.headers })).arrayBuffer(); // warm-up
  for (const p of paths) {
    const t0 = performance.now();
    const res = await fetch(`${peer.dicomweb}${p}`, {
      headers: { ...peer.headers, Accept: 'application/dicom+json' },
    });
    const body = res.status === 204 ? '[]' : await res.text();
    times.push(performance.now() - t0);
    if (res.status !== 200 && res.status !== 204) throw new Error(`${peer.name} ${p} answered ${res.status}`);
    results += (JSON.parse(body) as unknown[]).length;
  }
  times.sort((a, b) => a - b);
  return { p50: pct(times, 50), p95: pct(times, 95), results };
}

async function retrieveStudies(peer: Peer, studies: string[]): Promise<{ bytes: number; secs: number }> {
  let bytes = 0;
  const t0 = performance.now();
  for (const s of studies) {
    const res = await fetch(`${peer.dicomweb}/studies/${s}`, {
      headers: { ...peer.headers, Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
    });
    if (res.status !== 200) throw new Error(`${peer.name} WADO-RS ${s} answered ${res.status}`);
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) bytes += c.length;
  }
  return { bytes, secs: (performance.now() - t0) / 1000 };
}

type Row = { metric: string; custos: number; orthanc: number; unit: string; better: 'higher' | 'lower' };
const rows: Row[] = [];
const record = (metric: string, custos: number, orthanc: number, unit: string, better: Row['better']) => {
  rows.push({ metric, custos, orthanc, unit, better });
  process.stderr.write(
    `  ${metric}: Custos ${custos.toFixed(2)} ${unit}, Orthanc ${orthanc.toFixed(2)} ${unit}\n`,
  );
};

async function main() {
  await mkdir(OUT, { recursive: true });
  const large = only.has('stow') || only.has('wado') ? await dataset('large') : undefined;
  const tiny = only.has('qido') ? await dataset('tiny') : undefined;
  const concurrency = Number(args.concurrency);
  const batch = Number(args.batch);
  const peers = { custos: await startCustos(), orthanc: await startOrthanc() };
  const rss: Record<string, number> = {};
  try {
    if (large && only.has('stow')) {
      process.stderr.write(
        `STOW-RS of ${large.files.length} instances, ${(large.bytes / 1e6).toFixed(0)} MB (${concurrency} concurrent requests of ${batch})\n`,
      );
      const secs: Record<string, number> = {};
      for (const [k, p] of Object.entries(peers)) {
        secs[k] = await stow(p, large.files, concurrency, batch);
        const n = await countInstances(p);
        if (n !== large.files.length)
          throw new Error(`${p.name} holds ${n} instances, expected ${large.files.length}`);
      }
      record(
        'STOW-RS instances/s',
        large.files.length / secs.custos!,
        large.files.length / secs.orthanc!,
        'inst/s',
        'higher',
      );
      record(
        'STOW-RS MB/s',
        large.bytes / 1e6 / secs.custos!,
        large.bytes / 1e6 / secs.orthanc!,
        'MB/s',
        'higher',
      );
    }
    if (large && only.has('wado')) {
      if (!only.has('stow'))
        for (const p of Object.values(peers)) await stow(p, large.files, concurrency, batch);
      const studies = [...new Set(large.files.map((f) => f.split('/').at(-3)!))];
      const r: Record<string, { bytes: number; secs: number }> = {};
      for (const [k, p] of Object.entries(peers)) r[k] = await retrieveStudies(p, studies);
      record(
        'WADO-RS study retrieve MB/s',
        r.custos!.bytes / 1e6 / r.custos!.secs,
        r.orthanc!.bytes / 1e6 / r.orthanc!.secs,
        'MB/s',
        'higher',
      );
    }
    if (tiny && only.has('qido')) {
      process.stderr.write(`ingesting the tiny set (${tiny.files.length} instances) into both\n`);
      for (const p of Object.values(peers)) await stow(p, tiny.files, concurrency, 100);
      const rand = mulberry32(7);
      const n = Number(args.queries);
      const pids = Array.from(
        { length: n },
        () => `/studies?PatientID=T${String(1 + Math.floor(rand() * 2000)).padStart(6, '0')}`,
      );
      const months = Array.from({ length: n }, () => {
        const y = 2021 + Math.floor(rand() * 4);
        const m = String(1 + Math.floor(rand() * 12)).padStart(2, '0');
        return `/studies?StudyDate=${y}${m}01-${y}${m}28`;
      });
      const prefixes = ['SMI', 'MÜL', 'GAR', 'NGU', 'KOW', 'DUB', 'ROS', 'JEN', 'BRO', 'TAN'];
      const names = Array.from(
        { length: n },
        (_, i) => `/studies?PatientName=${encodeURIComponent(prefixes[i % prefixes.length]!.toLowerCase())}*`,
      );
      const mods = Array.from(
        { length: n },
        (_, i) => `/studies?ModalitiesInStudy=${['MR', 'CT', 'CR', 'MG', 'US'][i % 5]}`,
      );
      for (const [label, paths] of [
        ['by PatientID', pids],
        ['by one-month StudyDate', months],
        ['by PatientName prefix', names],
        ['by ModalitiesInStudy', mods],
      ] as const) {
        const r: Record<string, { p50: number; p95: number; results: number }> = {};
        for (const [k, p] of Object.entries(peers)) r[k] = await latency(p, paths);
        if (r.custos!.results !== r.orthanc!.results)
          process.stderr.write(
            `  note: ${label}: Custos returned ${r.custos!.results} rows, Orthanc ${r.orthanc!.results}\n`,
          );
        record(`QIDO ${label} p50`, r.custos!.p50, r.orthanc!.p50, 'ms', 'lower');
        record(`QIDO ${label} p95`, r.custos!.p95, r.orthanc!.p95, 'ms', 'lower');
      }
    }
    rss.custos = peakRss(peers.custos.pid);
    rss.orthanc = peakRss(peers.orthanc.pid);
    record('peak RSS', rss.custos / 1e6, rss.orthanc / 1e6, 'MB', 'lower');

    if (only.has('big')) {
      // One ~1 GB multi-frame object, streamed from disk: Custos's peak RSS while ingesting it.
      const file = join(DATA, 'multiframe-1g.dcm');
      if (!(await stat(file).catch(() => undefined))) {
        const { header, pixelBytes } = multiframeHeader(500, 1024, 1024);
        const out = createWriteStream(file);
        out.write(header);
        const block = Buffer.alloc(1 << 20);
        for (let i = 0; i < block.length; i += 2) block.writeUInt16LE(i & 0xfff, i);
        for (let left = pixelBytes; left > 0; left -= block.length) {
          if (!out.write(left >= block.length ? block : block.subarray(0, left)))
            await new Promise<void>((r) => out.once('drain', () => r()));
        }
        await new Promise<void>((r) => out.end(() => r()));
      }
      resetPeakRss(peers.custos.pid);
      const before = peakRss(peers.custos.pid);
      const t0 = performance.now();
      const { status } = await stowFiles(peers.custos, [file]);
      const secs = (performance.now() - t0) / 1000;
      const size = (await stat(file)).size;
      const after = peakRss(peers.custos.pid);
      process.stderr.write(
        `  1 GB multi-frame STOW-RS: status ${status}, ${(size / 1e6 / secs).toFixed(0)} MB/s, Custos peak RSS ${(after / 1e6).toFixed(0)} MB (before: ${(before / 1e6).toFixed(0)} MB)\n`,
      );
      rows.push({
        metric: '1 GB object: Custos peak RSS',
        custos: after / 1e6,
        orthanc: NaN,
        unit: 'MB',
        better: 'lower',
      });
    }
  } finally {
    await peers.custos.stop();
    await peers.orthanc.stop();
  }

  const w = Math.max(...rows.map((r) => r.metric.length));
  console.log(
    `\n${'metric'.padEnd(w)}  ${'Custos'.padStart(10)}  ${'Orthanc'.padStart(10)}  unit    Custos/Orthanc`,
  );
  for (const r of rows) {
    const ratio = Number.isFinite(r.orthanc) ? r.custos / r.orthanc : NaN;
    console.log(
      `${r.metric.padEnd(w)}  ${r.custos.toFixed(2).padStart(10)}  ${Number.isFinite(r.orthanc) ? r.orthanc.toFixed(2).padStart(10) : '         -'}  ${r.unit.padEnd(6)}  ${Number.isFinite(ratio) ? ratio.toFixed(2) + '×' : '-'}${r.better === 'lower' ? ' (lower is better)' : ''}`,
    );
  }
  const summary = join(OUT, `summary-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(summary, JSON.stringify({ rows, args }, null, 2));
  console.log(`\nsummary: ${summary}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
