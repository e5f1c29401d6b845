import { createCipheriv, createDecipheriv, hkdf, randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { CustosError } from '../../domain/errors.js';
import type { KeyStore } from '../../ports/key-store.js';

const hkdfAsync = promisify(hkdf);

export const KEYFILE_FORMAT = 'custos-kek/1';
const WRAP_VERSION = 1;
const NONCE_SIZE = 12;
const TAG_SIZE = 16;
const DATA_KEY_SIZE = 32;
const WRAPPED_SIZE = 1 + NONCE_SIZE + DATA_KEY_SIZE + TAG_SIZE;
/** HKDF-SHA256 can expand to at most 255 hash lengths (RFC 5869 §2.3). */
const MAX_DERIVED = 255 * 32;
/** A keyfile is a few dozen bytes; anything larger is not ours. */
const MAX_KEYFILE_BYTES = 4096;

interface KeyfileJson {
  format: string;
  kekId: string;
  key: string;
}

const isErrno = (e: unknown, code: string) => (e as NodeJS.ErrnoException | undefined)?.code === code;

const badKeyfile = (path: string, why: string, cause?: unknown) =>
  new CustosError({
    code: 'keys.bad-keyfile',
    message: `the keyfile ${path} is not a usable ${KEYFILE_FORMAT} keyfile: ${why}`,
    ...(cause === undefined ? {} : { cause }),
  });

/**
 * The key-encryption key (KEK) in a local keyfile, the embedded default of the KeyStore port
 * (ARCHITECTURE.md invariant 4). Data keys are wrapped with AES-256-GCM under the KEK, bound to a context string
 * (e.g. `study:<uid>`) as additional authenticated data, so a wrapped key copied to another study's row does not
 * unwrap. The KEK lives in a private field: it is not printed by util.inspect nor serialised by JSON.stringify.
 */
export class KeyfileKeyStore implements KeyStore {
  readonly #kek: Buffer;

  private constructor(
    readonly kekId: string,
    kek: Buffer,
  ) {
    this.#kek = kek;
  }

  /**
   * First start: a new random 32-byte KEK, written with mode 0600 through O_CREAT|O_EXCL (never overwrites an
   * existing keyfile: that would make every stored object undecryptable), fsynced with its directory.
   */
  static async create(path: string): Promise<KeyfileKeyStore> {
    const kek = randomBytes(32);
    const kekId = randomBytes(8).toString('hex');
    const body: KeyfileJson = { format: KEYFILE_FORMAT, kekId, key: kek.toString('base64') };
    let fh: FileHandle;
    try {
      fh = await open(path, 'wx', 0o600);
    } catch (cause) {
      throw new CustosError({
        code: isErrno(cause, 'EEXIST') ? 'keys.keyfile-exists' : 'keys.keyfile-create-failed',
        message: isErrno(cause, 'EEXIST')
          ? `cannot create the keyfile ${path}: it already exists, and overwriting it would lose the key`
          : `cannot create the keyfile ${path}: ${(cause as Error).message}`,
        cause,
      });
    }
    try {
      try {
        await fh.writeFile(JSON.stringify(body) + '\n');
        // The umask can only remove bits from 0600, but a pre-set ACL default could add some back.
        await fh.chmod(0o600);
        await fh.sync();
      } finally {
        await fh.close();
      }
      const dir = await open(dirname(path), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (cause) {
      // A half-written keyfile would be refused at the next start; leave no file rather than a broken one.
      await rm(path, { force: true });
      throw new CustosError({
        code: 'keys.keyfile-create-failed',
        message: `cannot write the keyfile ${path}: ${(cause as Error).message}`,
        cause,
      });
    }
    return new KeyfileKeyStore(kekId, kek);
  }

  /** Opens an existing keyfile; refuses one that group or others can access, or that is malformed. */
  static async open(path: string): Promise<KeyfileKeyStore> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (cause) {
      throw new CustosError({
        code: isErrno(cause, 'ENOENT') ? 'keys.keyfile-missing' : 'keys.bad-keyfile',
        message: `cannot open the keyfile ${path}: ${(cause as Error).message}`,
        cause,
      });
    }
    let text: string;
    try {
      // Checked on the open descriptor, so the file checked is the file read.
      const st = await fh.stat();
      if (!st.isFile()) throw badKeyfile(path, 'not a regular file');
      if ((st.mode & 0o077) !== 0) {
        throw new CustosError({
          code: 'keys.insecure-keyfile',
          message: `the keyfile ${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); restrict it with: chmod 600 ${path}`,
        });
      }
      if (st.size > MAX_KEYFILE_BYTES) throw badKeyfile(path, 'too large');
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw badKeyfile(path, 'not JSON', cause);
    }
    const json = parsed as Partial<KeyfileJson> | null;
    if (typeof json !== 'object' || json === null || json.format !== KEYFILE_FORMAT)
      throw badKeyfile(path, `"format" is not "${KEYFILE_FORMAT}"`);
    if (typeof json.kekId !== 'string' || !/^[0-9A-Za-z._-]{1,64}$/.test(json.kekId))
      throw badKeyfile(path, '"kekId" is missing or malformed');
    const key = typeof json.key === 'string' ? Buffer.from(json.key, 'base64') : Buffer.alloc(0);
    // Node's base64 decoder skips junk silently; re-encoding catches a damaged value.
    if (key.length !== 32 || key.toString('base64') !== json.key)
      throw badKeyfile(path, '"key" is not a base64 32-byte key');
    return new KeyfileKeyStore(json.kekId, key);
  }

  /** version(1) || nonce(12) || ciphertext(32) || tag(16); AAD = version || context. */
  async wrapKey(dataKey: Buffer, context: string): Promise<Buffer> {
    if (dataKey.length !== DATA_KEY_SIZE)
      throw new CustosError({
        code: 'keys.bad-data-key',
        message: `a data key must be ${DATA_KEY_SIZE} bytes`,
      });
    const version = Buffer.from([WRAP_VERSION]);
    const nonce = randomBytes(NONCE_SIZE);
    const c = createCipheriv('aes-256-gcm', this.#kek, nonce);
    c.setAAD(Buffer.concat([version, Buffer.from(context, 'utf8')]));
    const ct = c.update(dataKey);
    c.final();
    return Buffer.concat([version, nonce, ct, c.getAuthTag()]);
  }

  async unwrapKey(wrapped: Buffer, context: string): Promise<Buffer> {
    const failed = (cause?: unknown) =>
      new CustosError({
        code: 'keys.unwrap-failed',
        message: `a wrapped data key for ${context} failed authentication: wrong key-encryption key, wrong context, or a tampered index`,
        ...(cause === undefined ? {} : { cause }),
      });
    if (wrapped.length !== WRAPPED_SIZE || wrapped[0] !== WRAP_VERSION) throw failed();
    try {
      const d = createDecipheriv('aes-256-gcm', this.#kek, wrapped.subarray(1, 1 + NONCE_SIZE), {
        authTagLength: TAG_SIZE,
      });
      d.setAAD(Buffer.concat([wrapped.subarray(0, 1), Buffer.from(context, 'utf8')]));
      d.setAuthTag(wrapped.subarray(WRAPPED_SIZE - TAG_SIZE));
      const key = d.update(wrapped.subarray(1 + NONCE_SIZE, WRAPPED_SIZE - TAG_SIZE));
      d.final();
      return key;
    } catch (cause) {
      throw failed(cause);
    }
  }

  /** HKDF-SHA256 (RFC 5869) of the KEK, no salt (the KEK is already uniformly random), `purpose` as info. */
  async deriveSecret(purpose: string, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(length) || length < 1 || length > MAX_DERIVED || purpose.length === 0) {
      throw new CustosError({
        code: 'keys.bad-derive',
        message: `a derived secret needs a purpose and a length of 1 to ${MAX_DERIVED} bytes`,
      });
    }
    return Buffer.from(
      await hkdfAsync('sha256', this.#kek, Buffer.alloc(0), Buffer.from(purpose, 'utf8'), length),
    );
  }
}
