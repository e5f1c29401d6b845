import { hkdfSync, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyfileKeyStore } from './keyfile-key-store.js';

describe('KeyfileKeyStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-kek-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('creates a 0600 custos-kek/1 keyfile and opens it again with the same key', async () => {
    const path = join(dir, 'kek.json');
    const created = await KeyfileKeyStore.create(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, string>;
    expect(json.format).toBe('custos-kek/1');
    expect(json.kekId).toBe(created.kekId);
    expect(Buffer.from(json.key!, 'base64').length).toBe(32);

    const opened = await KeyfileKeyStore.open(path);
    expect(opened.kekId).toBe(created.kekId);
    const dek = randomBytes(32);
    expect(
      (await opened.unwrapKey(await created.wrapKey(dek, 'study:1.2.3'), 'study:1.2.3')).equals(dek),
    ).toBe(true);
  });

  it('refuses to overwrite an existing keyfile, leaving it intact', async () => {
    const path = join(dir, 'kek.json');
    await KeyfileKeyStore.create(path);
    const before = await readFile(path);
    await expect(KeyfileKeyStore.create(path)).rejects.toMatchObject({ code: 'keys.keyfile-exists' });
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it('leaves no file behind when the keyfile cannot be created', async () => {
    await expect(KeyfileKeyStore.create(join(dir, 'no-such-dir', 'kek.json'))).rejects.toMatchObject({
      code: 'keys.keyfile-create-failed',
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a keyfile that group or others can read', async () => {
    const path = join(dir, 'kek.json');
    await KeyfileKeyStore.create(path);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      await chmod(path, mode);
      await expect(KeyfileKeyStore.open(path)).rejects.toMatchObject({
        code: 'keys.insecure-keyfile',
        message: expect.stringContaining('chmod 600'),
      });
    }
    await chmod(path, 0o400);
    await expect(KeyfileKeyStore.open(path)).resolves.toBeInstanceOf(KeyfileKeyStore);
  });

  it('refuses malformed keyfiles and reports a missing one', async () => {
    const good = { format: 'custos-kek/1', kekId: 'abc123', key: randomBytes(32).toString('base64') };
    const bodies = [
      'not json',
      'null',
      '[]',
      JSON.stringify({ ...good, format: 'other/1' }),
      JSON.stringify({ ...good, kekId: 7 }),
      JSON.stringify({ ...good, kekId: '' }),
      JSON.stringify({ ...good, key: randomBytes(16).toString('base64') }),
      JSON.stringify({ ...good, key: '!!' + good.key }),
      JSON.stringify({ format: good.format, kekId: good.kekId }),
    ];
    for (const [i, body] of bodies.entries()) {
      const path = join(dir, `bad-${i}.json`);
      await writeFile(path, body, { mode: 0o600 });
      await expect(KeyfileKeyStore.open(path), body).rejects.toMatchObject({ code: 'keys.bad-keyfile' });
    }
    const ok = join(dir, 'ok.json');
    await writeFile(ok, JSON.stringify(good), { mode: 0o600 });
    expect((await KeyfileKeyStore.open(ok)).kekId).toBe('abc123');
    await expect(KeyfileKeyStore.open(join(dir, 'absent.json'))).rejects.toMatchObject({
      code: 'keys.keyfile-missing',
    });
  });

  it('wraps with a fresh nonce each time into version || nonce || ciphertext || tag', async () => {
    const ks = await KeyfileKeyStore.create(join(dir, 'k.json'));
    const dek = randomBytes(32);
    const a = await ks.wrapKey(dek, 'study:1');
    const b = await ks.wrapKey(dek, 'study:1');
    expect(a.length).toBe(1 + 12 + 32 + 16);
    expect(a[0]).toBe(1);
    expect(a.equals(b)).toBe(false);
    expect(a.includes(dek)).toBe(false);
    expect((await ks.unwrapKey(b, 'study:1')).equals(dek)).toBe(true);
    await expect(ks.wrapKey(randomBytes(16), 'study:1')).rejects.toMatchObject({ code: 'keys.bad-data-key' });
  });

  it('refuses a wrapped key under another context, another KEK, with any flipped bit, or cut short', async () => {
    const ks = await KeyfileKeyStore.create(join(dir, 'k.json'));
    const other = await KeyfileKeyStore.create(join(dir, 'other.json'));
    const wrapped = await ks.wrapKey(randomBytes(32), 'study:1');
    await expect(ks.unwrapKey(wrapped, 'study:2')).rejects.toMatchObject({ code: 'keys.unwrap-failed' });
    await expect(other.unwrapKey(wrapped, 'study:1')).rejects.toMatchObject({ code: 'keys.unwrap-failed' });
    for (let i = 0; i < wrapped.length; i++) {
      const tampered = Buffer.from(wrapped);
      tampered[i]! ^= 0x80;
      await expect(ks.unwrapKey(tampered, 'study:1'), `byte ${i}`).rejects.toMatchObject({
        code: 'keys.unwrap-failed',
      });
    }
    await expect(ks.unwrapKey(wrapped.subarray(0, wrapped.length - 4), 'study:1')).rejects.toMatchObject({
      code: 'keys.unwrap-failed',
    });
  });

  it('derives stable, purpose-separated HKDF-SHA256 secrets that the keyfile does not hold', async () => {
    const path = join(dir, 'k.json');
    const ks = await KeyfileKeyStore.create(path);
    const a = await ks.deriveSecret('custos/sqlite-index/v1', 32);
    expect(a.length).toBe(32);
    expect(
      (await (await KeyfileKeyStore.open(path)).deriveSecret('custos/sqlite-index/v1', 32)).equals(a),
    ).toBe(true);
    expect((await ks.deriveSecret('custos/other/v1', 32)).equals(a)).toBe(false);
    expect((await ks.deriveSecret('custos/sqlite-index/v1', 64)).subarray(0, 32).equals(a)).toBe(true);
    const kek = Buffer.from((JSON.parse(await readFile(path, 'utf8')) as { key: string }).key, 'base64');
    const reference = Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), 'custos/sqlite-index/v1', 32));
    expect(a.equals(reference)).toBe(true);
    expect(a.equals(kek)).toBe(false);
    await expect(ks.deriveSecret('x', 0)).rejects.toMatchObject({ code: 'keys.bad-derive' });
  });

  it('does not reveal the KEK when the store is printed or serialised', async () => {
    const path = join(dir, 'k.json');
    const ks = await KeyfileKeyStore.create(path);
    const key = (JSON.parse(await readFile(path, 'utf8')) as { key: string }).key;
    const kekHex = Buffer.from(key, 'base64').toString('hex');
    const shown = inspect(ks, { depth: 5 }) + JSON.stringify(ks);
    expect(shown).toContain(ks.kekId);
    expect(shown.includes(key) || shown.replace(/[^0-9a-f]/g, '').includes(kekHex)).toBe(false);
  });
});
