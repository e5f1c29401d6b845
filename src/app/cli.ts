import { Command, CommanderError } from 'commander';
import { CustosError } from '../domain/errors.js';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ROLES } from '../domain/principal.js';
import { loadConfig, type CustosConfig } from './config.js';
import type { CustosApp } from './custos-app.js';

/**
 * `custos` command line. Thin: parses arguments, loads config, calls into the composition root. Output meant
 * for scripts (tokens) goes to stdout alone; everything else to stderr.
 */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const program = new Command('custos')
    .description('Custos: a governance-first DICOM archive')
    .option('-c, --config <file>', 'config file (default: <data>/custos.json when present)')
    .option('-d, --data <dir>', 'data directory (default ./custos-data)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError();

  const config = (extra: Record<string, unknown> = {}): CustosConfig => {
    const g = program.opts<{ config?: string; data?: string }>();
    return loadConfig({
      env: io.env,
      cwd: io.cwd,
      flags: { ...(g.data ? { dataDir: g.data } : {}), ...extra },
      ...(g.config ? { configFile: g.config } : {}),
    });
  };

  let exitCode = 0;

  program
    .command('serve')
    .description('run the archive (DICOMweb at /dicom-web); initialises the data directory on first start')
    .option('--data <dir>', 'data directory')
    .option('--http-port <port>', 'HTTP port (0 = any free port)', parsePort)
    .option('--http-host <host>', 'address to listen on')
    .option('--workers <n>', 'server processes sharing the port (default 1)', parsePositive)
    .action(async (opts: { data?: string; httpPort?: number; httpHost?: string; workers?: number }) => {
      const { serve } = await import('./serve.js');
      const http: Record<string, unknown> = {};
      if (opts.httpPort !== undefined) http.port = opts.httpPort;
      if (opts.httpHost !== undefined) http.host = opts.httpHost;
      if (opts.workers !== undefined) http.workers = opts.workers;
      exitCode = await serve(
        config({
          ...(opts.data ? { dataDir: opts.data } : {}),
          ...(Object.keys(http).length ? { http } : {}),
        }),
        io,
      );
    });

  const token = program.command('token').description('API tokens for scripts');
  token
    .command('create')
    .description('create an API token for an account and print it (shown once)')
    .requiredOption('--user <name>', 'account name')
    .option('--data <dir>', 'data directory')
    .option('--name <label>', 'label to recognise the token by')
    .option('--days <n>', 'expire after N days (default: never)', parsePositive)
    .action(async (opts: { user: string; data?: string; name?: string; days?: number }) => {
      const { withApp } = await import('./custos-app.js');
      const { systemPrincipal } = await import('../services/auth-service.js');
      await withApp(
        config(opts.data ? { dataDir: opts.data } : {}),
        async (app) => {
          const created = await app.auth.createToken(systemPrincipal('cli'), opts.user, {
            ...(opts.name ? { name: opts.name } : {}),
            ...(opts.days ? { ttlDays: opts.days } : {}),
          });
          io.out(`${created.token}\n`);
        },
        io.err,
      );
    });

  const withData = async (data: string | undefined, fn: (app: CustosApp) => Promise<void>) => {
    const { withApp } = await import('./custos-app.js');
    await withApp(config(data ? { dataDir: data } : {}), fn, io.err);
  };
  const operator = async () => (await import('../services/auth-service.js')).systemPrincipal('cli');

  const user = program.command('user').description('accounts and the facts access policies scope by');
  user
    .command('add')
    .description('create an account and print its one-time password (shown once)')
    .argument('<name>', 'account name (one person or one named system)')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .option('--department <name>', "the account's department (department-scoped roles)")
    .option('--physician-name <pn>', "physician name as DICOM PN, 'Family^Given' (referring physicians)")
    .option('--physician-id <id>', 'explicit physician identifier (Referring Physician Identification code)')
    .option('--display-name <text>', 'full name shown in the console')
    .option('--data <dir>', 'data directory')
    .action(
      async (
        name: string,
        opts: {
          role: string;
          department?: string;
          physicianName?: string;
          physicianId?: string;
          displayName?: string;
          data?: string;
        },
      ) => {
        await withData(opts.data, async (app) => {
          const created = await app.accounts.add(await operator(), {
            username: name,
            role: opts.role,
            ...(opts.department !== undefined ? { department: opts.department } : {}),
            ...(opts.physicianName !== undefined ? { physicianName: opts.physicianName } : {}),
            ...(opts.physicianId !== undefined ? { physicianId: opts.physicianId } : {}),
            ...(opts.displayName !== undefined ? { displayName: opts.displayName } : {}),
          });
          io.err(`custos: account '${created.username}' created (${opts.role}); one-time password:\n`);
          io.out(`${created.password}\n`);
        });
      },
    );
  user
    .command('list')
    .description('list accounts with role, department and physician identity')
    .option('--data <dir>', 'data directory')
    .action(async (opts: { data?: string }) => {
      await withData(opts.data, async (app) => {
        const rows = (await app.accounts.list()).map((u) => [
          u.username,
          u.role,
          u.department ?? '-',
          u.physicianName ?? '-',
          u.physicianId ?? '-',
          u.projects.join(',') || '-',
          u.active ? 'active' : 'inactive',
        ]);
        io.out(
          table(['NAME', 'ROLE', 'DEPARTMENT', 'PHYSICIAN NAME', 'PHYSICIAN ID', 'PROJECTS', 'STATUS'], rows),
        );
      });
    });

  program
    .command('grant')
    .description('grant one account read access to one study until it expires (restricted studies, students)')
    .requiredOption('--user <name>', 'account name')
    .requiredOption('--study <uid>', 'Study Instance UID')
    .requiredOption('--reason <text>', 'why (recorded in the audit ledger)')
    .option('--days <n>', 'expire after N days (default 7)', parsePositive)
    .option('--data <dir>', 'data directory')
    .action(async (opts: { user: string; study: string; reason: string; days?: number; data?: string }) => {
      await withData(opts.data, async (app) => {
        const g = await app.accounts.grant(await operator(), opts.user, opts.study, {
          days: opts.days ?? 7,
          reason: opts.reason,
        });
        io.err(`custos: granted ${opts.user} study ${opts.study} until ${g.expiresAt}\n`);
      });
    });

  const policy = program.command('policy').description('Cedar access policies: validate, diff, apply, show');
  policy
    .command('validate')
    .description(
      'parse a policy file and validate it against the Custos schema (exit 1 when it has problems)',
    )
    .argument('<file>', 'Cedar policy file')
    .action(async (file: string) => {
      const { CedarPolicyValidator } = await import('../adapters/policy/cedar-policy.js');
      const { formatProblems } = await import('../services/policy-service.js');
      const text = await readPolicyFile(resolve(io.cwd, file), file);
      const problems = new CedarPolicyValidator().validate(text);
      if (problems.length) {
        io.err(`${formatProblems(file, problems)}\n`);
        exitCode = 1;
        return;
      }
      io.err(`${file}: valid\n`);
    });
  policy
    .command('diff')
    .description('show what a policy file changes against the active version')
    .argument('<file>', 'Cedar policy file')
    .option('--data <dir>', 'data directory')
    .action(async (file: string, opts: { data?: string }) => {
      const text = await readPolicyFile(resolve(io.cwd, file), file);
      await withData(opts.data, async (app) => {
        const d = await app.policies.diff(text, file);
        if (d.diff) io.out(d.diff);
        else io.err(`custos: ${file} is the same as the active version ${d.version}\n`);
      });
    });
  policy
    .command('apply')
    .description('validate a policy file and make it the active version (old versions are kept)')
    .argument('<file>', 'Cedar policy file')
    .option('--comment <text>', 'why (stored with the version and in the audit ledger)')
    .option('--data <dir>', 'data directory')
    .action(async (file: string, opts: { comment?: string; data?: string }) => {
      const text = await readPolicyFile(resolve(io.cwd, file), file);
      await withData(opts.data, async (app) => {
        const r = await app.policies.apply(await operator(), text, opts.comment ?? '', file);
        io.err(
          r.unchanged
            ? `custos: ${file} is the same as the active version ${r.version}; nothing applied\n`
            : `custos: applied ${file} as policy version ${r.version} (sha256 ${r.sha256})\n`,
        );
      });
    });
  policy
    .command('show')
    .description('print the active policy version (or --version N) to stdout')
    .option('--version <n>', 'version number', parsePositive)
    .option('--list', 'list every version instead')
    .option('--data <dir>', 'data directory')
    .action(async (opts: { version?: number; list?: boolean; data?: string }) => {
      await withData(opts.data, async (app) => {
        if (opts.list) {
          const rows = (await app.policies.list()).map((v) => [
            String(v.version),
            v.appliedAt,
            v.appliedBy,
            v.sha256.slice(0, 16),
            v.comment,
          ]);
          io.out(table(['VERSION', 'APPLIED AT', 'BY', 'SHA256', 'COMMENT'], rows));
          return;
        }
        const v = await app.policies.show(opts.version);
        io.err(
          `custos: policy version ${v.version}, applied ${v.appliedAt} by ${v.appliedBy}: ${v.comment}\n`,
        );
        io.out(v.text.endsWith('\n') ? v.text : `${v.text}\n`);
      });
    });

  program
    .command('import')
    .description('import DICOM files from a directory tree (idempotent)')
    .argument('<dir>', 'directory to scan recursively')
    .option('--data <dir>', 'data directory')
    .option('--no-progress', 'no progress bar')
    .action(async (dir: string, opts: { data?: string; progress: boolean }) => {
      const { runImport } = await import('./import-command.js');
      exitCode = await runImport(config(opts.data ? { dataDir: opts.data } : {}), dir, io, {
        progress: opts.progress,
      });
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CustosError) {
      io.err(`custos: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

export interface CliIO {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopSignal(): Promise<string>;
  isTTY: boolean;
}

const processIO: CliIO = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  env: process.env,
  cwd: process.cwd(),
  stopSignal: () =>
    new Promise((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    }),
  isTTY: !!process.stderr.isTTY,
};

function parsePort(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535)
    throw new CustosError({ code: 'cli.bad-port', message: `--http-port must be 0..65535, got '${v}'` });
  return n;
}

function parsePositive(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1)
    throw new CustosError({ code: 'cli.bad-number', message: `expected a positive integer, got '${v}'` });
  return n;
}

async function readPolicyFile(path: string, file: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CustosError({
      code: 'cli.unreadable-file',
      message: `cannot read ${file}: ${(err as Error).message}`,
      cause: err,
    });
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return (
    [header, ...rows]
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
