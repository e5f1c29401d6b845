import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropPostgresSchema, openIndexDb } from '../src/adapters/sql/open-index-db.js';
import { SqlForwardLease } from '../src/adapters/sql/sql-forward-lease.js';
import { SqlLedger } from '../src/adapters/sql/sql-ledger.js';
import { SyslogAuditSink } from '../src/adapters/syslog/syslog-audit-sink.js';
import { TlsSyslogTransport } from '../src/adapters/syslog/tls-transport.js';
import { UdpSyslogTransport } from '../src/adapters/syslog/udp-transport.js';
import { asUserId } from '../src/domain/ids.js';
import type { IndexDb } from '../src/ports/database.js';
import { systemClock } from '../src/ports/clock.js';
import { AuditForwarder } from '../src/services/audit-forwarder.js';
import { backends, postgresUrl, type Backend } from './support/backends.js';
import { startTlsReceiver, startUdpReceiver, type ReceivedSyslog } from './support/syslog-receiver.js';
import { makeTestPki, type TestPki } from './support/tls-certs.js';

/** Patient IDs carry the record number, so a received message says which record it is. */
const patientOf = (m: ReceivedSyslog): string => {
  const doc = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    isArray: (n) => n === 'ParticipantObjectIdentification',
  }).parse(m.msg) as { AuditMessage: { ParticipantObjectIdentification: Record<string, string>[] } };
  return doc.AuditMessage.ParticipantObjectIdentification[0]!['@ParticipantObjectID']!;
};

