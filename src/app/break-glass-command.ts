import type { Command } from 'commander';
import { CustosError } from '../domain/errors.js';
import type { BreakGlassFilter, BreakGlassItem } from '../services/break-glass-service.js';
import type { Principal } from '../domain/principal.js';
import type { CliIO } from './cli.js';
import type { CustosApp } from './custos-app.js';
import type { CustosConfig } from './config.js';

const day = (name: string, v: string): string => {
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00.000Z` : v;
  const t = new Date(iso);
  if (Number.isNaN(t.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(v))
    throw new CustosError({
      code: 'cli.bad-date',
      message: `${name}: '${v}' is not a date (YYYY-MM-DD) or an ISO 8601 time`,
    });
  return t.toISOString();
};

/**
 * `custos break-glass list|review`: the privacy officer's report of emergency access, acting as a named account
 * (--as) whose role the policies decide on; every call is recorded in the ledger.
 */
export function addBreakGlassCommands(
  program: Command,
  config: (extra?: Record<string, unknown>) => CustosConfig,
  io: CliIO,
): void {
  const bg = program
    .command('break-glass')
    .description(
      "emergency access windows: the privacy officer's report and review (docs/access-control.md)",
    );
  const withBreakGlass = async (
    data: string | undefined,
    as: string,
    fn: (app: CustosApp, who: Principal) => Promise<void>,
  ) => {
    const { withApp } = await import('./custos-app.js');
    await withApp(
      config(data ? { dataDir: data } : {}),
      async (app) => fn(app, await app.auth.localPrincipal(as, 'cli')),
      io.err,
    );
  };
  bg.command('list')
    .description('break-glass windows, newest first, with how often each was used')
    .requiredOption('--as <account>', 'the privacy officer or data owner acting (recorded in the ledger)')
    .option('--data <dir>', 'data directory')
    .option('--from <date>', 'opened on or after (YYYY-MM-DD or ISO 8601 time)')
    .option('--to <date>', 'opened before')
    .option('--user <account>', 'opened by this account')
    .option('--unreviewed', 'only windows not yet reviewed')
    .option('--reviewed', 'only reviewed windows')
    .option('--json', 'JSON instead of a table')
    .action(
      async (opts: {
        as: string;
        data?: string;
        from?: string;
        to?: string;
        user?: string;
        unreviewed?: boolean;
        reviewed?: boolean;
        json?: boolean;
      }) => {
        if (opts.reviewed && opts.unreviewed)
          throw new CustosError({
            code: 'cli.bad-option',
            message: '--reviewed and --unreviewed exclude each other',
          });
        const filter: BreakGlassFilter = {
          ...(opts.from ? { from: day('--from', opts.from) } : {}),
          ...(opts.to ? { to: day('--to', opts.to) } : {}),
          ...(opts.user ? { username: opts.user } : {}),
          ...(opts.reviewed ? { reviewed: true } : opts.unreviewed ? { reviewed: false } : {}),
        };
        await withBreakGlass(opts.data, opts.as, async (app, who) => {
          const items = await app.breakGlass.list(who, filter, 'cli');
          if (opts.json) io.out(`${JSON.stringify(items)}\n`);
          else {
            for (const i of items) io.out(line(i));
            io.err(`${items.length} break-glass window${items.length === 1 ? '' : 's'}\n`);
          }
        });
      },
    );
  bg.command('review')
    .description('record the review of one window')
    .argument('<id>', 'break-glass window id (from list)')
    .requiredOption('--as <account>', 'the privacy officer or data owner reviewing (recorded in the ledger)')
    .requiredOption('--note <text>', 'what the review found')
    .option('--data <dir>', 'data directory')
    .action(async (id: string, opts: { as: string; note: string; data?: string }) => {
      await withBreakGlass(opts.data, opts.as, async (app, who) => {
        const item = await app.breakGlass.review(who, id, opts.note, 'cli');
        io.out(line(item));
      });
    });
}

function line(i: BreakGlassItem): string {
  const review = i.reviewedAt
    ? `reviewed by ${i.reviewedBy} ${i.reviewedAt}: ${i.reviewNote}`
    : 'NOT REVIEWED';
  return `${i.id}  ${i.openedAt}  ${i.username} (${i.role})  study ${i.studyUid}  patient ${i.patientId}  ${i.accesses} accesses  "${i.reason}"  ${review}\n`;
}
