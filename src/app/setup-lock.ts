import { existsSync } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustosError } from '../domain/errors.js';

/** How long a process waits for another one that is initialising the same data directory. */
const WAIT_MS = 120_000;
const POLL_MS = 200;
/** A lock file with no pid in it yet is the moment between its creation and its write; older, it is left over. */
const EMPTY_STALE_MS = 10_000;

/**
 * Runs `fn` (opening the archive) while no other process is initialising the data directory. First-time setup (the
 * keyfile, the index, the archive identity, the administrator and its one-time password) is done under
 * DATA/setup.lock, made with O_EXCL and holding the pid, and removed once the archive is open. A second `custos serve`
 * or `custos import` started meanwhile on the same directory waits for it and then opens the archive the first one
 * made; until 6 Dec 2026 both initialised it, each made a keyfile or failed on the other's half-written one, and one
 * of two one-time passwords printed was lost. A lock left by a process that no longer runs is taken over; one held
 * for longer than two minutes by a live process ends the wait with an error naming it.
 *
 * An archive already set up (keyfile present, no lock) is opened without the lock: ordinary starts do not contend.
 */
export async function underSetupLock<T>(
  dataDir: string,
  keyFile: string,
  notice: ((message: string) => void) | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = join(dataDir, 'setup.lock');
  const started = Date.now();
  let told = false;
  for (;;) {
    // The keyfile is looked at before the lock: the lock is made before the keyfile and removed after the whole
    // setup, so a keyfile seen with no lock after it is one whose setup has finished.
    if (existsSync(keyFile) && !existsSync(lock)) return fn();
    const fh = await open(lock, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return undefined;
      throw new CustosError({
        code: 'setup.lock-failed',
        message: `cannot create the setup lock ${lock}: ${err.message}`,
        cause: err,
      });
    });
    if (fh) {
      try {
        await fh.writeFile(`${process.pid}\n`);
      } finally {
        await fh.close();
      }
      try {
        return await fn();
      } finally {
        await unlink(lock).catch(() => undefined);
      }
    }
    const holder = await lockHolder(lock);
    if (holder === 'gone') continue;
    if (typeof holder === 'object') {
      if (await takeOver(lock, holder, notice)) continue;
      if (Date.now() - started > WAIT_MS)
        throw new CustosError({
          code: 'setup.locked',
          message: `the setup lock ${lock} was left by a process that no longer runs, and ${lock}.${holder.ino} says another waiter has been taking it over for more than ${WAIT_MS / 60_000} minutes; if no Custos process is starting on ${dataDir}, remove both and start again`,
        });
      await sleep(POLL_MS);
      continue;
    }
    const who = holder ? `process ${holder}` : 'another process';
    if (Date.now() - started > WAIT_MS)
      throw new CustosError({
        code: 'setup.locked',
        message: `${who} has been initialising the data directory ${dataDir} for more than ${WAIT_MS / 60_000} minutes; if it is not a Custos process, remove ${lock} and start again`,
      });
    if (!told) {
      notice?.(`waiting for ${who}, which is initialising the data directory ${dataDir} (${lock})`);
      told = true;
    }
    await sleep(POLL_MS);
  }
}

/** A lock left by a process that no longer runs, as one waiter saw it: which file, and what it held. */
interface StaleLock {
  ino: number;
  text: string;
}

/**
 * Removes a lock left by a process that no longer runs, if no other waiter is doing so, and says whether it got to
 * try. Every waiter that sees such a lock wants it gone, and only one may remove it: a waiter that removed the lock
 * it had judged stale a moment after another had taken over (removed it and made its own) would remove the live
 * lock, and both would set the archive up (until 7 Dec 2026). So the remover first makes `setup.lock.<inode>` with
 * O_EXCL, then looks again and removes the lock only if it is still that file with those contents and still left
 * over; it removes its marker only after, so that a waiter who saw the same old lock finds it gone or replaced when
 * it gets the marker in turn. A remover that stops in those few milliseconds leaves the marker: the others then wait
 * until the two minutes are up and name both files to remove.
 */
async function takeOver(
  lock: string,
  seen: StaleLock,
  notice: ((message: string) => void) | undefined,
): Promise<boolean> {
  const marker = `${lock}.${seen.ino}`;
  const fh = await open(marker, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') return undefined;
    throw new CustosError({
      code: 'setup.lock-failed',
      message: `cannot create ${marker} to take over the setup lock: ${err.message}`,
      cause: err,
    });
  });
  if (!fh) return false;
  try {
    try {
      await fh.writeFile(`${process.pid}\n`);
    } finally {
      await fh.close();
    }
    const now = await lockHolder(lock);
    if (typeof now === 'object' && now.ino === seen.ino && now.text === seen.text) {
      const pid = seen.text.trim();
      notice?.(
        `taking over the setup lock ${lock}${pid ? ` left by process ${pid}, which no longer runs` : ', left empty by a process that stopped'}`,
      );
      await unlink(lock).catch(() => undefined);
    }
  } finally {
    await unlink(marker).catch(() => undefined);
  }
  return true;
}

/**
 * The live pid that holds the lock (0: not written yet), whether the lock is gone, or the lock left by a process
 * that no longer runs.
 */
async function lockHolder(lock: string): Promise<number | StaleLock | 'gone'> {
  const [text, info] = await Promise.all([
    readFile(lock, 'utf8').catch(() => undefined),
    stat(lock).catch(() => undefined),
  ]);
  if (text === undefined || !info) return 'gone';
  const stale = { ino: info.ino, text };
  const pid = Number(text.trim());
  if (!text.trim() || !Number.isSafeInteger(pid) || pid <= 0)
    return Date.now() - info.mtimeMs > EMPTY_STALE_MS ? stale : 0;
  if (pid === process.pid) return pid;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH' ? stale : pid;
  }
}
