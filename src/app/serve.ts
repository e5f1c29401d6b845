import cluster from 'node:cluster';
import { createServer as createTcpServer, isIPv6 } from 'node:net';
import { CustosError } from '../domain/errors.js';
import { systemClock } from '../ports/clock.js';
import type { CliIO } from './cli.js';
import type { CustosConfig } from './config.js';
import { firstStartBanner, openApp, type CustosApp } from './custos-app.js';
import { HttpServer } from '../transports/server/http-server.js';
import { buildRouter } from '../transports/server/routes.js';
import { startHl7 } from './hl7-listeners.js';
import { DimseServer } from '../transports/dimse/dimse-server.js';
import { DimseServices } from '../transports/dimse/dimse-services.js';
import { consoleFiles } from '../transports/http/static-files.js';
import { consoleDirectory } from '../adapters/fs-console/console-directory.js';
import { demoBanner, seedDemo } from './demo.js';
import { fileURLToPath } from 'node:url';
import { startMemoryReturn } from './memory-return.js';
import { certificateExpiryNotice, keyFileNotice, loadTlsMaterial, type TlsMaterial } from './tls-material.js';
import { CommitmentTransactions } from '../services/commitment-transactions.js';

/** Where `npm run build` puts the web console (dist/console), from src/app and dist/app alike. */
export const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

export interface RunningServer {
  app: CustosApp;
  url: string;
  port: number;
  /** MLLP ports when HL7 is on (hl7.port, hl7.tls.port). */
  hl7?: { port?: number; tlsPort?: number };
  /** DIMSE ports actually bound (null when that listener is off or DIMSE was not started). */
  dicomPort: number | null;
  dicomTlsPort: number | null;
  /**
   * Reads the TLS listeners' certificate files again (SIGHUP) and presents them from the next handshake on; a
   * listener whose new files are bad keeps what it had. Returns the lines for the operator's log.
   */
  reloadCertificates(): Promise<string[]>;
  /** Stop every listener; HTTP requests in flight get `graceMs` to finish (SIGTERM), none by default. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  /** Start the DIMSE listeners too (default true); with --workers only one process runs them. */
  dimse?: boolean;
}

/** The DIMSE listeners on an opened app (issue 3). */
export async function startDimse(
  app: CustosApp,
  onError?: (err: unknown) => void,
): Promise<{
  server: DimseServer;
  port: number | null;
  tlsPort: number | null;
  tls?: TlsMaterial;
  reloadTls?(): Promise<TlsMaterial>;
}> {
  const d = app.config.dicom;
  const material = d.tls ? await loadTlsMaterial('dicom.tls', d.tls, app.clock.now()) : undefined;
  const tls =
    d.tls && material
      ? {
          port: d.tls.port,
          host: d.host,
          cert: material.cert,
          key: material.key,
          ...(material.ca ? { ca: material.ca } : {}),
          ...(material.crl ? { crl: material.crl } : {}),
          requireClientCert: d.tls.requireClientCert,
        }
      : undefined;
  const services = new DimseServices({
    ingest: app.ingest,
    query: app.query,
    retrieve: app.retrieve,
    registry: app.aes,
    ledger: app.ledger,
    commitments: new CommitmentTransactions({ index: app.index, clock: app.clock }),
    aeTitle: d.aeTitle,
    clock: app.clock,
    connectTimeoutMs: d.connectTimeoutMs,
    responseTimeoutMs: d.responseTimeoutMs,
    storeAck: d.storeAck,
    tlsClient: tls && { cert: tls.cert, key: tls.key, ca: tls.ca, crl: tls.crl },
    authenticate: (token, source) => app.auth.authenticateBearer(`Bearer ${token}`, source, 'dimse'),
  });
  const server = new DimseServer(
    services,
    {
      aeTitle: d.aeTitle,
      maxPduLength: d.maxPduLength,
      artimMs: d.artimTimeoutMs,
      idleMs: d.idleTimeoutMs,
      maxAssociations: d.maxAssociations,
      maxAssociationsPerAe: d.maxAssociationsPerAe,
      host: d.host,
      port: d.port,
      tls,
    },
    onError,
    (line) => app.notice(line),
  );
  const ports = await listening(
    'DICOM',
    "dicom.port (--dicom-port; 'off' turns it off) or dicom.tls.port",
    'dicom.host (--dicom-host)',
    () => server.listen(),
  );
  const dicomTls = d.tls;
  return {
    server,
    port: ports.port,
    tlsPort: ports.tlsPort,
    ...(material && dicomTls
      ? {
          tls: material,
          reloadTls: async () => {
            const renewed = await loadTlsMaterial('dicom.tls', dicomTls, app.clock.now());
            server.useCertificate(renewed);
            return renewed;
          },
        }
      : {}),
  };
}

