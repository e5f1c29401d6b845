// The audit ledger's own figures (issue 5): sustained append rate (group commit) on SQLite and PostgreSQL,
// `verify` rate over a large ledger, and what auditing adds to QIDO-RS and WADO-RS latency (the same server,
// in one run, with the real ledger and with one that records nothing).
//
//   npx tsx bench/ledger.ts [--appends 200000] [--verify-records 1000000] [--requests 400]
//                           [--only append,verify,overhead] [--postgres postgres://postgres@127.0.0.1:5432/test]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, type CustosConfig } from '../src/app/config.js';
import { openApp, type CustosApp } from '../src/app/custos-app.js';
import { dropPostgresSchema } from '../src/adapters/sql/open-index-db.js';
import { asUserId } from '../src/domain/ids.js';
import type { Principal } from '../src/domain/principal.js';
import type { AuditEvent, AuditLedger } from '../src/ports/audit-ledger.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { makeInstance, stowBody, uid } from '../test/support/fixtures.js';

const { values: args } = parseArgs({
  options: {
    appends: { type: 'string', default: '200000' },
    'verify-records': { type: 'string', default: '1000000' },
    requests: { type: 'string', default: '400' },
    only: { type: 'string', default: 'append,verify,overhead' },
    postgres: {
      type: 'string',
      default: process.env.CUSTOS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    },
  },
});
const only = new Set(args.only!.split(','));

const reader: Principal = {
  kind: 'user',
  id: asUserId('42'),
  name: 'dr.bench',
  role: 'radiologist',
  source: '10.20.30.40',
  via: 'token:9',
};

/** A typical read record: a retrieve of a handful of instances. */
function event(i: number): AuditEvent {
  return {
    principal: reader,
    action: 'view-pixels',
    outcome: 'success',
    policy: 'radiologist-department',
    patientId: `PAT${i % 5000}`,
    studyUid: `1.2.826.0.1.3680043.10.${i % 20000}`,
    objects: {
      what: 'instances',
      count: 3,
      series: [`1.2.826.0.1.3680043.10.${i}.1`],
      sopInstanceUids: [1, 2, 3].map((k) => `1.2.826.0.1.3680043.10.${i}.1.${k}`),
    },
  };
}

interface Env {
  app: CustosApp;
  config: CustosConfig;
  close(): Promise<void>;
}

