import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { CustosError } from '../domain/errors.js';

/**
 * Configuration: defaults < config file < CUSTOS_* environment < command-line flags. Loaded and validated once
 * (CONVENTIONS.md: nothing reads process.env outside this module); every error names the offending key.
 */
const ConfigSchema = z
  .object({
    dataDir: z.string().min(1),
    http: z
      .object({
        host: z.string().min(1),
        port: z.number().int().min(0).max(65535),
        /** Server processes sharing the port (node:cluster); 1 runs in-process. */
        workers: z.number().int().min(1).max(64),
      })
      .strict(),
    database: z
      .object({
        /** postgres://… to use PostgreSQL; absent → embedded SQLite in the data directory. */
        url: z
          .string()
          .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
          .optional(),
        schema: z
          .string()
          .regex(/^[a-z_][a-z0-9_]*$/, 'must be a lower-case SQL identifier')
          .optional(),
      })
      .strict(),
    /** Key-encryption keyfile; default <dataDir>/keys/kek.json, outside the blob tree. */
    keyFile: z.string().min(1).optional(),
    blob: z
      .object({
        chunkSize: z
          .number()
          .int()
          .min(4096)
          .max(16 * 1024 * 1024),
        fsync: z.boolean(),
      })
      .strict(),
    limits: z
      .object({
        /** Largest request body accepted (Content-Length or streamed). */
        maxRequestBytes: z.number().int().positive(),
        /** Largest single DICOM object accepted. */
        maxInstanceBytes: z.number().int().positive(),
        /** Most header bytes buffered before the Study Instance UID is known. */
        maxHeaderBytes: z.number().int().positive(),
      })
      .strict(),
    admin: z.object({ username: z.string().regex(/^[a-z][a-z0-9._-]{0,63}$/) }).strict(),
    /** DIMSE (issue 3): plain port (null = off), AE title, TLS listener, timeouts. */
    dicom: z
      .object({
        port: z.number().int().min(0).max(65535).nullable(),
        host: z.string().min(1),
        aeTitle: z
          .string()
          .regex(
            /^[\x21-\x5b\x5d-\x7e]([\x20-\x5b\x5d-\x7e]{0,14}[\x21-\x5b\x5d-\x7e])?$/,
            'must be 1-16 printable ASCII characters, no backslash, no leading or trailing space',
          ),
        maxPduLength: z
          .number()
          .int()
          .min(4096)
          .max(16 * 1024 * 1024),
        artimTimeoutMs: z.number().int().min(100),
        idleTimeoutMs: z.number().int().min(0),
        connectTimeoutMs: z.number().int().min(100),
        /** When C-STORE answers success: once durable and indexed, or once received and validated. */
        storeAck: z.enum(['committed', 'received']),
        tls: z
          .object({
            port: z.number().int().min(0).max(65535),
            cert: z.string().min(1),
            key: z.string().min(1),
            ca: z.string().min(1).optional(),
            requireClientCert: z.boolean().default(false),
          })
          .strict()
          .optional(),
      })
      .strict(),
  })
  .strict();

export type CustosConfig = z.infer<typeof ConfigSchema> & { keyFile: string };

const DEFAULTS = {
  dataDir: './custos-data',
  http: { host: '0.0.0.0', port: 8080, workers: 1 },
  database: {},
  blob: { chunkSize: 256 * 1024, fsync: true },
  limits: {
    maxRequestBytes: 64 * 1024 ** 3,
    maxInstanceBytes: 16 * 1024 ** 3,
    maxHeaderBytes: 64 * 1024 ** 2,
  },
  admin: { username: 'admin' },
  dicom: {
    port: 11112,
    host: '0.0.0.0',
    aeTitle: 'CUSTOS',
    maxPduLength: 1024 * 1024,
    artimTimeoutMs: 30_000,
    idleTimeoutMs: 300_000,
    connectTimeoutMs: 10_000,
    storeAck: 'committed',
  },
};

type Json = Record<string, unknown>;