/**
 * Says in the log, at start and then each day, when a listener's certificate has expired or expires within 30
 * days (as its listener holds it, so after a reload the renewed one). Returns the function that stops it.
 */
function watchCertificates(app: CustosApp, listeners: { tls?: TlsMaterial }[]): () => void {
  const check = () => {
    for (const l of listeners) {
      const line = l.tls && certificateExpiryNotice(l.tls, app.clock.now());
      if (line) app.notice(line);
    }
  };
  check();
  for (const l of listeners) {
    const line = l.tls && keyFileNotice(l.tls);
    if (line) app.notice(line);
  }
  const timer = setInterval(check, 86_400_000);
  timer.unref();
  return () => clearInterval(timer);
}

/** Reloads each listener's certificate in turn; says what each now presents, or why it keeps the old one. */
async function reloadEach(
  listeners: { tls?: TlsMaterial; reloadTls?(): Promise<TlsMaterial> }[],
  now: Date,
): Promise<string[]> {
  const lines: string[] = [];
  for (const l of listeners) {
    if (!l.reloadTls || !l.tls) continue;
    try {
      l.tls = await l.reloadTls();
      lines.push(
        `the ${l.tls.setting} certificate was reloaded: ${l.tls.certFile} (${l.tls.subject}, valid until ${l.tls.notAfter.toISOString().slice(0, 10)}) is presented from the next connection on`,
      );
    } catch (err) {
      lines.push(
        `the ${l.tls.setting} certificate was not reloaded, the one in use stays: ${(err as Error).message}`,
      );
    }
    const notice = certificateExpiryNotice(l.tls, now);
    if (notice) lines.push(notice);
    const keyOpen = keyFileNotice(l.tls);
    if (keyOpen) lines.push(keyOpen);
  }
  return lines;
}

/**
 * Start a listener, turning "port in use", "no permission", "no such address" and "no such host name" into an
 * error that says which service and which setting (Node says only `listen EADDRINUSE: address already in use 0.0.0.0:8080`, or
 * `listen EADDRNOTAVAIL: address not available 10.0.0.9`, as until 5 Dec 2026 for the latter).
 */
async function listening<T>(
  service: string,
  setting: string,
  hostSetting: string,
  start: () => Promise<T>,
): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
    // A host name that does not resolve: getaddrinfo's ENOTFOUND (no such name), EAI_AGAIN (no answer from DNS),
    // EAI_NONAME; until 6 Dec 2026 Node's `getaddrinfo ENOTFOUND no such host` alone, with exit status 1.
    const unresolved = e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' || e.code === 'EAI_NONAME';
    if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES' && e.code !== 'EADDRNOTAVAIL' && !unresolved)
      throw err;
    throw new CustosError({
      code: 'serve.cannot-listen',
      message: `${service} cannot listen on ${unresolved ? `'${e.hostname ?? ''}'` : (e.address ?? '')}${e.port !== undefined ? `:${e.port}` : ''}: ${
        unresolved
          ? `the host name does not resolve (${e.code}); give an address of this machine or a name that resolves to one (or 0.0.0.0 for all) with ${hostSetting}`
          : e.code === 'EADDRINUSE'
            ? `another process already listens there; choose another port with ${setting}`
            : e.code === 'EACCES'
              ? `this user may not listen on that port; choose another port with ${setting}`
              : `not an address of this machine; choose one of its addresses (or 0.0.0.0 for all) with ${hostSetting}`
      }`,
      cause: err,
    });
  }
}

/**
 * Each fixed port the configuration asks for (not 0: any free port) is tried before the data directory is opened, so
 * that one that is taken fails the start with the message `listening` gives, before a new data directory is set up.
 * Until 7 Dec 2026 a first start on a taken port set the directory up and printed the administrator's one-time
 * password, then failed: the start after it, on another port, found the directory set up and showed no password, so
 * an operator who missed it among the errors had none. A port taken between this check and the listen still fails
 * the start after setup, as before.
 */
