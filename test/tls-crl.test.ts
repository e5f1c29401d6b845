// dicom.tls.crl and hl7.tls.crl: a PEM CRL of the client CA (made here with `openssl ca`); a client certificate it
// revokes is refused at handshake, on DICOM TLS even where client certificates are optional and the AE is bound to
// that very certificate. Until 6 Dec 2026 there was no such setting: a revoked certificate was taken until it
// expired.
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateSha256 } from '../src/app/certificate.js';
import { loadTlsMaterial } from '../src/app/tls-material.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk, freePort, spawnTlsDestination, stopChild, storescuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { MllpClient } from './support/mllp-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { CLIENT_EXT, openSslCa, PEER_EXT, writePki } from './support/tls-certs.js';

const admin = systemPrincipal('test');
const day = 86_400_000;

const adt = (id: string) =>
  [
    `MSH|^~\\&|RIS|HOSP|CUSTOS|HOSP|20260101120000||ADT^A08^ADT_A01|${id}|P|2.5.1`,
    'EVN|A08|20260101120000',
    `PID|1||${id}^^^HOSP^MR||DOE^JANE`,
    '',
  ].join('\r');

for (const backend of backends()) {
  describe(`TLS client certificates revoked by a CRL (${backend})`, () => {
    let s: TestServer;
    let dir: string;
    const f = (name: string) => join(dir, name);
    const study = uid(1);
    const pin = (name: string) => certificateSha256(f(`${name}.crt`));

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'custos-tls-crl-'));
      writePki(dir, { keyType: 'rsa', cas: ['ca'], leaves: { server: PEER_EXT } });
      const ca = openSslCa(dir);
      const period = { start: new Date(Date.now() - day), end: new Date(Date.now() + 2 * day) };
      ca.sign('good', CLIENT_EXT, period);
      ca.sign('revoked', CLIENT_EXT, period);
      // C-MOVE destinations, which Custos calls over TLS: one whose certificate the CRL revokes.
      ca.sign('dest', PEER_EXT, period);
      ca.sign('revokeddest', PEER_EXT, period);
      ca.revoke('revoked');
      ca.revoke('revokeddest');
      ca.crl(f('ca.crl'));
      const tls = { port: 0, cert: f('server.crt'), key: f('server.key'), ca: f('ca.crt'), crl: f('ca.crl') };
      s = await startTestServer(backend, {
        dicom: { tls: { ...tls, requireClientCert: false } },
        hl7: { port: null, senders: ['RIS^HOSP'], tls: { ...tls, requireClientCert: true } },
      });
      for (const [title, name] of [
        ['GOODSCU', 'good'],
        ['REVOKEDSCU', 'revoked'],
      ] as const)
        await s.app.aes.add(admin, {
          title,
          host: '127.0.0.1',
          port: 104,
          user: 'admin',
          certSha256: await pin(name),
        });
      await s.app.aes.add(admin, { title: 'MOVER', host: '127.0.0.1', port: 104, user: 'admin' });
      writeFileSync(
        f('in.dcm'),
        makeInstance({ studyUid: study, seriesUid: uid(2), sopInstanceUid: uid(3), patientId: 'PID-CRL' }),
      );
      const stored = await storescuTo(s.dicomPort, 'MOVER', [f('in.dcm')]);
      expect(stored.code, stored.stderr).toBe(0);
    });

    afterAll(async () => {
      await s.stop();
      await rm(dir, { recursive: true, force: true });
    });

    const echo = (name: string, title: string) =>
      dcmtk('echoscu', [
        '+tls',
        f(`${name}.key`),
        f(`${name}.crt`),
        '+cf',
        f('ca.crt'),
        '-aet',
        title,
        '-aec',
        'CUSTOS',
        '127.0.0.1',
        String(s.dicomTlsPort),
      ]);

    it('refuses a DICOM TLS client whose certificate the CRL revokes, though registered for its AE, and audits why', async () => {
      const good = await echo('good', 'GOODSCU');
      expect(good.code, good.stderr).toBe(0);
      const revoked = await echo('revoked', 'REVOKEDSCU');
      expect(revoked.code).not.toBe(0);
      expect(s.notices).toContainEqual(
        'DICOM TLS: refused a connection from 127.0.0.1: its client certificate is revoked (dicom.tls.crl)',
      );
      const denied = async () =>
        (
          await s.app.index.db
            .selectFrom('audit_ledger')
            .select('record')
            .where('action', '=', 'dicom-associate')
            .where('outcome', '=', 'denied')
            .execute()
        ).map((r) => (JSON.parse(r.record) as { detail: { reason: string } }).detail.reason);
      // The ledger's append runs after the socket has closed (as in dimse-tls.test.ts): on PostgreSQL under load
      // echoscu could exit before it was in, and the test read an empty ledger.
      for (const deadline = Date.now() + 5000; (await denied()).length === 0 && Date.now() < deadline;)
        await new Promise((r) => setTimeout(r, 50));
      const reasons = await denied();
      expect(reasons).toEqual([
        'TLS client certificate refused: its client certificate is revoked (dicom.tls.crl)',
      ]);
    });

    it('does not call a C-MOVE destination whose certificate the CRL revokes, though registered for its AE, and audits why', async () => {
      /** movescu of the study to `title`, a storescp presenting `name`'s certificate: what it received, and said. */
      const moveTo = async (name: string, title: string) => {
        const destPort = await freePort();
        const out = await mkdtemp(join(dir, 'move-'));
        const scp = spawnTlsDestination(f(`${name}.key`), f(`${name}.crt`), title, out, destPort);
        try {
          await s.app.aes.add(admin, {
            title,
            host: '127.0.0.1',
            port: destPort,
            certSha256: await pin(name),
          });
          await new Promise((r) => setTimeout(r, 300));
          const r = await dcmtk('movescu', [
            '-d',
            ...['-aet', 'MOVER', '-aec', 'CUSTOS', '-S', '-aem', title],
            ...['127.0.0.1', String(s.dicomPort)],
            ...['-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`],
          ]);
          return { stderr: r.stderr, received: await readdir(out) };
        } finally {
          await stopChild(scp);
        }
      };
      const good = await moveTo('dest', 'GOODDEST');
      expect(good.received, good.stderr).toHaveLength(1);
      // Until 6 Dec 2026 the CRL was applied to incoming certificates only, and this destination got the study.
      const revoked = await moveTo('revokeddest', 'REVOKEDDEST');
      expect(revoked.received).toHaveLength(0);
      expect(revoked.stderr).toMatch(
        /Move response with error status \(Refused: OutOfResourcesSubOperations\)/,
      );
      expect(revoked.stderr).toContain('LO [TLS certificate is revoked (dicom.tls.crl)');
      const reasons = (
        await s.app.index.db
          .selectFrom('audit_ledger')
          .select('record')
          .where('action', '=', 'view-pixels')
          .where('outcome', '=', 'failure')
          .execute()
      )
        .map((r) => JSON.parse(r.record) as { detail: { destination?: string; reason?: string } })
        .filter((r) => r.detail.destination === 'REVOKEDDEST')
        .map((r) => r.detail.reason);
      expect(reasons).toEqual([
        expect.stringMatching(
          /^TLS certificate is revoked \(dicom\.tls\.crl\): REVOKEDDEST at 127\.0\.0\.1:\d+ is not called$/,
        ),
      ]);
    });

    it('refuses an MLLP/TLS client whose certificate the CRL revokes, and takes one it does not', async () => {
      const send = async (name: string, id: string) => {
        const c = await MllpClient.connect(s.hl7TlsPort!, {
          ca: readFileSync(f('ca.crt')),
          cert: readFileSync(f(`${name}.crt`)),
          key: readFileSync(f(`${name}.key`)),
          checkServerIdentity: () => undefined,
        });
        try {
          return await c.send(adt(id));
        } finally {
          await c.close();
        }
      };
      expect(await send('good', 'CRL-1')).toMatch(/MSA\|AA\|CRL-1/);
      await expect(send('revoked', 'CRL-2')).rejects.toThrow();
    });

    it('refuses to start with a crl file that is not a CRL, naming the setting and the file', async () => {
      writeFileSync(f('not.crl'), readFileSync(f('ca.crt')));
      await expect(
        loadTlsMaterial(
          'dicom.tls',
          {
            cert: f('server.crt'),
            key: f('server.key'),
            ca: f('ca.crt'),
            crl: f('not.crl'),
          },
          new Date(),
        ),
      ).rejects.toThrow(
        `configuration dicom.tls.crl: ${f('not.crl')} is not a PEM certificate revocation list (-----BEGIN X509 CRL-----)`,
      );
    });
  });
}
