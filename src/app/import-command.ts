import type { Dirent, Stats } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { CustosError } from '../domain/errors.js';
import { fileNameText } from '../domain/file-name-text.js';
import { isRetryLater } from '../domain/retry-later.js';
import { terminalText } from '../domain/terminal-text.js';
import { systemPrincipal } from '../services/auth-service.js';
import type { CliIO } from './cli.js';
import type { CustosConfig } from './config.js';
import { withApp } from './custos-app.js';

/** A path as the file system holds it: bytes, since a name need not be UTF-8 (src/domain/file-name-text.ts). */
type PathBytes = Buffer;

const SLASH = Buffer.from('/');

/** `dir`/`name`, in bytes. */
function below(dir: PathBytes, name: PathBytes): PathBytes {
  return dir.length ? Buffer.concat([dir, ...(dir.at(-1) === 0x2f ? [] : [SLASH]), name]) : name;
}

/**
 * Every file under `dir`, in name order, with its path relative to the root of the walk (`rel`). Symbolic links
 * are followed (a sorted view of an export, a mounted medium's links), each directory read once by its real path so
 * a link back up the tree ends; a link that leads nowhere is yielded with the reason, to be listed as failed.
 * Names are read as bytes: until 6 Dec 2026 they were decoded as UTF-8, so a Latin-1 name (`IM\xe9G0001`) became
 * `IM\ufffdG0001`, a file that does not exist, and failed with ENOENT under a name that was not its own.
 */
