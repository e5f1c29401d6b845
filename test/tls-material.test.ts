// A TLS listener's certificate and key as an operator gets them wrong: each mistake is refused at start naming the
// setting and the file, `custos serve` exits (until 5 Dec 2026 a mismatched key left it running with nothing but
// OpenSSL's "key values mismatch" said), and a certificate that expires soon or has expired is said in the log.
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { certificateExpiryNotice, loadTlsMaterial } from '../src/app/tls-material.js';
import { captureIO as io } from './support/cli-io.js';
import { freePort } from './support/dcmtk.js';
import { startWorkersServe } from './support/serve-workers.js';
import { openSslCa, PEER_EXT, SERVER_EXT, writePki } from './support/tls-certs.js';

const dir = mkdtempSync(join(tmpdir(), 'custos-tls-material-'));
// Two CAs, and a server certificate of the first (valid for two days, as writePki makes them).
// `expired`: expired a day ago; `early`: valid from tomorrow.
writePki(dir, {
  keyType: 'ec',
  cas: ['ca', 'other'],
  leaves: { server: SERVER_EXT, peer: PEER_EXT, expired: SERVER_EXT },
  leafDays: { expired: -1 },
});
openSslCa(dir).sign('early', SERVER_EXT, {
  start: new Date(Date.now() + 86_400_000),
  end: new Date(Date.now() + 3 * 86_400_000),
});
const f = (name: string) => join(dir, name);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const listen = async (): Promise<Server> => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return s;
};
/**
 * Certificate files where a server reads them (`live.crt`, `live.key`), which the test replaces with the PKI's, and
 * the environment that points DICOM TLS and HL7 over TLS at them.
 */
function liveFiles(hl7Port = '0') {
  const dir = mkdtempSync(join(tmpdir(), 'custos-tls-live-'));
  const put = (cert: string, key: string) => {
    copyFileSync(f(cert), join(dir, 'live.crt'));
    copyFileSync(f(key), join(dir, 'live.key'));
  };
  put('server.crt', 'server.key');
  const files = { CERT: join(dir, 'live.crt'), KEY: join(dir, 'live.key') };
  return {
    put,
    env: {
      CUSTOS_DICOM_TLS_PORT: '0',
      CUSTOS_DICOM_TLS_CERT: files.CERT,
      CUSTOS_DICOM_TLS_KEY: files.KEY,
      CUSTOS_HL7_TLS_PORT: hl7Port,
      CUSTOS_HL7_TLS_CERT: files.CERT,
      CUSTOS_HL7_TLS_KEY: files.KEY,
    },
    /** HTTPS on the HTTP port with the same files. */
    https: { CUSTOS_HTTP_TLS_CERT: files.CERT, CUSTOS_HTTP_TLS_KEY: files.KEY },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The CN of the certificate a TLS listener presents. */
const presentedOn = (port: number) =>
  new Promise<string>((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().subject.CN as string);
      socket.destroy();
    });
    socket.once('error', reject);
  });
const portOf = (s: Server) => (s.address() as AddressInfo).port;
const close = (s: Server) => new Promise((r) => s.close(r));

