import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig, type CustosConfig } from '../../src/app/config.js';
import { openApp, type CustosApp, type OpenAppOptions } from '../../src/app/custos-app.js';
import { startServer } from '../../src/app/serve.js';
import { dropPostgresSchema } from '../../src/adapters/sql/open-index-db.js';
import { systemPrincipal } from '../../src/services/auth-service.js';
import { postgresUrl, type Backend } from './backends.js';
import { makeInstance, stowBody, uid } from './fixtures.js';
import type { Clock } from '../../src/ports/clock.js';
import type { AuditRecord } from '../../src/domain/audit-record.js';

export interface TestServer {
  url: string;
  /** Bound DIMSE ports (null when off). */
  dicomPort: number | null;
  dicomTlsPort: number | null;
  dicomweb: string;
  token: string;
  app: CustosApp;
  dataDir: string;
  config: CustosConfig;
  /** MLLP ports when the options turned HL7 on. */
  hl7Port?: number;
  hl7TlsPort?: number;
  /** Errors the server reported as unexpected (tests assert there are none). */
  unexpected: unknown[];
  /** Lines for the operator's log (OpenAppOptions.notice), as `custos serve` prints them. */
  notices: string[];
  /** Close the listeners as SIGTERM does, giving what is in flight `graceMs` (once; stop() then only cleans up). */
  shutDown(graceMs: number): Promise<void>;
  /**
   * Stop the server (listeners and app, as a process that exits) and start it again on the same HTTP port, data
   * directory and database, running `whileDown` in between: a restart as clients see it. `app` and the other
   * ports are the new server's afterwards.
   */
  restart(whileDown: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  limits?: Partial<CustosConfig['limits']>;
  /** Audit settings to add (e.g. a syslog repository the test started). */
  audit?: Partial<CustosConfig['audit']>;
  /** Any other change to the configuration the server starts with. */
  configure?: (config: CustosConfig) => CustosConfig;
  hl7?: Partial<CustosConfig['hl7']>;
  validation?: Partial<CustosConfig['validation']>;
  /** DIMSE settings over the test defaults (loopback, port 0). */
  dicom?: Record<string, unknown>;
  /** The clock the app runs on (default: the system clock; session timeouts, lockout, TOTP, break-glass). */
  clock?: Clock;
  /** Wrap the blob store the ingest writes to and WADO reads from (OpenAppOptions.wrapBlobs). */
  wrapBlobs?: OpenAppOptions['wrapBlobs'];
  /** Wrap the access gate the services decide through (OpenAppOptions.wrapGate), e.g. to count decisions. */
  wrapGate?: OpenAppOptions['wrapGate'];
}

/** A real Custos on a free loopback port with a fresh data directory (and PostgreSQL schema). */
export async function startTestServer(backend: Backend, opts: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'custos-test-'));
  const schema = backend === 'postgres' ? `custos_test_${randomBytes(6).toString('hex')}` : undefined;
  const base = loadConfig({
    env: {},
    cwd: dataDir,
    flags: {
      dataDir,
      http: { host: '127.0.0.1', port: 0 },
      dicom: { host: '127.0.0.1', port: 0, ...opts.dicom },
    },
  });
  const config: CustosConfig = {
    ...base,
    limits: { ...base.limits, ...opts.limits },
    audit: { ...base.audit, ...opts.audit },
    hl7: { ...base.hl7, ...opts.hl7 },
    validation: { ...base.validation, ...opts.validation },
    database: backend === 'postgres' ? { url: postgresUrl!, schema: schema! } : {},
  };
  const notices: string[] = [];
  const appConfig = opts.configure ? opts.configure(config) : config;
  const unexpected: unknown[] = [];
  const open = async (configured: CustosConfig) => {
    const app = await openApp(configured, {
      notice: (line) => notices.push(line),
      // As `custos serve` does.
      watchVolumesEveryMs: 5000,
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(opts.wrapBlobs ? { wrapBlobs: opts.wrapBlobs } : {}),
      ...(opts.wrapGate ? { wrapGate: opts.wrapGate } : {}),
    });
    try {
      return { app, server: await startServer(app, (err) => unexpected.push(err)) };
    } catch (err) {
      await app.close();
      throw err;
    }
  };
  let { app, server } = await open(appConfig);
  const { token } = await app.auth.createToken(systemPrincipal('test'), config.admin.username);
  let closed: Promise<void> | undefined;
  const shutDown = (graceMs: number) => (closed ??= server.close(graceMs));
  // Once per app: a restart whose whileDown threw leaves the closed app in place for stop().
  let appClosed: Promise<void> | undefined;
  const closeApp = (closing: CustosApp) => (appClosed ??= closing.close());
  const ports = () => ({
    dicomPort: server.dicomPort,
    dicomTlsPort: server.dicomTlsPort,
    ...(server.hl7?.port !== undefined ? { hl7Port: server.hl7.port } : {}),
    ...(server.hl7?.tlsPort !== undefined ? { hl7TlsPort: server.hl7.tlsPort } : {}),
  });
  const s: TestServer = {
    url: server.url,
    ...ports(),
    dicomweb: `${server.url}/dicom-web`,
    token,
    app,
    dataDir,
    config,
    unexpected,
    notices,
    shutDown,
    restart: async (whileDown) => {
      await shutDown(0);
      await closeApp(app);
      await whileDown();
      ({ app, server } = await open({ ...appConfig, http: { ...appConfig.http, port: server.port } }));
      closed = undefined;
      appClosed = undefined;
      Object.assign(s, { app, ...ports() });
    },
    stop: async () => {
      await shutDown(0);
      await closeApp(app);
      if (schema) await dropPostgresSchema(postgresUrl!, schema);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return s;
}

/**
 * Lets a CLI command run with `--data s.dataDir` find the test server's index: on PostgreSQL the data directory
 * gets a custos.json naming the database and schema (on SQLite the index is in the directory already).
 */
export async function shareIndexWithCli(s: TestServer): Promise<void> {
  if (!s.config.database.url) return;
  await writeFile(
    join(s.dataDir, 'custos.json'),
    JSON.stringify({ database: { url: s.config.database.url, schema: s.config.database.schema } }),
  );
}

/** The ledger records of `s` appended after seq `after`, oldest first. */
export async function ledgerSince(s: TestServer, after: number): Promise<AuditRecord[]> {
  const rows = await s.app.index.db
    .selectFrom('audit_ledger')
    .select(['record'])
    .where('seq', '>', after)
    .orderBy('seq')
    .execute();
  return rows.map((r) => JSON.parse(r.record) as AuditRecord);
}

/** The seq of the last ledger record of `s` (0 when there is none). */
export async function ledgerHead(s: TestServer): Promise<number> {
  const r = await s.app.index.db
    .selectFrom('audit_ledger')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .executeTakeFirstOrThrow();
  return Number(r.seq ?? 0);
}

/** The path of the blob file that holds a stored instance, under the test server's data directory. */
export async function blobFileOf(s: TestServer, sopInstanceUid: string): Promise<string> {
  const { blob_id } = await s.app.index.db
    .selectFrom('instances')
    .select('blob_id')
    .where('sop_instance_uid', '=', sopInstanceUid)
    .executeTakeFirstOrThrow();
  const objects = join(s.dataDir, 'blobs', 'objects');
  const rel = (await readdir(objects, { recursive: true })).find((f) => f.endsWith(blob_id));
  if (!rel) throw new Error(`no blob file for ${sopInstanceUid} (${blob_id})`);
  return join(objects, rel);
}

/**
 * POST one STOW-RS request of these Part 10 objects to the test server, with its administrator's token; to `base`
 * when given (another server process on the same index, which accepts that token too).
 */
export function postStow(
  s: TestServer,
  parts: Buffer[],
  headers: Record<string, string> = {},
  base = s.url,
): Promise<Response> {
  const { body, contentType } = stowBody(parts.map((bytes) => ({ bytes })));
  return fetch(`${base}/dicom-web/studies`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType, ...headers },
    body,
  });
}

