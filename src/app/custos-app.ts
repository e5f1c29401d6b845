import { FsBulkSpools, stowSpoolDir, sweepStowSpools } from '../adapters/fs-blob/bulk-spool.js';
import { existsSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isRetryLater } from '../domain/retry-later.js';
import { underSetupLock } from './setup-lock.js';
import { CustosError } from '../domain/errors.js';
import { TransactionBatcher } from '../services/transaction-batcher.js';
import { ThreadedFrameDecoder } from '../adapters/codecs/threaded-frame-decoder.js';
import { ThreadedBlobStore } from '../adapters/fs-blob/threaded-blob-store.js';
import { VolumeReserve } from '../adapters/statfs/volume-reserve.js';
import { KeyfileKeyStore } from '../adapters/keyfile/keyfile-key-store.js';
import { openIndexDb } from '../adapters/sql/open-index-db.js';
import { SqlLedger } from '../adapters/sql/sql-ledger.js';
import { SqlOrderLookup } from '../adapters/sql/sql-order-lookup.js';
import { LedgerSigningKey } from '../adapters/keyfile/ledger-signing-key.js';
import { CheckpointFile } from '../adapters/checkpoint-file/checkpoint-file.js';
import { CedarPolicyDecisionPoint, CedarPolicyValidator } from '../adapters/policy/cedar-policy.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { BulkSpools } from '../ports/bulk-spool.js';
import type { IndexDb } from '../ports/database.js';
import type { KeyStore } from '../ports/key-store.js';
import {
  bindArchive,
  indexHoldsArchive,
  ledgerHasRecords,
  notInitialised,
  recordPostgresIndex,
  refuseMissingSqliteIndex,
} from './archive-identity.js';
import type { StorageSpace } from '../ports/storage-space.js';
import { systemClock, type Clock } from '../ports/clock.js';
import type { AuditLedger, AuditStore } from '../ports/audit-ledger.js';
import { accountName } from '../services/account-names.js';
import { AuditService } from '../services/audit-service.js';
import { JoseOidcVerifier } from '../adapters/oidc/jose-oidc-verifier.js';
import { ROLES } from '../domain/principal.js';
import { FixityService } from '../services/fixity-service.js';
import { ScimService } from '../services/scim-service.js';
import { AccessGate } from '../services/access-gate.js';
import { AccountService } from '../services/account-service.js';
import { PolicyService } from '../services/policy-service.js';
import { StudyFacts } from '../services/study-facts.js';
import { BreakGlassService, OpenBreakGlassWindows } from '../services/break-glass-service.js';
import { AeRegistry } from '../services/ae-registry.js';
import { AuthService } from '../services/auth-service.js';
import { UserAdminService } from '../services/user-admin-service.js';
import { IngestService } from '../services/ingest-service.js';
import { QueryService } from '../services/query-service.js';
import { RetrieveService } from '../services/retrieve-service.js';
import { CorrectionOverlay } from '../services/correction-overlay.js';
import { QuarantineService } from '../services/quarantine-service.js';
import { QualityKpiService } from '../services/quality-kpi-service.js';
import { StudyKeyService } from '../services/study-keys.js';
import type { AuditForwarder } from '../services/audit-forwarder.js';
import { buildAuditForwarder } from './audit-forwarding.js';
import { PatientFeedService } from '../services/patient-feed.js';
import type { CustosConfig } from './config.js';
import { ConsoleService } from '../services/console-service.js';

