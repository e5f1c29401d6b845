// Issue 3: DICOM TLS (PS3.15 Annex B) with dcmtk's +tls, client certificates bound to AE entries; C-MOVE to a
// destination registered with a certificate (Custos calls it over TLS), and C-GET over TLS.
import { readFileSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateSha256 } from '../src/app/certificate.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import {
  dcmtk,
  findscuWith,
  freePort,
  spawnDcmtk,
  spawnTlsDestination,
  stopChild,
  untilListening,
} from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { certificatePin, CLIENT_EXT, openSslCa, PEER_EXT, writePki } from './support/tls-certs.js';

const admin = systemPrincipal('test');

/** The reasons of the denied association records in the ledger, of one calling AE or one policy. */
async function deniedReasons(s: TestServer, of: { actor?: string; policy?: string }): Promise<string[]> {
  const rows = await s.app.index.db
    .selectFrom('audit_ledger')
    .select(['record', 'actor'])
    .where('action', '=', 'dicom-associate')
    .where('outcome', '=', 'denied')
    .orderBy('seq')
    .execute();
  return rows
    .map((r) => ({
      ...(JSON.parse(r.record) as { policy: string; detail: { reason: string } }),
      actor: r.actor,
    }))
    .filter(
      (r) =>
        (of.actor === undefined || r.actor === of.actor) &&
        (of.policy === undefined || r.policy === of.policy),
    )
    .map((r) => r.detail.reason);
}

/**
 * The certificates and keys of each describe below, made by `make` once per file and copied into each backend's
 * directory: RSA keys take openssl a while, and no test depends on its backend having keys of its own (until 8 Dec
 * 2026 each backend made the same set again).
 */
let pkiRoot: string | undefined;
const pkis = new Map<string, Promise<string>>();
afterAll(async () => {
  if (pkiRoot) await rm(pkiRoot, { recursive: true, force: true });
});
async function pkiInto(dir: string, name: string, make: (dir: string) => void | Promise<void>) {
  let made = pkis.get(name);
  if (!made) {
    made = (async () => {
      pkiRoot ??= await mkdtemp(join(tmpdir(), 'custos-tls-pki-'));
      const at = join(pkiRoot, name);
      await mkdir(at);
      await make(at);
      return at;
    })();
    pkis.set(name, made);
  }
  await cp(await made, dir, { recursive: true });
}

