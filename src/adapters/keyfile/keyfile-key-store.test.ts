import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyfileKeyStore } from './keyfile-key-store.js';

describe('KeyfileKeyStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-kek-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('creates a 0600 keyfile once and opens it again with the same key', async () => {
    const path = join(dir, 'kek.json');
    const created = await KeyfileKeyStore.create(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await expect(KeyfileKeyStore.create(path)).rejects.toThrow(/cannot create the keyfile/);
    const opened = await KeyfileKeyStore.open(path);
    expect(opened.kekId).toBe(created.kekId);
    const dek = randomBytes(32);
    expect(await opened.unwrapKey(await created.wrapKey(dek, 'study:1.2.3'), 'study:1.2.3')).toEqual(dek);
  });

  it('refuses a keyfile readable by others, and a malformed one', async () => {
    const path = join(dir, 'kek.json');
    await KeyfileKeyStore.create(path);
    await chmod(path, 0o644);
    await expect(KeyfileKeyStore.open(path)).rejects.toMatchObject({ code: 'keys.insecure-keyfile' });
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"format":"other"}', { mode: 0o600 });
    await expect(KeyfileKeyStore.open(bad)).rejects.toMatchObject({ code: 'keys.bad-keyfile' });
  });

  it('refuses a wrapped key under another context or with a flipped bit', async () => {
    const ks = await KeyfileKeyStore.create(join(dir, 'k.json'));
    const wrapped = await ks.wrapKey(randomBytes(32), 'study:1');
    await expect(ks.unwrapKey(wrapped, 'study:2')).rejects.toMatchObject({ code: 'keys.unwrap-failed' });
    const tampered = Buffer.from(wrapped);
    tampered[20]! ^= 1;
    await expect(ks.unwrapKey(tampered, 'study:1')).rejects.toMatchObject({ code: 'keys.unwrap-failed' });
  });

  it('derives stable, purpose-separated secrets, and the keyfile holds no derived secret', async () => {
    const path = join(dir, 'k.json');
    const ks = await KeyfileKeyStore.create(path);
    const a = await ks.deriveSecret('custos/sqlite-index/v1', 32);
    expect(await (await KeyfileKeyStore.open(path)).deriveSecret('custos/sqlite-index/v1', 32)).toEqual(a);
    expect(await ks.deriveSecret('other', 32)).not.toEqual(a);
    expect((await readFile(path)).includes(Buffer.from(a.toString('base64')))).toBe(false);
  });
});