/** The composition root: the only place that knows every concrete adapter. */
export interface CustosApp {
  config: CustosConfig;
  index: IndexDb;
  blobs: BlobStore;
  keys: KeyStore;
  ledger: AuditLedger;
  auditStore: AuditStore;
  audit: AuditService;
  /** Forwards the ledger to the configured audit record repository (syslog); started by a server only. */
  auditForwarder?: AuditForwarder;
  fixity: FixityService;
  scim: ScimService;
  auth: AuthService;
  accounts: AccountService;
  /** User administration through the 'administer' decision (console and CLI). */
  userAdmin: UserAdminService;
  policies: PolicyService;
  ingest: IngestService;
  query: QueryService;
  retrieve: RetrieveService;
  /** The patient index and order feed (HL7 ADT, ORM, OMI). */
  feed: PatientFeedService;
  clock: Clock;
  quarantine: QuarantineService;
  /** Data-quality KPIs (issue 6). */
  qualityKpis: QualityKpiService;
  /** DICOM application entities allowed to associate (issue 3). */
  aes: AeRegistry;
  /** What the web console reads beyond the other APIs: study pages, activity figures. */
  consoleData: ConsoleService;
  /** Emergency access windows and the privacy officer's report of them. */
  breakGlass: BreakGlassService;
  /** Free space on the volumes written to, against the reserve below which ingest is refused. */
  space: StorageSpace;
  /** Where STOW-RS metadata-and-bulk-data requests spool their bulk data (adapters/fs-blob/bulk-spool.ts). */
  stowSpools: BulkSpools;
  /** The directory of this process's spools, inside the data directory. */
  stowSpoolDir: string;
  /** Whether the index database answers now (for /api/health). */
  indexAnswers(): Promise<boolean>;
  /** The operator's log of the archive's surroundings (OpenAppOptions.notice; nowhere without one). */
  notice(line: string): void;
  /** Set on the very first start only: the administrator's one-time password, to print once. */
  firstStart?: { username: string; password: string };
  close(): Promise<void>;
}

export interface OpenAppOptions {
  /**
   * false: refuse a data directory (and index) that holds no archive yet instead of initialising one. The
   * one-shot commands other than `import` pass it, so that a mistyped `--data` is not made a new archive.
   */
  initialise?: boolean;
  clock?: Clock;
  /**
   * Wrap the ledger the services write to. Benchmarks use it to measure what auditing costs; nothing in the
   * product passes it (every configuration audits).
   */
  wrapLedger?: (ledger: AuditLedger) => AuditLedger;
  /**
   * Replace the access gate the services decide through. bench/policy-overhead.ts uses it to measure what
   * enforcement costs against a gate that allows everything (defined in bench/ only), and tests to count what is
   * decided; nothing in the product passes it, and no configuration, environment variable or flag reaches it.
   */
  wrapGate?: (gate: AccessGate) => AccessGate;
  /** false: skip header validation at ingest. Only bench/validation-cost.ts passes it, to measure its cost. */
  validateHeaders?: boolean;
  /**
   * Wrap the blob store the ingest writes to and WADO reads from. Tests use it to make a blob fail at the moment
   * it is made durable (a failing fdatasync cannot be caused on demand) and to count what a retrieve reads;
   * nothing in the product passes it.
   */
  wrapBlobs?: (blobs: BlobStore) => BlobStore;
  /**
   * Lines for the operator's log about the archive's surroundings, not about one request: storage crossing its
   * free-space reserve, the PostgreSQL index ceasing and resuming to answer (`custos serve` prints them on stderr).
   */
  notice?: (line: string) => void;
  /**
   * Where to say that this process waits for another one initialising the data directory, or takes over the setup
   * lock of one that stopped (src/app/setup-lock.ts); `notice` when not given.
   */
  setupNotice?: (line: string) => void;
  /**
   * Measure the volumes this often as well as before each store, so that `notice` hears of a volume that fills or
   * refuses writes while nothing is stored. One process of a server does it (`serve --workers`: the primary).
   */
  watchVolumesEveryMs?: number;
}

/** The blob volume and, with the SQLite index, the data directory's, each held to `blob.minFreeBytes`. */
async function volumeReserve(config: CustosConfig, notice?: (line: string) => void): Promise<VolumeReserve> {
  const blobRoot = join(config.dataDir, 'blobs');
  await mkdir(blobRoot, { recursive: true, mode: 0o700 });
  const volumes: ConstructorParameters<typeof VolumeReserve>[0] = [
    { what: 'the blob volume', path: blobRoot, device: (await stat(blobRoot)).dev },
  ];
  if (!config.database.url)
    volumes.push({
      what: "the index's volume",
      path: config.dataDir,
      device: (await stat(config.dataDir)).dev,
      holdsIndex: true,
      indexFile: {
        path: join(config.dataDir, 'index.sqlite'),
        ino: (await stat(join(config.dataDir, 'index.sqlite'))).ino,
      },
    });
  return new VolumeReserve(volumes, config.blob.minFreeBytes, undefined, notice);
}

