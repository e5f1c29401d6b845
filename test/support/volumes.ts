// File systems of a test's own, to make the archive's storage fill up or fail under a running server. Both mount,
// so the tests that use them run as root (as CI does here).
import { execFile } from 'node:child_process';
import { mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { systemPrincipal } from '../../src/services/auth-service.js';
import type { Backend } from './backends.js';
import { startTestServer, type TestServer } from './test-server.js';

const run = promisify(execFile);

/** A tmpfs of `mib` MiB. Its size can be raised to stand for an operator freeing space. */
export async function tmpfs(mib: number) {
  const dir = await mkdtemp(join(tmpdir(), 'custos-full-'));
  await run('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0700`, 'tmpfs', dir]);
  return {
    dir,
    grow: (to: number) => run('mount', ['-o', `remount,size=${to}m`, dir]),
    /** Writes a file beside the data directory until the volume has no byte left. */
    fill: async () => {
      const file = await open(join(dir, `filler-${Date.now()}`), 'w');
      const block = Buffer.alloc(4096, 0x5a);
      try {
        for (;;) await file.write(block);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      } finally {
        await file.close();
      }
    },
    unmount: async () => {
      await run('umount', [dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * An ext4 file system of `mib` MiB in an image file on a loop device, mounted with `errors=remount-ro` (Debian's
 * default for its root file system). fail() makes the kernel record a file-system error on it, as an I/O error of
 * a failing disk does: ext4 aborts its journal and refuses every write from then on with EROFS.
 */
export async function ext4(mib: number) {
  const base = await mkdtemp(join(tmpdir(), 'custos-ext4-'));
  const image = join(base, 'volume.img');
  const dir = join(base, 'mnt');
  await writeFile(image, '');
  await run('truncate', ['-s', `${mib}M`, image]);
  await run('mkfs.ext4', ['-q', '-F', image]);
  await run('mkdir', [dir]);
  await run('mount', ['-o', 'loop,errors=remount-ro', image, dir]);
  const device = await run('findmnt', ['-n', '-o', 'SOURCE', dir]).then((r) => r.stdout.trim());
  return {
    dir,
    fail: async () => {
      // ext4's own error trigger (/sys/fs/ext4/<device>/trigger_fs_error), named by the loop device.
      const name = device.replace(/^\/dev\//, '');
      if (!(await readdir('/sys/fs/ext4')).includes(name))
        throw new Error(`no /sys/fs/ext4/${name} for the test's volume`);
      await writeFile(`/sys/fs/ext4/${name}/trigger_fs_error`, 'custos test: a failing disk\n');
    },
    unmount: async () => {
      await run('umount', [dir]);
      await rm(base, { recursive: true, force: true });
    },
  };
}

/**
 * A test server whose data directory is on `volumeDir` (the keyfile and the ledger's signing files stay where the
 * test configuration puts them, outside it), with no free-space reserve, and `aeTitle` registered for loopback.
 */
export async function serverOnVolume(
  backend: Backend,
  volumeDir: string,
  aeTitle: string,
): Promise<TestServer> {
  const s = await startTestServer(backend, {
    configure: (c) => ({ ...c, dataDir: join(volumeDir, 'data'), blob: { ...c.blob, minFreeBytes: 0 } }),
  });
  await s.app.aes.add(systemPrincipal('test'), {
    title: aeTitle,
    host: '127.0.0.1',
    port: 104,
    user: 'admin',
  });
  return s;
}
