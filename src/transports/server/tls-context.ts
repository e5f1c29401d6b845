import type { SecureContextOptions } from 'node:tls';

/** A TLS listener's identity: its certificate (chain), private key and the CA its clients' certificates chain to. */
export interface ServerTlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer | undefined;
}

/**
 * The secure context of a TLS listener (DICOM TLS, MLLP over TLS), both when it is created and when a renewed
 * certificate replaces it (setSecureContext): TLS 1.2 or later only (PS3.15 Annex B, BCP 195).
 */
export const serverTlsContext = (m: ServerTlsMaterial): SecureContextOptions => ({
  cert: m.cert,
  key: m.key,
  ...(m.ca ? { ca: m.ca } : {}),
  minVersion: 'TLSv1.2',
});