export async function openApp(config: CustosConfig, options: OpenAppOptions = {}): Promise<CustosApp> {
  const clock = options.clock ?? systemClock;
  const initialise = options.initialise ?? true;
  const sqlitePath = join(config.dataDir, 'index.sqlite');
  if (!config.database.url) await refuseMissingSqliteIndex(config.dataDir, sqlitePath);
  if (!initialise && !config.database.url && !existsSync(sqlitePath)) throw notInitialised(config.dataDir);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  return underSetupLock(config.dataDir, config.keyFile, options.setupNotice ?? options.notice, () =>
    openArchive(config, options, clock, initialise, sqlitePath),
  );
}

/** openApp, once no other process is initialising the data directory (src/app/setup-lock.ts). */
async function openArchive(
  config: CustosConfig,
  options: OpenAppOptions,
  clock: Clock,
  initialise: boolean,
  sqlitePath: string,
): Promise<CustosApp> {
  // The SQLite index is encrypted under a key derived from the keyfile, so that is opened first; a PostgreSQL
  // index is asked first whether it holds an archive, so that a missing keyfile is not replaced by a new key.
  const sqliteKeys = config.database.url ? undefined : await openOrCreateKeys(config, sqlitePath);
  const index = await openIndexDb(
    config.database.url
      ? {
          kind: 'postgres',
          url: config.database.url,
          ...(config.database.schema ? { schema: config.database.schema } : {}),
          ...(options.notice ? { notice: options.notice } : {}),
        }
      : {
          kind: 'sqlite',
          path: sqlitePath,
          key: await sqliteKeys!.deriveSecret('custos/sqlite-index/v1', 32),
        },
  );
  const indexName = config.database.url
    ? describePostgres(config.database.url, config.database.schema)
    : sqlitePath;
  let keys: KeyStore;
  try {
    keys = sqliteKeys ?? (await openPostgresKeys(config, index, indexName, initialise));
    await bindArchive({ index, keys, dataDir: config.dataDir, indexName, initialise, now: clock.now() });
    if (config.database.url) await recordPostgresIndex(config.dataDir);
    if (!existsSync(config.audit.signingKeyFile) && (await ledgerHasRecords(index)))
      throw new CustosError({
        code: 'keys.signing-key-missing',
        message: `the audit ledger of ${config.dataDir} holds signed records but the audit signing key ${config.audit.signingKeyFile} is missing: restore it (a new key would make every checkpoint read as tampered)`,
      });
  } catch (err) {
    await index.close();
    throw err;
  }
  const blobs = new ThreadedBlobStore({
    root: join(config.dataDir, 'blobs'),
    chunkSize: config.blob.chunkSize,
    fsync: config.blob.fsync,
  });
  const swept = await blobs.sweepTemp();
  // What a crash or a kill -9 mid-store left is removed, and the operator told (until 6 Dec 2026 nothing was said).
  if (swept > 0)
    options.notice?.(
      `removed ${swept} temporary ${swept === 1 ? 'file' : 'files'} under ${join(config.dataDir, 'blobs', 'tmp')} left by a process that stopped while writing (objects it had not stored)`,
    );
  const spools = await sweepStowSpools(config.dataDir);
  if (spools > 0)
    options.notice?.(
      `removed ${spools} STOW-RS spool ${spools === 1 ? 'directory' : 'directories'} under ${join(config.dataDir, 'tmp')} left by a process that stopped during a request (bulk data it had not stored)`,
    );
  const space = await volumeReserve(config, options.notice);
  const stopWatching = options.watchVolumesEveryMs ? space.watch(options.watchVolumesEveryMs) : () => {};
  const wrapped = options.wrapBlobs ? options.wrapBlobs(blobs) : blobs;
  const sqlLedger = new SqlLedger(index, clock, config.nodeName);
  const ledger = options.wrapLedger ? options.wrapLedger(sqlLedger) : sqlLedger;
  const policies = new PolicyService(index, ledger, new CedarPolicyValidator(), clock);
  await policies.installDefault();
  const pdp = new CedarPolicyDecisionPoint(policies);
  policies.onApplied(() => pdp.invalidate());
  const breakGlassWindows = new OpenBreakGlassWindows(index, clock);
  const realGate = new AccessGate(pdp, ledger, breakGlassWindows);
  const gate = options.wrapGate ? options.wrapGate(realGate) : realGate;
  const audit = new AuditService({
    ledger,
    store: sqlLedger,
    gate,
    signer: await LedgerSigningKey.openOrCreate(config.audit.signingKeyFile),
    sink: new CheckpointFile(config.audit.checkpointFile),
    clock,
    node: config.nodeName,
    accountName: (name) => accountName(index.db, name),
  });
  await audit.recordConfiguration(auditableSettings(config));
  const auditForwarder = await buildAuditForwarder(config, index, sqlLedger, clock);
  // One group commit for the index writes of ingest: new study keys and instance rows share transactions. Each
  // takes the ledger's lock first: every stored instance appends its record in the same transaction, and taking it
  // after the series and study rows let two processes storing one study deadlock (PostgreSQL, until 6 Dec 2026).
  const indexWrites = new TransactionBatcher(index.db, { begin: (trx) => sqlLedger.lockIn(trx) });
  const studyKeys = new StudyKeyService(index, keys, clock, undefined, indexWrites);
  const auth = new AuthService(
    index,
    ledger,
    clock,
    config.oidc ? new JoseOidcVerifier({ ...config.oidc, knownRoles: ROLES }) : undefined,
    { settings: config.auth, keys },
  );
  const accounts = new AccountService(index, ledger, clock, config.auth.password);
  const userAdmin = new UserAdminService(index, gate, ledger, clock, accounts, auth);
  const firstStart = await auth.bootstrapAdministrator(config.admin.username);
  const facts = new StudyFacts(index, clock);
  const ingest = new IngestService({
    index,
    writes: indexWrites,
    blobs: wrapped,
    studyKeys,
    gate,
    ledger,
    clock,
    limits: config.limits,
    validation: config.validation,
    orders: new SqlOrderLookup(index),
    space,
    ...(options.validateHeaders === false ? { validateHeaders: false } : {}),
  });
  const query = new QueryService(index, gate, ledger, clock, facts, config.limits.maxQueryResults);
  const overlay = new CorrectionOverlay(index, blobs, studyKeys);
  const decoder = new ThreadedFrameDecoder();
  const retrieve = new RetrieveService({
    index,
    blobs: wrapped,
    studyKeys,
    gate,
    ledger,
    facts,
    overlay,
    decoder,
    ...(options.notice ? { notice: options.notice } : {}),
  });
  const quarantine = new QuarantineService({
    index,
    blobs,
    studyKeys,
    gate,
    ledger,
    clock,
    ingest,
    overlay,
  });
  const scim = new ScimService(index, gate, ledger, clock);
  const fixity = new FixityService({
    index,
    blobs,
    studyKeys,
    ledger,
    clock,
    node: `${config.nodeName}:${process.pid}`,
  });
  const feed = new PatientFeedService({
    index,
    ledger,
    clock,
    resendWindowDays: config.hl7.resendWindowDays,
  });
  const aes = new AeRegistry(index, gate, ledger, clock);
  const consoleData = new ConsoleService({ index, gate, ledger, auditStore: sqlLedger, facts, clock });
  const breakGlass = new BreakGlassService({
    index,
    gate,
    ledger,
    store: sqlLedger,
    clock,
    facts,
    windows: breakGlassWindows,
    settings: config.breakGlass,
  });
  const qualityKpis = new QualityKpiService({ index, gate, ledger, clock });
  const stowSpools = new FsBulkSpools(stowSpoolDir(config.dataDir));
  return {
    config,
    stowSpools,
    stowSpoolDir: stowSpools.dir,
    index,
    blobs,
    keys,
    ledger,
    auditStore: sqlLedger,
    audit,
    ...(auditForwarder ? { auditForwarder } : {}),
    fixity,
    scim,
    auth,
    accounts,
    userAdmin,
    policies,
    ingest,
    query,
    retrieve,
    feed,
    clock,
    quarantine,
    qualityKpis,
    aes,
    consoleData,
    breakGlass,
    space,
    indexAnswers: () => index.answers(),
    notice: options.notice ?? (() => {}),
    ...(firstStart ? { firstStart } : {}),
    close: async () => {
      stopWatching();
      try {
        await auditForwarder?.stop();
        await sqlLedger.drain();
        // Seal what this process appended. A ledger that no longer verifies is not signed: the refusal is
        // already recorded as a security alert, and `custos audit verify` names the place.
        // Where the ledger cannot be written (a full or failed disk, PostgreSQL away) the server still stops: the
        // next start signs what this one could not.
        await audit.checkpoint().catch((err: unknown) => {
          if (isRetryLater(err)) {
            options.notice?.(`the ledger was not sealed at shutdown: ${(err as Error).message}`);
            return;
          }
          if (!(err instanceof CustosError && err.code === 'audit.tampered')) throw err;
        });
      } finally {
        await sqlLedger.close();
        await decoder.close();
        await blobs.close();
        await index.close();
      }
    },
  };
}

