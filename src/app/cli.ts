import { Command, CommanderError } from 'commander';
import { CustosError } from '../domain/errors.js';
import { loadConfig, type CustosConfig } from './config.js';

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
