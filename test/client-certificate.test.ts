import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clientCertificateFingerprint } from '../src/domain/client-certificate.js';
import { CLIENT_EXT, writePki } from './support/tls-certs.js';

describe('clientCertificateFingerprint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-cert-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writePki(dir, { keyType: 'rsa', cas: ['ca'], leaves: { leaf: CLIENT_EXT } });
  const leaf = readFileSync(join(dir, 'leaf.crt'));
  const now = new Date();

  it('is the SHA-256 of the DER, lower-case hex, as openssl computes it', () => {
    const der = ssl('x509', '-in', 'leaf.crt', '-outform', 'DER');
    const openssl = ssl('x509', '-in', 'leaf.crt', '-noout', '-fingerprint', '-sha256').toString();
    const hex = openssl.trim().split('=')[1]!.replace(/:/g, '').toLowerCase();
    expect(clientCertificateFingerprint(leaf, now)).toBe(hex);
    expect(clientCertificateFingerprint(der, now)).toBe(hex);
  });

  it('refuses a certificate not valid at the time, and what is no certificate, naming it', () => {
    // A self-signed certificate (openssl req -x509 marks it CA:TRUE) is pinned like any other.
    expect(clientCertificateFingerprint(readFileSync(join(dir, 'ca.crt')), now, 'ca.crt')).toMatch(
      /^[0-9a-f]{64}$/,
    );
    const later = new Date(now.getTime() + 3 * 86_400_000);
    expect(() => clientCertificateFingerprint(leaf, later)).toThrow(
      /^the certificate \(CN=leaf\) is valid from \S+ to \S+, not now$/,
    );
    const earlier = new Date(now.getTime() - 86_400_000);
    expect(() => clientCertificateFingerprint(leaf, earlier)).toThrow(/not now/);
    expect(() => clientCertificateFingerprint('not a certificate', now)).toThrow(
      'the certificate is not a PEM or DER X.509 certificate',
    );
  });
});