/** The configuration as recorded in the ledger: everything but secrets (a password in the database URL). */
export function auditableSettings(config: CustosConfig): Record<string, unknown> {
  const settings = JSON.parse(JSON.stringify(config)) as Record<string, unknown> & {
    database: { url?: string };
  };
  if (settings.database.url)
    settings.database.url = settings.database.url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  return settings;
}

async function openOrCreateKeys(config: CustosConfig, sqlitePath: string): Promise<KeyStore> {
  if (existsSync(config.keyFile)) return KeyfileKeyStore.open(config.keyFile);
  if (!config.database.url && existsSync(sqlitePath)) {
    throw new CustosError({
      code: 'keys.keyfile-missing',
      message: `the data directory ${config.dataDir} has an index but the key-encryption keyfile ${config.keyFile} is missing: restore the keyfile (without it the archive cannot be decrypted)`,
    });
  }
  await mkdir(dirname(config.keyFile), { recursive: true, mode: 0o700 });
  await chmod(dirname(config.keyFile), 0o700);
  return KeyfileKeyStore.create(config.keyFile);
}

/**
 * The keyfile beside a PostgreSQL index: opened when present; when missing, made only for an index that holds no
 * archive yet (and only when initialising), since an archive's study keys are wrapped by the keyfile it had.
 */
