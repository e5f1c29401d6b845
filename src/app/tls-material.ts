import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { CustosError } from '../domain/errors.js';

/** A listener's certificate, key and client CA as read and checked at start. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** The CRL(s) of `ca`: client certificates they revoke are refused. */
  crl?: Buffer;
  /** The setting they came from ("dicom.tls"), and the certificate's file, for what the operator is told. */
  setting: string;
  certFile: string;
  keyFile: string;
  /** The key file's permission bits (st_mode & 0o777). */
  keyMode: number;
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

const DAY_MS = 86_400_000;
/** How long before its end a certificate is said to expire soon. */
export const EXPIRY_WARNING_DAYS = 30;

/**
 * Reads the files of a TLS listener's setting (`dicom.tls`, `hl7.tls`) and checks that they make a usable server
 * identity, each failure naming the setting and the file: unreadable, not a certificate, a key that does not belong
 * to the certificate, a certificate that has expired at `now` (TLS peers would refuse every handshake; until 6 Dec
 * 2026 it was taken, at start and on reload alike, with a line in the log). One not valid yet is taken:
 * certificateExpiryNotice says so. Until 5 Dec 2026 a mismatched key stopped `custos serve` with OpenSSL's words
 * alone ("key values mismatch"), and the process did not exit.
 */
export async function loadTlsMaterial(
  setting: string,
  files: { cert: string; key: string; ca?: string | undefined; crl?: string | undefined },
  now: Date,
): Promise<TlsMaterial> {
  const bad = (key: string, message: string, cause?: unknown) =>
    new CustosError({
      code: 'config.invalid',
      message: `configuration ${setting}.${key}: ${message}`,
      detail: { key: `${setting}.${key}` },
      ...(cause === undefined ? {} : { cause }),
    });
  const read = async (key: string, path: string) => {
    try {
      return await readFile(path);
    } catch (err) {
      throw bad(key, `cannot read ${path}: ${(err as Error).message}`, err);
    }
  };
  const cert = await read('cert', files.cert);
  const key = await read('key', files.key);
  const keyMode = (await stat(files.key)).mode & 0o777;
  const ca = files.ca ? await read('ca', files.ca) : undefined;
  const crl = files.crl ? await read('crl', files.crl) : undefined;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw bad('cert', `${files.cert} is not a PEM or DER X.509 certificate`, err);
  }
  const subject = x509.subject.replace(/\n/g, ', ');
  const notAfter = new Date(x509.validTo);
  if (now > notAfter)
    throw bad(
      'cert',
      `${files.cert} (${subject}) expired on ${notAfter.toISOString().slice(0, 10)}: TLS peers would refuse every handshake; give a valid certificate`,
    );
  if (ca) {
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw bad('ca', `${files.ca} is not a PEM or DER X.509 certificate`, err);
    }
  }
  if (crl) {
    const notCrl = `${files.crl} is not a PEM certificate revocation list (-----BEGIN X509 CRL-----)`;
    if (!crl.includes('-----BEGIN X509 CRL-----')) throw bad('crl', notCrl);
    try {
      createSecureContext({ crl });
    } catch (err) {
      throw bad('crl', notCrl, err);
    }
  }
  try {
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (err) {
    const why = (err as Error).message.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/, '');
    if (/key values mismatch/.test(why))
      throw bad('key', `${files.key} is not the key of the certificate ${files.cert}`, err);
    throw bad('key', `${files.key} cannot serve with ${files.cert}: ${why}`, err);
  }
  return {
    cert,
    key,
    ...(ca ? { ca } : {}),
    ...(crl ? { crl } : {}),
    setting,
    certFile: files.cert,
    keyFile: files.key,
    keyMode,
    subject,
    notBefore: new Date(x509.validFrom),
    notAfter,
  };
}

/**
 * What the operator should hear of a certificate's validity at `now`: that it is not valid yet or has expired (peers
 * refuse the handshake), or that it expires within EXPIRY_WARNING_DAYS days; nothing otherwise.
 */
export function certificateExpiryNotice(m: TlsMaterial, now: Date): string | undefined {
  const left = m.notAfter.getTime() - now.getTime();
  const which = `the ${m.setting} certificate (${m.certFile}, ${m.subject})`;
  if (now < m.notBefore)
    return `${which} is not valid before ${m.notBefore.toISOString()}: TLS peers refuse the handshake until then (check this machine's clock, or replace it and reload: SIGHUP)`;
  const day = m.notAfter.toISOString().slice(0, 10);
  if (left <= 0)
    return `${which} expired on ${day}: TLS peers refuse the handshake until it is replaced (then reload: SIGHUP)`;
  if (left <= EXPIRY_WARNING_DAYS * DAY_MS) {
    const days = Math.ceil(left / DAY_MS);
    return `${which} expires on ${day}, in ${days} day${days === 1 ? '' : 's'}: replace it before then (then reload: SIGHUP)`;
  }
  return undefined;
}

/**
 * What the operator should hear of a private key file that group or other users may use (mode & 0o077): whoever
 * reads it can pose as this server. Said at start and on reload; until 6 Dec 2026 nothing was said.
 */
export function keyFileNotice(m: TlsMaterial): string | undefined {
  if ((m.keyMode & 0o077) === 0) return undefined;
  return `the ${m.setting} key file ${m.keyFile} is open to other users (mode 0${m.keyMode.toString(8)}): whoever can read it can pose as this server; make it readable by the server's user only (chmod 600)`;
}
