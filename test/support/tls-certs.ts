import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A second CA that signed nothing here: a client trusting only it must refuse the server. */
  otherCa: string;
}

/** For a server on loopback: 127.0.0.1 and localhost. */
export const SERVER_EXT = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n';
/** For a peer that both listens and calls out (a DICOM AE): server and client use. */
export const PEER_EXT = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n';
export const CLIENT_EXT = 'extendedKeyUsage=clientAuth\n';

/**
 * Write a throw-away PKI into `dir` with openssl: one CA per name in `cas` (`<name>.crt`, `<name>.key`) and leaf
 * certificates signed by the first CA (`<leaf>.crt`, `<leaf>.key`), each with its extensions. RSA where a peer
 * (dcmtk) is pickiest about key types; EC P-256 otherwise, which is faster to make.
 */
export function writePki(
  dir: string,
  opts: {
    keyType: 'rsa' | 'ec';
    cas: string[];
    leaves: Record<string, string>;
    /** Days a leaf is valid for, by name (2 unless given): -1 makes one that expired a day ago. */
    leafDays?: Record<string, number>;
  },
): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const newKey =
    opts.keyType === 'rsa'
      ? ['-newkey', 'rsa:2048']
      : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  for (const name of opts.cas) {
    ssl(
      'req',
      '-x509',
      ...newKey,
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
    );
  }
  const ca = opts.cas[0]!;
  for (const [name, ext] of Object.entries(opts.leaves)) {
    ssl('req', ...newKey, '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-days',
      String(opts.leafDays?.[name] ?? 2),
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    );
  }
}

/** A throw-away CA with a server certificate for 127.0.0.1 / localhost and a client certificate, in memory. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'custos-pki-'));
  try {
    writePki(dir, {
      keyType: 'ec',
      cas: ['test-ca', 'other-ca'],
      leaves: { server: SERVER_EXT, client: CLIENT_EXT },
    });
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');
    return {
      ca: read('test-ca.crt'),
      serverCert: read('server.crt'),
      serverKey: read('server.key'),
      clientCert: read('client.crt'),
      clientKey: read('client.key'),
      otherCa: read('other-ca.crt'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `openssl ca` over a CA that writePki made in `dir` (`<ca>.crt`, `<ca>.key`): leaves with a chosen validity period
 * (a not-yet-valid one, which `openssl x509 -req` cannot make), revocation, and a PEM CRL.
 */
export function openSslCa(dir: string, ca = 'ca') {
  const conf = join(dir, `${ca}-openssl-ca.cnf`);
  writeFileSync(
    conf,
    [
      '[ca]',
      'default_ca = ca_default',
      '[ca_default]',
      `database = ${join(dir, `${ca}-index.txt`)}`,
      `new_certs_dir = ${dir}`,
      `serial = ${join(dir, `${ca}-ca.srl`)}`,
      `certificate = ${join(dir, `${ca}.crt`)}`,
      `private_key = ${join(dir, `${ca}.key`)}`,
      'default_md = sha256',
      'default_crl_days = 2',
      'policy = policy_any',
      'unique_subject = no',
      '[policy_any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, `${ca}-index.txt`), '');
  writeFileSync(join(dir, `${ca}-ca.srl`), '1000\n');
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  return {
    /** `<name>.crt` and `<name>.key` (EC P-256 unless `newKey` says otherwise), valid from `period.start` to `period.end`. */
    sign(
      name: string,
      ext: string,
      period: { start: Date; end: Date },
      newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'],
    ): void {
      const when = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
      ssl(
        'req',
        ...newKey,
        '-nodes',
        '-subj',
        `/CN=${name}`,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
      );
      writeFileSync(join(dir, `${name}.ext`), ext);
      ssl(
        'ca',
        '-batch',
        '-config',
        conf,
        '-notext',
        '-startdate',
        when(period.start),
        '-enddate',
        when(period.end),
        '-extfile',
        `${name}.ext`,
        '-in',
        `${name}.csr`,
        '-out',
        `${name}.crt`,
      );
    },
    revoke(name: string): void {
      ssl('ca', '-batch', '-config', conf, '-revoke', `${name}.crt`);
    },
    /** Writes the CA's current CRL (PEM) to `file`. */
    crl(file: string): void {
      ssl('ca', '-batch', '-config', conf, '-gencrl', '-out', file);
    },
  };
}

/**
 * The SHA-256 pin of a PEM certificate file, as the AE registry keeps it, whatever its validity: for registering a
 * certificate that has expired or is not valid yet (certificateSha256, which `custos ae add --cert` uses, refuses one
 * not valid now).
 */
export const certificatePin = (file: string) =>
  new X509Certificate(readFileSync(file)).fingerprint256.replace(/:/g, '').toLowerCase();
