// HTTPS on the HTTP port (http.tls, docs/dicomweb.md "HTTPS"): `custos serve` as an operator starts it, with
// curl as the client. Until 6 Dec 2026 Custos spoke plain HTTP only, so bearer tokens, session cookies (which are
// Secure, and so not even sent by a browser over plain HTTP off localhost) and patient data crossed the network in
// clear unless a proxy ended TLS in front of it.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as cliMain, type CliIO } from '../src/app/cli.js';
import { backends, cliDatabases } from './support/backends.js';
import { captureIO } from './support/cli-io.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { SERVER_EXT, writePki } from './support/tls-certs.js';

/** curl's exit status and output (never throws). */
const curl = (...args: string[]) =>
  new Promise<{ code: number; stdout: Buffer; stderr: string }>((resolve) =>
    execFile(
      'curl',
      ['-sS', ...args],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? ((err as { code?: number }).code ?? 1) : 0,
          stdout,
          stderr: stderr.toString(),
        }),
    ),
  );

describe.each(backends())('HTTPS on the HTTP port (%s)', (backend) => {
  let cwd: string;
  let url: string;
  let token: string;
  let stop!: (signal: string) => void;
  let running: Promise<number>;
  let served: ReturnType<typeof captureIO>;
  const databases = cliDatabases(backend);
  const main = (args: string[], o: CliIO) =>
    cliMain(args, {
      ...o,
      env: {
        ...databases.env('d'),
        CUSTOS_HTTP_TLS_CERT: join(cwd, 'server.crt'),
        CUSTOS_HTTP_TLS_KEY: join(cwd, 'server.key'),
      },
    });
  const study = uid(1);
  const series = uid(2);
  const sop = uid(3);

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'custos-https-'));
    writePki(cwd, { keyType: 'ec', cas: ['ca'], leaves: { server: SERVER_EXT } });
    served = captureIO(cwd, new Promise<string>((r) => (stop = r)));
    running = main(
      ['serve', '--data', 'd', '--http-port', '0', '--http-host', '127.0.0.1', '--dicom-port', 'off'],
      served,
    );
    for (let i = 0; i < 600 && !served.stdout.includes('listening on'); i++)
      await new Promise((r) => setTimeout(r, 50));
    url = /listening on (https:\/\/127\.0\.0\.1:\d+)/.exec(served.stdout)?.[1] ?? '';
    expect(url, served.stdout + served.stderr).not.toBe('');
    const t = captureIO(cwd);
    expect(await main(['token', 'create', '--user', 'admin', '--data', 'd'], t)).toBe(0);
    token = t.stdout.trim();
  }, 60_000);
  afterAll(async () => {
    stop('SIGTERM');
    expect(await running).toBe(0);
    await rm(cwd, { recursive: true, force: true });
    await databases.drop();
  });

  const tls = () => ['--cacert', join(cwd, 'ca.crt'), '-H', `Authorization: Bearer ${token}`];

  it('stores, finds and retrieves over TLS, and writes https URLs', async () => {
    const dcm = makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: sop, patientId: 'TLS-1' });
    const { body, contentType } = stowBody([{ bytes: dcm }]);
    await writeFile(join(cwd, 'body.bin'), body);
    const stored = await curl(
      ...tls(),
      '-w',
      '\n%{http_code} %{ssl_verify_result}',
      '-H',
      'Accept: application/dicom+json',
      '-H',
      `Content-Type: ${contentType}`,
      '--data-binary',
      `@${join(cwd, 'body.bin')}`,
      `${url}/dicom-web/studies`,
    );
    expect(stored.code, stored.stderr).toBe(0);
    const lines = stored.stdout.toString().trim().split('\n');
    // 200, and curl verified the server's certificate against the CA (0: X509_V_OK).
    expect(lines.at(-1)).toBe('200 0');
    const response = JSON.parse(lines.slice(0, -1).join('\n')) as Record<string, { Value: string[] }>;
    // The RetrieveURL names the scheme the client used.
    expect(response['00081190']!.Value[0]).toBe(`${url}/dicom-web/studies/${study}`);

    const found = await curl(...tls(), `${url}/dicom-web/studies?PatientID=TLS-1`);
    expect(JSON.parse(found.stdout.toString())).toHaveLength(1);
    const out = join(cwd, 'out.dcm');
    const got = await curl(
      ...tls(),
      '-o',
      out,
      `${url}/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${sop}&contentType=application/dicom`,
    );
    expect(got.code, got.stderr).toBe(0);
    expect(await readFile(out)).toEqual(dcm);
  });

  it('refuses plain HTTP, TLS 1.1 and a client that does not trust the certificate, and serves on', async () => {
    // Plain HTTP on the TLS port: no HTTP answer (curl: 52, empty reply, or 56, connection reset).
    const plain = await curl('-o', '/dev/null', `${url.replace('https:', 'http:')}/dicom-web/studies`);
    expect([52, 56]).toContain(plain.code);
    // TLS 1.1 at most: the handshake fails (35).
    const old = await curl(...tls(), '--tlsv1.0', '--tls-max', '1.1', `${url}/dicom-web/studies`);
    expect(old.code).toBe(35);
    // Without the CA, curl cannot verify the server (60).
    const untrusted = await curl('-o', '/dev/null', `${url}/dicom-web/studies`);
    expect(untrusted.code).toBe(60);
    const after = await curl(...tls(), '-o', '/dev/null', '-D', '-', `${url}/dicom-web/studies`);
    expect(after.stdout.toString()).toMatch(/^HTTP\/1\.1 200 /);
    // Browsers are told to use HTTPS only from now on (RFC 6797).
    expect(after.stdout.toString()).toMatch(/^strict-transport-security: max-age=31536000\r$/im);
  });

  it('sets the Secure session cookie over TLS, and the console signs in with it', async () => {
    const jar = join(cwd, 'jar.txt');
    const password = /one-time password:\s+(\S+)/.exec(served.stdout)![1]!;
    const login = await curl(
      '--cacert',
      join(cwd, 'ca.crt'),
      '-c',
      jar,
      '-H',
      'Content-Type: application/json',
      '--data',
      JSON.stringify({ username: 'admin', password }),
      '-w',
      '\n%{http_code}',
      `${url}/api/auth/login`,
    );
    expect(login.stdout.toString().trim().split('\n').at(-1)).toBe('200');
    // Netscape cookie jar: the fourth field is TRUE for a Secure cookie.
    const cookie = (await readFile(jar, 'utf8')).split('\n').find((l) => l.includes('custos_session'));
    expect(cookie?.split('\t')[3]).toBe('TRUE');
    const me = await curl(
      '--cacert',
      join(cwd, 'ca.crt'),
      '-b',
      jar,
      '-H',
      'X-Requested-With: custos-console',
      '-w',
      '\n%{http_code}',
      `${url}/api/auth/me`,
    );
    expect(me.stdout.toString().trim().split('\n').at(-1)).toBe('200');
  });
});
