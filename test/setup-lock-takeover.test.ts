// Taking over a setup lock left by a process that no longer runs (src/app/setup-lock.ts). Every waiter that finds
// such a lock wants to take it over; only one may. Until 7 Dec 2026 each removed the lock it had judged stale, and
// one that did so a moment late removed the lock that another had just taken over: both set the archive up.
import { execFile } from 'node:child_process';
import type * as FsPromises from 'node:fs/promises';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { underSetupLock } from '../src/app/setup-lock.js';

// The real file system, with one delay to make the losing interleaving happen every time: the first removal of a
// setup lock waits until a setup has begun (or 300 ms), as a waiter that judged the lock stale and was then slow
// to remove it would.
const gate = vi.hoisted(() => ({ opened: () => {}, open: Promise.resolve(), armed: false }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof FsPromises>();
  const unlink: typeof fs.unlink = async (path) => {
    if (gate.armed && String(path).endsWith('setup.lock')) {
      gate.armed = false;
      await Promise.race([gate.open, sleep(300)]);
    }
    return fs.unlink(path);
  };
  return { ...fs, unlink, default: { ...fs, unlink } };
});

/** A pid that no process has any more: a child that has exited. */
const deadPid = () =>
  new Promise<number>((resolve) => {
    const p = execFile('true');
    p.on('exit', () => resolve(p.pid!));
  });

describe('taking over a setup lock left by a process that stopped', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('lets one of many waiters set the archive up while the others wait, and leaves only the keyfile behind', async () => {
    const dead = await deadPid();
    for (let round = 0; round < 5; round++) {
      const dir = await mkdtemp(join(tmpdir(), 'custos-takeover-'));
      dirs.push(dir);
      await writeFile(join(dir, 'setup.lock'), `${dead}\n`);
      const keyFile = join(dir, 'keyfile');
      let settingUp = false;
      let overlaps = 0;
      let setups = 0;
      const notices: string[] = [];
      // What custos-app does under the lock: the first to find no keyfile sets the archive up and makes it; the
      // others, let in once the lock is gone, only open it. None may come in while a setup runs.
      gate.armed = true;
      gate.open = new Promise((resolve) => (gate.opened = resolve));
      const setup = async () => {
        gate.opened();
        if (settingUp) overlaps++;
        if ((await readdir(dir)).includes('keyfile')) return;
        if (settingUp) overlaps++;
        settingUp = true;
        setups++;
        await sleep(10);
        await writeFile(keyFile, 'key');
        settingUp = false;
      };
      await Promise.all(
        Array.from({ length: 8 }, () => underSetupLock(dir, keyFile, (m) => notices.push(m), setup)),
      );
      expect({ round, overlaps, setups }).toEqual({ round, overlaps: 0, setups: 1 });
      expect(notices.filter((n) => n.startsWith('taking over'))).toHaveLength(1);
      expect((await readdir(dir)).sort()).toEqual(['keyfile']);
    }
  });
});
