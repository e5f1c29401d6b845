// Process helpers shared by the benchmark's server harnesses (Linux: reads /proc).
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { CustosError } from '../src/domain/errors.js';

export const benchError = (code: string, message: string, cause?: unknown) =>
  new CustosError({ code: `bench.${code}`, message, cause });

/** A free loopback port: the OS picks one for a throw-away listener, which is then closed. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Peak resident set size (VmHWM) of a process, in bytes; NaN once it has gone. */
export function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The process and its descendants (Linux /proc children lists). */
export function processTree(pid: number): number[] {
  const out = [pid];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const k of kids ? kids.split(/\s+/) : []) out.push(...processTree(Number(k)));
    }
  } catch {
    /* the process is gone */
  }
  return out;
}

/** Sum of the peak RSS of a process and its descendants (an upper bound of what it held at once). */
export function treePeakRss(pid: number): number {
  return processTree(pid).reduce((n, p) => n + (peakRss(p) || 0), 0);
}

/** Reset the peak RSS counter; true when it worked (Linux ≥ 4.0: writing 5 to clear_refs resets VmHWM). */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Descendant process ids (not threads) of `pid`, to tell whether a server forks workers. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // Field 4 of /proc/PID/stat is the parent pid; the command name (field 2) may hold spaces.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      /* exited while we looked */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent)
      if (pp === p) {
        out.push(child);
        walk(child);
      }
  };
  walk(pid);
  return out;
}

/**
 * The sum of two clock-tick fields of /proc/<pid>/stat (numbered as in proc(5)), in ms. The fields after the
 * command name start at field 3; ticks are USER_HZ, 100/s on Linux.
 */
function statTicksMs(pid: number | 'self', a: number, b: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[a - 3]) + Number(f[b - 3])) * 1000) / 100;
}

/** CPU time (user + system, all threads) a process has used so far, in ms; NaN once it has gone. */
export function cpuMs(pid: number): number {
  try {
    return statTicksMs(pid, 14, 15); // utime, stime
  } catch {
    return NaN;
  }
}

/** CPU time (user + system) of this process's children that have exited and been waited for, in ms. */
export function exitedChildrenCpuMs(): number {
  return statTicksMs('self', 16, 17); // cutime, cstime
}

/** Number of threads of a process. */
export function threadCount(pid: number): number {
  try {
    return Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

export async function waitFor(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw benchError('timeout', `timed out after ${ms} ms waiting for ${what}`);
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Keeps the last `max` characters of a stream, for error messages. */
export function tail(stream: NodeJS.ReadableStream | null, max = 4000): () => string {
  let text = '';
  stream?.on('data', (d: Buffer) => {
    text = (text + d.toString()).slice(-max);
  });
  return () => text;
}

export interface Peer {
  name: string;
  /** Base URL of the DICOMweb API, without a trailing slash. */
  dicomweb: string;
  headers: Record<string, string>;
  pid: number;
  /** DIMSE listener and AE title (issue 3 C-STORE / C-FIND figures). */
  dicomPort: number;
  aet: string;
  stop(): Promise<void>;
}