async function checkPortsFree(config: CustosConfig): Promise<void> {
  const hl7Host = config.hl7.host ?? config.http.host;
  const wanted: [string, string, string, string, number | null | undefined][] = [
    ['HTTP', 'http.port (--http-port)', 'http.host (--http-host)', config.http.host, config.http.port],
    [
      'DICOM',
      "dicom.port (--dicom-port; 'off' turns it off)",
      'dicom.host (--dicom-host)',
      config.dicom.host,
      config.dicom.port,
    ],
    ['DICOM', 'dicom.tls.port', 'dicom.host (--dicom-host)', config.dicom.host, config.dicom.tls?.port],
    ['HL7 (MLLP)', 'hl7.port', 'hl7.host (default: http.host)', hl7Host, config.hl7.port],
    ['HL7 (MLLP)', 'hl7.tls.port', 'hl7.host (default: http.host)', hl7Host, config.hl7.tls?.port],
  ];
  for (const [service, setting, hostSetting, host, port] of wanted) {
    if (!port) continue;
    await listening(service, setting, hostSetting, async () => {
      const probe = createTcpServer();
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.listen(port, host, () => resolve());
      });
      await new Promise<void>((resolve) => probe.close(() => resolve()));
    });
  }
}

/** Start the archive's network services on an opened app. */
export async function startServer(
  app: CustosApp,
  onError?: (err: unknown) => void,
  opts: StartOptions = {},
): Promise<RunningServer> {
  const router = buildRouter(app);
  const httpTls = app.config.http.tls;
  const httpMaterial = httpTls ? await loadTlsMaterial('http.tls', httpTls, app.clock.now()) : undefined;
  const http = new HttpServer({
    host: app.config.http.host,
    port: app.config.http.port,
    router,
    auth: app.auth,
    fallback: consoleFiles(consoleDirectory(app.config.http.consoleDir ?? CONSOLE_DIR)),
    corsOrigins: app.config.http.corsOrigins,
    inactivityTimeoutMs: app.config.http.inactivityTimeoutMs,
    ...(app.config.http.publicUrl ? { publicUrl: app.config.http.publicUrl } : {}),
    ...(httpMaterial ? { tls: { cert: httpMaterial.cert, key: httpMaterial.key } } : {}),
    ...(onError ? { onError } : {}),
  });
  const httpsListener =
    httpMaterial && httpTls
      ? {
          tls: httpMaterial,
          reloadTls: async () => {
            const renewed = await loadTlsMaterial('http.tls', httpTls, app.clock.now());
            http.useCertificate(renewed);
            return renewed;
          },
        }
      : undefined;
  const { port } = await listening('HTTP', 'http.port (--http-port)', 'http.host (--http-host)', () =>
    http.listen(),
  );
  let hl7: Awaited<ReturnType<typeof startHl7>>;
  try {
    hl7 = await listening('HL7 (MLLP)', 'hl7.port or hl7.tls.port', 'hl7.host (default: http.host)', () =>
      startHl7(app, onError),
    );
  } catch (err) {
    await http.close();
    throw err;
  }
  // Every listener before any timer: a port that is taken leaves nothing running behind the error.
  let dimse: Awaited<ReturnType<typeof startDimse>> | undefined;
  if (opts.dimse !== false) {
    try {
      dimse = await startDimse(app, onError);
    } catch (err) {
      await hl7.close();
      await http.close();
      throw err;
    }
  }
  const withTls = [httpsListener, dimse, hl7].filter((l) => l !== undefined);
  const stopCertificateCheck = watchCertificates(app, withTls);

  // Fixity: a rate-limited slice of the scheduled pass whenever one is due (one process at a time holds it).
  const fx = app.config.fixity;
  const stopping = new AbortController();
  let slice: Promise<unknown> | undefined;
  const fixity = setInterval(() => {
    if (fx.intervalDays === 0 || slice) return;
    slice = app.fixity
      .runScheduled({
        intervalSeconds: fx.intervalDays * 86_400,
        bytesPerSecond: fx.bytesPerSecond,
        maxSeconds: fx.sliceSeconds,
        signal: stopping.signal,
      })
      .catch((err: unknown) => onError?.(err))
      .finally(() => (slice = undefined));
  }, fx.checkSeconds * 1000);
  fixity.unref();

  // Seal the ledger periodically; a ledger that fails verification is reported (and alerted), never signed.
  const sealer = setInterval(() => {
    app.audit.checkpoint().catch((err: unknown) => onError?.(err));
  }, app.config.audit.checkpointSeconds * 1000);
  sealer.unref();
  // Forward the ledger to the audit record repository; the lease lets one worker or node do it at a time.
  app.auditForwarder?.start(onError);

  return {
    app,
    port,
    url: httpUrl(app.config.http.host, port, httpTls !== undefined),
    ...(hl7.ports ? { hl7: hl7.ports } : {}),
    dicomPort: dimse?.port ?? null,
    dicomTlsPort: dimse?.tlsPort ?? null,
    reloadCertificates: () => reloadEach(withTls, app.clock.now()),
    close: async (graceMs = 0) => {
      // HTTP stops taking connections first; its requests in flight finish meanwhile (within graceMs).
      const httpClosed = http.close(graceMs);
      // Associations finish the operation in progress meanwhile (within graceMs), then end.
      await dimse?.server.close(graceMs);
      stopCertificateCheck();
      clearInterval(sealer);
      await app.auditForwarder?.stop();
      clearInterval(fixity);
      stopping.abort();
      await slice;
      await hl7.close();
      await httpClosed;
    },
  };
}

