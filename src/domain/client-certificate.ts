import { X509Certificate } from 'node:crypto';
import { CustosError } from './errors.js';

const refused = (message: string) =>
  new CustosError({
    code: 'ae.bad-certificate',
    message,
    httpStatus: 400,
    detail: { parameter: 'certificate' },
  });

/**
 * The SHA-256 fingerprint (lower-case hex of the DER) that binds an AE to the TLS client certificate it must present
 * (`custos ae add --cert`, the admin API). Refused: what is not an X.509 certificate, and one not valid now
 * (expired, or not yet valid: the AE could not connect with it; until 5 Dec 2026 it was registered without a
 * word). A CA certificate is taken: a self-signed device certificate made by `openssl req -x509` is one, and the
 * fingerprint, not the CA flag, binds the AE.
 */
export function clientCertificateFingerprint(
  certificate: Buffer | string,
  now: Date,
  named = 'the certificate',
): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certificate);
  } catch {
    throw refused(`${named} is not a PEM or DER X.509 certificate`);
  }
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (now < notBefore || now > notAfter)
    throw refused(
      `${named} (${cert.subject.replace(/\n/g, ', ')}) is valid from ${notBefore.toISOString()} to ${notAfter.toISOString()}, not now`,
    );
  return cert.fingerprint256.replace(/:/g, '').toLowerCase();
}