async function* files(
  dir: PathBytes,
  rel: PathBytes,
  seen = new Set<string>(),
): AsyncGenerator<{ path: PathBytes; rel: PathBytes; problem?: string; special?: string }> {
  // A directory that cannot be read (lost+found for a service account, a path too long) is one failed entry,
  // not the end of the import (until 5 Dec 2026 it ended it, with no summary).
  let entries;
  try {
    const real = (await realpath(dir, { encoding: 'buffer' })).toString('latin1');
    if (seen.has(real)) return;
    seen.add(real);
    entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
  } catch (err) {
    yield {
      path: dir,
      rel,
      problem: `a directory that cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`,
    };
    return;
  }
  const shown = new Map(entries.map((e) => [e, fileNameText(e.name)]));
  entries.sort((a, b) => shown.get(a)!.localeCompare(shown.get(b)!) || Buffer.compare(a.name, b.name));
  for (const e of entries) {
    const p = below(dir, e.name);
    const r = below(rel, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    let kind: Dirent<PathBytes> | Stats = e;
    if (e.isSymbolicLink()) {
      const target = await stat(p).catch((err: NodeJS.ErrnoException) => err);
      if (target instanceof Error) {
        yield {
          path: p,
          rel: r,
          problem:
            target.code === 'ENOENT'
              ? 'a symbolic link to nothing'
              : target.code === 'ELOOP'
                ? 'a loop of symbolic links'
                : `a symbolic link that cannot be followed (${target.code ?? target.message})`,
        };
        continue;
      }
      isDir = target.isDirectory();
      isFile = target.isFile();
      kind = target;
    }
    if (isDir) yield* files(p, r, seen);
    else if (isFile) yield { path: p, rel: r };
    // Named, not read (reading a pipe would wait for a writer, a device for ever): until 5 Dec 2026 such an entry
    // was left out of the summary without a word.
    else yield { path: p, rel: r, special: specialKind(kind) };
  }
}

function specialKind(e: Dirent<PathBytes> | Stats): string {
  if (e.isFIFO()) return 'a named pipe';
  if (e.isCharacterDevice()) return 'a character device';
  if (e.isBlockDevice()) return 'a block device';
  if (e.isSocket()) return 'a socket';
  return 'not a file or directory';
}

export interface ImportSummary {
  stored: number;
  duplicates: number;
  /** Kept in quarantine for the data steward (docs/validation.md). */
  quarantined: { path: string; id: string; reasons: string[] }[];
  /** Stored, with validation warnings. */
  warned: number;
  conflicts: { path: string; message: string }[];
  /**
   * Files that are not objects to archive: a DICOMDIR (the index of a medium) and files without the Part 10
   * "DICM" mark (a patient CD's viewer, its README, autorun files).
   */
  skipped: { path: string; why: 'DICOMDIR' | 'not DICOM' | 'empty' | 'not a regular file'; kind?: string }[];
  failed: { path: string; message: string }[];
  bytes: number;
  /** Set when storage filled up or the index went away: the import stopped there, later files were not tried. */
  stopped?: { reason: string; notTried: number };
}

/**
 * `custos import DIR`: every file through the same ingest pipeline as STOW-RS. Idempotent: an instance already
 * stored with the same bytes is a no-op; with different bytes it is reported as a conflict and left untouched.
 */
export async function runImport(
  config: CustosConfig,
  dir: string,
  io: CliIO,
  opts: { progress: boolean },
): Promise<number> {
  const root = resolve(io.cwd, dir);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory())
    throw new CustosError({
      code: 'import.not-a-directory',
      message: `${terminalText(root)} is not a directory`,
    });
  const paths: { path: PathBytes; rel: string }[] = [];
  const unreadable: { path: string; message: string }[] = [];
  const special: ImportSummary['skipped'] = [];
  let total = 0;
  for await (const f of files(Buffer.from(root), Buffer.alloc(0))) {
    const rel = fileNameText(f.rel);
    if (f.special) {
      special.push({ path: rel, why: 'not a regular file', kind: f.special });
      continue;
    }
    if (f.problem) {
      unreadable.push({ path: rel, message: f.problem });
      continue;
    }
    const size = await stat(f.path).then(
      (st) => st.size,
      (err: NodeJS.ErrnoException) => err,
    );
    if (size instanceof Error) {
      unreadable.push({
        path: rel,
        message: `cannot be read (${size.code ?? size.message})`,
      });
      continue;
    }
    paths.push({ path: f.path, rel });
    total += size;
  }
  const summary: ImportSummary = {
    stored: 0,
    duplicates: 0,
    quarantined: [],
    warned: 0,
    conflicts: [],
    skipped: [...special],
    failed: [...unreadable],
    bytes: 0,
  };
  const started = Date.now();
  await withApp(
    config,
    async (app) => {
      const principal = systemPrincipal('import');
      const bar =
        opts.progress && io.isTTY
          ? new cliProgress.SingleBar(
              {
                format: 'importing [{bar}] {percentage}% | {value}/{total} files | {mb} MB | ETA {eta}s',
                stream: process.stderr,
                hideCursor: true,
              },
              cliProgress.Presets.shades_classic,
            )
          : undefined;
      bar?.start(paths.length, 0, { mb: '0' });
      let next = 0;
      let done = 0;
      // Ctrl-C (or SIGTERM): the files being stored are finished, no other is begun, and the summary says so.
      // A second one ends the process at once (the signal is listened for once).
      let interrupted: string | undefined;
      void io.stopSignal().then((signal) => {
        interrupted = signal;
        bar?.stop();
        io.err(`custos: ${signal}: finishing the files being stored, then stopping\n`);
      });
      const worker = async () => {
        while (next < paths.length && !summary.stopped && !interrupted) {
          const { path: p, rel } = paths[next++]!;
          try {
            // Opened before ingest begins, so that a file that cannot be opened (no permission, gone since the
            // scan, an I/O error on a damaged disc) is this file's failure; until 6 Dec 2026 the stream opened
            // itself with no listener yet and its error ended the whole import without a summary.
            const file = await open(p, 'r');
            // An empty file (an export or copy that failed before its first byte) holds nothing to archive, and
            // is named as what it is: until 7 Dec 2026 it was listed as "not DICOM", counted among the files
            // with no "DICM" after a 128-byte preamble they did not have. Asked of the open file, not the scan.
            if ((await file.stat().catch(() => undefined))?.size === 0) {
              await file.close().catch(() => undefined);
              throw new CustosError({ code: 'import.empty-file', message: 'an empty file (0 bytes)' });
            }
            const outcome = await app.ingest
              .ingest(principal, file.createReadStream({ highWaterMark: 1024 * 1024 }), { channel: 'import' })
              .finally(() => file.close().catch(() => undefined));
            // A file already held in quarantine is reported as quarantined again, not as stored: it is not in
            // the archive (until 5 Dec 2026 it counted as "unchanged: already stored").
            if (outcome.status === 'quarantined' || outcome.quarantineId !== undefined)
              summary.quarantined.push({
                path: rel,
                id: outcome.quarantineId!,
                reasons: outcome.defects.filter((d) => d.disposition === 'quarantine').map((d) => d.message),
              });
            else if (outcome.status === 'stored') summary.stored++;
            else summary.duplicates++;
            if (outcome.status === 'stored' && outcome.defects.length) summary.warned++;
            summary.bytes += outcome.size;
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            const entry = { path: rel, message };
            if (err instanceof CustosError && err.code === 'ingest.conflict') summary.conflicts.push(entry);
            else if (err instanceof CustosError && err.code === 'ingest.media-directory')
              summary.skipped.push({ path: entry.path, why: 'DICOMDIR' });
            else if (err instanceof CustosError && err.code === 'dicom.bad-preamble')
              summary.skipped.push({ path: entry.path, why: 'not DICOM' });
            else if (err instanceof CustosError && err.code === 'import.empty-file')
              summary.skipped.push({ path: entry.path, why: 'empty' });
            else summary.failed.push(entry);
            // Every later file would be refused the same way (a full disk, the index database away): stop, say why.
            if (isRetryLater(err)) summary.stopped ??= { reason: message, notTried: 0 };
          }
          done++;
          bar?.update(done, { mb: (summary.bytes / 1e6).toFixed(0) });
          if (!bar && opts.progress && done % 500 === 0) io.err(`imported ${done}/${paths.length} files\n`);
        }
      };
      await Promise.all([worker(), worker(), worker()]);
      if (interrupted) summary.stopped ??= { reason: `interrupted by ${interrupted}`, notTried: 0 };
      if (summary.stopped) summary.stopped.notTried = paths.length - next;
      bar?.stop();
    },
    io.err,
    { initialise: true },
  );
  const secs = (Date.now() - started) / 1000;
  io.err(
    [
      `import of ${root}: ${entriesFound(paths.length, total, special.length, unreadable.length)} in ${secs.toFixed(1)} s`,
      `  stored:     ${summary.stored} (${summary.warned} with validation warnings)`,
      `  quarantined: ${summary.quarantined.length} (kept encrypted for the data steward: custos quarantine list)`,
      `  unchanged:  ${summary.duplicates} (already stored with the same bytes)`,
      `  conflicts:  ${summary.conflicts.length} (already stored with different bytes; not overwritten)`,
      ...(summary.skipped.length
        ? [`  skipped:    ${summary.skipped.length} (${skippedKinds(summary)})`]
        : []),
      `  failed:     ${summary.failed.length}`,
      ...(summary.stopped
        ? [
            `  stopped:    ${counted(summary.stopped.notTried, 'file', 'files')} not tried: ${summary.stopped.reason}. Run the same import again once that is resolved (what is stored is skipped).`,
          ]
        : []),
      ...listed(
        [
          ...summary.failed.map((f) => `  failed ${f.path}: ${f.message}`),
          ...summary.conflicts.map((c) => `  conflict ${c.path}: ${c.message}`),
          ...summary.quarantined.map((q) => `  quarantined ${q.path} as ${q.id}: ${q.reasons.join('; ')}`),
          ...summary.skipped.map(
            (k) =>
              `  skipped ${k.path}: ${k.why === 'DICOMDIR' ? 'a DICOMDIR' : k.why === 'not DICOM' ? 'not DICOM' : k.why === 'empty' ? 'an empty file (0 bytes)' : `not a regular file (${k.kind})`}`,
          ),
        ],
        LISTED,
      ),
      '',
    ]
      // A file name, an error or a quarantine reason quoting a DICOM value can hold ESC, CR or BEL: escaped, so
      // that what is printed cannot act on the operator's terminal (until 6 Dec 2026 it went out as it was).
      .map(terminalText)
      .join('\n'),
  );
  io.out(
    JSON.stringify({
      stored: summary.stored,
      unchanged: summary.duplicates,
      quarantined: summary.quarantined.length,
      conflicts: summary.conflicts.length,
      skipped: summary.skipped.length,
      failed: summary.failed.length,
      ...(summary.stopped ? { notTried: summary.stopped.notTried } : {}),
    }) + '\n',
  );
  return summary.failed.length + summary.conflicts.length > 0 || summary.stopped ? 3 : 0;
}

