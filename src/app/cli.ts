import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { TOKEN_DAYS_RULE, TOKEN_NAME_RULE, tokenDaysProblem, tokenName } from '../domain/api-token-rules.js';
import { CustosError } from '../domain/errors.js';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ROLES } from '../domain/principal.js';
import { loadConfig, type CustosConfig } from './config.js';
import type { CustosApp } from './custos-app.js';
import { addBreakGlassCommands } from './break-glass-command.js';

/**
 * `custos` command line. Thin: parses arguments, loads config, calls into the composition root. Output meant
 * for scripts (tokens) goes to stdout alone; everything else to stderr.
 */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  // Only as the first argument: commander's .version() would also take `policy show --version N` for itself.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    io.out(`${packageVersion()}\n`);
    return 0;
  }
  const program = new Command('custos')
    .description('Custos: a governance-first DICOM archive')
    .option('-c, --config <file>', 'config file (default: <data>/custos.json when present)')
    .option('-d, --data <dir>', 'data directory (default ./custos-data)')
    .addHelpText('after', '\nRun `custos --version` (or -V) to print the version of Custos.')
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
      'DICOM TLS port (needs dicom.tls.cert and dicom.tls.key, or CUSTOS_DICOM_TLS_CERT and CUSTOS_DICOM_TLS_KEY)',
      parsePort,
    )
    .option('--ae-title <title>', 'our AE title (default CUSTOS)')
    .option('--demo', 'seed synthetic patients, studies and one account per role (docs/console.md)')
    .action(
      async (opts: {
        demo?: boolean;
        data?: string;
        httpPort?: number;
        httpHost?: string;
        workers?: number;
        dicomPort?: number | 'off';
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
        if (opts.dicomPort !== undefined) dicom.port = opts.dicomPort === 'off' ? null : opts.dicomPort;
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
          { demo: opts.demo === true },
        );
      },
    );

  const ae = program.command('ae').description('DICOM application entities allowed to associate');
  ae.command('add')
    .description('register an AE: it may call from HOST, and C-MOVE sends to HOST:PORT')
    .argument('<title>', 'AE title')
    .requiredOption('--host <host>', 'host the AE calls from and listens on')
    .requiredOption('--port <port>', 'port the AE listens on', parseAePort)
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
          // The title as trimmed, not as typed (until 7 Dec 2026 ' MODALITY1 ' was said removed with its spaces).
          const removed = await app.aes.remove(systemPrincipal('cli'), title);
          io.err(`custos: AE ${removed} removed\n`);
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
    .option('--name <label>', `label to recognise the token by: ${TOKEN_NAME_RULE}`, parseTokenName)
    .option('--days <n>', `expire after N days, ${TOKEN_DAYS_RULE} (default: never)`, parseTokenDays)
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

  // docs/accounts.md: the operator's equivalents of the console's user administration (decided as 'administer').
  const userAction = (
    name: string,
    description: string,
    run: (app: CustosApp, username: string) => Promise<string | void>,
  ) =>
    user
      .command(name)
      .description(description)
      .argument('<name>', 'account name')
      .option('--data <dir>', 'data directory')
      .action(async (username: string, opts: { data?: string }) => {
        await withData(opts.data, async (app) => {
          const shown = await run(app, username);
          if (shown !== undefined) io.out(`${shown}\n`);
          io.err(`custos: ${name} ${username}: done\n`);
        });
      });
  userAction('deactivate', 'deactivate an account: its sessions and tokens end at once', async (app, u) => {
    await app.userAdmin.change(await operator(), u, { active: false });
  });
  userAction('activate', 'activate a deactivated account', async (app, u) => {
    await app.userAdmin.change(await operator(), u, { active: true });
  });
  userAction('reset-mfa', "remove an account's TOTP second factor (it enrols again)", async (app, u) => {
    await app.userAdmin.resetMfa(await operator(), u);
  });
  userAction('unlock', 'unlock an account locked after failed sign-ins', async (app, u) => {
    await app.userAdmin.unlock(await operator(), u);
  });
  userAction(
    'reset-password',
    'set and print a new one-time password (shown once); ends every session and token of the account',
    async (app, u) => (await app.userAdmin.resetPassword(await operator(), u)).password,
  );

  program
    .command('grant')
    .description('grant one account read access to one study until it expires (restricted studies, students)')
    .requiredOption('--user <name>', 'account name')
    .requiredOption('--study <uid>', 'Study Instance UID')
    .requiredOption('--reason <text>', 'why (recorded in the audit ledger)')
    .option('--days <n>', 'expire after N days (default 7)', parseDays)
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

  const audit = program.command('audit').description('the audit ledger: verify, search, disclosures, export');
  const cliPrincipal = async () => {
    const { systemPrincipal } = await import('../services/auth-service.js');
    const { userInfo } = await import('node:os');
    return systemPrincipal(`cli:${userInfo().username}`);
  };
  audit
    .command('verify')
    .description(
      'recompute the hash chain, check the signed checkpoints; exit 1 and name the first bad seq if tampered',
    )
    .option('--data <dir>', 'data directory')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { data?: string; json?: boolean }) => {
      const { withApp } = await import('./custos-app.js');
      await withApp(
        config(opts.data ? { dataDir: opts.data } : {}),
        async (app) => {
          const started = Date.now();
          const report = await app.audit.verify(await cliPrincipal(), 'cli');
          const seconds = (Date.now() - started) / 1000;
          if (opts.json) io.out(`${JSON.stringify(report, null, 2)}\n`);
          else {
            io.out(
              report.ok
                ? `ledger OK: ${report.records} records, head ${report.head.hash.slice(0, 16)}…, ${report.checkpoints.verifiedAgainstChain} checkpoint matches (${report.checkpoints.database} in the database, ${report.checkpoints.external} external), ${seconds.toFixed(1)} s\n`
                : `ledger TAMPERED at seq ${report.problem!.seq} (${report.problem!.kind}): ${report.problem!.message}\n`,
            );
            for (const w of report.warnings) io.err(`warning: ${w}\n`);
          }
          if (!report.ok) exitCode = 1;
        },
        io.err,
      );
    });
  const withFilterOptions = (c: Command) =>
    c
      .option('--data <dir>', 'data directory')
      .option('--patient <id>', 'Patient ID')
      .option('--study <uid>', 'Study Instance UID')
      .option('--user <name>', 'account name or AE title that acted')
      .option('--action <list>', 'actions, comma-separated (e.g. view-pixels,query)')
      .option('--outcome <o>', 'success, denied or failure')
      .option('--since <time>', 'from this date or ISO time (inclusive)')
      .option('--until <time>', 'up to this date or ISO time (exclusive)');
  withFilterOptions(audit.command('search').description('search the ledger, newest first'))
    .option('--limit <n>', 'at most this many records (default 100, at most 10000)')
    .option('--before <seq>', 'records older than this seq (paging)')
    .option('--json', 'JSON lines instead of a table')
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const { withApp } = await import('./custos-app.js');
      const { parseAuditFilter } = await import('../transports/admin/audit-filter.js');
      const filter = parseAuditFilter(opts as Record<string, string | undefined>, {
        limit: 100,
        maxLimit: 10_000,
      });
      await withApp(
        config(typeof opts.data === 'string' ? { dataDir: opts.data } : {}),
        async (app) => {
          const records = await app.audit.search(await cliPrincipal(), filter, 'cli');
          for (const r of records) {
            io.out(
              opts.json
                ? `${JSON.stringify(r)}\n`
                : `${String(r.seq).padStart(8)}  ${r.ts}  ${r.actor.name.padEnd(16)} ${r.action.padEnd(14)} ${r.outcome.padEnd(8)} ${r.patientId ?? ''} ${r.studyUid ?? ''}\n`,
            );
          }
          if (!opts.json) io.err(`${records.length} records\n`);
        },
        io.err,
      );
    });
  audit
    .command('disclosures')
    .description("accounting of disclosures: everyone who accessed one patient's studies")
    .requiredOption('--patient <id>', 'Patient ID')
    .option('--data <dir>', 'data directory')
    .option('--since <time>', 'from this date or ISO time')
    .option('--until <time>', 'up to this date or ISO time (exclusive)')
    .option('--json', 'print JSON')
    .action(
      async (opts: { patient: string; data?: string; since?: string; until?: string; json?: boolean }) => {
        const { withApp } = await import('./custos-app.js');
        const { parseInstant } = await import('../transports/admin/audit-filter.js');
        const range = {
          ...(opts.since ? { since: parseInstant('since', opts.since) } : {}),
          ...(opts.until ? { until: parseInstant('until', opts.until) } : {}),
        };
        await withApp(
          config(opts.data ? { dataDir: opts.data } : {}),
          async (app) => {
            const result = await app.audit.disclosures(await cliPrincipal(), opts.patient, range, 'cli');
            if (opts.json) io.out(`${JSON.stringify(result, null, 2)}\n`);
            else {
              io.out(
                `Disclosures of patient ${result.patientId}: ${result.disclosures.length} people, ${result.records} accesses\n`,
              );
              for (const d of result.disclosures)
                io.out(
                  `  ${d.actor} (${d.role})${d.breakGlass ? ' BREAK-GLASS' : ''}: ${d.count}× ${d.actions.join(', ')}, ${d.first} … ${d.last}, from ${d.sources.join(', ')}\n`,
                );
            }
          },
          io.err,
        );
      },
    );
  withFilterOptions(audit.command('export').description('export records oldest first to stdout'))
    .option(
      '--format <f>',
      'jsonl (records as stored), dicom (PS3.15 A.5 XML, one per line), fhir (AuditEvent NDJSON) or csv',
      'jsonl',
    )
    .action(async (opts: Record<string, string | undefined>) => {
      const { withApp } = await import('./custos-app.js');
      const { parseAuditFilter } = await import('../transports/admin/audit-filter.js');
      const { exportRecords, AUDIT_EXPORT_FORMATS } = await import('../services/audit-export.js');
      const {
        limit: _l,
        order: _o,
        beforeSeq: _b,
        ...filter
      } = parseAuditFilter(opts, { limit: 1, maxLimit: 1 });
      const format = opts.format ?? 'jsonl';
      if (format !== 'jsonl' && !(AUDIT_EXPORT_FORMATS as readonly string[]).includes(format))
        throw new CustosError({
          code: 'cli.bad-format',
          message: `--format must be jsonl, ${AUDIT_EXPORT_FORMATS.join(' or ')}, got '${format}'`,
        });
      await withApp(
        config(opts.data ? { dataDir: opts.data } : {}),
        async (app) => {
          const records = app.audit.export(await cliPrincipal(), filter, format, 'cli');
          if (format === 'jsonl') for await (const r of records) io.out(`${JSON.stringify(r)}\n`);
          else
            for await (const line of exportRecords(records, format as 'dicom' | 'fhir' | 'csv', {
              auditSourceId: app.config.nodeName,
            }))
              io.out(line);
        },
        io.err,
      );
    });
  audit
    .command('checkpoint')
    .description('verify what is new and sign the ledger head now (a running server does this periodically)')
    .option('--data <dir>', 'data directory')
    .action(async (opts: { data?: string }) => {
      const { withApp } = await import('./custos-app.js');
      await withApp(
        config(opts.data ? { dataDir: opts.data } : {}),
        async (app) => {
          const c = await app.audit.checkpoint();
          io.out(
            c
              ? `signed checkpoint at seq ${c.seq} (${c.hash.slice(0, 16)}…), key ${c.keyId}\n`
              : 'nothing new to sign\n',
          );
        },
        io.err,
      );
    });

  const quarantine = program
    .command('quarantine')
    .description("the data steward's quarantine: list, show, correct, release, reject (docs/validation.md)");
  // The quarantine is worked by a named data steward, never by an anonymous operator: the account must exist,
  // be active, and its role is what the policy decision point sees.
  const actingAs = (app: CustosApp, account: string) => app.auth.localPrincipal(account, 'cli');
  const withQuarantine = async (data: string | undefined, fn: (app: CustosApp) => Promise<void>) => {
    const { withApp } = await import('./custos-app.js');
    await withApp(config(data ? { dataDir: data } : {}), fn, io.err);
  };
  quarantine
    .command('list')
    .requiredOption('--as <account>', 'the data steward account acting (recorded in the ledger)')
    .description('objects in quarantine, newest first')
    .option('--data <dir>', 'data directory')
    .option('--status <s>', 'quarantined, released or rejected', 'quarantined')
    .option('--limit <n>', 'at most this many (default 50)', parsePositive)
    .option('--offset <n>', 'skip this many (paging)')
    .option('--json', 'JSON instead of a table')
    .action(
      async (opts: {
        data?: string;
        status: string;
        limit?: number;
        offset?: string;
        json?: boolean;
        as: string;
      }) => {
        if (!['quarantined', 'released', 'rejected'].includes(opts.status))
          throw new CustosError({
            code: 'cli.bad-status',
            message: `--status must be quarantined, released or rejected, got '${opts.status}'`,
          });
        const offset = opts.offset === undefined ? 0 : Number(opts.offset);
        if (!Number.isInteger(offset) || offset < 0)
          throw new CustosError({
            code: 'cli.bad-number',
            message: `--offset must be a non-negative integer`,
          });
        await withQuarantine(opts.data, async (app) => {
          const { entries, total } = await app.quarantine.list(await actingAs(app, opts.as), {
            status: opts.status as 'quarantined' | 'released' | 'rejected',
            limit: opts.limit ?? 50,
            offset,
          });
          if (opts.json) io.out(`${JSON.stringify({ entries, total })}\n`);
          else {
            for (const e of entries)
              io.out(
                `${e.id}  ${e.createdAt}  ${e.status.padEnd(11)} ${e.sender.padEnd(16)} ${e.reasons.join('; ')}\n`,
              );
            io.err(`${entries.length} of ${total} ${opts.status}\n`);
          }
        });
      },
    );
  quarantine
    .command('show')
    .requiredOption('--as <account>', 'the data steward account acting (recorded in the ledger)')
    .description('defects, corrections and header (DICOM JSON) of one quarantined object')
    .argument('<id>', 'quarantine id')
    .option('--data <dir>', 'data directory')
    .action(async (id: string, opts: { data?: string; as: string }) => {
      await withQuarantine(opts.data, async (app) => {
        io.out(`${JSON.stringify(await app.quarantine.show(await actingAs(app, opts.as), id), null, 2)}\n`);
      });
    });
  quarantine
    .command('correct')
    .requiredOption('--as <account>', 'the data steward account acting (recorded in the ledger)')
    .description(
      "correct header attributes: TAG=VALUE … (TAG as '(0010,0020)', 00100020 or PatientID; values separated by backslash)",
    )
    .argument('<id>', 'quarantine id')
    .argument('<changes...>', 'TAG=VALUE pairs')
    .option('--data <dir>', 'data directory')
    .action(async (id: string, changes: string[], opts: { data?: string; as: string }) => {
      const input: Record<string, string[]> = {};
      for (const c of changes) {
        const eq = c.indexOf('=');
        if (eq <= 0)
          throw new CustosError({ code: 'cli.bad-correction', message: `'${c}' is not TAG=VALUE` });
        input[c.slice(0, eq)] = c.slice(eq + 1).split('\\');
      }
      await withQuarantine(opts.data, async (app) => {
        const d = await app.quarantine.correct(await actingAs(app, opts.as), id, input);
        const { correctionLabel } = await import('../services/quarantine-service.js');
        for (const [hex, values] of Object.entries(d.corrections))
          io.out(`${correctionLabel(hex)} = ${values.join('\\')}\n`);
      });
    });
  quarantine
    .command('release')
    .requiredOption('--as <account>', 'the data steward account acting (recorded in the ledger)')
    .description(
      're-validate with the corrections and release into the archive (exit 1, nothing released, if still invalid or its stored bytes are damaged)',
    )
    .argument('<id>', 'quarantine id')
    .option('--data <dir>', 'data directory')
    .action(async (id: string, opts: { data?: string; as: string }) => {
      await withQuarantine(opts.data, async (app) => {
        try {
          const r = await app.quarantine.release(await actingAs(app, opts.as), id);
          io.out(`released ${r.sopInstanceUid} into study ${r.studyUid}\n`);
          for (const w of r.warnings) io.err(`warning: ${w}\n`);
        } catch (err) {
          // Both are refusals of the release (exit 1), not failures of the command (exit 2); until 7 Dec 2026 an
          // entry whose stored bytes are damaged exited 2, as a general error.
          const refused = ['quarantine.still-invalid', 'object.corrupt'];
          if (!(err instanceof CustosError && refused.includes(err.code))) throw err;
          io.err(`custos: ${err.message}\n`);
          exitCode = 1;
        }
      });
    });
  quarantine
    .command('reject')
    .requiredOption('--as <account>', 'the data steward account acting (recorded in the ledger)')
    .description('reject an object for good; its bytes stay encrypted, marked rejected')
    .argument('<id>', 'quarantine id')
    .requiredOption('--reason <text>', 'why (recorded in the ledger)')
    .option('--data <dir>', 'data directory')
    .action(async (id: string, opts: { data?: string; reason: string; as: string }) => {
      await withQuarantine(opts.data, async (app) => {
        const r = await app.quarantine.reject(await actingAs(app, opts.as), id, opts.reason);
        io.out(`rejected ${r.sopInstanceUid}: ${opts.reason}\n`);
      });
    });

  addBreakGlassCommands(program, config, io);

  const fixity = program
    .command('fixity')
    .description('re-verify stored objects against their checksums and authentication tags');
  fixity
    .command('run')
    .description('check every stored object now (exit 1 if any is corrupt)')
    .option('--data <dir>', 'data directory')
    .option('--rate <MBps>', 'read at most this many MB per second (default: unlimited)', parsePositive)
    .option('--no-progress', 'no progress bar')
    .action(async (opts: { data?: string; rate?: number; progress: boolean }) => {
      const { runFixity } = await import('./fixity-command.js');
      exitCode = await runFixity(config(opts.data ? { dataDir: opts.data } : {}), io, {
        progress: opts.progress,
        ...(opts.rate ? { bytesPerSecond: opts.rate * 1_000_000 } : {}),
      });
    });
  fixity
    .command('orphans')
    .description('list blobs that no stored instance refers to (left by a crash); --remove deletes them')
    .option('--data <dir>', 'data directory')
    .option('--remove', 'delete the orphans found')
    .option('--min-age-hours <n>', 'count only blobs written at least this many hours ago', parseCount, 24)
    .action(async (opts: { data?: string; remove?: boolean; minAgeHours: number }) => {
      const { runOrphans } = await import('./fixity-command.js');
      exitCode = await runOrphans(config(opts.data ? { dataDir: opts.data } : {}), io, {
        remove: !!opts.remove,
        minAgeHours: opts.minAgeHours,
      });
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    // Output cut short is not a success, whatever the command found (a script with pipefail must see it).
    return exitCode === 0 && io.outputClosed?.() ? 1 : exitCode;
  } catch (err) {
    if (err instanceof OutputClosedError) return 1;
    // A usage error (unknown command or option, a missing or invalid argument) is 2, as docs/cli.md says;
    // commander's own 1 was the status of policy validate's findings. --help and --version stay 0.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof CustosError) {
      io.err(`custos: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

/** The version in package.json, two levels above both src/app/cli.ts and the compiled dist/app/cli.js. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export interface CliIO {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopSignal(): Promise<string>;
  /** Calls `reload` each time the process is asked to reload (SIGHUP); returns the function that stops it. */
  onReload?(reload: () => void): () => void;
  isTTY: boolean;
  /** True once the reader of stdout has gone (EPIPE): what was written is incomplete. */
  outputClosed?(): boolean;
}

/**
 * Thrown by `out` once stdout's reader has gone (`custos audit export | head`), so that the command stops reading
 * the archive for nobody. Until 7 Dec 2026 the write failed with Node's unhandled 'error' event and a stack trace.
 */
class OutputClosedError extends Error {}

let stdoutClosed = false;
let stdoutWatched = false;

function onStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') throw err;
  if (stdoutClosed) return;
  stdoutClosed = true;
  process.stderr.write(
    'custos: the output was closed before all of it was written (EPIPE); what went out is incomplete\n',
  );
  process.exitCode = 1;
}

function writeOut(s: string): void {
  if (!stdoutWatched) {
    stdoutWatched = true;
    process.stdout.on('error', onStdoutError);
  }
  // A failed write destroys the stream at once; its 'error' event comes later, on the next tick.
  if (stdoutClosed || process.stdout.destroyed) throw new OutputClosedError('stdout was closed');
  process.stdout.write(s);
}

const processIO: CliIO = {
  out: writeOut,
  outputClosed: () => stdoutClosed || process.stdout.destroyed,
  err: (s) => void process.stderr.write(s),
  env: process.env,
  cwd: process.cwd(),
  stopSignal: () =>
    new Promise((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    }),
  onReload: (reload) => {
    process.on('SIGHUP', reload);
    return () => void process.off('SIGHUP', reload);
  },
  isTTY: !!process.stderr.isTTY,
};

/** Option parsers throw commander's InvalidArgumentError, which names the option the value was given to. */
function parsePort(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError('a port is a number from 0 to 65535.');
  return n;
}

/**
 * The port an AE listens on: 1 to 65535 (0 is no port to call). Until 6 Dec 2026 the message said "from 0", and the
 * registry then refused the 0 it allowed.
 */
function parseAePort(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535)
    throw new InvalidArgumentError('a port is a number from 1 to 65535.');
  return n;
}

/** 'off' stays a string: commander turns a parser's null into ''. The action maps it to null. */
function parsePortOrOff(v: string): number | 'off' {
  if (v === 'off') return 'off';
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535)
    throw new InvalidArgumentError("a port is a number from 0 to 65535, or 'off'.");
  return n;
}

/** A validity in days: 1 to 36,500 (a hundred years; beyond, the date cannot be written). */
function parseDays(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 36_500)
    throw new InvalidArgumentError('expected a number of days from 1 to 36500.');
  return n;
}

/** The same rules as the HTTP API's token requests (src/domain/api-token-rules.ts). */
function parseTokenDays(v: string): number {
  const problem = /^\d+$/.test(v) ? tokenDaysProblem(Number(v)) : `expected ${TOKEN_DAYS_RULE}`;
  if (problem) throw new InvalidArgumentError(`${problem}.`);
  return Number(v);
}

function parseTokenName(v: string): string {
  const named = tokenName(v);
  if ('problem' in named) throw new InvalidArgumentError(`${named.problem}.`);
  return named.name;
}

function parseCount(v: string): number {
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)))
    throw new InvalidArgumentError('expected a whole number.');
  return Number(v);
}

function parsePositive(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected a positive whole number.');
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