for (const backend of backends()) {
  describe(`DICOM TLS with dcmtk (${backend})`, () => {
    let s: TestServer;
    let dir: string;
    let port: string;
    let tls: string[];
    const study = uid(1);
    const series = uid(2);
    let file: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'custos-tls-'));
      await pkiInto(dir, 'tls', async (dir) => {
        writePki(dir, {
          keyType: 'rsa',
          cas: ['ca'],
          leaves: { server: PEER_EXT, client: CLIENT_EXT, rogue: CLIENT_EXT },
        });
        // A client certificate of a CA the server does not trust.
        const other = join(dir, 'other');
        await mkdir(other);
        writePki(other, { keyType: 'rsa', cas: ['ca'], leaves: { client: CLIENT_EXT } });
        await copyFile(join(other, 'client.crt'), join(dir, 'other.crt'));
        await copyFile(join(other, 'client.key'), join(dir, 'other.key'));
      });
      s = await startTestServer(backend, {
        dicom: {
          port: null,
          tls: {
            port: 0,
            cert: join(dir, 'server.crt'),
            key: join(dir, 'server.key'),
            ca: join(dir, 'ca.crt'),
            requireClientCert: true,
          },
          artimTimeoutMs: 2000,
        },
      });
      port = String(s.dicomTlsPort);
      tls = ['+tls', join(dir, 'client.key'), join(dir, 'client.crt'), '+cf', join(dir, 'ca.crt')];
      await s.app.aes.add(admin, {
        title: 'TLSSCU',
        host: '127.0.0.1',
        port: 104,
        user: 'admin',
        certSha256: await certificateSha256(join(dir, 'client.crt')),
      });
      file = join(dir, 'in.dcm');
      await writeFile(
        file,
        makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: uid(3), patientId: 'PID-TLS' }),
      );
    });

    afterAll(async () => {
      await s.stop();
      await rm(dir, { recursive: true, force: true });
    });

    const scu = ['-aet', 'TLSSCU', '-aec', 'CUSTOS'];

    it('switches the plain port off and listens with TLS only', () => {
      expect(s.dicomPort).toBeNull();
      expect(s.dicomTlsPort).toBeGreaterThan(0);
    });

    it('closes a connection that starts no TLS handshake within the ARTIM timeout, and says so in the log', async () => {
      // Until 5 Dec 2026 such a connection stayed open for good: 200 of them held 200 descriptors after 4 minutes.
      const started = Date.now();
      const closed = await new Promise<number>((resolve) => {
        const socket = netConnect(Number(port), '127.0.0.1');
        socket.on('error', () => undefined);
        socket.once('close', () => resolve(Date.now() - started));
      });
      expect(closed).toBeGreaterThanOrEqual(1900);
      expect(closed).toBeLessThan(10_000);
      expect(s.notices).toContainEqual(
        'DICOM TLS: refused a connection from 127.0.0.1: no TLS handshake within 2000 ms (the ARTIM timeout)',
      );
    });

    it('answers echoscu, storescu and findscu over TLS with the registered client certificate', async () => {
      let r = await dcmtk('echoscu', [...tls, ...scu, '127.0.0.1', port]);
      expect(r.code, r.stderr).toBe(0);
      r = await dcmtk('storescu', [...tls, ...scu, '127.0.0.1', port, file]);
      expect(r.code, r.stderr).toBe(0);
      r = await findscuWith(
        port,
        'TLSSCU',
        ['QueryRetrieveLevel=STUDY', 'PatientID=PID-TLS', 'StudyInstanceUID'],
        {
          flags: tls,
        },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(study);
      // dcmtk 3.6.7's getscu and movescu have no TLS options; C-GET and C-MOVE run the same code over TLS.
    });

    it('rejects a CA-signed client certificate other than the one registered for the AE, and audits it', async () => {
      const rogue = ['+tls', join(dir, 'rogue.key'), join(dir, 'rogue.crt'), '+cf', join(dir, 'ca.crt')];
      const r = await dcmtk('echoscu', [...rogue, ...scu, '127.0.0.1', port]);
      expect(r.code).not.toBe(0);
      expect(r.stderr + r.stdout).toMatch(/Calling AE Title Not Recognized/i);
      expect((await deniedReasons(s, { actor: 'TLSSCU' })).some((x) => x.includes('certificate'))).toBe(true);
    });

    it('refuses a TLS handshake without a client certificate, or with one of another CA, and audits each', async () => {
      const r = await dcmtk('echoscu', ['+tla', '+cf', join(dir, 'ca.crt'), ...scu, '127.0.0.1', port]);
      expect(r.code).not.toBe(0);
      const foreign = await dcmtk('echoscu', [
        ...['+tls', join(dir, 'other.key'), join(dir, 'other.crt'), '+cf', join(dir, 'ca.crt')],
        ...scu,
        '127.0.0.1',
        port,
      ]);
      expect(foreign.code).not.toBe(0);
      const refused = () => deniedReasons(s, { policy: 'builtin:dicom-tls' });
      // The ledger's append runs after the socket has closed.
      const deadline = Date.now() + 5000;
      while ((await refused()).length < 2 && Date.now() < deadline)
        await new Promise((x) => setTimeout(x, 100));
      const reasons = await refused();
      expect(reasons).toHaveLength(2);
      for (const reason of reasons) expect(reason).toMatch(/^TLS client certificate refused: /);
    });

    it('refuses TLS 1.1', async () => {
      const err = await new Promise<Error | undefined>((resolve) => {
        const c = tlsConnect({
          host: '127.0.0.1',
          port: Number(port),
          minVersion: 'TLSv1',
          maxVersion: 'TLSv1.1',
          rejectUnauthorized: false,
        });
        c.once('secureConnect', () => {
          c.destroy();
          resolve(undefined);
        });
        c.once('error', (e) => resolve(e));
      });
      expect(err).toBeDefined();
    });

    it('takes only BCP 195 cipher suites: no static RSA key exchange, no CBC with SHA-1 (RFC 9325 §4.2)', async () => {
      const handshake = (ciphers: string) =>
        new Promise<string>((resolve) => {
          const c = tlsConnect({
            host: '127.0.0.1',
            port: Number(port),
            maxVersion: 'TLSv1.2',
            ciphers,
            cert: readFileSync(join(dir, 'client.crt')),
            key: readFileSync(join(dir, 'client.key')),
            rejectUnauthorized: false,
          });
          c.once('secureConnect', () => {
            const name = c.getCipher().name;
            c.destroy();
            resolve(name);
          });
          c.once('error', (e) => resolve(`refused: ${e.message}`));
        });
      for (const weak of ['AES128-SHA', 'AES256-GCM-SHA384', 'ECDHE-RSA-AES128-SHA'])
        expect(await handshake(weak), weak).toMatch(/^refused: .*handshake failure/);
      expect(await handshake('ECDHE-RSA-AES128-GCM-SHA256')).toBe('ECDHE-RSA-AES128-GCM-SHA256');
      // The DHE suites BCP 195 recommends too, on RFC 7919's groups (without dhparam none was offered).
      expect(await handshake('DHE-RSA-AES128-GCM-SHA256')).toBe('DHE-RSA-AES128-GCM-SHA256');
    });
  });

  describe(`C-MOVE and C-GET over DICOM TLS (${backend})`, () => {
    let s: TestServer;
    let dir: string;
    const study = uid(11);
    const series = uid(12);
    const tlsArgs = () => ['+tls', join(dir, 'dest.key'), join(dir, 'dest.crt'), '+cf', join(dir, 'ca.crt')];

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'custos-tls-move-'));
      await pkiInto(dir, 'move', (dir) =>
        writePki(dir, {
          keyType: 'rsa',
          cas: ['ca'],
          leaves: { server: PEER_EXT, dest: PEER_EXT, other: PEER_EXT, client: CLIENT_EXT },
        }),
      );
      s = await startTestServer(backend, {
        dicom: {
          port: 0,
          tls: {
            port: 0,
            cert: join(dir, 'server.crt'),
            key: join(dir, 'server.key'),
            ca: join(dir, 'ca.crt'),
            requireClientCert: true,
          },
        },
      });
      await s.app.aes.add(admin, { title: 'MOVER', host: '127.0.0.1', port: 104, user: 'admin' });
      await s.app.aes.add(admin, {
        title: 'TLSGET',
        host: '127.0.0.1',
        port: 104,
        user: 'admin',
        certSha256: await certificateSha256(join(dir, 'client.crt')),
      });
      for (let i = 0; i < 2; i++) {
        const f = join(dir, `in${i}.dcm`);
        await writeFile(
          f,
          makeInstance({
            studyUid: study,
            seriesUid: series,
            sopInstanceUid: uid(20 + i),
            patientId: 'PID-TLSMV',
          }),
        );
        const r = await dcmtk('storescu', [
          '-aet',
          'MOVER',
          '-aec',
          'CUSTOS',
          '127.0.0.1',
          String(s.dicomPort),
          f,
        ]);
        expect(r.code, r.stderr).toBe(0);
      }
    });

    afterAll(async () => {
      await s.stop();
      await rm(dir, { recursive: true, force: true });
    });

    const move = (destination: string) =>
      dcmtk('movescu', [
        '-d',
        '-aet',
        'MOVER',
        '-aec',
        'CUSTOS',
        '-S',
        '-aem',
        destination,
        '127.0.0.1',
        String(s.dicomPort),
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${study}`,
      ]);

    it('calls a destination registered with a certificate over TLS, presenting its own certificate', async () => {
      const destPort = await freePort();
      const out = await mkdtemp(join(dir, 'move-'));
      // storescp +tls requires and verifies Custos's client certificate against the CA.
      const scp = spawnDcmtk('storescp', [...tlsArgs(), '-aet', 'TLSDEST', '-od', out, String(destPort)]);
      try {
        await s.app.aes.add(admin, {
          title: 'TLSDEST',
          host: '127.0.0.1',
          port: destPort,
          certSha256: await certificateSha256(join(dir, 'dest.crt')),
        });
        await untilListening(destPort);
        const r = await move('TLSDEST');
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr, r.stderr).not.toMatch(/^[WEF]: /m);
        expect(await readdir(out)).toHaveLength(2);
      } finally {
        await stopChild(scp);
      }
    });

    it('refuses to send to a TLS destination whose certificate is not the registered one', async () => {
      const destPort = await freePort();
      const out = await mkdtemp(join(dir, 'move-'));
      // Same CA, another certificate: the chain verifies but the pin does not.
      const scp = spawnDcmtk('storescp', [
        '+tls',
        join(dir, 'other.key'),
        join(dir, 'other.crt'),
        '+cf',
        join(dir, 'ca.crt'),
        '-aet',
        'PINNED',
        '-od',
        out,
        String(destPort),
      ]);
      try {
        await s.app.aes.add(admin, {
          title: 'PINNED',
          host: '127.0.0.1',
          port: destPort,
          certSha256: await certificateSha256(join(dir, 'dest.crt')),
        });
        await untilListening(destPort);
        const r = await move('PINNED');
        // The move is refused with the reason in the Error Comment; nothing reaches the impostor. Every
        // sub-operation failed (0xA702; until 4 Dec 2026 0xA801, which says the title is not known).
        expect(r.stderr).toMatch(/Move response with error status \(Refused: OutOfResourcesSubOperations\)/);
        expect(r.stderr).toMatch(/LO \[TLS certificate is not the one registered.*ErrorComment/);
        expect(await readdir(out)).toHaveLength(0);
      } finally {
        await stopChild(scp);
      }
    });

    it('serves C-GET over TLS (getscu through an OpenSSL tunnel presenting the registered certificate)', async () => {
      // dcmtk 3.6.7's getscu has no TLS options; socat's OPENSSL address is a real TLS client in front of it.
      const local = await freePort();
      const tunnel = spawnDcmtk('socat', [
        `TCP-LISTEN:${local},bind=127.0.0.1,reuseaddr`,
        `OPENSSL:127.0.0.1:${s.dicomTlsPort},cert=${join(dir, 'client.crt')},key=${join(dir, 'client.key')},cafile=${join(dir, 'ca.crt')},openssl-min-proto-version=TLS1.2`,
      ]);
      try {
        await untilListening(local);
        const out = await mkdtemp(join(dir, 'get-'));
        const r = await dcmtk('getscu', [
          '-aet',
          'TLSGET',
          '-aec',
          'CUSTOS',
          '-S',
          '-od',
          out,
          '127.0.0.1',
          String(local),
          '-k',
          'QueryRetrieveLevel=STUDY',
          '-k',
          `StudyInstanceUID=${study}`,
        ]);
        expect(r.code, r.stderr).toBe(0);
        expect(await readdir(out)).toHaveLength(2);
      } finally {
        await stopChild(tunnel);
      }
    });
  });
}

for (const backend of backends()) {
  describe(`DICOM TLS with client certificates optional (${backend})`, () => {
    let s: TestServer;
    let dir: string;
    const scu = (ae: string) => ['-aet', ae, '-aec', 'CUSTOS'];

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'custos-tls-opt-'));
      // `expired`: a client certificate that expired yesterday (its notAfter a day before its notBefore, now).
      await pkiInto(dir, 'optional', (dir) =>
        writePki(dir, {
          keyType: 'rsa',
          cas: ['ca'],
          leaves: { server: PEER_EXT, client: CLIENT_EXT, expired: CLIENT_EXT },
          leafDays: { expired: -1 },
        }),
      );
      s = await startTestServer(backend, {
        dicom: {
          tls: {
            port: 0,
            cert: join(dir, 'server.crt'),
            key: join(dir, 'server.key'),
            ca: join(dir, 'ca.crt'),
            requireClientCert: false,
          },
        },
      });
      const pin = (file: string) => certificatePin(join(dir, file));
      await s.app.aes.add(admin, {
        title: 'OKSCU',
        host: '127.0.0.1',
        port: 104,
        user: 'admin',
        certSha256: pin('client.crt'),
      });
      // Registered before 5 Dec 2026, when an expired certificate was taken: the registry holds its fingerprint.
      await s.app.aes.add(admin, {
        title: 'EXPSCU',
        host: '127.0.0.1',
        port: 104,
        user: 'admin',
        certSha256: pin('expired.crt'),
      });
    });

    afterAll(async () => {
      await s.stop();
      await rm(dir, { recursive: true, force: true });
    });

    const tls = (name: string) => [
      '+tls',
      join(dir, `${name}.key`),
      join(dir, `${name}.crt`),
      '+cf',
      join(dir, 'ca.crt'),
    ];

    it('admits an AE presenting its registered certificate', async () => {
      const r = await dcmtk('echoscu', [
        ...tls('client'),
        ...scu('OKSCU'),
        '127.0.0.1',
        String(s.dicomTlsPort),
      ]);
      expect(r.code, r.stderr).toBe(0);
    });

    it('refuses an AE presenting its registered certificate once it has expired, and audits why', async () => {
      const r = await dcmtk('echoscu', [
        ...tls('expired'),
        ...scu('EXPSCU'),
        '127.0.0.1',
        String(s.dicomTlsPort),
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stderr + r.stdout).toMatch(/Calling AE Title Not Recognized/i);
      const reasons = await deniedReasons(s, { actor: 'EXPSCU' });
      expect(reasons).toEqual([
        expect.stringMatching(
          /^AE 'EXPSCU' presented its registered client certificate, which is valid from \S+ to \S+ only$/,
        ),
      ]);
    });

    it("says in the log why it refused a client's TLS 1.1 handshake, in words before OpenSSL's", async () => {
      // The first refusal on this server (one log line a minute). Until 6 Dec 2026 the line carried OpenSSL's text
      // alone: `…:error:0A000102:SSL routines:tls_early_post_process_client_hello:unsupported protocol:…`.
      await new Promise<void>((resolve) => {
        const c = tlsConnect({
          host: '127.0.0.1',
          port: Number(s.dicomTlsPort),
          minVersion: 'TLSv1',
          maxVersion: 'TLSv1.1',
          rejectUnauthorized: false,
        });
        c.once('secureConnect', () => c.destroy());
        c.once('error', () => resolve());
        c.once('close', () => resolve());
      });
      const refused = () => s.notices.filter((n) => n.startsWith('DICOM TLS: refused a connection'));
      for (const deadline = Date.now() + 5000; refused().length === 0 && Date.now() < deadline;)
        await new Promise((r) => setTimeout(r, 50));
      expect(refused()).toEqual([
        expect.stringMatching(
          /^DICOM TLS: refused a connection from 127\.0\.0\.1: the client offers no TLS version Custos takes \(TLS 1\.2 or 1\.3\) \[.*unsupported protocol.*\]$/,
        ),
      ]);
    });

    it('will not register an expired certificate for an AE (custos ae add --cert)', async () => {
      await expect(certificateSha256(join(dir, 'expired.crt'))).rejects.toThrow(/is valid from .* not now$/);
    });
  });
}

for (const backend of backends()) {
  describe(`C-MOVE to a destination pinned by its certificate alone, without dicom.tls.ca (${backend})`, () => {
    let s: TestServer;
    let dir: string;
    const study = uid(31);
    const day = 86_400_000;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'custos-tls-pin-'));
      await pkiInto(dir, 'pin', (dir) => {
        writePki(dir, { keyType: 'rsa', cas: ['ca'], leaves: { server: PEER_EXT } });
        const ca = openSslCa(dir);
        const now = Date.now();
        ca.sign('expired', PEER_EXT, { start: new Date(now - 3 * day), end: new Date(now - day) });
        ca.sign('early', PEER_EXT, { start: new Date(now + day), end: new Date(now + 3 * day) });
      });
      s = await startTestServer(backend, {
        dicom: {
          port: 0,
          tls: { port: 0, cert: join(dir, 'server.crt'), key: join(dir, 'server.key') },
        },
      });
      await s.app.aes.add(admin, { title: 'MOVER', host: '127.0.0.1', port: 104, user: 'admin' });
      const f = join(dir, 'in.dcm');
      await writeFile(
        f,
        makeInstance({ studyUid: study, seriesUid: uid(32), sopInstanceUid: uid(33), patientId: 'PID-PIN' }),
      );
      const r = await dcmtk('storescu', [
        '-aet',
        'MOVER',
        '-aec',
        'CUSTOS',
        '127.0.0.1',
        String(s.dicomPort),
        f,
      ]);
      expect(r.code, r.stderr).toBe(0);
    });

    afterAll(async () => {
      await s.stop();
      await rm(dir, { recursive: true, force: true });
    });

    /** The reason of the ledger's failed-retrieve record for `destination`. */
    const failureReasons = async (destination: string) =>
      (
        await s.app.index.db
          .selectFrom('audit_ledger')
          .select('record')
          .where('action', '=', 'view-pixels')
          .where('outcome', '=', 'failure')
          .orderBy('seq')
          .execute()
      )
        .map((r) => JSON.parse(r.record) as { detail: { destination?: string; reason?: string } })
        .filter((r) => r.detail.destination === destination)
        .map((r) => r.detail.reason);

    for (const [name, title, words] of [
      ['expired', 'EXPDEST', 'has expired'],
      ['early', 'EARLYDEST', 'is not yet valid'],
    ] as const)
      it(`refuses to send to a destination presenting its registered certificate when it ${words}, and audits why`, async () => {
        const destPort = await freePort();
        const out = await mkdtemp(join(dir, 'move-'));
        const scp = spawnTlsDestination(
          join(dir, `${name}.key`),
          join(dir, `${name}.crt`),
          title,
          out,
          destPort,
        );
        try {
          // Registered while it was valid (or before it became so): the registry holds its fingerprint.
          await s.app.aes.add(admin, {
            title,
            host: '127.0.0.1',
            port: destPort,
            certSha256: certificatePin(join(dir, `${name}.crt`)),
          });
          await untilListening(destPort);
          const r = await dcmtk('movescu', [
            '-d',
            '-aet',
            'MOVER',
            '-aec',
            'CUSTOS',
            '-S',
            '-aem',
            title,
            '127.0.0.1',
            String(s.dicomPort),
            '-k',
            'QueryRetrieveLevel=STUDY',
            '-k',
            `StudyInstanceUID=${study}`,
          ]);
          expect(r.stderr).toMatch(
            /Move response with error status \(Refused: OutOfResourcesSubOperations\)/,
          );
          expect(r.stderr).toContain(`LO [TLS certificate (the registered one) ${words}`);
          expect(await readdir(out)).toHaveLength(0);
          expect(await failureReasons(title)).toEqual([
            expect.stringMatching(
              new RegExp(
                `^TLS certificate \\(the registered one\\) ${words}: valid from \\S+ to \\S+, not now$`,
              ),
            ),
          ]);
        } finally {
          await stopChild(scp);
        }
      });
  });
}
