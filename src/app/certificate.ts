import { readFile } from 'node:fs/promises';
import { clientCertificateFingerprint } from '../domain/client-certificate.js';
import { CustosError } from '../domain/errors.js';

/** SHA-256 of a PEM certificate's DER encoding, lower-case hex: what the AE registry binds a TLS client to (clientCertificateFingerprint). */
export async function certificateSha256(file: string): Promise<string> {
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    throw new CustosError({
      code: 'cli.cert-unreadable',
      message: `cannot read the certificate ${file}: ${(err as Error).message}`,
    });
  }
  return clientCertificateFingerprint(pem, new Date(), file);
}
