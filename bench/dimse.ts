// DIMSE side of the benchmark (issue 3): dcmtk's storescu into each peer, and C-FIND latency over one association.
import { spawn } from 'node:child_process';
import { encodeDataset, SPECIFIC_CHARACTER_SET_UTF8 } from '../src/transports/dimse/dimse-dataset.js';
import { openScuAssociation } from '../src/transports/dimse/scu-association.js';
import { benchError, type Peer } from './proc.js';

/**
 * One storescu process over the given directories (recursively, *.dcm). TCP_NODELAY=1: Debian's dcmtk leaves
 * Nagle's algorithm on otherwise (~45 ms per instance on loopback).
 */
function storescu(peer: Peer, callingAe: string, dirs: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = [
      '-aet',
      callingAe,
      '-aec',
      peer.aet,
      '+sd',
      '+r',
      '+sp',
      '*.dcm',
      '127.0.0.1',
      String(peer.dicomPort),
      ...dirs,
    ];
    const child = spawn('storescu', args, {
      env: { ...process.env, TCP_NODELAY: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(benchError('storescu-failed', `storescu into ${peer.name} exited ${code}: ${err}`)),
    );
  });
}

/** storescu of `groups` (each a list of directories) with one process per group, all at once; seconds. */
export async function cstore(peer: Peer, callingAe: string, groups: string[][]): Promise<number> {
  const t0 = performance.now();
  await Promise.all(groups.map((g) => storescu(peer, callingAe, g)));
  return (performance.now() - t0) / 1000;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

/** STUDY-level C-FIND (Study Root) latency, one query at a time on one association, like QIDO with keep-alive. */
export async function cfindLatency(
  peer: Peer,
  callingAe: string,
  queries: { key: number; vr: string; value: string }[][],
): Promise<{ p50: number; p95: number; counts: number[] }> {
  const STUDY_ROOT_FIND = '1.2.840.10008.5.1.4.1.2.2.1';
  const scu = await openScuAssociation({
    host: '127.0.0.1',
    port: peer.dicomPort,
    calledAe: peer.aet,
    callingAe,
    contexts: [{ abstractSyntax: STUDY_ROOT_FIND, transferSyntaxes: ['1.2.840.10008.1.2.1'] }],
    timeoutMs: 10_000,
  });
  const ctx = scu.context(STUDY_ROOT_FIND);
  if (!ctx) throw benchError('cfind-context', `${peer.name} did not accept Study Root C-FIND`);
  // The QIDO default study attributes, so both answers carry the same.
  const returnKeys = [
    { tag: 0x00080020, vr: 'DA' },
    { tag: 0x00080030, vr: 'TM' },
    { tag: 0x00080050, vr: 'SH' },
    { tag: 0x00080061, vr: 'CS' },
    { tag: 0x00080090, vr: 'PN' },
    { tag: 0x00100010, vr: 'PN' },
    { tag: 0x00100020, vr: 'LO' },
    { tag: 0x00100030, vr: 'DA' },
    { tag: 0x00100040, vr: 'CS' },
    { tag: 0x0020000d, vr: 'UI' },
    { tag: 0x00200010, vr: 'SH' },
    { tag: 0x00201206, vr: 'IS' },
    { tag: 0x00201208, vr: 'IS' },
  ];
  const one = async (q: { key: number; vr: string; value: string }[]) => {
    const keys = new Map(returnKeys.map((k) => [k.tag, { tag: k.tag, vr: k.vr, value: '' }]));
    for (const m of q) keys.set(m.key, { tag: m.key, vr: m.vr, value: m.value });
    const identifier = encodeDataset(
      [SPECIFIC_CHARACTER_SET_UTF8, { tag: 0x00080052, vr: 'CS', value: 'STUDY' }, ...keys.values()].sort(
        (a, b) => a.tag - b.tag,
      ),
      ctx.transferSyntax,
    );
    const messageId = scu.conn.messageId();
    let n = 0;
    const done = scu.conn.awaitResponse(messageId, () => n++);
    await scu.conn.send(
      ctx.id,
      {
        affectedSopClassUid: STUDY_ROOT_FIND,
        commandField: 0x0020,
        messageId,
        priority: 0,
        commandDataSetType: 0,
      },
      identifier,
    );
    const final = await done;
    if (final.cmd.status !== 0)
      throw benchError('cfind-failed', `C-FIND answered 0x${final.cmd.status?.toString(16)}`);
    return n;
  };
  try {
    for (const q of queries.slice(0, 10)) await one(q);
    const times: number[] = [];
    const counts: number[] = [];
    for (const q of queries) {
      const t0 = performance.now();
      counts.push(await one(q));
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { p50: pct(times, 50), p95: pct(times, 95), counts };
  } finally {
    await scu.release();
  }
}
