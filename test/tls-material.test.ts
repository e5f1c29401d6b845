// A TLS listener's certificate and key as an operator gets them wrong: each mistake is refused at start naming the
// setting and the file, `custos serve` exits (until 5 Dec 2026 a mismatched key left it running with nothing but
// OpenSSL's "key values mismatch" said), and a certificate that expires soon or has expired is said in the log.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { certificateExpiryNotice, loadTlsMaterial } from '../src/app/tls-material.js';
import { captureIO as io } from './support/cli-io.js';
import { PEER_EXT, SERVER_EXT, writePki } from './support/tls-certs.js';

const dir = mkdtempSync(join(tmpdir(), 'custos-tls-material-'));
// Two CAs, and a server certificate of the first (valid for two days, as writePki makes them).
writePki(dir, { keyType: 'ec', cas: ['ca', 'other'], leaves: { server: SERVER_EXT, peer: PEER_EXT } });
const f = (name: string) => join(dir, name);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const listen = async (): Promise<Server> => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return s;
};
const portOf = (s: Server) => (s.address() as AddressInfo).port;
const close = (s: Server) => new Promise((r) => s.close(r));

describe('TLS material of a listener', () => {
  it('reads a matching certificate and key, with its subject and end', async () => {
    const m = await loadTlsMaterial('dicom.tls', {
      cert: f('server.crt'),
      key: f('server.key'),
      ca: f('ca.crt'),
    });
    expect(m.subject).toBe('CN=server');
    const days = (m.notAfter.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(1.9);
    expect(days).toBeLessThanOrEqual(2);
  });

  it('names the setting and the files of a key that is not the certificate’s, an unreadable file, or a file that is no certificate', async () => {
    const refusal = (files: { cert: string; key: string; ca?: string }) =>
      loadTlsMaterial('hl7.tls', files).catch((e: unknown) => e);
    expect(await refusal({ cert: f('server.crt'), key: f('peer.key') })).toMatchObject({
      code: 'config.invalid',
      message: `configuration hl7.tls.key: ${f('peer.key')} is not the key of the certificate ${f('server.crt')}`,
      detail: { key: 'hl7.tls.key' },
    });
    expect(await refusal({ cert: f('missing.crt'), key: f('server.key') })).toMatchObject({
      code: 'config.invalid',
      message: expect.stringMatching(/^configuration hl7\.tls\.cert: cannot read .*missing\.crt: ENOENT/),
    });
    expect(await refusal({ cert: f('server.key'), key: f('server.key') })).toMatchObject({
      message: `configuration hl7.tls.cert: ${f('server.key')} is not a PEM or DER X.509 certificate`,
    });
    expect(await refusal({ cert: f('server.crt'), key: f('server.key'), ca: f('server.csr') })).toMatchObject(
      {
        message: `configuration hl7.tls.ca: ${f('server.csr')} is not a PEM or DER X.509 certificate`,
      },
    );
  });

  it('says a certificate expires within 30 days, or has expired, and nothing before', async () => {
    const m = await loadTlsMaterial('dicom.tls', { cert: f('server.crt'), key: f('server.key') });
    const day = m.notAfter.toISOString().slice(0, 10);
    const at = (msBeforeEnd: number) =>
      certificateExpiryNotice(m, new Date(m.notAfter.getTime() - msBeforeEnd));
    expect(at(31 * 86_400_000)).toBeUndefined();
    expect(at(30 * 86_400_000)).toBe(
      `the dicom.tls certificate (${f('server.crt')}, CN=server) expires on ${day}, in 30 days: replace it before then (then restart custos)`,
    );
    expect(at(3_600_000)).toMatch(/, in 1 day: replace it/);
    expect(at(0)).toBe(
      `the dicom.tls certificate (${f('server.crt')}, CN=server) expired on ${day}: TLS peers refuse the handshake until it is replaced (then restart custos)`,
    );
  });
});

describe('custos serve with DICOM TLS', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'custos-tls-serve-'));
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));
  const args = ['serve', '--http-port', '0', '--http-host', '127.0.0.1', '--dicom-host', '127.0.0.1'];

  it('refuses to start with a key that is not the certificate’s, naming both, and exits', async () => {
    const o = io(cwd);
    o.env = {
      CUSTOS_DICOM_TLS_PORT: '0',
      CUSTOS_DICOM_TLS_CERT: f('server.crt'),
      CUSTOS_DICOM_TLS_KEY: f('peer.key'),
    };
    expect(await main([...args, '--data', 'd-mismatch', '--dicom-port', '0'], o)).toBe(2);
    expect(o.stderr).toContain(
      `custos: configuration dicom.tls.key: ${f('peer.key')} is not the key of the certificate ${f('server.crt')}`,
    );
  });

  it('leaves no listener behind when the TLS port is taken after the plain one was bound', async () => {
    const plain = await listen();
    const plainPort = portOf(plain);
    await close(plain);
    const taken = await listen();
    try {
      const o = io(cwd);
      o.env = {
        CUSTOS_DICOM_TLS_PORT: String(portOf(taken)),
        CUSTOS_DICOM_TLS_CERT: f('server.crt'),
        CUSTOS_DICOM_TLS_KEY: f('server.key'),
      };
      expect(await main([...args, '--data', 'd-taken', '--dicom-port', String(plainPort)], o)).not.toBe(0);
      expect(o.stderr).toContain(
        `custos: DICOM cannot listen on 127.0.0.1:${portOf(taken)}: another process`,
      );
      // The plain DIMSE port it had bound is free again: the process would otherwise never exit.
      const again = createServer();
      await new Promise<void>((resolve, reject) => {
        again.once('error', reject);
        again.listen(plainPort, '127.0.0.1', resolve);
      });
      await close(again);
    } finally {
      await close(taken);
    }
  });

  it('says in its log at start that its certificate expires within 30 days', async () => {
    let stop!: (signal: string) => void;
    const o = io(cwd, new Promise<string>((r) => (stop = r)));
    o.env = {
      CUSTOS_DICOM_TLS_PORT: '0',
      CUSTOS_DICOM_TLS_CERT: f('server.crt'),
      CUSTOS_DICOM_TLS_KEY: f('server.key'),
    };
    const running = main([...args, '--data', 'd-expiring', '--dicom-port', '0'], o);
    const deadline = Date.now() + 30_000;
    while (!o.stdout.includes('DICOM AE') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    stop('SIGTERM');
    expect(await running).toBe(0);
    expect(o.stderr).toMatch(
      /custos: the dicom\.tls certificate \(.*server\.crt, CN=server\) expires on \d{4}-\d\d-\d\d, in 2 days: replace it/,
    );
  });
});