/** Environment variables and the config path each one sets. */
const ENV: Record<string, { path: string[]; type: 'string' | 'int' | 'bool' | 'port-or-off' }> = {
  CUSTOS_DATA_DIR: { path: ['dataDir'], type: 'string' },
  CUSTOS_HTTP_HOST: { path: ['http', 'host'], type: 'string' },
  CUSTOS_HTTP_PORT: { path: ['http', 'port'], type: 'int' },
  CUSTOS_HTTP_WORKERS: { path: ['http', 'workers'], type: 'int' },
  CUSTOS_DATABASE_URL: { path: ['database', 'url'], type: 'string' },
  CUSTOS_DATABASE_SCHEMA: { path: ['database', 'schema'], type: 'string' },
  CUSTOS_KEY_FILE: { path: ['keyFile'], type: 'string' },
  CUSTOS_BLOB_CHUNK_SIZE: { path: ['blob', 'chunkSize'], type: 'int' },
  CUSTOS_BLOB_FSYNC: { path: ['blob', 'fsync'], type: 'bool' },
  CUSTOS_MAX_REQUEST_BYTES: { path: ['limits', 'maxRequestBytes'], type: 'int' },
  CUSTOS_MAX_INSTANCE_BYTES: { path: ['limits', 'maxInstanceBytes'], type: 'int' },
  CUSTOS_MAX_HEADER_BYTES: { path: ['limits', 'maxHeaderBytes'], type: 'int' },
  CUSTOS_ADMIN_USERNAME: { path: ['admin', 'username'], type: 'string' },
  CUSTOS_DICOM_PORT: { path: ['dicom', 'port'], type: 'port-or-off' },
  CUSTOS_DICOM_HOST: { path: ['dicom', 'host'], type: 'string' },
  CUSTOS_DICOM_AE_TITLE: { path: ['dicom', 'aeTitle'], type: 'string' },
  CUSTOS_DICOM_MAX_PDU_LENGTH: { path: ['dicom', 'maxPduLength'], type: 'int' },
  CUSTOS_DICOM_ARTIM_TIMEOUT_MS: { path: ['dicom', 'artimTimeoutMs'], type: 'int' },
  CUSTOS_DICOM_IDLE_TIMEOUT_MS: { path: ['dicom', 'idleTimeoutMs'], type: 'int' },
  CUSTOS_DICOM_STORE_ACK: { path: ['dicom', 'storeAck'], type: 'string' },
  CUSTOS_DICOM_TLS_PORT: { path: ['dicom', 'tls', 'port'], type: 'int' },
  CUSTOS_DICOM_TLS_CERT: { path: ['dicom', 'tls', 'cert'], type: 'string' },
  CUSTOS_DICOM_TLS_KEY: { path: ['dicom', 'tls', 'key'], type: 'string' },
  CUSTOS_DICOM_TLS_CA: { path: ['dicom', 'tls', 'ca'], type: 'string' },
  CUSTOS_DICOM_TLS_REQUIRE_CLIENT_CERT: { path: ['dicom', 'tls', 'requireClientCert'], type: 'bool' },
};
/** Variables read elsewhere by design (test harness), not configuration. */
const ENV_IGNORED = /^CUSTOS_TEST_/;

const configError = (key: string, message: string) =>
  new CustosError({ code: 'config.invalid', message: `configuration ${key}: ${message}`, detail: { key } });

function setPath(target: Json, path: string[], value: unknown) {
  let node = target;
  for (const p of path.slice(0, -1)) {
    if (typeof node[p] !== 'object' || node[p] === null) node[p] = {};
    node = node[p] as Json;
  }
  node[path[path.length - 1]!] = value;
}

function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object'
        ? merge(out[k] as Json, v as Json)
        : v;
  }
  return out;
}

function fromEnv(env: NodeJS.ProcessEnv): Json {
  const out: Json = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('CUSTOS_') || ENV_IGNORED.test(name) || raw === undefined) continue;
    const spec = ENV[name];
    if (!spec)
      throw configError(name, `unknown environment variable (known: ${Object.keys(ENV).join(', ')})`);
    let value: unknown = raw;
    if (spec.type === 'port-or-off') {
      if (raw !== 'off' && !/^\d+$/.test(raw))
        throw configError(name, `must be a port number or 'off', got '${raw}'`);
      value = raw === 'off' ? null : Number(raw);
    } else if (spec.type === 'int') {
      if (!/^\d+$/.test(raw)) throw configError(name, `must be a non-negative integer, got '${raw}'`);
      value = Number(raw);
    } else if (spec.type === 'bool') {
      if (!['true', 'false', '1', '0'].includes(raw))
        throw configError(name, `must be true or false, got '${raw}'`);
      value = raw === 'true' || raw === '1';
    }
    setPath(out, spec.path, value);
  }
  return out;
}

export interface LoadConfigInput {
  /** Explicit config file (--config); otherwise <dataDir>/custos.json when it exists. */
  configFile?: string;
  env: NodeJS.ProcessEnv;
  /** Command-line overrides, already shaped like the config. */
  flags?: Json;
  cwd: string;
}

export function loadConfig(input: LoadConfigInput): CustosConfig {
  const envPart = fromEnv(input.env);
  const flags = input.flags ?? {};
  const preliminaryDataDir = (flags.dataDir ?? envPart.dataDir ?? DEFAULTS.dataDir) as string;
  const filePath = input.configFile ?? join(resolve(input.cwd, preliminaryDataDir), 'custos.json');
  let filePart: Json = {};
  if (input.configFile !== undefined || existsSync(filePath)) {
    try {
      filePart = JSON.parse(readFileSync(filePath, 'utf8')) as Json;
    } catch (err) {
      throw configError(filePath, `cannot read the config file: ${(err as Error).message}`);
    }
  }
  const merged = merge(merge(merge(DEFAULTS as Json, filePart), envPart), flags);
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key =
      issue.code === 'unrecognized_keys'
        ? [...issue.path, issue.keys[0]].join('.')
        : issue.path.join('.') || '(root)';
    throw configError(key, issue.code === 'unrecognized_keys' ? 'is not a known setting' : issue.message);
  }
  const cfg = parsed.data;
  const dataDir = isAbsolute(cfg.dataDir) ? cfg.dataDir : resolve(input.cwd, cfg.dataDir);
  const keyFile = cfg.keyFile ? resolve(input.cwd, cfg.keyFile) : join(dataDir, 'keys', 'kek.json');
  const tls = cfg.dicom.tls
    ? {
        ...cfg.dicom.tls,
        cert: resolve(input.cwd, cfg.dicom.tls.cert),
        key: resolve(input.cwd, cfg.dicom.tls.key),
        ...(cfg.dicom.tls.ca ? { ca: resolve(input.cwd, cfg.dicom.tls.ca) } : {}),
      }
    : undefined;
  return { ...cfg, dataDir, keyFile, dicom: { ...cfg.dicom, ...(tls ? { tls } : {}) } };
}
