import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base32Decode, totp } from '../src/domain/totp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as cliMain, type CliIO } from '../src/app/cli.js';
import { backends, cliDatabases, postgresUrl } from './support/backends.js';
import { captureIO as io } from './support/cli-io.js';
import { dcmtk } from './support/dcmtk.js';
import { execFile, execFileSync } from 'node:child_process';
import { makeInstance, uid } from './support/fixtures.js';

/** A shell command (deep trees, which Node's fs cannot make or remove past PATH_MAX). */
const shell = (script: string) =>
  new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile('bash', ['-c', script], (err, _out, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    ),
  );

/** The JSON line `custos import` prints, every count not given being 0. */
const importSummary = (
  counts: Partial<
    Record<'stored' | 'unchanged' | 'quarantined' | 'conflicts' | 'skipped' | 'failed', number>
  >,
) => ({
  stored: 0,
  unchanged: 0,
  quarantined: 0,
  conflicts: 0,
  skipped: 0,
  failed: 0,
  ...counts,
});

describe.each(backends())('custos CLI (%s)', (backend) => {
  let cwd: string;
  // Each data directory the commands name (--data) gets its own index: on PostgreSQL a schema of its own.
  const databases = cliDatabases(backend);
  const main = (args: string[], o: CliIO) => {
    const at = args.indexOf('--data');
    const data = at >= 0 ? args[at + 1] : undefined;
    return cliMain(args, { ...o, env: { ...o.env, ...(data ? databases.env(data) : {}) } });
  };
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'custos-cli-'));
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
    await databases.drop();
  });

  it('serve initialises the data directory once: keyfile 0600, one-time password printed once, then listens', async () => {
    let stop!: (s: string) => void;
    const stopped = new Promise<string>((r) => (stop = r));
    const first = io(cwd, stopped);
    const running = main(
      ['serve', '--data', 'd1', '--http-port', '0', '--http-host', '127.0.0.1', '--dicom-port', '0'],
      first,
    );
    for (let i = 0; i < 200 && !first.stdout.includes('listening on'); i++)
      await new Promise((r) => setTimeout(r, 50));
    const m = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(first.stdout);
    expect(m, first.stdout + first.stderr).not.toBeNull();
    // Loopback only, as given: the line claims no other address.
    expect(first.stdout).toContain(`custos: listening on ${m![1]} (DICOMweb at ${m![1]}/dicom-web)\n`);
    // `npm run build` built the native helper (src/app/memory-return.ts), and the server started its thread.
    expect(first.stdout).toContain(
      'custos: freed memory is returned to the system when work ends, and every 30 s or 64 MiB of growth while it goes on',
    );
    const password = /one-time password:\s+(\S+)/.exec(first.stdout)![1]!;
    expect(password.length).toBeGreaterThanOrEqual(16);
    const login = await fetch(`${m![1]}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password }),
    });
    expect(login.status).toBe(200);
    const signedIn = (await login.json()) as {
      token: string;
      mustChangePassword: boolean;
      mfaRequired: boolean;
    };
    expect(signedIn).toMatchObject({ mustChangePassword: true, mfaRequired: true });
    const headers = { Authorization: `Bearer ${signedIn.token}`, 'Content-Type': 'application/json' };
    const studies = () => fetch(`${m![1]}/dicom-web/studies`, { headers }).then((r) => r.status);
    // The one-time password must be changed, and the administrator must enrol TOTP, before anything else.
    expect(await studies()).toBe(403);
    const changed = await fetch(`${m![1]}/api/auth/password`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ currentPassword: password, newPassword: 'heron-basalt-82-lumen' }),
    });
    expect(changed.status).toBe(204);
    expect(await studies()).toBe(403);
    const enrol = (await (
      await fetch(`${m![1]}/api/auth/mfa/enroll`, { method: 'POST', headers })
    ).json()) as {
      secret: string;
    };
    const confirmed = await fetch(`${m![1]}/api/auth/mfa/confirm`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ code: totp(base32Decode(enrol.secret), new Date()) }),
    });
    expect(confirmed.status).toBe(200);
    expect(await studies()).toBe(200);
    stop('SIGTERM');
    expect(await running).toBe(0);
    const keyMode = (await stat(join(cwd, 'd1', 'keys', 'kek.json'))).mode & 0o777;
    expect(keyMode).toBe(0o600);
    // The one-time password is nowhere in the index (its file on SQLite, a dump of its schema on PostgreSQL).
    const index =
      backend === 'sqlite'
        ? await readFile(join(cwd, 'd1', 'index.sqlite'))
        : execFileSync('pg_dump', ['--schema', databases.env('d1').CUSTOS_DATABASE_SCHEMA!, postgresUrl!]);
    expect(index.length).toBeGreaterThan(10_000);
    expect(index.includes(Buffer.from(password))).toBe(false);

    const tokenIo = io(cwd);
    expect(await main(['token', 'create', '--user', 'admin', '--data', 'd1'], tokenIo)).toBe(0);
    expect(tokenIo.stdout).toMatch(/^cst_[A-Za-z0-9_-]{40,}\n$/);
    expect(tokenIo.stderr).not.toMatch(/one-time password/);
  });

  it('token create names an unknown account', async () => {
    const o = io(cwd);
    expect(await main(['token', 'create', '--user', 'nobody', '--data', 'd1'], o)).toBe(2);
    expect(o.stderr).toMatch(/no active account named 'nobody'/);
  });

  it('ae add, list and remove manage the AE registry; a certificate is stored as its SHA-256', async () => {
    const { execFileSync } = await import('node:child_process');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=ws',
        '-keyout',
        'ws.key',
        '-out',
        'ws.crt',
      ],
      { cwd, stdio: 'ignore' },
    );
    const fp = execFileSync('openssl', ['x509', '-in', 'ws.crt', '-noout', '-fingerprint', '-sha256'], {
      cwd,
      encoding: 'utf8',
    })
      .split('=')[1]!
      .trim()
      .replace(/:/g, '')
      .toLowerCase();
    const add = io(cwd);
    expect(
      await main(
        ['ae', 'add', 'CT1', '--host', '10.1.2.3', '--port', '104', '--user', 'admin', '--data', 'd1'],
        add,
      ),
    ).toBe(0);
    expect(
      await main(
        ['ae', 'add', 'WS7', '--host', 'localhost', '--port', '11112', '--cert', 'ws.crt', '--data', 'd1'],
        io(cwd),
      ),
    ).toBe(0);
    const dup = io(cwd);
    expect(await main(['ae', 'add', 'CT1', '--host', '10.1.2.3', '--port', '104', '--data', 'd1'], dup)).toBe(
      2,
    );
    expect(dup.stderr).toMatch(/already registered/);
    const bad = io(cwd);
    expect(
      await main(['ae', 'add', 'WAY_TOO_LONG_AE_TITLE', '--host', 'h', '--port', '1', '--data', 'd1'], bad),
    ).toBe(2);
    expect(bad.stderr).toMatch(/1-16 printable ASCII/);
    const list = io(cwd);
    expect(await main(['ae', 'list', '--data', 'd1'], list)).toBe(0);
    expect(list.stdout).toBe(`CT1\t10.1.2.3\t104\tadmin\t-\nWS7\tlocalhost\t11112\t-\t${fp}\n`);
    // A title is trimmed alike when added and when removed (until 6 Dec 2026 ' PADDED ' was added as 'PADDED' and
    // then not found to remove); a host is a name (RFC 1123) or an address, nothing else.
    expect(
      await main(
        ['ae', 'add', ' PADDED ', '--host', 'pacs-1.example.org', '--port', '104', '--data', 'd1'],
        io(cwd),
      ),
    ).toBe(0);
    const padded = io(cwd);
    expect(await main(['ae', 'remove', ' PADDED ', '--data', 'd1'], padded)).toBe(0);
    // It says the title removed, as registered (until 7 Dec 2026 as typed: 'custos: AE  PADDED  removed').
    expect(padded.stderr).toBe('custos: AE PADDED removed\n');
    for (const host of ['h\u0000x', 'a/b?c#d', '-oProxyCommand=x', '999.1.1.1']) {
      const refused = io(cwd);
      expect(
        await main(['ae', 'add', 'BADHOST', '--host', host, '--port', '104', '--data', 'd1'], refused),
      ).toBe(2);
      expect(refused.stderr).toMatch(/must be a host name \(RFC 1123\) or an IPv4 or IPv6 address/);
    }
    expect(await main(['ae', 'remove', 'CT1', '--data', 'd1'], io(cwd))).toBe(0);
    const gone = io(cwd);
    expect(await main(['ae', 'remove', 'CT1', '--data', 'd1'], gone)).toBe(2);
    expect(gone.stderr).toMatch(/no application entity with the title 'CT1'/);
    const after = io(cwd);
    await main(['ae', 'list', '--data', 'd1'], after);
    expect(after.stdout).toBe(`WS7\tlocalhost\t11112\t-\t${fp}\n`);
  });

  it('serve --dicom-port off starts without the plain DIMSE listener, and a bad port is named', async () => {
    let stop!: (s: string) => void;
    const stopped = new Promise<string>((r) => (stop = r));
    const o = io(cwd, stopped);
    const running = main(
      ['serve', '--data', 'd-off', '--http-port', '0', '--http-host', '127.0.0.1', '--dicom-port', 'off'],
      o,
    );
    for (let i = 0; i < 200 && !o.stdout.includes('DICOM'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(o.stdout, o.stderr).toContain('custos: DICOM listeners off');
    stop('SIGTERM');
    expect(await running).toBe(0);
    const bad = io(cwd);
    expect(await main(['serve', '--data', 'd-off', '--dicom-port', 'of'], bad)).toBe(2);
    expect(bad.stderr).toMatch(
      /option '--dicom-port <port>' argument 'of' is invalid\. a port is a number from 0 to 65535, or 'off'/,
    );
  });

  it('CUSTOS_HL7_PORT=off switches off the MLLP listener the config file turns on, and a bad value is named', async () => {
    // Until 7 Dec 2026 'off' was refused as not an integer, though CUSTOS_DICOM_PORT=off worked.
    const spare = createServer();
    await new Promise<void>((r) => spare.listen(0, '127.0.0.1', r));
    const hl7Port = (spare.address() as AddressInfo).port;
    await new Promise<void>((r) => spare.close(() => r()));
    await mkdir(join(cwd, 'd-hl7off'), { recursive: true });
    await writeFile(
      join(cwd, 'd-hl7off', 'custos.json'),
      JSON.stringify({ hl7: { port: hl7Port, host: '127.0.0.1', senders: ['ADT1^HOSP'] } }),
    );
    const args = ['serve', '--data', 'd-hl7off', '--http-port', '0', '--http-host', '127.0.0.1'];
    let stop!: (s: string) => void;
    const stopped = new Promise<string>((r) => (stop = r));
    const o = io(cwd, stopped);
    o.env = { CUSTOS_HL7_PORT: 'off' };
    const running = main([...args, '--dicom-port', 'off'], o);
    for (let i = 0; i < 200 && !o.stdout.includes('DICOM'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(o.stdout, o.stderr).toContain('custos: DICOM listeners off');
    expect(o.stdout).not.toContain('HL7');
    const refused = await new Promise<string | undefined>((r) => {
      const s = createConnection(hl7Port, '127.0.0.1', () => (s.destroy(), r(undefined)));
      s.on('error', (err: NodeJS.ErrnoException) => r(err.code));
    });
    expect(refused).toBe('ECONNREFUSED');
    stop('SIGTERM');
    expect(await running).toBe(0);
    const bad = io(cwd);
    bad.env = { CUSTOS_HL7_PORT: 'of' };
    expect(await main([...args, '--dicom-port', 'off'], bad)).toBe(2);
    expect(bad.stderr).toBe(
      "custos: configuration CUSTOS_HL7_PORT: must be a port number or 'off', got 'of'\n",
    );
  });

  it('serve on the default http.host 0.0.0.0 says it listens on every address, with a URL that answers', async () => {
    let stop!: (s: string) => void;
    const stopped = new Promise<string>((r) => (stop = r));
    const o = io(cwd, stopped);
    const running = main(['serve', '--data', 'd-all', '--http-port', '0', '--dicom-port', 'off'], o);
    for (let i = 0; i < 200 && !o.stdout.includes('listening on'); i++)
      await new Promise((r) => setTimeout(r, 50));
    // Until 6 Dec 2026 'listening on http://127.0.0.1:PORT (DICOMweb at …)' alone: loopback only, as it read.
    const m =
      /custos: listening on (http:\/\/127\.0\.0\.1:\d+) and on every other address of this machine \(http\.host 0\.0\.0\.0; DICOMweb at (\S+)\)\n/.exec(
        o.stdout,
      );
    expect(m, o.stdout + o.stderr).not.toBeNull();
    expect(m![2]).toBe(`${m![1]}/dicom-web`);
    expect((await fetch(`${m![1]}/dicom-web/studies`)).status).toBe(401);
    stop('SIGTERM');
    expect(await running).toBe(0);
  });

  it('serve on an IPv6 address prints a URL with the address in brackets, and the URL answers', async () => {
    let stop!: (s: string) => void;
    const stopped = new Promise<string>((r) => (stop = r));
    const o = io(cwd, stopped);
    const running = main(
      ['serve', '--data', 'd-v6', '--http-port', '0', '--http-host', '::1', '--dicom-port', 'off'],
      o,
    );
    for (let i = 0; i < 200 && !o.stdout.includes('listening on'); i++)
      await new Promise((r) => setTimeout(r, 50));
    // RFC 3986 §3.2.2; until 6 Dec 2026 'http://::1:PORT', which no client can parse as meant.
    const m = /listening on (http:\/\/\[::1\]:\d+) \(DICOMweb at (\S+)\)/.exec(o.stdout);
    expect(m, o.stdout + o.stderr).not.toBeNull();
    expect(m![2]).toBe(`${m![1]}/dicom-web`);
    expect((await fetch(`${m![1]}/dicom-web/studies`)).status).toBe(401);
    stop('SIGTERM');
    expect(await running).toBe(0);
  });

  it('serve names the service and the setting when its port is taken or its address is not this machine', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = String((taken.address() as AddressInfo).port);
    try {
      const http = io(cwd);
      const args = ['serve', '--data', 'd-busy', '--http-host', '127.0.0.1', '--dicom-host', '127.0.0.1'];
      expect(await main([...args, '--http-port', port, '--dicom-port', '0'], http)).not.toBe(0);
      expect(http.stderr).toContain(
        `custos: HTTP cannot listen on 127.0.0.1:${port}: another process already listens there; choose another port with http.port (--http-port)`,
      );
      const dicom = io(cwd);
      expect(await main([...args, '--http-port', '0', '--dicom-port', port], dicom)).not.toBe(0);
      expect(dicom.stderr).toContain(`custos: DICOM cannot listen on 127.0.0.1:${port}: another process`);
    } finally {
      await new Promise((r) => taken.close(r));
    }
    // An address that is not this machine's (192.0.2.0/24 is for documentation, RFC 5737): until 5 Dec 2026 Node's
    // "listen EADDRNOTAVAIL: address not available" alone.
    const elsewhere = io(cwd);
    const args = [
      'serve',
      '--data',
      'd-busy',
      '--http-port',
      '0',
      '--dicom-port',
      '0',
      '--dicom-host',
      '127.0.0.1',
    ];
    expect(await main([...args, '--http-host', '192.0.2.7'], elsewhere)).not.toBe(0);
    expect(elsewhere.stderr).toContain(
      'custos: HTTP cannot listen on 192.0.2.7: not an address of this machine; choose one of its addresses (or 0.0.0.0 for all) with http.host (--http-host)',
    );
  });

  it('serve on a taken port fails before it sets up a new data directory, so the next start shows the password', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = String((taken.address() as AddressInfo).port);
    const args = ['serve', '--data', 'd-first-busy', '--http-host', '127.0.0.1', '--dicom-host', '127.0.0.1'];
    try {
      for (const ports of [
        ['--http-port', port, '--dicom-port', '0'],
        ['--http-port', '0', '--dicom-port', port],
      ]) {
        const failed = io(cwd);
        expect(await main([...args, ...ports], failed)).not.toBe(0);
        expect(failed.stderr).toContain(
          `cannot listen on 127.0.0.1:${port}: another process already listens there`,
        );
        // Until 7 Dec 2026 the directory was set up and its one-time password printed before the failure.
        expect(failed.stdout).not.toContain('one-time password');
        await expect(stat(join(cwd, 'd-first-busy', 'archive-id'))).rejects.toThrow();
      }
    } finally {
      await new Promise((r) => taken.close(r));
    }
    let stop!: (s: string) => void;
    const stopped = new Promise<string>((r) => (stop = r));
    const started = io(cwd, stopped);
    const running = main([...args, '--http-port', '0', '--dicom-port', 'off'], started);
    for (let i = 0; i < 200 && !started.stdout.includes('listening on'); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(started.stdout).toMatch(/one-time password: +\S+/);
    stop('SIGTERM');
    expect(await running).toBe(0);
  });

  it('serve names the service and the setting when its host name does not resolve, with exit status 2', async () => {
    // Until 6 Dec 2026 Node's "getaddrinfo ENOTFOUND no such host" alone, with exit status 1.
    const base = ['serve', '--data', 'd-nohost', '--http-port', '0', '--dicom-port', '0'];
    const http = io(cwd);
    expect(await main([...base, '--http-host', 'no such host', '--dicom-host', '127.0.0.1'], http)).toBe(2);
    expect(http.stderr).toMatch(
      /^custos: HTTP cannot listen on 'no such host': the host name does not resolve \((ENOTFOUND|EAI_AGAIN|EAI_NONAME)\); .* with http\.host \(--http-host\)\n$/,
    );
    const dicom = io(cwd);
    expect(await main([...base, '--http-host', '127.0.0.1', '--dicom-host', 'no such host'], dicom)).toBe(2);
    expect(dicom.stderr).toMatch(
      /custos: DICOM cannot listen on 'no such host'.*: the host name does not resolve .* with dicom\.host \(--dicom-host\)/,
    );
    const hl7 = io(cwd);
    hl7.env = { CUSTOS_HL7_PORT: '0', CUSTOS_HL7_HOST: 'no such host' };
    expect(await main([...base, '--http-host', '127.0.0.1', '--dicom-host', '127.0.0.1'], hl7)).toBe(2);
    expect(hl7.stderr).toMatch(
      /custos: HL7 \(MLLP\) cannot listen on 'no such host'.*: the host name does not resolve .* with hl7\.host/,
    );
  });

  it('refuses one port for two listeners naming both settings, before the archive is initialised', async () => {
    // Until 6 Dec 2026 the archive was made and its one-time password printed, then DICOM found its port taken.
    const o = io(cwd);
    const args = ['serve', '--data', 'd-clash', '--http-port', '18080', '--dicom-port', '18080'];
    expect(await main(args, o)).toBe(2);
    expect(o.stderr).toBe(
      'custos: configuration dicom.port: port 18080 is also http.port (hosts 0.0.0.0 and 0.0.0.0 overlap); give each listener a port of its own\n',
    );
    expect(o.stdout).toBe('');
    await expect(stat(join(cwd, 'd-clash'))).rejects.toMatchObject({ code: 'ENOENT' });
    const hl7 = io(cwd);
    hl7.env = { CUSTOS_HL7_PORT: '18081' };
    expect(await main(['serve', '--data', 'd-clash', '--http-port', '18081'], hl7)).toBe(2);
    expect(hl7.stderr).toMatch(/configuration hl7\.port: port 18081 is also http\.port/);
    await expect(stat(join(cwd, 'd-clash'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a TLS port without certificate and key naming the settings that give them, before the archive is initialised', async () => {
    // Until 7 Dec 2026 'configuration dicom.tls.cert: Required' alone.
    const dicom = io(cwd);
    const args = ['serve', '--data', 'd-nocert', '--http-port', '0', '--dicom-port', 'off'];
    expect(await main([...args, '--dicom-tls-port', '0'], dicom)).toBe(2);
    expect(dicom.stderr).toBe(
      'custos: configuration dicom.tls.cert: is required with dicom.tls.port (--dicom-tls-port, CUSTOS_DICOM_TLS_PORT): name the PEM server certificate (chain) and its private key with dicom.tls.cert and dicom.tls.key in the config file, or CUSTOS_DICOM_TLS_CERT and CUSTOS_DICOM_TLS_KEY\n',
    );
    expect(dicom.stdout).toBe('');
    const hl7 = io(cwd);
    hl7.env = { CUSTOS_HL7_TLS_PORT: '0', CUSTOS_HL7_TLS_CERT: 'hl7.crt' };
    expect(await main(args, hl7)).toBe(2);
    expect(hl7.stderr).toBe(
      'custos: configuration hl7.tls.key: is required with hl7.tls.port (CUSTOS_HL7_TLS_PORT): name the PEM server certificate (chain) and its private key with hl7.tls.cert and hl7.tls.key in the config file, or CUSTOS_HL7_TLS_CERT and CUSTOS_HL7_TLS_KEY\n',
    );
    const http = io(cwd);
    http.env = { CUSTOS_HTTP_TLS_KEY: 'https.key' };
    expect(await main(args, http)).toBe(2);
    expect(http.stderr).toBe(
      'custos: configuration http.tls.cert: is required for HTTPS: name the PEM server certificate (chain) and its private key with http.tls.cert and http.tls.key in the config file, or CUSTOS_HTTP_TLS_CERT and CUSTOS_HTTP_TLS_KEY\n',
    );
    await expect(stat(join(cwd, 'd-nocert'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a data directory that is a file, or lies below one, naming the setting, with exit status 2', async () => {
    // Until 6 Dec 2026 Node's "EEXIST: file already exists, mkdir" or "ENOTDIR", with exit status 1.
    await writeFile(join(cwd, 'image.dcm'), 'not a directory');
    const file = io(cwd);
    expect(
      await main(['serve', '--data', 'image.dcm', '--http-port', '0', '--dicom-port', 'off'], file),
    ).toBe(2);
    expect(file.stderr).toBe(
      `custos: configuration dataDir: ${join(cwd, 'image.dcm')} is a file, not a directory; name a directory (or one to create) with --data or CUSTOS_DATA_DIR\n`,
    );
    const below = io(cwd);
    expect(await main(['user', 'list', '--data', 'image.dcm/sub'], below)).toBe(2);
    expect(below.stderr).toContain(
      `custos: configuration dataDir: ${join(cwd, 'image.dcm', 'sub')} lies below ${join(cwd, 'image.dcm')}, a file, not a directory`,
    );
    expect(await readFile(join(cwd, 'image.dcm'), 'utf8')).toBe('not a directory');
  });

  it('refuses a bad configuration naming the key', async () => {
    const o = io(cwd);
    o.env = { CUSTOS_HTTP_PORT: 'x' };
    expect(await main(['token', 'create', '--user', 'admin', '--data', 'd1'], o)).toBe(2);
    expect(o.stderr).toMatch(/CUSTOS_HTTP_PORT/);
  });

  it('import is idempotent and reports conflicts and unreadable files without overwriting', async () => {
    const src = join(cwd, 'incoming');
    await mkdir(join(src, 'a', 'b'), { recursive: true });
    const study = uid(1);
    const series = uid(2);
    const sops = [uid(3), uid(4), uid(5)];
    for (const [i, sop] of sops.entries()) {
      await writeFile(
        join(src, 'a', i === 0 ? 'x.dcm' : join('b', `${i}.dcm`)),
        makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: sop, instanceNumber: i + 1 }),
      );
    }
    // A file that is not DICOM is skipped; one that is DICOM but cut short is a failure (exit status 3).
    await writeFile(join(src, 'notes.txt'), 'not a DICOM file');
    await writeFile(
      join(src, 'cut.dcm'),
      makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: uid(5) }).subarray(0, -10),
    );
    const first = io(cwd);
    expect(await main(['import', src, '--data', 'd2'], first)).toBe(3);
    expect(JSON.parse(first.stdout)).toEqual(importSummary({ stored: 3, skipped: 1, failed: 1 }));
    expect(first.stderr).toMatch(
      /failed cut\.dcm: the object ends inside the value of \(7FE0,0010\) PixelData/,
    );
    expect(first.stderr).toContain('skipped notes.txt: not DICOM');

    const again = io(cwd);
    expect(await main(['import', src, '--data', 'd2'], again)).toBe(3);
    expect(JSON.parse(again.stdout)).toEqual(importSummary({ unchanged: 3, skipped: 1, failed: 1 }));

    await writeFile(
      join(src, 'a', 'x.dcm'),
      makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: sops[0]!, instanceNumber: 42 }),
    );
    const third = io(cwd);
    await main(['import', src, '--data', 'd2'], third);
    expect(JSON.parse(third.stdout)).toEqual(
      importSummary({ unchanged: 2, conflicts: 1, skipped: 1, failed: 1 }),
    );
    expect(third.stderr).toMatch(/conflict a\/x\.dcm: SOP instance .* already stored with different content/);
  });

  it('import follows symbolic links, reads each directory once, and names a link to nothing', async () => {
    const real = join(cwd, 'links-real');
    const view = join(cwd, 'links-view');
    await mkdir(real, { recursive: true });
    await mkdir(view, { recursive: true });
    const study = uid(11);
    for (const [i, file] of [join(real, '1.dcm'), join(real, '2.dcm'), join(cwd, 'links-3.dcm')].entries())
      await writeFile(
        file,
        makeInstance({ studyUid: study, seriesUid: uid(12), sopInstanceUid: uid(13), instanceNumber: i + 1 }),
      );
    await symlink(join(cwd, 'links-3.dcm'), join(view, 'three.dcm')); // a file
    await symlink(real, join(view, 'series')); // a directory: 1.dcm and 2.dcm
    await symlink(view, join(view, 'up')); // back up the tree
    await symlink(join(cwd, 'nowhere'), join(view, 'gone.dcm'));
    const o = io(cwd);
    // Until 4 Dec 2026 every link was passed over: "0 files", exit 0, nothing stored.
    expect(await main(['import', view, '--data', 'd4'], o)).toBe(3);
    expect(JSON.parse(o.stdout)).toEqual(importSummary({ stored: 3, failed: 1 }));
    // The loop ('up') is read once, as the directory it leads back to.
    expect(o.stderr).toContain(
      `import of ${view}: 4 entries: 3 files (0.0 MB) and 1 entry that could not be read`,
    );
    expect(o.stderr).toContain('failed gone.dcm: a symbolic link to nothing');
  });

  it('import reads files and directories whose names are not UTF-8 and names them with \\xNN', async () => {
    // An older modality's export in Latin-1: 0xE9 is é there, and not UTF-8.
    const tree = Buffer.from(join(cwd, 'latin1'));
    const name = (...parts: (string | number[])[]) =>
      Buffer.concat([tree, ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))]);
    await mkdir(name('/S', [0xe9], 'RIE1'), { recursive: true });
    const study = uid(20);
    await writeFile(
      name('/IM', [0xe9], 'G0001'),
      makeInstance({ studyUid: study, seriesUid: uid(21), sopInstanceUid: uid(22) }),
    );
    await writeFile(
      name('/S', [0xe9], 'RIE1/IM', [0xe9], 'G0002'),
      makeInstance({ studyUid: study, seriesUid: uid(21), sopInstanceUid: uid(23) }),
    );
    await writeFile(
      name('/S', [0xe9], 'RIE1/IM', [0xe9], 'G0003'),
      makeInstance({ studyUid: study, seriesUid: uid(21), sopInstanceUid: uid(24) }).subarray(0, -10),
    );
    const o = io(cwd);
    // Until 6 Dec 2026 each such name was decoded to U+FFFD, a file that does not exist: "cannot be read (ENOENT)".
    expect(await main(['import', tree.toString(), '--data', 'd4', '--no-progress'], o)).toBe(3);
    expect(JSON.parse(o.stdout)).toEqual(importSummary({ stored: 2, failed: 1 }));
    expect(o.stderr).toContain(
      'failed S\\xe9RIE1/IM\\xe9G0003: the object ends inside the value of (7FE0,0010) PixelData',
    );
    expect(o.stderr).not.toContain('\ufffd');
  });

  it('import escapes control characters of file names and DICOM values in its summary', async () => {
    const tree = join(cwd, 'controls');
    await mkdir(tree, { recursive: true });
    // A name that would clear the screen, return to the line start and ring the bell; U+009B is a CSI too.
    await writeFile(
      join(tree, 'cut\x1b[2J\r\x07\u009b.dcm'),
      makeInstance({ studyUid: uid(25), seriesUid: uid(26), sopInstanceUid: uid(27) }).subarray(0, -10),
    );
    // A patient name that would retitle the window and erase the line: quarantined, its reason quotes the value.
    await writeFile(
      join(tree, 'pn.dcm'),
      makeInstance({
        studyUid: uid(25),
        seriesUid: uid(26),
        sopInstanceUid: uid(28),
        patientName: 'Doe^Jane\x1b]0;pwned\x07\r\x1b[2K',
      }),
    );
    const o = io(cwd);
    expect(await main(['import', tree, '--data', 'd4', '--no-progress'], o)).toBe(3);
    expect(JSON.parse(o.stdout)).toEqual(importSummary({ quarantined: 1, failed: 1 }));
    // Until 6 Dec 2026 both went to the terminal as they were.
    // eslint-disable-next-line no-control-regex
    expect(o.stderr.replace(/\n/g, '')).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
    expect(o.stderr).toContain('failed cut\\x1b[2J\\r\\x07\\u009b.dcm: the object ends inside');
    expect(o.stderr).toMatch(/quarantined pn\.dcm as \S+: .*'Doe\^Jane\\x1b\]0;pwned\\x07\\r\\x1b\[2K'/);
  });

  it('import names a named pipe and a link to a device as skipped, without reading them, and imports the rest', async () => {
    const tree = join(cwd, 'special');
    await mkdir(tree, { recursive: true });
    await writeFile(
      join(tree, 'a.dcm'),
      makeInstance({ studyUid: uid(17), seriesUid: uid(18), sopInstanceUid: uid(19) }),
    );
    execFileSync('mkfifo', [join(tree, 'fifo.dcm')]);
    await symlink('/dev/zero', join(tree, 'zero.dcm'));
    const o = io(cwd);
    // Reading either would never end; until 5 Dec 2026 both were left out of the summary without a word.
    expect(await main(['import', tree, '--data', 'd4'], o)).toBe(0);
    expect(JSON.parse(o.stdout)).toEqual(importSummary({ stored: 1, skipped: 2 }));
    expect(o.stderr).toContain('skipped:    2 (2 not regular files: pipes, devices or sockets, not read)');
    // Until 6 Dec 2026 the header said "1 files", leaving out the two the counts below include.
    expect(o.stderr).toMatch(/: 3 entries: 1 file \(.* MB\) and 2 not regular files in /);
    expect(o.stderr).toContain('skipped fifo.dcm: not a regular file (a named pipe)');
    expect(o.stderr).toContain('skipped zero.dcm: not a regular file (a character device)');
  });

  it('import names an empty file as empty, skipped, not as a file without the DICM mark', async () => {
    const tree = join(cwd, 'empty');
    await mkdir(tree, { recursive: true });
    await writeFile(
      join(tree, 'a.dcm'),
      makeInstance({ studyUid: uid(20), seriesUid: uid(21), sopInstanceUid: uid(22) }),
    );
    await writeFile(join(tree, 'b.dcm'), Buffer.alloc(0));
    await writeFile(join(tree, 'notes.txt'), 'not a DICOM file');
    const o = io(cwd);
    expect(await main(['import', tree, '--data', 'd-empty'], o)).toBe(0);
    expect(JSON.parse(o.stdout)).toEqual(importSummary({ stored: 1, skipped: 2 }));
    // Until 7 Dec 2026: "skipped b.dcm: not DICOM", counted as 2 not DICOM Part 10: no "DICM" after the preamble.
    expect(o.stderr).toContain(
      'skipped:    2 (1 not DICOM Part 10: no "DICM" after the 128-byte preamble; 1 empty file: nothing to archive)',
    );
    expect(o.stderr).toContain('skipped b.dcm: an empty file (0 bytes)');
    expect(o.stderr).toContain('skipped notes.txt: not DICOM');
  });

  it('import names a directory it cannot read and a link loop as failed entries, and imports the rest', async () => {
    const tree = join(cwd, 'unreadable');
    await mkdir(tree, { recursive: true });
    await writeFile(
      join(tree, 'good.dcm'),
      makeInstance({ studyUid: uid(14), seriesUid: uid(15), sopInstanceUid: uid(16) }),
    );
    await symlink('loop', join(tree, 'loop'));
    // 220 levels of 20-character names: deeper down, the absolute path is longer than PATH_MAX (4096), and
    // realpath(3) fails with ENAMETOOLONG. Until 5 Dec 2026 that ended the import, no summary, exit 1.
    const deep = await shell(
      `cd ${JSON.stringify(tree)} && for i in $(seq 220); do mkdir dddddddddddddddddddd && cd dddddddddddddddddddd; done`,
    );
    expect(deep.code, deep.stderr).toBe(0);
    try {
      const o = io(cwd);
      expect(await main(['import', tree, '--data', 'd4', '--no-progress'], o)).toBe(3);
      expect(JSON.parse(o.stdout)).toEqual(importSummary({ unchanged: 0, stored: 1, failed: 2 }));
      // The header counts every entry the summary goes on to count; until 6 Dec 2026 "1 files … and 2 entries".
      expect(o.stderr).toMatch(/: 3 entries: 1 file \(.* MB\) and 2 entries that could not be read in /);
      expect(o.stderr).toMatch(
        /failed (dddddddddddddddddddd\/)+dddddddddddddddddddd: a directory that cannot be read \(ENAMETOOLONG\)/,
      );
      expect(o.stderr).toContain('failed loop: a loop of symbolic links');
    } finally {
      await shell(`rm -rf ${JSON.stringify(tree)}`);
    }
  });

  it('refuses --demo on a data directory that already holds an archive, and seeds nothing', async () => {
    const o = io(cwd);
    expect(
      await main(['serve', '--demo', '--data', 'd1', '--http-port', '0', '--dicom-port', 'off'], o),
    ).toBe(2);
    expect(o.stderr).toMatch(
      /--demo seeds synthetic patients and demo accounts into a new data directory only; .*d1 already holds an archive/,
    );
    const users = io(cwd);
    expect(await main(['user', 'list', '--data', 'd1'], users)).toBe(0);
    expect(users.stdout).not.toMatch(/radiologist|data-owner/);
  });

  it('answers a usage error with exit status 2, naming the option and what it takes', async () => {
    const o = io(cwd);
    expect(await main(['ae', 'add', 'X', '--host', 'h', '--port', '99999', '--data', 'd1'], o)).toBe(2);
    expect(o.stderr).toMatch(
      /option '--port <port>' argument '99999' is invalid\. a port is a number from 1 to 65535/,
    );
    // 0 is no port to call a C-MOVE destination on: refused, and the message says so.
    const zero = io(cwd);
    expect(await main(['ae', 'add', 'X', '--host', 'h', '--port', '0', '--data', 'd1'], zero)).toBe(2);
    expect(zero.stderr).toMatch(
      /option '--port <port>' argument '0' is invalid\. a port is a number from 1 to 65535/,
    );
    const days = io(cwd);
    expect(
      await main(['token', 'create', '--user', 'admin', '--days', '99999999999', '--data', 'd1'], days),
    ).toBe(2);
    expect(days.stderr).toMatch(/option '--days <n>' argument '99999999999' is invalid/);
    expect(await main(['no-such-command'], io(cwd))).toBe(2);
    expect(await main(['--help'], io(cwd))).toBe(0);
  });

  it('prints its version for --version and -V; policy show --version N is still the policy version', async () => {
    const { version } = JSON.parse(
      await readFile(join(import.meta.dirname, '..', 'package.json'), 'utf8'),
    ) as {
      version: string;
    };
    // Until 6 Dec 2026 --version was an unknown option.
    for (const flag of ['--version', '-V']) {
      const o = io(cwd);
      expect(await main([flag], o), flag).toBe(0);
      expect([o.stdout, o.stderr]).toEqual([`${version}\n`, '']);
    }
    const help = io(cwd);
    await main(['--help'], help);
    expect(help.stdout).toContain('custos --version');
    const policy = io(cwd);
    expect(await main(['policy', 'show', '--version', '1', '--data', 'd1'], policy), policy.stderr).toBe(0);
    expect(policy.stdout).not.toBe(`${version}\n`);
    expect(policy.stdout).toContain('permit');
  });

  it('imports a patient CD: the DICOMDIR dcmmkdir wrote and the non-DICOM files are skipped, not failures', async () => {
    const cd = join(cwd, 'cd');
    await mkdir(join(cd, 'DICOM'), { recursive: true });
    // What else such a disc holds: a viewer, its page, autorun and readme files (none has the "DICM" mark).
    await mkdir(join(cd, 'VIEWER'));
    await writeFile(join(cd, 'VIEWER', 'viewer.exe'), (await readFile(process.execPath)).subarray(0, 8192));
    await writeFile(join(cd, 'VIEWER', 'index.html'), '<html><body>Patient CD</body></html>');
    await writeFile(join(cd, 'AUTORUN.INF'), '[autorun]\r\nopen=VIEWER\\viewer.exe\r\n');
    await writeFile(join(cd, 'README.TXT'), '');
    const study = uid(6);
    for (const i of [1, 2])
      await writeFile(
        join(cd, 'DICOM', `IM${i}`),
        makeInstance({ studyUid: study, seriesUid: uid(7), sopInstanceUid: uid(8), instanceNumber: i }),
      );
    const made = await dcmtk('dcmmkdir', ['+r', '--invent', 'DICOM/IM1', 'DICOM/IM2'], { cwd: cd });
    expect(made.code, made.stderr).toBe(0);
    const o = io(cwd);
    // Before 4 Dec 2026 the DICOMDIR was "failed: the object has no Study Instance UID", and until 4 Dec night the
    // other four were failures too ('not a DICOM Part 10 object'): exit status 3 for a readable disc.
    expect(await main(['import', cd, '--data', 'd3'], o)).toBe(0);
    expect(JSON.parse(o.stdout)).toEqual(importSummary({ stored: 2, skipped: 5 }));
    expect(o.stderr).toContain(
      'skipped:    5 (1 DICOMDIR: the index of a medium, not an object; 3 not DICOM Part 10: no "DICM" after the 128-byte preamble; 1 empty file: nothing to archive)',
    );
    for (const f of ['VIEWER/viewer.exe', 'VIEWER/index.html', 'AUTORUN.INF'])
      expect(o.stderr).toContain(`skipped ${f}: not DICOM`);
    // Until 7 Dec 2026 the empty README was "not DICOM" too.
    expect(o.stderr).toContain('skipped README.TXT: an empty file (0 bytes)');
    expect(o.stderr).toContain('skipped DICOMDIR: a DICOMDIR');
  });
});
