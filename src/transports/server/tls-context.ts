import type { SecureContextOptions } from 'node:tls';

/** A TLS listener's identity: its certificate (chain), private key and the CA its clients' certificates chain to. */
export interface ServerTlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer | undefined;
  /** CRL(s) of `ca`: a client certificate they revoke fails verification (CERT_REVOKED). */
  crl?: Buffer | undefined;
}

/**
 * The cipher suites of BCP 195 (RFC 9325 §4.2, PS3.15 B.9 "BCP195 TLS Secure Transport Connection Profile"):
 * TLS 1.3's AEAD suites, and for TLS 1.2 only ephemeral key exchange with an AEAD cipher. Until 5 Dec 2026 Node's
 * default list also let a TLS 1.2 peer pick static RSA key exchange and CBC with SHA-1 (AES128-SHA), which RFC
 * 9325 says not to negotiate. dcmtk's `+tls` (its BCP 195 profile) and Orthanc agree on the first ECDHE suite.
 */
export const BCP195_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  // OpenSSL security level 2 (112-bit security): no RSA, DSA or DH key under 2048 bits, no ECC key under 224 bits,
  // on either side. Node's default is level 1, which took a 1024-bit RSA client certificate (until 6 Dec 2026).
  '@SECLEVEL=2',
].join(':');

/**
 * The secure context of a TLS listener (DICOM TLS, MLLP over TLS), both when it is created and when a renewed
 * certificate replaces it (setSecureContext): TLS 1.2 or later only, BCP 195's cipher suites (PS3.15 Annex B).
 */
export const serverTlsContext = (m: ServerTlsMaterial): SecureContextOptions => ({
  cert: m.cert,
  key: m.key,
  ...(m.ca ? { ca: m.ca } : {}),
  ...(m.crl ? { crl: m.crl } : {}),
  minVersion: 'TLSv1.2',
  ciphers: BCP195_CIPHERS,
  honorCipherOrder: true,
  // The DHE suites need Diffie-Hellman parameters: the well-known RFC 7919 groups (OpenSSL's choice).
  dhparam: 'auto',
});