const until = async (what: string, cond: () => boolean, ms = 15_000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

async function openDb(backend: Backend): Promise<{ index: IndexDb; drop: () => Promise<void> }> {
  if (backend === 'postgres') {
    const schema = `custos_fwd_${randomBytes(6).toString('hex')}`;
    const index = await openIndexDb({ kind: 'postgres', url: postgresUrl!, schema });
    return { index, drop: () => dropPostgresSchema(postgresUrl!, schema) };
  }
  const dir = await mkdtemp(join(tmpdir(), 'custos-fwd-'));
  const index = await openIndexDb({ kind: 'sqlite', path: join(dir, 'index.sqlite'), key: randomBytes(32) });
  return { index, drop: () => rm(dir, { recursive: true, force: true }) };
}

for (const backend of backends()) {
  describe(`audit forwarder to syslog (${backend})`, () => {
    let pki: TestPki;
    let index: IndexDb;
    let drop: () => Promise<void>;
    let ledger: SqlLedger;
    let n = 0;
    const view = (count: number) =>
      Promise.all(
        Array.from({ length: count }, () => {
          n++;
          return ledger.append({
            principal: {
              kind: 'user',
              id: asUserId('7'),
              name: 'dr.house',
              role: 'radiologist',
              source: '10.0.0.9',
            },
            action: 'view-pixels',
            outcome: 'success',
            policy: 'test',
            patientId: `P${n}`,
            studyUid: `1.2.3.${n}`,
          });
        }),
      );

    beforeAll(async () => {
      pki = makeTestPki();
      ({ index, drop } = await openDb(backend));
      ledger = new SqlLedger(index, systemClock, 'node-1');
    });
    afterAll(async () => {
      await ledger.close();
      await index.close();
      await drop();
    });

    it('forwards every record over TLS, keeps them while the repository is down and sends them when it is back', async () => {
      let rx = await startTlsReceiver({ cert: pki.serverCert, key: pki.serverKey });
      const port = rx.port;
      const errors: unknown[] = [];
      const lease = new SqlForwardLease(index, `tls-${backend}`);
      const fwd = new AuditForwarder({
        store: ledger,
        sink: new SyslogAuditSink(new TlsSyslogTransport({ host: '127.0.0.1', port, ca: pki.ca })),
        lease,
        clock: systemClock,
        owner: 'node-1:1',
        idleMs: 20,
        batchSize: 4,
        backoff: { initialMs: 20, maxMs: 200 },
        onError: (e) => errors.push(e),
      });
      const start = n;
      await view(10);
      fwd.start();
      try {
        await rx.waitFor(10);
        await until('cursor committed', () => fwd.status().committed === start + 10);
        const first = rx.messages.map(patientOf);
        expect(first).toEqual(Array.from({ length: 10 }, (_, i) => `P${start + i + 1}`));

        // The repository goes away: records keep being appended to the ledger, the forwarder retries.
        await rx.close();
        await view(7);
        await until('a failed delivery', () => fwd.status().consecutiveFailures >= 2);
        expect(fwd.status().committed).toBe(start + 10);

        rx = await startTlsReceiver({ cert: pki.serverCert, key: pki.serverKey, port });
        await rx.waitFor(7);
        await until('cursor committed', () => fwd.status().committed === start + 17);
        const second = rx.messages.map(patientOf);
        // At least once: every record arrives; a record written before a failure may arrive again.
        expect(new Set(second)).toEqual(new Set(Array.from({ length: 7 }, (_, i) => `P${start + 11 + i}`)));
        expect(second.length).toBe(7);
        expect(errors.length).toBeGreaterThan(0);
      } finally {
        await fwd.stop();
        await rx.close();
      }
      // The cursor is persisted: a new forwarder (say after a restart) resumes where this one stopped.
      expect(
        await lease.acquire('node-1:2', new Date().toISOString(), new Date(Date.now() + 1000).toISOString()),
      ).toEqual({
        cursor: start + 17,
      });
    });

    it('leases to one owner at a time, hands over after expiry and fences the old owner out', async () => {
      const lease = new SqlForwardLease(index, `fence-${backend}`);
      const t = (s: number) => new Date(Date.UTC(2026, 10, 23, 9, 0, s)).toISOString();
      expect(await lease.acquire('A', t(0), t(10))).toEqual({ cursor: 0 });
      expect(await lease.commit('A', 5, t(10))).toBe(true);
      expect(await lease.acquire('B', t(5), t(15))).toBeUndefined();
      expect(await lease.acquire('A', t(6), t(16))).toEqual({ cursor: 5 });
      // A stalls past its lease: B takes over from the committed cursor, and A's late commit is refused.
      expect(await lease.acquire('B', t(17), t(27))).toEqual({ cursor: 5 });
      expect(await lease.commit('A', 9, t(30))).toBe(false);
      expect(await lease.commit('B', 7, t(27))).toBe(true);
      // The cursor never goes back.
      expect(await lease.commit('B', 6, t(27))).toBe(false);
      await lease.release('B');
      expect(await lease.acquire('C', t(18), t(28))).toEqual({ cursor: 7 });
    });

    it('forwards over UDP', async () => {
      const rx = await startUdpReceiver();
      const fwd = new AuditForwarder({
        store: ledger,
        sink: new SyslogAuditSink(new UdpSyslogTransport({ host: '127.0.0.1', port: rx.port })),
        lease: new SqlForwardLease(index, `udp-${backend}`),
        clock: systemClock,
        owner: 'node-1:1',
        idleMs: 20,
      });
      const total = n;
      fwd.start();
      try {
        await rx.waitFor(total);
        expect(rx.messages.map(patientOf)).toEqual(Array.from({ length: total }, (_, i) => `P${i + 1}`));
        expect(rx.messages.every((m) => m.msgId === 'IHE+RFC-3881' && m.appName === 'custos')).toBe(true);
      } finally {
        await fwd.stop();
        await rx.close();
      }
    });

    it('lets one forwarder send at a time; the other takes over when the lease is released', async () => {
      const rx = await startUdpReceiver();
      const mk = (owner: string) =>
        new AuditForwarder({
          store: ledger,
          sink: new SyslogAuditSink(new UdpSyslogTransport({ host: '127.0.0.1', port: rx.port }), {
            applicationId: owner,
          }),
          lease: new SqlForwardLease(index, `pair-${backend}`),
          clock: systemClock,
          owner,
          idleMs: 20,
          leaseMs: 60_000,
          standbyMs: 100,
        });
      const a = mk('A');
      const b = mk('B');
      a.start();
      b.start();
      try {
        const total = n;
        await rx.waitFor(total);
        await until('A or B committed', () => Math.max(a.status().committed, b.status().committed) === total);
        const holders = [a, b].filter((f) => f.status().holdingLease);
        expect(holders).toHaveLength(1);
        const senders = new Set(
          rx.messages.map((m) => /UserID="([AB])" UserIsRequestor="false"/.exec(m.msg)?.[1]),
        );
        expect(senders.size).toBe(1);
        const [active, standby] = holders[0] === a ? [a, b] : [b, a];
        await active.stop();
        await view(3);
        await rx.waitFor(total + 3);
        await until('standby committed', () => standby.status().committed === total + 3);
        expect(rx.messages.slice(total).map(patientOf)).toEqual([
          `P${total + 1}`,
          `P${total + 2}`,
          `P${total + 3}`,
        ]);
        expect(standby.status().holdingLease).toBe(true);
      } finally {
        await a.stop();
        await b.stop();
        await rx.close();
      }
    });
  });
}
