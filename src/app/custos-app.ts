import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CustosError } from '../domain/errors.js';
import { FsBlobStore } from '../adapters/fs-blob/fs-blob-store.js';
import { KeyfileKeyStore } from '../adapters/keyfile/keyfile-key-store.js';
import { openIndexDb } from '../adapters/sql/open-index-db.js';
import { SqlAuditLedger } from '../adapters/sql/sql-audit-ledger.js';
import { AdministratorOnlyPolicy } from '../adapters/policy/administrator-policy.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { IndexDb } from '../ports/database.js';
import type { KeyStore } from '../ports/key-store.js';
import { systemClock, type Clock } from '../ports/clock.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import { AccessGate } from '../services/access-gate.js';
import { AeRegistry } from '../services/ae-registry.js';
import { AuthService } from '../services/auth-service.js';
import { IngestService } from '../services/ingest-service.js';
import { QueryService } from '../services/query-service.js';
import { RetrieveService } from '../services/retrieve-service.js';
import { StudyKeyService } from '../services/study-keys.js';
import type { CustosConfig } from './config.js';

/** The composition root: the only place that knows every concrete adapter. */
export interface CustosApp {
  config: CustosConfig;
  index: IndexDb;
  blobs: BlobStore;
  keys: KeyStore;
  ledger: AuditLedger;
  auth: AuthService;
  ingest: IngestService;
  query: QueryService;
  retrieve: RetrieveService;
  /** DICOM application entities allowed to associate (issue 3). */
  aes: AeRegistry;
  /** Set on the very first start only: the administrator's one-time password, to print once. */
  firstStart?: { username: string; password: string };
  close(): Promise<void>;
}

export async function openApp(config: CustosConfig, clock: Clock = systemClock): Promise<CustosApp> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const sqlitePath = join(config.dataDir, 'index.sqlite');
  const keys = await openOrCreateKeys(config, sqlitePath);
  const index = await openIndexDb(
    config.database.url
      ? {
          kind: 'postgres',
          url: config.database.url,
          ...(config.database.schema ? { schema: config.database.schema } : {}),
        }
      : { kind: 'sqlite', path: sqlitePath, key: await keys.deriveSecret('custos/sqlite-index/v1', 32) },
  );
  const blobs = new FsBlobStore({
    root: join(config.dataDir, 'blobs'),
    chunkSize: config.blob.chunkSize,
    fsync: config.blob.fsync,
  });
  await blobs.sweepTemp();
  const ledger = new SqlAuditLedger(index, clock);
  const gate = new AccessGate(new AdministratorOnlyPolicy(), ledger);
  const studyKeys = new StudyKeyService(index, keys, clock);
  const auth = new AuthService(index, ledger, clock);
  const firstStart = await auth.bootstrapAdministrator(config.admin.username);
  const ingest = new IngestService({ index, blobs, studyKeys, gate, ledger, clock, limits: config.limits });
  const query = new QueryService(index, gate, ledger, clock);
  const retrieve = new RetrieveService({ index, blobs, studyKeys, gate, ledger });
  const aes = new AeRegistry(index, gate, ledger, clock);
  return {
    config,
    index,
    blobs,
    keys,
    ledger,
    auth,
    ingest,
    query,
    retrieve,
    aes,
    ...(firstStart ? { firstStart } : {}),
    close: () => index.close(),
  };
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

/** Open, run, close: for one-shot CLI commands. */
export async function withApp<T>(
  config: CustosConfig,
  fn: (app: CustosApp) => Promise<T>,
  say: (s: string) => void,
): Promise<T> {
  const app = await openApp(config);
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
