// Retrieving compressed objects decompressed, Custos beside Orthanc in one run: a CT study (110 × 512×512) and a
// CR study (2 × 2048×2500) of the large set, compressed by dcmtk (JPEG-LS lossless by default), stored in both
// by STOW-RS, then retrieved whole as Explicit VR Little Endian, the form a workstation without the codec asks
// for: WADO-RS with `Accept: multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1`,
// and C-MOVE to a dcmtk `storescp` that takes uncompressed syntaxes only. Every answer is checked (each part or
// file in Explicit VR Little Endian, as many as were stored, and as many pixel bytes as the originals hold). One
// untimed pass each comes first; then `--passes` timed ones, alternating which server goes first.
//
//   npm run build && npx tsx bench/decompress.ts [--codec jpegls|rle|jpeg-lossless|j2k] [--passes 5]
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { readMultipart } from '../src/transports/http/multipart-reader.js';
import { BENCH_AE, startCustos } from './custos.js';
import { generateInstances } from './dataset.js';
import { startOrthanc } from './orthanc.js';
import { benchError, cpuMs, freePort, stopChild, type Peer } from './proc.js';
import { stowFiles } from './stow-client.js';

const { values: args } = parseArgs({
  options: {
    codec: { type: 'string', default: 'jpegls' },
    passes: { type: 'string', default: '5' },
  },
});
const CODECS: Record<string, { tool: string; args: string[] }> = {
  jpegls: { tool: 'dcmcjpls', args: [] },
  rle: { tool: 'dcmcrle', args: [] },
  'jpeg-lossless': { tool: 'dcmcjpeg', args: ['+e1'] },
  j2k: { tool: 'gdcmconv', args: ['--j2k'] },
};
const codec = CODECS[args.codec!];
if (!codec) throw benchError('bad-codec', `--codec is one of ${Object.keys(CODECS).join(', ')}`);
const passes = Number(args.passes);
const EXPLICIT = '1.2.840.10008.1.2.1';

function tool(cmd: string, argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, TCP_NODELAY: '1' },
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(benchError('tool-failed', `${cmd} ${argv.join(' ')}: ${err}`)),
    );
  });
}

/** The first CT and the first CR study of the large set, compressed; their files and native pixel bytes. */
async function compressedSet(dir: string) {
  const picked = new Map<string, string>();
  const files: string[] = [];
  let pixelBytes = 0;
  for (const inst of generateInstances('large')) {
    const p = await parsePart10(inst.bytes, { maxInlineValueBytes: 0 });
    const study = inst.path.split('/')[1]!;
    const modality = String((p.dataset.get(0x00080060) as { values?: string[] } | undefined)?.values?.[0]);
    if (modality !== 'CT' && modality !== 'CR') continue;
    if (!picked.has(modality)) picked.set(modality, study);
    if (picked.get(modality) !== study) continue;
    const input = join(dir, `in-${files.length}.dcm`);
    const output = join(dir, `c-${files.length}.dcm`);
    await writeFile(input, inst.bytes);
    await tool(codec!.tool, [...codec!.args, input, output]);
    await rm(input);
    files.push(output);
    pixelBytes += p.pixelData!.length;
    if (picked.size === 2 && files.length > 112) break;
  }
  return { files, studies: [...picked.values()], pixelBytes };
}

/** WADO-RS of each study in Explicit VR Little Endian: parts, bytes and pixel bytes received, seconds. */
async function wadoExplicit(peer: Peer, studies: string[]) {
  let parts = 0;
  let bytes = 0;
  let pixels = 0;
  const t0 = performance.now();
  for (const s of studies) {
    const res = await fetch(`${peer.dicomweb}/studies/${s}`, {
      headers: {
        ...peer.headers,
        Accept: `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT}`,
      },
    });
    const boundary = /boundary="?([^";]+)"?/.exec(res.headers.get('content-type') ?? '')?.[1];
    if (res.status !== 200 || !res.body || !boundary)
      throw benchError(
        'wado-failed',
        `${peer.name} WADO-RS ${s} answered ${res.status}: ${await res.text()}`,
      );
    const body = (async function* () {
      for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) yield Buffer.from(c);
    })();
    for await (const part of readMultipart(body, boundary)) {
      const chunks: Buffer[] = [];
      for await (const c of part.body) chunks.push(c);
      const object = Buffer.concat(chunks);
      const p = await parsePart10(object, { maxInlineValueBytes: 0 });
      if (p.transferSyntaxUid !== EXPLICIT || p.pixelData?.encapsulated)
        throw benchError('wado-not-decompressed', `${peer.name} sent ${p.transferSyntaxUid}`);
      parts++;
      bytes += object.length;
      pixels += p.pixelData!.length;
    }
  }
  return { parts, bytes, pixels, secs: (performance.now() - t0) / 1000 };
}