/** "1 file", "2 files". */
function counted(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * What the walk found, so that the counts below add up to it: every regular file is stored, quarantined,
 * unchanged, a conflict, skipped, failed or not tried; a pipe or device is skipped; an entry that could not be
 * read (until 6 Dec 2026 the only one named besides files) failed.
 */
function entriesFound(files: number, bytes: number, special: number, unreadable: number): string {
  const read = `${counted(files, 'file', 'files')} (${(bytes / 1e6).toFixed(1)} MB)`;
  const others = [
    ...(special ? [counted(special, 'not a regular file', 'not regular files')] : []),
    ...(unreadable ? [`${counted(unreadable, 'entry', 'entries')} that could not be read`] : []),
  ];
  if (!others.length) return read;
  const list = [read, ...others];
  return `${files + special + unreadable} entries: ${list.slice(0, -1).join(', ')} and ${list.at(-1)!}`;
}

/** How many files the summary names one by one: failures first, then conflicts, quarantined, skipped. */
const LISTED = 200;

/** The first `n` lines, and a last one saying how many more there were. */
function listed(lines: string[], n: number): string[] {
  return lines.length <= n
    ? lines
    : [...lines.slice(0, n), `  … and ${lines.length - n} more (the counts above include them)`];
}

/** What the skipped files were, counted by kind: "1 DICOMDIR: …; 12 not DICOM Part 10: …". */
function skippedKinds(summary: ImportSummary): string {
  const count = (why: ImportSummary['skipped'][number]['why']) =>
    summary.skipped.filter((k) => k.why === why).length;
  const [dirs, other, empty, special] = [
    count('DICOMDIR'),
    count('not DICOM'),
    count('empty'),
    count('not a regular file'),
  ];
  return [
    ...(dirs ? [`${dirs} DICOMDIR: the index of a medium, not an object`] : []),
    ...(other ? [`${other} not DICOM Part 10: no "DICM" after the 128-byte preamble`] : []),
    ...(empty ? [`${counted(empty, 'empty file', 'empty files')}: nothing to archive`] : []),
    ...(special
      ? [
          `${counted(special, 'not a regular file', 'not regular files')}: pipes, devices or sockets, not read`,
        ]
      : []),
  ].join('; ');
}
