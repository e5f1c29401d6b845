// Quick end-to-end check of the harnesses (seconds, not minutes): STOW-RS a few generated instances into each
// server, QIDO-RS them back, WADO-RS one study. Exits non-zero on any mismatch.
//   npx tsx bench/smoke.ts [--peers orthanc,custos] [--count 40]
import { parseArgs } from 'node:util';
import { generateInstances, type GeneratedInstance } from './dataset.js';
import { startCustos } from './custos.js';
import { startOrthanc } from './orthanc.js';
import { benchError, type Peer } from './proc.js';

const { values: args } = parseArgs({
  options: { peers: { type: 'string', default: 'orthanc,custos' }, count: { type: 'string', default: '40' } },
});

async function stowBuffers(peer: Peer, instances: GeneratedInstance[]): Promise<void> {
  const boundary = 'smoke-boundary-7d1e';
  const parts = instances.flatMap((i) => [
    Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`),
    i.bytes,
    Buffer.from('\r\n'),
  ]);
  const res = await fetch(`${peer.dicomweb}/studies`, {
    method: 'POST',
    headers: {
      ...peer.headers,
      Accept: 'application/dicom+json',
      'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
    },
    body: Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]),
  });
  const body = await res.text();
  if (res.status !== 200) throw benchError('smoke', `${peer.name} STOW-RS answered ${res.status}: ${body}`);
}

async function qidoCount(peer: Peer, path: string): Promise<number> {
  const res = await fetch(`${peer.dicomweb}${path}`, {
    headers: { ...peer.headers, Accept: 'application/dicom+json' },
  });
  if (res.status === 204) return 0;
  if (res.status !== 200) throw benchError('smoke', `${peer.name} ${path} answered ${res.status}`);
  return ((await res.json()) as unknown[]).length;
}

async function check(peer: Peer, instances: GeneratedInstance[]): Promise<void> {
  await stowBuffers(peer, instances);
  const byPatient = new Map<string, Set<string>>();
  const byStudy = new Map<string, number>();
  for (const i of instances) {
    const [patient, study] = i.path.split('/') as [string, string];
    byPatient.set(patient, (byPatient.get(patient) ?? new Set()).add(study));
    byStudy.set(study, (byStudy.get(study) ?? 0) + 1);
  }
  for (const [patient, studies] of byPatient) {
    const n = await qidoCount(peer, `/studies?PatientID=${patient}`);
    if (n !== studies.size)
      throw benchError(
        'smoke',
        `${peer.name}: PatientID=${patient} gave ${n} studies, expected ${studies.size}`,
      );
  }
  for (const [study, count] of byStudy) {
    const n = await qidoCount(peer, `/studies/${study}/instances`);
    if (n !== count)
      throw benchError('smoke', `${peer.name}: study ${study} lists ${n} instances, expected ${count}`);
  }
  const [study, count] = [...byStudy][0]!;
  const res = await fetch(`${peer.dicomweb}/studies/${study}`, {
    headers: { ...peer.headers, Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
  });
  const bytes = (await res.arrayBuffer()).byteLength;
  const stored = instances
    .filter((i) => i.path.split('/')[1] === study)
    .reduce((a, i) => a + i.bytes.length, 0);
  if (res.status !== 200 || bytes < stored)
    throw benchError('smoke', `${peer.name}: WADO-RS of ${study} answered ${res.status} with ${bytes} bytes`);
  console.log(
    `${peer.name}: stored ${instances.length} instances; QIDO found ${byPatient.size} patients and ${byStudy.size} ` +
      `studies as generated; WADO-RS returned ${count} instances (${bytes} bytes) of one study`,
  );
}

const instances: GeneratedInstance[] = [];
for (const i of generateInstances('tiny', 42)) {
  instances.push(i);
  if (instances.length >= Number(args.count)) break;
}
let failed = false;
for (const name of args.peers!.split(',')) {
  let peer: Peer;
  try {
    peer = name === 'custos' ? await startCustos() : await startOrthanc();
  } catch (err) {
    console.error(`${name}: could not start: ${err instanceof Error ? err.message : String(err)}`);
    failed = true;
    continue;
  }
  try {
    await check(peer, instances);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    failed = true;
  } finally {
    await peer.stop();
  }
}
process.exitCode = failed ? 1 : 0;