describe('TLS material of a listener', () => {
  it('reads a matching certificate and key, with its subject and end', async () => {
    const m = await loadTlsMaterial(
      'dicom.tls',
      {
        cert: f('server.crt'),
        key: f('server.key'),
        ca: f('ca.crt'),
      },
      new Date(),
    );
    expect(m.subject).toBe('CN=server');
    const days = (m.notAfter.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(1.9);
    expect(days).toBeLessThanOrEqual(2);
  });

  it('names the setting and the files of a key that is not the certificate’s, an unreadable file, or a file that is no certificate', async () => {
    const refusal = (files: { cert: string; key: string; ca?: string }) =>
      loadTlsMaterial('hl7.tls', files, new Date()).catch((e: unknown) => e);
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
    const loaded = await loadTlsMaterial(
      'dicom.tls',
      { cert: f('server.crt'), key: f('server.key') },
      new Date(),
    );
    // Valid for two days: the times before its end below would otherwise be before its start.
    const m = { ...loaded, notBefore: new Date(0) };
    const day = m.notAfter.toISOString().slice(0, 10);
    const at = (msBeforeEnd: number) =>
      certificateExpiryNotice(m, new Date(m.notAfter.getTime() - msBeforeEnd));
    expect(at(31 * 86_400_000)).toBeUndefined();
    expect(at(30 * 86_400_000)).toBe(
      `the dicom.tls certificate (${f('server.crt')}, CN=server) expires on ${day}, in 30 days: replace it before then (then reload: SIGHUP)`,
    );
    expect(at(3_600_000)).toMatch(/, in 1 day: replace it/);
    expect(at(0)).toBe(
      `the dicom.tls certificate (${f('server.crt')}, CN=server) expired on ${day}: TLS peers refuse the handshake until it is replaced (then reload: SIGHUP)`,
    );
  });

  it('refuses a certificate that has expired, naming the setting and the file, and takes one not valid yet with a notice', async () => {
    expect(
      await loadTlsMaterial('dicom.tls', { cert: f('expired.crt'), key: f('expired.key') }, new Date()).catch(
        (e: unknown) => e,
      ),
    ).toMatchObject({
      code: 'config.invalid',
      message: expect.stringMatching(
        new RegExp(
          `^configuration dicom\\.tls\\.cert: ${f('expired.crt')} \\(CN=expired\\) expired on \\d{4}-\\d\\d-\\d\\d: TLS peers would refuse every handshake; give a valid certificate$`,
        ),
      ),
      detail: { key: 'dicom.tls.cert' },
    });
    const early = await loadTlsMaterial('hl7.tls', { cert: f('early.crt'), key: f('early.key') }, new Date());
    expect(certificateExpiryNotice(early, new Date())).toBe(
      `the hl7.tls certificate (${f('early.crt')}, CN=early) is not valid before ${early.notBefore.toISOString()}: TLS peers refuse the handshake until then (check this machine's clock, or replace it and reload: SIGHUP)`,
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

  it('refuses to start when a listener requires client certificates but has no ca, naming the setting', async () => {
    // Until 6 Dec 2026 it started, and checked client certificates against Node's bundled public roots.
    for (const [prefix, key] of [
      ['CUSTOS_DICOM_TLS', 'dicom.tls.ca'],
      ['CUSTOS_HL7_TLS', 'hl7.tls.ca'],
    ] as const) {
      const o = io(cwd);
      o.env = {
        [`${prefix}_PORT`]: '0',
        [`${prefix}_CERT`]: f('server.crt'),
        [`${prefix}_KEY`]: f('server.key'),
        [`${prefix}_REQUIRE_CLIENT_CERT`]: 'true',
      };
      expect(await main([...args, '--data', `d-noca-${key}`, '--dicom-port', '0'], o)).toBe(2);
      expect(o.stderr).toContain(`custos: configuration ${key}: is required with requireClientCert: true`);
      expect(o.stdout).not.toContain('listening on');
    }
  });

  it('refuses to start with an expired certificate, and starts with one not valid yet, saying so in its log', async () => {
    const o = io(cwd);
    o.env = {
      CUSTOS_DICOM_TLS_PORT: '0',
      CUSTOS_DICOM_TLS_CERT: f('expired.crt'),
      CUSTOS_DICOM_TLS_KEY: f('expired.key'),
    };
    expect(await main([...args, '--data', 'd-expired', '--dicom-port', '0'], o)).toBe(2);
    expect(o.stderr).toContain(
      `custos: configuration dicom.tls.cert: ${f('expired.crt')} (CN=expired) expired on`,
    );

    let stop!: (signal: string) => void;
    const later = io(cwd, new Promise<string>((r) => (stop = r)));
    later.env = {
      CUSTOS_HL7_TLS_PORT: '0',
      CUSTOS_HL7_TLS_CERT: f('early.crt'),
      CUSTOS_HL7_TLS_KEY: f('early.key'),
    };
    const running = main([...args, '--data', 'd-early', '--dicom-port', '0'], later);
    const deadline = Date.now() + 30_000;
    while (!later.stdout.includes('DICOM AE') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    stop('SIGTERM');
    expect(await running).toBe(0);
    expect(later.stderr).toMatch(
      /custos: the hl7\.tls certificate \(.*early\.crt, CN=early\) is not valid before \S+: TLS peers refuse the handshake until then/,
    );
  });

  it('checks the TLS files before it initialises a new data directory: a wrong path leaves none behind and prints no password', async () => {
    for (const [prefix, key] of [
      ['CUSTOS_DICOM_TLS', 'dicom.tls.cert'],
      ['CUSTOS_HL7_TLS', 'hl7.tls.cert'],
      ['CUSTOS_HTTP_TLS', 'http.tls.cert'],
    ] as const) {
      const o = io(cwd);
      o.env = {
        // HTTPS is on the HTTP port: it has no port of its own.
        ...(prefix === 'CUSTOS_HTTP_TLS' ? {} : { [`${prefix}_PORT`]: '0' }),
        [`${prefix}_CERT`]: f('missing.crt'),
        [`${prefix}_KEY`]: f('server.key'),
      };
      const data = `d-missing-${key}`;
      expect(await main([...args, '--data', data, '--dicom-port', '0'], o)).toBe(2);
      expect(o.stderr).toContain(`custos: configuration ${key}: cannot read ${f('missing.crt')}`);
      expect(o.stdout).not.toContain('one-time password');
      expect(existsSync(join(cwd, data))).toBe(false);
    }
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

  it('warns at start, naming the file, when the key file is open to group or other users', async () => {
    const keys = mkdtempSync(join(tmpdir(), 'custos-tls-keymode-'));
    try {
      const start = async (mode: number, data: string) => {
        copyFileSync(f('server.key'), join(keys, 'server.key'));
        chmodSync(join(keys, 'server.key'), mode);
        let stop!: (signal: string) => void;
        const o = io(cwd, new Promise<string>((r) => (stop = r)));
        o.env = {
          CUSTOS_DICOM_TLS_PORT: '0',
          CUSTOS_DICOM_TLS_CERT: f('server.crt'),
          CUSTOS_DICOM_TLS_KEY: join(keys, 'server.key'),
        };
        const running = main([...args, '--data', data, '--dicom-port', '0'], o);
        const deadline = Date.now() + 30_000;
        while (!o.stdout.includes('DICOM AE') && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        stop('SIGTERM');
        expect(await running).toBe(0);
        return o.stderr;
      };
      expect(await start(0o644, 'd-keymode-open')).toContain(
        `custos: the dicom.tls key file ${join(keys, 'server.key')} is open to other users (mode 0644): whoever can read it can pose as this server; make it readable by the server's user only (chmod 600)`,
      );
      expect(await start(0o600, 'd-keymode-closed')).not.toContain('key file');
    } finally {
      rmSync(keys, { recursive: true, force: true });
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

  it('presents a renewed certificate from the next handshake on after SIGHUP, and keeps the one in use when the new files are bad', async () => {
    const live = liveFiles();
    let stop!: (signal: string) => void;
    let reload!: () => void;
    const o = io(cwd, new Promise<string>((r) => (stop = r)));
    o.onReload = (fn) => {
      reload = fn;
      return () => undefined;
    };
    o.env = { ...live.env, ...live.https };
    const running = main([...args, '--data', 'd-reload', '--dicom-port', 'off'], o);
    const until = async (what: () => boolean) => {
      const deadline = Date.now() + 30_000;
      while (!what()) {
        if (Date.now() > deadline) throw new Error(`timed out; stderr: ${o.stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    /** Each listener said `what` of its certificate. */
    const saidOfEach = (what: (setting: string) => string) => {
      for (const setting of ['http', 'dicom', 'hl7'])
        expect(o.stderr).toMatch(new RegExp(`custos: the ${setting}\\.tls certificate ${what(setting)}`));
    };
    try {
      await until(() => /DICOM AE \S+ on TLS port \d+/.test(o.stdout));
      const dicomPort = Number(/DICOM AE \S+ on TLS port (\d+)/.exec(o.stdout)![1]);
      const hl7Port = Number(/MLLP\/TLS port (\d+)/.exec(o.stdout)![1]);
      const httpPort = Number(/listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(o.stdout)![1]);
      const presented = async () => [
        await presentedOn(httpPort),
        await presentedOn(dicomPort),
        await presentedOn(hl7Port),
      ];
      expect(await presented()).toEqual(['server', 'server', 'server']);

      live.put('peer.crt', 'peer.key');
      reload();
      await until(() => o.stderr.includes('hl7.tls certificate was reloaded'));
      saidOfEach(
        () =>
          'was reloaded: .*live\\.crt \\(CN=peer, valid until \\d{4}-\\d\\d-\\d\\d\\) is presented from the next connection on',
      );
      expect(await presented()).toEqual(['peer', 'peer', 'peer']);

      live.put('server.crt', 'peer.key');
      reload();
      await until(() => o.stderr.includes('hl7.tls certificate was not reloaded'));
      saidOfEach(
        (setting) =>
          `was not reloaded, the one in use stays: configuration ${setting}\\.tls\\.key: .*live\\.key is not the key of the certificate .*live\\.crt`,
      );
      expect(await presented()).toEqual(['peer', 'peer', 'peer']);

      // An expired certificate is refused the same way: the one in use stays.
      live.put('expired.crt', 'expired.key');
      const before = o.stderr.length;
      reload();
      await until(() => o.stderr.slice(before).includes('hl7.tls certificate was not reloaded'));
      for (const setting of ['http', 'dicom', 'hl7'])
        expect(o.stderr.slice(before)).toMatch(
          new RegExp(
            `custos: the ${setting}\\.tls certificate was not reloaded, the one in use stays: configuration ${setting}\\.tls\\.cert: .*live\\.crt \\(CN=expired\\) expired on \\d{4}-\\d\\d-\\d\\d`,
          ),
        );
      expect(await presented()).toEqual(['peer', 'peer', 'peer']);
    } finally {
      stop('SIGTERM');
      expect(await running).toBe(0);
      live.remove();
    }
  });

  it('with --workers, SIGHUP reloads the primary’s DIMSE certificate and each worker’s HTTPS and HL7 ones', async () => {
    // The workers share a port the test chose: they do not print the HL7 one.
    const hl7Port = await freePort();
    const live = liveFiles(String(hl7Port));
    const served = await startWorkersServe(join(cwd, 'd-workers'), ['--dicom-port', 'off'], {
      ...live.env,
      ...live.https,
    });
    const exited = new Promise((r) => served.proc.once('exit', r));
    try {
      expect(served.url).toBeDefined();
      // The DIMSE line follows 'listening on' in a write of its own, which can come a moment later.
      const dicomLine = /DICOM AE \S+ on TLS port (\d+)/;
      for (const until = Date.now() + 10_000; !dicomLine.test(served.out()) && Date.now() < until;)
        await new Promise((r) => setTimeout(r, 50));
      const dicomPort = Number(dicomLine.exec(served.out())![1]);
      // The primary speaks of the DIMSE certificate, each worker of its HL7 one. Those lines come on stderr, the
      // banner on stdout: two pipes, read in either order, so they are waited for.
      const notices = () =>
        (served.err().match(/^custos: the dicom\.tls certificate .* in 2 days/gm)?.length ?? 0) +
        (served.err().match(/^custos \(worker \d+\): the hl7\.tls certificate .* in 2 days/gm)?.length ?? 0);
      for (const until = Date.now() + 10_000; notices() < 3 && Date.now() < until;)
        await new Promise((r) => setTimeout(r, 50));
      expect(served.err()).toMatch(/^custos: the dicom\.tls certificate .* expires on .*, in 2 days/m);
      expect(
        served.err().match(/^custos \(worker \d+\): the hl7\.tls certificate .* in 2 days/gm),
      ).toHaveLength(2);
      live.put('peer.crt', 'peer.key');
      served.proc.kill('SIGHUP');
      const deadline = Date.now() + 30_000;
      const reloaded = () =>
        served.err().match(/: the (http|dicom|hl7)\.tls certificate was reloaded/g) ?? [];
      while (reloaded().length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(served.err()).toMatch(/^custos: the dicom\.tls certificate was reloaded: /m);
      expect(
        served.err().match(/^custos \(worker \d+\): the hl7\.tls certificate was reloaded: /gm),
      ).toHaveLength(2);
      expect(
        served.err().match(/^custos \(worker \d+\): the http\.tls certificate was reloaded: /gm),
      ).toHaveLength(2);
      const httpPort = Number(/:(\d+)$/.exec(served.url!)![1]);
      // Whichever worker takes the connection presents the renewed certificate.
      for (const port of [
        dicomPort,
        hl7Port,
        hl7Port,
        hl7Port,
        hl7Port,
        httpPort,
        httpPort,
        httpPort,
        httpPort,
      ])
        expect(await presentedOn(port)).toBe('peer');
    } finally {
      served.proc.kill('SIGTERM');
      await exited;
      live.remove();
    }
  });
});