async function env(
  backend: 'sqlite' | 'postgres',
  wrapLedger?: (l: AuditLedger) => AuditLedger,
): Promise<Env> {
  const dataDir = await mkdtemp(join(tmpdir(), 'custos-ledger-bench-'));
  const schema = backend === 'postgres' ? `custos_bench_${randomBytes(5).toString('hex')}` : undefined;
  const base = loadConfig({
    env: {},
    cwd: dataDir,
    flags: { dataDir, http: { host: '127.0.0.1', port: 0 } },
  });
  const config: CustosConfig = {
    ...base,
    database: backend === 'postgres' ? { url: args.postgres!, schema: schema! } : {},
  };
  const app = await openApp(config, wrapLedger ? { wrapLedger } : {});
  return {
    app,
    config,
    close: async () => {
      await app.close();
      if (schema) await dropPostgresSchema(args.postgres!, schema);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Keep `window` appends outstanding (as that many concurrent readers would) until `total` are durable. */
async function appendMany(ledger: AuditLedger, total: number, window = 2000, offset = 0): Promise<number> {
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      await ledger.append(event(offset + i));
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return (performance.now() - started) / 1000;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function benchAppend(): Promise<void> {
  const n = Number(args.appends);
  console.log(`\n== append rate: ${n.toLocaleString()} read records, 2,000 outstanding (group commit) ==`);
  for (const backend of ['sqlite', 'postgres'] as const) {
    const e = await env(backend);
    try {
      await appendMany(e.app.ledger, 2000); // warm-up
      const seconds = await appendMany(e.app.ledger, n, 2000, 2000);
      console.log(
        `${backend.padEnd(9)} ${(n / seconds).toFixed(0).padStart(8)} events/s  (${seconds.toFixed(1)} s)`,
      );
      const one = performance.now();
      for (let i = 0; i < 500; i++) await e.app.ledger.append(event(i));
      console.log(
        `${backend.padEnd(9)} ${((performance.now() - one) / 500).toFixed(2).padStart(8)} ms per append with nothing else queued (one commit each)`,
      );
    } finally {
      await e.close();
    }
  }
}

async function benchVerify(): Promise<void> {
  const n = Number(args['verify-records']);
  console.log(`\n== verify: ${n.toLocaleString()} records on SQLite ==`);
  const e = await env('sqlite');
  try {
    const fillSeconds = await appendMany(e.app.ledger, n, 4000);
    await e.app.audit.checkpoint();
    console.log(`filled in ${fillSeconds.toFixed(1)} s (${(n / fillSeconds).toFixed(0)} events/s)`);
    const t = performance.now();
    const report = await e.app.audit.verify(systemPrincipal('bench'));
    const seconds = (performance.now() - t) / 1000;
    console.log(
      `verify    ${report.ok ? 'OK' : 'FAILED'} ${report.records.toLocaleString()} records in ${seconds.toFixed(1)} s = ${(report.records / seconds).toFixed(0)} records/s (target: 1,000,000 in ≤ 30 s)`,
    );
  } finally {
    await e.close();
  }
}

async function benchOverhead(): Promise<void> {
  const requests = Number(args.requests);
  console.log(
    `\n== auditing's cost on request latency (SQLite, two server processes, ${requests} requests each, 4 clients, alternating blocks) ==`,
  );
  const studyUid = uid(7);
  const series = uid(8);
  const sops = Array.from({ length: 20 }, (_, i) => uid(100 + i));
  const instances = sops.map((sop, i) =>
    makeInstance({
      studyUid,
      seriesUid: series,
      sopInstanceUid: sop,
      patientId: 'BENCH',
      rows: 512,
      columns: 512,
      instanceNumber: i + 1,
    }),
  );
  const modes = ['audited', 'unaudited'] as const;
  const servers = [];
  for (const mode of modes) {
    const dataDir = await mkdtemp(join(tmpdir(), 'custos-ledger-bench-'));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, 'ledger-serve.ts'),
        dataDir,
        ...(mode === 'unaudited' ? ['--unaudited'] : []),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CUSTOS_'))),
      },
    );
    const { url: base, token } = await new Promise<{ url: string; token: string }>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve(JSON.parse(line) as { url: string; token: string });
      });
      child.once('exit', (code) => reject(new Error(`ledger-serve exited with ${code}`)));
    });
    const auth = { Authorization: `Bearer ${token}` };
    const { body, contentType } = stowBody(instances.map((bytes) => ({ bytes })));
    const stow = await fetch(`${base}/dicom-web/studies`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': contentType },
      body,
    });
    if (stow.status !== 200) throw new Error(`STOW failed: ${stow.status}`);
    servers.push({ mode, server: { url: base }, auth, child, dataDir });
  }
  try {
    const kinds: Record<string, (base: string, i: number) => string> = {
      'WADO-RS instance': (base, i) =>
        `${base}/dicom-web/studies/${studyUid}/series/${series}/instances/${sops[i % sops.length]}`,
      'QIDO-RS studies': (base) => `${base}/dicom-web/studies?PatientID=BENCH`,
    };
    for (const [kind, url] of Object.entries(kinds)) {
      const lat: Record<string, number[]> = { audited: [], unaudited: [] };
      const busy: Record<string, number> = { audited: 0, unaudited: 0 };
      const block = 40;
      // Warm both, then alternate blocks so that machine noise and JIT warm-up fall on both alike.
      for (let round = -1; round < requests / block; round++) {
        for (const sv of round % 2 ? servers : [...servers].reverse()) {
          let next = 0;
          const start = performance.now();
          await Promise.all(
            Array.from({ length: 4 }, async () => {
              while (next < block) {
                const i = next++;
                const t = performance.now();
                const res = await fetch(url(sv.server.url, i), { headers: sv.auth });
                await res.arrayBuffer();
                if (res.status !== 200) throw new Error(`${kind}: ${res.status}`);
                if (round >= 0) lat[sv.mode]!.push(performance.now() - t);
              }
            }),
          );
          if (round >= 0) busy[sv.mode]! += performance.now() - start;
        }
      }
      const a = lat.audited!;
      const u = lat.unaudited!;
      const rps = (m: string) => (lat[m]!.length / busy[m]!) * 1000;
      console.log(
        `${kind.padEnd(18)} p50 ${pct(a, 50).toFixed(2)} vs ${pct(u, 50).toFixed(2)} ms, p95 ${pct(a, 95).toFixed(2)} vs ${pct(u, 95).toFixed(2)} ms, ${rps('audited').toFixed(0)} vs ${rps('unaudited').toFixed(0)} req/s (audited vs unaudited) → latency +${((pct(a, 50) / pct(u, 50) - 1) * 100).toFixed(1)}% p50, +${((pct(a, 95) / pct(u, 95) - 1) * 100).toFixed(1)}% p95; throughput −${((1 - rps('audited') / rps('unaudited')) * 100).toFixed(1)}%`,
      );
    }
  } finally {
    for (const sv of servers) {
      await new Promise((resolve) => {
        sv.child.once('exit', resolve);
        sv.child.kill('SIGTERM');
      });
      await rm(sv.dataDir, { recursive: true, force: true });
    }
  }
}

if (only.has('append')) await benchAppend();
if (only.has('verify')) await benchVerify();
if (only.has('overhead')) await benchOverhead();
