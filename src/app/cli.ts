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
    .option(
      '--dicom-port <port>',
      "DIMSE port (default 11112; 0 = any free port; 'off' = no plain listener)",
      parsePortOrOff,
    )
    .option('--dicom-host <host>', 'address the DIMSE listeners bind')
    .option(
      '--dicom-tls-port <port>',
      'DICOM TLS port (needs dicom.tls.cert and key in the config)',
      parsePort,
    )
    .option('--ae-title <title>', 'our AE title (default CUSTOS)')
    .action(
      async (opts: {
        data?: string;
        httpPort?: number;
        httpHost?: string;
        workers?: number;
        dicomPort?: number | null;
        dicomHost?: string;
        dicomTlsPort?: number;
        aeTitle?: string;
      }) => {
        const { serve } = await import('./serve.js');
        const http: Record<string, unknown> = {};
        if (opts.httpPort !== undefined) http.port = opts.httpPort;
        if (opts.httpHost !== undefined) http.host = opts.httpHost;
        if (opts.workers !== undefined) http.workers = opts.workers;
        const dicom: Record<string, unknown> = {};
        if (opts.dicomPort !== undefined) dicom.port = opts.dicomPort;
        if (opts.dicomHost !== undefined) dicom.host = opts.dicomHost;
        if (opts.aeTitle !== undefined) dicom.aeTitle = opts.aeTitle;
        if (opts.dicomTlsPort !== undefined) dicom.tls = { port: opts.dicomTlsPort };
        exitCode = await serve(
          config({
            ...(opts.data ? { dataDir: opts.data } : {}),
            ...(Object.keys(http).length ? { http } : {}),
            ...(Object.keys(dicom).length ? { dicom } : {}),
          }),
          io,
        );
      },
    );

  const ae = program.command('ae').description('DICOM application entities allowed to associate');
  ae.command('add')
    .description('register an AE: it may call from HOST, and C-MOVE sends to HOST:PORT')
    .argument('<title>', 'AE title')
    .requiredOption('--host <host>', 'host the AE calls from and listens on')
    .requiredOption('--port <port>', 'port the AE listens on', parsePort)
    .option('--cert <file>', 'PEM client certificate the AE must present over DICOM TLS')
    .option('--user <account>', 'account whose role the AE acts with')
    .option('--data <dir>', 'data directory')
    .action(
      async (
        title: string,
        opts: { host: string; port: number; cert?: string; user?: string; data?: string },
      ) => {
        const { withApp } = await import('./custos-app.js');
        const { systemPrincipal } = await import('../services/auth-service.js');
        const { certificateSha256 } = await import('./certificate.js');
        const { resolve } = await import('node:path');
        const certSha256 = opts.cert ? await certificateSha256(resolve(io.cwd, opts.cert)) : undefined;
        await withApp(
          config(opts.data ? { dataDir: opts.data } : {}),
          async (app) => {
            const e = await app.aes.add(systemPrincipal('cli'), {
              title,
              host: opts.host,
              port: opts.port,
              ...(certSha256 ? { certSha256 } : {}),
              ...(opts.user ? { user: opts.user } : {}),
            });
            io.err(`custos: AE ${e.title} registered (${e.host}:${e.port})\n`);
          },
          io.err,
        );
      },
    );
  ae.command('list')
    .description('list registered AEs (tab-separated: title, host, port, user, certificate SHA-256)')
    .option('--data <dir>', 'data directory')
    .action(async (opts: { data?: string }) => {
      const { withApp } = await import('./custos-app.js');
      const { systemPrincipal } = await import('../services/auth-service.js');
      await withApp(
        config(opts.data ? { dataDir: opts.data } : {}),
        async (app) => {
          for (const e of await app.aes.list(systemPrincipal('cli')))
            io.out(`${e.title}\t${e.host}\t${e.port}\t${e.user ?? '-'}\t${e.certSha256 ?? '-'}\n`);
        },
        io.err,
      );
    });
  ae.command('remove')
    .description('remove a registered AE')
    .argument('<title>', 'AE title')
    .option('--data <dir>', 'data directory')
    .action(async (title: string, opts: { data?: string }) => {
      const { withApp } = await import('./custos-app.js');
      const { systemPrincipal } = await import('../services/auth-service.js');
      await withApp(
        config(opts.data ? { dataDir: opts.data } : {}),
        async (app) => {
          await app.aes.remove(systemPrincipal('cli'), title);
          io.err(`custos: AE ${title} removed\n`);
        },
        io.err,
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

function parsePortOrOff(v: string): number | null {
  if (v === 'off') return null;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535)
    throw new CustosError({
      code: 'cli.bad-port',
      message: `--dicom-port must be 0..65535 or 'off', got '${v}'`,
    });
  return n;
}

function parsePositive(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1)
    throw new CustosError({ code: 'cli.bad-number', message: `expected a positive integer, got '${v}'` });
  return n;
}
