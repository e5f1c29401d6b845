import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import { CustosError } from '../../domain/errors.js';
import type { KeyStore } from '../../ports/key-store.js';

const FORMAT = 'custos-kek/1';
const WRAP_VERSION = 1;

interface KeyfileJson {
  format: string;
  kekId: string;
  key: string;
}

/**
 * The key-encryption key in a local keyfile (mode 0600), the embedded default of the KeyStore port. Data keys
 * are wrapped with AES-256-GCM, bound to a context string as additional authenticated data.
 */
export class KeyfileKeyStore implements KeyStore {
  private constructor(
    readonly kekId: string,
    private readonly kek: Buffer,
  ) {}

  /** First start: create a new random KEK. Refuses to overwrite an existing file. */
  static async create(path: string): Promise<KeyfileKeyStore> {
    const kek = randomBytes(32);
    const kekId = randomBytes(8).toString('hex');
    const body: KeyfileJson = { format: FORMAT, kekId, key: kek.toString('base64') };
    let fh;
    try {
      fh = await open(path, 'wx', 0o600);
    } catch (cause) {
      throw new CustosError({
        code: 'keys.keyfile-exists',
        message: `cannot create the keyfile ${path}: ${(cause as Error).message}`,
        cause,
      });
    }
    try {
      await fh.writeFile(JSON.stringify(body) + '\n');
      await fh.chmod(0o600);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return new KeyfileKeyStore(kekId, kek);
  }

  static async open(path: string): Promise<KeyfileKeyStore> {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) {
      throw new CustosError({
        code: 'keys.insecure-keyfile',
        message: `the keyfile ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
      });
    }
    let parsed: KeyfileJson;
    try {
      parsed = JSON.parse(await readFile(path, 'utf8')) as KeyfileJson;
    } catch (cause) {
      throw new CustosError({
        code: 'keys.bad-keyfile',
        message: `the keyfile ${path} is not valid JSON`,
        cause,
      });
    }
    const key = typeof parsed.key === 'string' ? Buffer.from(parsed.key, 'base64') : Buffer.alloc(0);
    if (parsed.format !== FORMAT || typeof parsed.kekId !== 'string' || key.length !== 32) {
      throw new CustosError({
        code: 'keys.bad-keyfile',
        message: `the keyfile ${path} is not a ${FORMAT} keyfile with a 32-byte key`,
      });
    }
    return new KeyfileKeyStore(parsed.kekId, key);
  }

  async wrapKey(dataKey: Buffer, context: string): Promise<Buffer> {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.kek, nonce);
    c.setAAD(Buffer.from(context, 'utf8'));
    const ct = Buffer.concat([c.update(dataKey), c.final()]);
    return Buffer.concat([Buffer.from([WRAP_VERSION]), nonce, ct, c.getAuthTag()]);
  }

  async unwrapKey(wrapped: Buffer, context: string): Promise<Buffer> {
    try {
      if (wrapped[0] !== WRAP_VERSION || wrapped.length < 1 + 12 + 16)
        throw new Error('bad version or length');
      const d = createDecipheriv('aes-256-gcm', this.kek, wrapped.subarray(1, 13));
      d.setAAD(Buffer.from(context, 'utf8'));
      d.setAuthTag(wrapped.subarray(wrapped.length - 16));
      return Buffer.concat([d.update(wrapped.subarray(13, wrapped.length - 16)), d.final()]);
    } catch (cause) {
      throw new CustosError({
        code: 'keys.unwrap-failed',
        message: `a wrapped data key (${context}) failed authentication: wrong key-encryption key or tampered index`,
        cause,
      });
    }
  }

  async deriveSecret(purpose: string, length: number): Promise<Buffer> {
    return Buffer.from(hkdfSync('sha256', this.kek, Buffer.alloc(0), Buffer.from(purpose, 'utf8'), length));
  }
}
