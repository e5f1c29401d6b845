import { userInfo } from 'node:os';
import cliProgress from 'cli-progress';
import { systemPrincipal } from '../services/auth-service.js';
import type { FixityReport } from '../services/fixity-service.js';
import type { CliIO } from './cli.js';
import type { CustosConfig } from './config.js';
import { withApp } from './custos-app.js';

/** `custos fixity run`: one whole pass now, with a progress bar on a terminal; exit 1 when anything is corrupt. */
export async function runFixity(
  config: CustosConfig,
  io: CliIO,
  opts: { progress: boolean; bytesPerSecond?: number },
): Promise<number> {
  const report = await withApp(
    config,
    async (app): Promise<FixityReport> => {
      const bar =
        opts.progress && io.isTTY
          ? new cliProgress.SingleBar(
              {
                format:
                  'verifying [{bar}] {percentage}% | {value}/{total} objects | {mb} MB | {corrupt} corrupt | ETA {eta}s',
                stream: process.stderr,
                hideCursor: true,
              },
              cliProgress.Presets.shades_classic,
            )
          : undefined;
      let started = false;
      const report = await app.fixity.runPass(systemPrincipal(`cli:${userInfo().username}`), {
        ...(opts.bytesPerSecond ? { bytesPerSecond: opts.bytesPerSecond } : {}),
        onProgress: (p) => {
          if (!started) bar?.start(p.total, 0, { mb: '0', corrupt: 0 });
          started = true;
          bar?.update(p.checked, { mb: (p.bytes / 1e6).toFixed(0), corrupt: p.corrupt });
          if (!bar && opts.progress && p.checked % 1000 === 0)
            io.err(`verified ${p.checked}/${p.total} objects\n`);
        },
      });
      bar?.stop();
      return report;
    },
    io.err,
  );
  io.err(
    [
      `fixity: ${report.checked} objects (${(report.bytes / 1e6).toFixed(1)} MB) verified in ${report.seconds.toFixed(1)} s`,
      `  sound:   ${report.ok}`,
      `  corrupt: ${report.corrupt.length}`,
      ...report.corrupt
        .slice(0, 50)
        .map(
          (c) =>
            `  CORRUPT ${c.sopInstanceUid} (study ${c.studyUid}${c.quarantineId ? `, in quarantine ${c.quarantineId}` : ''}): ${c.reason}`,
        ),
      '',
    ].join('\n'),
  );
  io.out(`${JSON.stringify({ checked: report.checked, ok: report.ok, corrupt: report.corrupt.length })}\n`);
  return report.corrupt.length ? 1 : 0;
}

/**
 * `custos fixity orphans`: blobs nothing in the index refers to (left by a crash between a blob's commit and its
 * index transaction). Lists them; with `remove` deletes them. Exit 1 while orphans remain.
 */
export async function runOrphans(
  config: CustosConfig,
  io: CliIO,
  opts: { remove: boolean; minAgeHours: number },
): Promise<number> {
  const report = await withApp(
    config,
    (app) =>
      app.fixity.findOrphans(systemPrincipal(`cli:${userInfo().username}`), {
        remove: opts.remove,
        minAgeSeconds: opts.minAgeHours * 3600,
      }),
    io.err,
  );
  const remaining = report.orphans.length - report.removed;
  io.err(
    [
      `fixity: ${report.listed} blobs listed in ${report.seconds.toFixed(1)} s`,
      `  orphans: ${report.orphans.length} (${(report.orphanBytes / 1e6).toFixed(1)} MB) referred to by no instance and no quarantine entry, written more than ${opts.minAgeHours} h ago`,
      ...report.orphans
        .slice(0, 50)
        .map(
          (o) =>
            `  ${opts.remove ? 'REMOVED' : 'ORPHAN'} ${o.blobId} (${o.storedBytes} bytes, written ${o.modifiedAt})`,
        ),
      ...(report.orphans.length > 50 ? [`  … and ${report.orphans.length - 50} more`] : []),
      ...(report.young
        ? [`  not considered: ${report.young} blobs written within the last ${opts.minAgeHours} h`]
        : []),
      remaining ? '  run again with --remove to delete them' : `  removed: ${report.removed}`,
      '',
    ].join('\n'),
  );
  io.out(
    `${JSON.stringify({ listed: report.listed, orphans: report.orphans.length, removed: report.removed, young: report.young })}\n`,
  );
  return remaining ? 1 : 0;
}