async function openPostgresKeys(
  config: CustosConfig,
  index: IndexDb,
  where: string,
  initialise: boolean,
): Promise<KeyStore> {
  if (existsSync(config.keyFile)) return KeyfileKeyStore.open(config.keyFile);
  if (await indexHoldsArchive(index))
    throw new CustosError({
      code: 'keys.keyfile-missing',
      message: `the PostgreSQL index ${where} holds an archive but the key-encryption keyfile ${config.keyFile} is missing: restore the keyfile (without it the archive cannot be decrypted)`,
    });
  if (!initialise) throw notInitialised(config.dataDir, where);
  await mkdir(dirname(config.keyFile), { recursive: true, mode: 0o700 });
  await chmod(dirname(config.keyFile), 0o700);
  return KeyfileKeyStore.create(config.keyFile);
}

/** A PostgreSQL URL for messages: without its password, with the schema. */
function describePostgres(url: string, schema: string | undefined): string {
  let shown = url;
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    shown = u.toString();
  } catch {
    // shown as configured; config validation has accepted it
  }
  return schema ? `${shown} (schema ${schema})` : shown;
}

/** Open, run, close: for one-shot CLI commands. */
export async function withApp<T>(
  config: CustosConfig,
  fn: (app: CustosApp) => Promise<T>,
  say: (s: string) => void,
  options: { initialise?: boolean } = {},
): Promise<T> {
  const app = await openApp(config, {
    initialise: options.initialise ?? false,
    setupNotice: (line) => say(`custos: ${line}\n`),
  });
  try {
    if (app.firstStart) say(firstStartBanner(app.firstStart));
    return await fn(app);
  } finally {
    await app.close();
  }
}

export function firstStartBanner(fs: { username: string; password: string }): string {
  return [
    '',
    'Custos initialised a new data directory.',
    `  administrator account: ${fs.username}`,
    `  one-time password:     ${fs.password}`,
    'This password is shown once and is not stored in clear anywhere. Keep it now.',
    '',
  ].join('\n');
}
