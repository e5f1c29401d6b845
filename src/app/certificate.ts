import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CustosError } from '../domain/errors.js';

/** SHA-256 of a PEM certificate's DER encoding, lower-case hex: what the AE registry binds a TLS client to. */
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
  try {
    return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
  } catch {
    throw new CustosError({ code: 'cli.bad-cert', message: `${file} is not a PEM or DER X.509 certificate` });
  }
}