/** C-MOVE of each study to a storescp taking uncompressed syntaxes only: files and pixel bytes received, seconds. */
async function moveToStorescp(peer: Peer, studies: string[], destPort: number, out: string) {
  const t0 = performance.now();
  for (const s of studies)
    await tool('movescu', [
      '-aet',
      BENCH_AE,
      '-aec',
      peer.aet,
      '-S',
      '-aem',
      'DEST',
      '127.0.0.1',
      String(peer.dicomPort),
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `StudyInstanceUID=${s}`,
    ]);
  const secs = (performance.now() - t0) / 1000;
  let files = 0;
  let pixels = 0;
  for (const f of await readdir(out)) {
    const p = await parsePart10(await readFile(join(out, f)), { maxInlineValueBytes: 0 });
    if (p.pixelData?.encapsulated)
      throw benchError('move-not-decompressed', `${peer.name} sent ${p.transferSyntaxUid}`);
    files++;
    pixels += p.pixelData!.length;
    await rm(join(out, f));
  }
  return { files, pixels, secs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'custos-bench-decompress-'));
  const peers: Peer[] = [];
  const destPort = await freePort();
  const out = join(dir, 'received');
  await mkdir(out);
  const scp = spawn('storescp', ['-aet', 'DEST', '-od', out, String(destPort)], {
    stdio: 'ignore',
    env: { ...process.env, TCP_NODELAY: '1' },
  });
  try {
    const set = await compressedSet(dir);
    console.log(
      `set: ${set.files.length} instances in ${set.studies.length} studies, ${args.codec} (${codec!.tool}), ${(set.pixelBytes / 1e6).toFixed(1)} MB of native pixels`,
    );
    const custos = await startCustos();
    peers.push(custos);
    const orthanc = await startOrthanc();
    peers.push(orthanc);
    // The destination: registered in Custos (AE registry) and in Orthanc (its DicomModalities, by REST).
    const ae = await fetch(`${custos.dicomweb.replace(/\/dicom-web$/, '')}/api/admin/aes`, {
      method: 'POST',
      headers: { ...custos.headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'DEST', host: '127.0.0.1', port: destPort }),
    });
    if (ae.status !== 201) throw benchError('custos-ae', `registering DEST: ${ae.status} ${await ae.text()}`);
    const orthancBase = orthanc.dicomweb.replace(/\/dicom-web$/, '');
    // Orthanc takes a C-MOVE only from a modality it knows (DicomAlwaysAllowMove is false by default).
    for (const [title, port] of [
      ['DEST', destPort],
      [BENCH_AE, 104],
    ] as const) {
      const put = await fetch(`${orthancBase}/modalities/${title}`, {
        method: 'PUT',
        body: JSON.stringify({ AET: title, Host: '127.0.0.1', Port: port }),
      });
      if (!put.ok) throw benchError('orthanc-modality', `Orthanc PUT /modalities/${title}: ${put.status}`);
    }
    for (const peer of [custos, orthanc]) {
      const r = await stowFiles(peer, set.files);
      if (r.stored !== set.files.length) throw benchError('stow-failed', `${peer.name}: ${r.detail}`);
    }
    const wado: Record<string, number[]> = { Custos: [], Orthanc: [] };
    const move: Record<string, number[]> = { Custos: [], Orthanc: [] };
    const cpu: Record<string, number[]> = { Custos: [], Orthanc: [] };
    // One untimed pass each first, as the main benchmark does: V8 compiling the code, the decode threads and their
    // codecs starting, are not what a running archive pays for each retrieve.
    for (const peer of [custos, orthanc]) {
      await wadoExplicit(peer, set.studies);
      await moveToStorescp(peer, set.studies, destPort, out);
    }
    for (let pass = 0; pass < passes; pass++) {
      for (const peer of pass % 2 ? [orthanc, custos] : [custos, orthanc]) {
        const c0 = cpuMs(peer.pid);
        const w = await wadoExplicit(peer, set.studies);
        cpu[peer.name]!.push((cpuMs(peer.pid) - c0) / (w.pixels / 1e6));
        if (w.parts !== set.files.length || w.pixels !== set.pixelBytes)
          throw benchError('wado-incomplete', `${peer.name}: ${w.parts} parts, ${w.pixels} pixel bytes`);
        wado[peer.name]!.push(w.pixels / 1e6 / w.secs);
        const m = await moveToStorescp(peer, set.studies, destPort, out);
        if (m.files !== set.files.length || m.pixels !== set.pixelBytes)
          throw benchError('move-incomplete', `${peer.name}: ${m.files} files, ${m.pixels} pixel bytes`);
        move[peer.name]!.push(m.pixels / 1e6 / m.secs);
      }
    }
    const row = (what: string, v: Record<string, number[]>, unit: string, digits = 1) =>
      console.log(
        `${what.padEnd(44)} Custos ${median(v.Custos!).toFixed(digits)} ${unit}   Orthanc ${median(v.Orthanc!).toFixed(digits)} ${unit}   ratio ${(median(v.Custos!) / median(v.Orthanc!)).toFixed(2)}×   (passes: Custos ${v.Custos!.map((x) => x.toFixed(digits)).join(' / ')}; Orthanc ${v.Orthanc!.map((x) => x.toFixed(digits)).join(' / ')})`,
      );
    row('WADO-RS study in explicit VR, native MB/s', wado, 'MB/s');
    row('server CPU per native MB (WADO-RS)', cpu, 'ms', 2);
    row('C-MOVE to uncompressed-only storescp, MB/s', move, 'MB/s');
  } finally {
    for (const p of peers) await p.stop().catch(() => undefined);
    await stopChild(scp);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
