import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CustosError } from '../domain/errors.js';
import type { KeyStore } from '../ports/key-store.js';

const PURPOSE = 'custos/totp-secrets/v1';
const FORMAT = 'v1.';

/**
 * TOTP secrets at rest: AES-256-GCM under a key derived from the key-encryption key (HKDF, purpose
 * 'custos/totp-secrets/v1'), bound to the account by the additional data, so a secret copied onto another
 * account's row does not decrypt. A database dump without the keyfile holds no usable second factor.
 */
export class TotpSecretBox {
  #key: Promise<Buffer> | undefined;

  constructor(private readonly keys: KeyStore) {}

  private key(): Promise<Buffer> {
    this.#key ??= this.keys.deriveSecret(PURPOSE, 32);
    return this.#key;
  }

  async seal(secret: Buffer, userPk: number): Promise<string> {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', await this.key(), iv);
    cipher.setAAD(Buffer.from(`totp:${userPk}`, 'utf8'));
    const ct = Buffer.concat([cipher.update(secret), cipher.final()]);
    return FORMAT + Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64url');
  }

  async open(sealed: string, userPk: number): Promise<Buffer> {
    const raw = sealed.startsWith(FORMAT) ? Buffer.from(sealed.slice(FORMAT.length), 'base64url') : undefined;
    try {
      if (!raw || raw.length < 29) throw new Error('short');
      const decipher = createDecipheriv('aes-256-gcm', await this.key(), raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(`totp:${userPk}`, 'utf8'));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
    } catch (cause) {
      throw new CustosError({
        code: 'auth.mfa-secret-unreadable',
        message:
          'the stored TOTP secret of this account cannot be decrypted: an administrator must reset its MFA',
        httpStatus: 500,
        cause,
      });
    }
  }
}
