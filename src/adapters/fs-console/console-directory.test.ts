import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleDirectory } from './console-directory.js';

describe('the console directory', () => {
  let parent: string;
  let root: string;
  beforeAll(async () => {
    parent = await mkdtemp(join(tmpdir(), 'custos-console-dir-'));
    root = join(parent, 'console');
    await mkdir(join(root, 'assets'), { recursive: true });
    await writeFile(join(root, 'index.html'), '<!doctype html>');
    await writeFile(join(root, 'assets', 'app-1a2b.js'), 'console.log(1)');
    await writeFile(join(parent, 'secret.txt'), 'not the console');
  });
  afterAll(() => rm(parent, { recursive: true, force: true }));

  it('gives a file its size, its bytes, and whether it is a hashed asset', async () => {
    const files = consoleDirectory(root);
    const index = await files.file('/index.html');
    expect(index).toMatchObject({ size: 15, immutable: false });
    expect(await text(index!.open())).toBe('<!doctype html>');
    expect(await files.file('/assets/app-1a2b.js')).toMatchObject({ size: 14, immutable: true });
  });

  it('has nothing for a directory, a missing file, a NUL, or a path that leaves the root', async () => {
    const files = consoleDirectory(root);
    expect(await files.file('/assets')).toBeUndefined();
    expect(await files.file('/missing.js')).toBeUndefined();
    expect(await files.file('/index.html\0')).toBeUndefined();
    expect(await files.file('/../secret.txt')).toBeUndefined();
    expect(await files.file('/assets/../../secret.txt')).toBeUndefined();
  });
});
