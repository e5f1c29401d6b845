import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CustosError } from '../../domain/errors.js';
import { keyIdOf } from '../../domain/ledger-chain.js';
import type { LedgerSigner } from '../../ports/audit-ledger.js';

/**
 * The ledger's Ed25519 signing key, in a PEM file of its own (mode 0600), never the key-encryption key: whoever
 * can decrypt images should not thereby be able to forge the audit trail. The public key is written beside it
 * (`.pub.pem`) for verifiers and for shipping off the box.
 */
export class LedgerSigningKey implements LedgerSigner {
  readonly keyId: string;
  readonly publicKeyPem: string;

  private constructor(
    private readonly privateKey: KeyObject,
    readonly publicKey: KeyObject,
  ) {
    this.keyId = keyIdOf(publicKey);
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  sign(message: Buffer): string {
    return sign(null, message, this.privateKey).toString('base64');
  }

  static publicPath(path: string): string {
    return path.replace(/(\.pem)?$/, '.pub.pem');
  }

  static async openOrCreate(path: string): Promise<LedgerSigningKey> {
    if (existsSync(path)) return LedgerSigningKey.open(path);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const key = new LedgerSigningKey(privateKey, publicKey);
    await writeNew(path, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
    await writeNew(LedgerSigningKey.publicPath(path), key.publicKeyPem, 0o644);
    return key;
  }

  static async open(path: string): Promise<LedgerSigningKey> {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) {
      throw new CustosError({
        code: 'keys.signing-key-permissions',
        message: `the audit signing key ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`,
      });
    }
    try {
      const privateKey = createPrivateKey(await readFile(path, 'utf8'));
      if (privateKey.asymmetricKeyType !== 'ed25519')
        throw new Error(`not an Ed25519 key (${privateKey.asymmetricKeyType})`);
      return new LedgerSigningKey(privateKey, createPublicKey(privateKey));
    } catch (err) {
      throw new CustosError({
        code: 'keys.signing-key-invalid',
        message: `the audit signing key ${path} cannot be read: ${(err as Error).message}`,
        cause: err,
      });
    }
  }
}

/** Write a small file whole or not at all: a temporary file, fsynced, renamed into place with `mode`. */
export async function writeNew(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, mode);
  await rename(tmp, path);
}