/** The operator's log of the archive's surroundings, with the volumes watched every 5 s (custos-app.ts). */
const serverNotices = (io: CliIO) => ({
  notice: (line: string) => io.err(`custos: ${line}\n`),
  watchVolumesEveryMs: 5000,
});

export async function serve(config: CustosConfig, io: CliIO, opts: { demo?: boolean } = {}): Promise<number> {
  if (config.http.workers > 1) return cluster.isPrimary ? servePrimary(config, io) : serveWorker(config, io);
  const reloading = reloadSignal(io, 'custos');
  await checkTlsFiles(config).catch((err: unknown) => {
    reloading.stop();
    throw err;
  });
  await checkPortsFree(config).catch((err: unknown) => {
    reloading.stop();
    throw err;
  });
  const app = await openApp(config, serverNotices(io));
  let server: Awaited<ReturnType<typeof startServer>>;
  let demo: Awaited<ReturnType<typeof seedDemo>> | undefined;
  try {
    if (app.firstStart) io.out(firstStartBanner(app.firstStart));
    demo = opts.demo ? await seedDemo(app, { newArchive: !!app.firstStart }) : undefined;
    server = await startServer(app, (err) =>
      io.err(
        `custos: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      ),
    );
  } catch (err) {
    // A port that is taken: the index, its WAL handle and the blob thread close before the error is reported.
    reloading.stop();
    await app.close();
    throw err;
  }
  io.out(
    `custos: data directory ${config.dataDir} (${config.database.url ? 'PostgreSQL index' : 'SQLite index'})\n`,
  );
  io.out(listeningLine(config.http.host, server.url));
  if (server.hl7) io.out(hl7Banner(config, server.hl7));
  io.out(dimseBanner(config, server.dicomPort, server.dicomTlsPort));
  if (demo) io.out(demoBanner(demo, server.url));
  io.out(`custos: ${startMemoryReturn(config.memory.trimGrowthMiB)}\n`);
  reloading.ready(() => server.reloadCertificates());
  const signal = await io.stopSignal();
  reloading.stop();
  io.err(`custos: ${signal}, shutting down\n`);
  await server.close(SHUTDOWN_GRACE_MS);
  await app.close();
  return 0;
}

/**
 * Reads and checks the TLS listeners' files (certificate, key, CA, CRL) before the data directory is opened: a
 * wrong path or a mismatched key then stops the start before a first start initialises the data directory and
 * prints the administrator's one-time password (until 6 Dec 2026 both happened first, and the password shown
 * with the error was of no use once the files were fixed, since the next start found the directory initialised).
 * The listeners read them again when they start.
 */
async function checkTlsFiles(config: CustosConfig): Promise<void> {
  const now = systemClock.now();
  if (config.http.tls) await loadTlsMaterial('http.tls', config.http.tls, now);
  if (config.dicom.tls) await loadTlsMaterial('dicom.tls', config.dicom.tls, now);
  if (config.hl7.tls) await loadTlsMaterial('hl7.tls', config.hl7.tls, now);
}

/**
 * How long HTTP requests in flight (a download, a STOW-RS being stored) and DICOM operations in progress (a C-STORE
 * being received, a C-MOVE) get to finish on SIGTERM or SIGINT before their connections are closed; under
 * Kubernetes' default 30 s grace period. Until 5 Dec 2026 HTTP requests were cut at once, and until 6 Dec 2026
 * DICOM associations.
 */
const SHUTDOWN_GRACE_MS = 25_000;

/**
 * SIGHUP (certificate reload) heard from the start, so that it never ends the process as its default action would;
 * one that comes before the server is up is acted on once it is.
 */
function reloadSignal(io: CliIO, prefix: string) {
  let reload: (() => Promise<string[]>) | undefined;
  let pending = false;
  const stop = io.onReload?.(() => {
    if (reload) void tellReload(io, prefix, reload());
    else pending = true;
  });
  return {
    ready(r: () => Promise<string[]>): void {
      reload = r;
      if (pending) void tellReload(io, prefix, r());
      pending = false;
    },
    stop: () => stop?.(),
  };
}

/** Prints what a certificate reload did (SIGHUP), each line with the process's prefix. */
function tellReload(io: CliIO, prefix: string, lines: Promise<string[]>): Promise<void> {
  return lines.then(
    (ls) =>
      (ls.length ? ls : ['asked to reload certificates (SIGHUP), but no TLS listener runs here']).forEach(
        (l) => io.err(`${prefix}: ${l}\n`),
      ),
    (err: unknown) => io.err(`${prefix}: the certificates were not reloaded: ${(err as Error).message}\n`),
  );
}

/**
 * Several server processes on one port (node:cluster): the primary initialises the data directory once, then
 * forks workers that each open the index and blob store and accept connections. SQLite in WAL mode and
 * PostgreSQL both take concurrent writers; nothing else is shared between workers.
 */
async function servePrimary(config: CustosConfig, io: CliIO): Promise<number> {
  const reloading = reloadSignal(io, 'custos');
  await checkTlsFiles(config).catch((err: unknown) => {
    reloading.stop();
    throw err;
  });
  await checkPortsFree(config).catch((err: unknown) => {
    reloading.stop();
    throw err;
  });
  const app = await openApp(config, serverNotices(io));
  if (app.firstStart) io.out(firstStartBanner(app.firstStart));
  // DIMSE runs in the primary only: one listener per port without cluster round-robin of long-lived, stateful
  // associations, and C-MOVE/commitment reports leave from one place. HTTP is what the workers scale.
  const dimse = await startDimse(app, (err) =>
    io.err(`custos: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`),
  );
  // Each worker accepts from the shared listening socket itself (SCHED_NONE), rather than the primary accepting and
  // handing connections over (round-robin, Node's default on Linux): a connection handed to a worker that died
  // before taking it stayed open in the primary, unanswered for good, and its descriptor with it (until 6 Dec 2026;
  // nodejs/node#21746). The kernel keeps connections no worker has taken in the listen queue instead.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let workers = Array.from({ length: config.http.workers }, () => cluster.fork());
  // Every worker says when its listeners are up (serveWorker): the banner below means all of them serve.
  const port = await new Promise<number>((resolve, reject) => {
    let ready = 0;
    const done = () => {
      cluster.off('message', onMessage);
      cluster.off('exit', onExit);
    };
    const onMessage = (_w: unknown, m: { custos?: string; port?: number }) => {
      if (m?.custos !== 'ready' || ++ready < workers.length) return;
      done();
      resolve(m.port!);
    };
    const onExit = (w: { process: { pid?: number } }, code: number) => {
      done();
      reject(new Error(`worker ${w.process.pid} exited with ${code} before listening`));
    };
    cluster.on('message', onMessage);
    cluster.on('exit', onExit);
  });
  const url = httpUrl(config.http.host, port, config.http.tls !== undefined);
  io.out(
    `custos: data directory ${config.dataDir} (${config.database.url ? 'PostgreSQL index' : 'SQLite index'}), ${workers.length} worker processes\n`,
  );
  io.out(listeningLine(config.http.host, url));
  io.out(dimseBanner(config, dimse.port, dimse.tlsPort));
  io.out(`custos: ${startMemoryReturn(config.memory.trimGrowthMiB)} (in each process)\n`);
  // SIGHUP: the primary's DIMSE listener reloads its certificate, and each worker its HTTPS and HL7 ones.
  const withTls = [dimse];
  const stopCertificateCheck = watchCertificates(app, withTls);
  reloading.ready(() => {
    for (const w of workers) if (!w.isDead()) w.process.kill('SIGHUP');
    return reloadEach(withTls, app.clock.now());
  });
  // A worker that dies (killed, out of memory, a crash) is said in the log and replaced, so that the HTTP port
  // keeps its workers; until 5 Dec 2026 it was not, and with every worker gone the port was closed while the
  // primary ran on. A crash loop (more deaths than workers in a minute) ends the server with status 1, for its
  // supervisor to act on, rather than forking for ever.
  let shuttingDown = false;
  const deaths: number[] = [];
  const crashed = new Promise<number>((resolve) => {
    cluster.on('exit', (w, code, signal) => {
      if (shuttingDown) return;
      const now = Date.now();
      deaths.push(now);
      while (deaths.length && deaths[0]! < now - 60_000) deaths.shift();
      const how = signal ? `was killed (${signal})` : `exited with status ${code}`;
      if (deaths.length > config.http.workers) {
        io.err(
          `custos: worker ${w.process.pid} ${how}; ${deaths.length} workers died within a minute, so the server stops (status 1)\n`,
        );
        resolve(1);
        return;
      }
      const replacement = cluster.fork();
      workers = workers.map((x) => (x === w ? replacement : x));
      io.err(
        `custos: worker ${w.process.pid} ${how}; started worker ${replacement.process.pid} in its place\n`,
      );
    });
  });
  const stopped = await Promise.race([io.stopSignal(), crashed]);
  shuttingDown = true;
  const signal = typeof stopped === 'number' ? 'worker crash loop' : stopped;
  reloading.stop();
  stopCertificateCheck();
  io.err(`custos: ${signal}, shutting down\n`);
  await dimse.server.close(typeof stopped === 'number' ? 0 : SHUTDOWN_GRACE_MS);
  await app.close();
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          w.once('exit', () => resolve());
          w.process.kill('SIGTERM');
        }),
    ),
  );
  return typeof stopped === 'number' ? stopped : 0;
}

/**
 * The URL to reach the HTTP listener at: a wildcard address is shown as the loopback one, and an IPv6 literal is
 * put in brackets (RFC 3986 §3.2.2), or 'http://::1:8042' would read as host '::1:8042'.
 */
export function httpUrl(host: string, port: number, tls = false): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `${tls ? 'https' : 'http'}://${isIPv6(shown) ? `[${shown}]` : shown}:${port}`;
}

/**
 * Where HTTP listens: the URL to use first (scripts and tests read it after 'listening on'), then, for a wildcard
 * host, that every address of the machine is served. Until 6 Dec 2026 the default 0.0.0.0 printed the loopback
 * URL alone, which read as if HTTP listened on loopback only.
 */
export function listeningLine(host: string, url: string): string {
  const wildcard = host === '0.0.0.0' || host === '::';
  const where = wildcard ? ` and on every other address of this machine (http.host ${host}; ` : ' (';
  return `custos: listening on ${url}${where}DICOMweb at ${url}/dicom-web)\n`;
}

function hl7Banner(config: CustosConfig, ports: { port?: number; tlsPort?: number }): string {
  const where = [
    ports.port !== undefined ? `MLLP port ${ports.port}` : '',
    ports.tlsPort !== undefined ? `MLLP/TLS port ${ports.tlsPort}` : '',
  ].filter(Boolean);
  const senders = config.hl7.senders.length
    ? `senders ${config.hl7.senders.join(', ')}`
    : 'no senders allowed yet (set hl7.senders): every message will be rejected';
  return `custos: HL7 v2 on ${where.join(' and ')}; ${senders}\n`;
}

async function serveWorker(config: CustosConfig, io: CliIO): Promise<number> {
  // The primary watches the volumes; a worker tells what it finds itself (a store refused, its own pool's
  // connections lost), named so that the log says which process.
  const me = `custos (worker ${cluster.worker?.id ?? process.pid})`;
  const reloading = reloadSignal(io, me);
  const app = await openApp(config, { notice: (line) => io.err(`${me}: ${line}\n`) });
  const server = await startServer(
    app,
    (err) =>
      io.err(
        `custos: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      ),
    { dimse: false },
  );
  startMemoryReturn(config.memory.trimGrowthMiB);
  reloading.ready(() => server.reloadCertificates());
  process.send?.({ custos: 'ready', port: server.port });
  await io.stopSignal();
  reloading.stop();
  await server.close(SHUTDOWN_GRACE_MS);
  await app.close();
  // The IPC channel to the primary would keep this process alive.
  cluster.worker?.disconnect();
  return 0;
}

function dimseBanner(config: CustosConfig, port: number | null, tlsPort: number | null): string {
  const parts = [
    ...(port !== null ? [`port ${port}`] : []),
    ...(tlsPort !== null ? [`TLS port ${tlsPort}`] : []),
  ];
  return parts.length
    ? `custos: DICOM AE ${config.dicom.aeTitle} on ${parts.join(' and ')}\n`
    : 'custos: DICOM listeners off\n';
}
