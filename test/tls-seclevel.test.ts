// The TLS listeners run at OpenSSL security level 2 (BCP 195, RFC 9325 §4.4: RSA keys of 2048 bits or more): a client
// certificate with a 1024-bit RSA key, signed by the configured CA, is refused at handshake. Until 6 Dec 2026 Node's
// default level 1 took it.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { CLIENT_EXT, openSslCa, PEER_EXT, writePki } from './support/tls-certs.js';

const day = 86_400_000;

for (const backend of backends()) {
  describe(`TLS listeners at security level 2 (${backend})`, () => {
    let s: TestServer;
    let dir: string;
    const f = (name: string) => join(dir, name);

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'custos-tls-seclevel-'));
      writePki(dir, { keyType: 'rsa', cas: ['ca'], leaves: { server: PEER_EXT } });
      const ca = openSslCa(dir);
      const period = { start: new Date(Date.now() - day), end: new Date(Date.now() + 2 * day) };
      ca.sign('weak', CLIENT_EXT, period, ['-newkey', 'rsa:1024']);
      ca.sign('strong', CLIENT_EXT, period, ['-newkey', 'rsa:2048']);
      const tls = {
        port: 0,
        cert: f('server.crt'),
        key: f('server.key'),
        ca: f('ca.crt'),
        requireClientCert: true,
      };
      s = await startTestServer(backend, {
        dicom: { tls },
        hl7: { port: null, senders: ['RIS^HOSP'], tls },
      });
    });

    afterAll(async () => {
      await s.stop();
      await rm(dir, { recursive: true, force: true });
    });

    /** Whether a TLS 1.2 handshake with the client certificate `name` succeeds (1.2: the client hears the verdict). */
    const handshake = (port: number, name: string) =>
      new Promise<'accepted' | 'refused'>((resolve) => {
        const c = tlsConnect({
          host: '127.0.0.1',
          port,
          maxVersion: 'TLSv1.2',
          ca: readFileSync(f('ca.crt')),
          cert: readFileSync(f(`${name}.crt`)),
          key: readFileSync(f(`${name}.key`)),
          checkServerIdentity: () => undefined,
        });
        c.once('secureConnect', () => {
          c.destroy();
          resolve('accepted');
        });
        c.once('error', () => resolve('refused'));
      });

    it('refuses a client certificate with a 1024-bit RSA key on DICOM TLS and MLLP/TLS, and takes a 2048-bit one', async () => {
      for (const port of [s.dicomTlsPort!, s.hl7TlsPort!]) {
        expect(await handshake(port, 'strong')).toBe('accepted');
        expect(await handshake(port, 'weak')).toBe('refused');
      }
    });
  });
}