/**
 * Classifies studies `restricted` in the index, as the classification rules of a later issue will (a governance
 * fact of the index, not of the header).
 */
export async function markRestricted(s: TestServer, ...studyUids: string[]): Promise<void> {
  await s.app.index.db
    .updateTable('studies')
    .set({ classification: 'restricted' })
    .where('study_uid', 'in', studyUids)
    .execute();
}

/**
 * Stops the server, then runs each cleanup whatever failed before it (a mount or a database cluster would outlive
 * the test run), and returns the errors the server reported as unexpected, for the caller to assert.
 */
export async function stopThenCleanUp(
  s: TestServer | undefined,
  ...cleanups: (() => Promise<unknown>)[]
): Promise<unknown[] | undefined> {
  const unexpected = s?.unexpected;
  try {
    await s?.stop();
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
  return unexpected;
}

/**
 * Import one object without Modality (0008,0060), which validation holds in quarantine, under this PatientID;
 * fails unless it was quarantined.
 */
export async function quarantineOne(s: TestServer, patientId: string): Promise<void> {
  const bytes = makeInstance({
    studyUid: uid(1),
    seriesUid: uid(2),
    sopInstanceUid: uid(3),
    patientId,
    omit: [0x00080060],
  });
  const outcome = await s.app.ingest.ingest(
    systemPrincipal('test'),
    (async function* () {
      yield bytes;
    })(),
    { channel: 'import' },
  );
  if (outcome.status !== 'quarantined')
    throw new Error(`expected ${patientId}'s object to be quarantined, it was ${outcome.status}`);
}

/** An account's SCIM id (its row's pk, as text), by its username. */
export async function scimUserId(s: TestServer, username: string): Promise<string> {
  const row = await s.app.index.db
    .selectFrom('users')
    .select('pk')
    .where('username', '=', username)
    .executeTakeFirstOrThrow();
  return String(row.pk);
}
