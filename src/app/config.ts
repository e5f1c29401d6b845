import { existsSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { CustosError } from '../domain/errors.js';

const ValidationLevelSchema = z.enum(['strict', 'standard', 'lenient']);

/**
 * A listener that requires client certificates needs the CA they must chain to: without `ca` Node verifies them
 * against its bundled public roots, so any certificate a public CA issued to anybody was taken (until 6 Dec 2026).
 */
const clientCaRequired = (
  t: { ca?: string | undefined; crl?: string | undefined; requireClientCert: boolean },
  ctx: z.RefinementCtx,
) => {
  if (t.requireClientCert && !t.ca)
    ctx.addIssue({
      code: 'custom',
      path: ['ca'],
      message:
        'is required with requireClientCert: true (the CA that signs the client certificates to take; without it any certificate of a public CA would pass)',
    });
  else if (t.crl && !t.ca)
    ctx.addIssue({
      code: 'custom',
      path: ['ca'],
      message: 'is required with crl (the CA whose revocation list it is)',
    });
};

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
        /** A connection on which nothing moves either way for this long is closed (HttpServer). */
        inactivityTimeoutMs: z.number().int().min(1000).max(3_600_000),
        /**
         * The URL clients reach Custos at when a reverse proxy stands in front of it (TLS ended at the proxy, another
         * host name, a path prefix the proxy strips): every absolute URL Custos writes (BulkDataURI, RetrieveURL, SCIM
         * and FHIR locations) starts with it. Unset: the scheme of the connection and the request's Host header.
         */
        publicUrl: z
          .string()
          .refine(isPublicUrl, {
            message:
              "must be an absolute http:// or https:// URL without user, query or fragment, such as 'https://pacs.example.org' or 'https://example.org/pacs'",
          })
          .optional(),
        /**
         * HTTPS on http.port (TLS 1.2 or later) with this server certificate (chain) and key, PEM files: DICOMweb,
         * the console, the admin API, FHIR and SCIM are then served over TLS only. Unset: plain HTTP (behind a
         * proxy that ends TLS, or on loopback).
         */
        tls: z
          .object({ cert: z.string().min(1), key: z.string().min(1) })
          .strict()
          .optional(),
        /** Directory of the built web console served at / (default: dist/console of this installation). */
        consoleDir: z.string().min(1).optional(),
        /**
         * Web origins (`https://viewer.example.org`, or `*`) whose pages may call DICOMweb with a bearer token
         * (CORS, docs/dicomweb.md); none by default.
         */
        corsOrigins: z.array(
          z.string().refine((o) => o === '*' || isOrigin(o), {
            message:
              "must be an origin such as 'https://viewer.example.org' (scheme, host, optional port) or '*'",
          }),
        ),
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
        /**
         * Free space kept back on the blob volume (and the SQLite index's): below it new objects are refused
         * (A700, 507) so that the index and the audit ledger can go on recording reads. 0: no reserve.
         */
        minFreeBytes: z.number().int().min(0),
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
        /** Most matches one QIDO-RS answer (or one C-FIND page) holds. */
        maxQueryResults: z.number().int().min(1).max(10_000),
      })
      .strict(),
    admin: z
      .object({
        username: z
          .string()
          .regex(
            /^[a-z][a-z0-9._-]{0,63}$/,
            "must be 1-64 characters: a lowercase letter, then lowercase letters, digits, '.', '_' or '-' (e.g. 'admin')",
          ),
      })
      .strict(),
    /** Returning freed memory to the operating system (docs/operations.md). */
    memory: z
      .object({
        /**
         * Give back the C allocator's freed memory (glibc malloc_trim, on a thread of its own) when work ends, and
         * while it goes on whenever the resident set grew by this many MiB and every 30 s; 0 turns it off.
         */
        trimGrowthMiB: z.number().int().min(0).max(65_536),
      })
      .strict(),
    fixity: z
      .object({
        /** A scheduled pass starts this long after the previous one ended (days; 0 turns the schedule off). */
        intervalDays: z.number().min(0).max(3650),
        /** Read rate limit of the scheduled pass, bytes per second (0: unlimited). */
        bytesPerSecond: z.number().int().min(0),
        /** How long each scheduled slice may run before yielding (seconds); the pass resumes later. */
        sliceSeconds: z.number().int().min(1).max(86_400),
        /** How often a running server looks whether a slice is due (seconds). */
        checkSeconds: z.number().int().min(1).max(86_400),
      })
      .strict(),
    /** Local accounts (docs/accounts.md): password policy, lockout, TOTP, console sessions. */
    auth: z
      .object({
        password: z
          .object({
            minLength: z.number().int().min(8).max(256),
            maxLength: z.number().int().min(8).max(1024),
            rejectUsername: z.boolean(),
            rejectCommon: z.boolean(),
          })
          .strict()
          .refine((p) => p.maxLength >= p.minLength, { message: 'maxLength must be at least minLength' }),
        lockout: z
          .object({
            /** Failed logins within windowMinutes that lock the account (0 turns lockout off). */
            maxFailures: z.number().int().min(0).max(1000),
            windowMinutes: z.number().int().min(1).max(10_080),
            lockMinutes: z.number().int().min(1).max(525_600),
          })
          .strict(),
        mfa: z
          .object({
            /** Roles that must use TOTP (default: every role the shipped policies let export, delete or administer). */
            requiredRoles: z.array(z.string().min(1)),
            requireForAll: z.boolean(),
            /** Issuer shown in authenticator apps. */
            issuer: z.string().min(1).max(64),
          })
          .strict(),
        session: z
          .object({
            idleMinutes: z.number().int().min(1).max(1440),
            absoluteHours: z.number().min(0.1).max(168),
          })
          .strict(),
      })
      .strict(),
    /** Bearer tokens from the organisation's OpenID Connect identity provider (absent: local accounts only). */
    oidc: z
      .object({
        issuer: z.string().url(),
        audience: z.string().min(1),
        /** Default: from the issuer's discovery document. */
        jwksUri: z.string().url().optional(),
        algorithms: z
          .array(
            z.enum([
              'RS256',
              'RS384',
              'RS512',
              'PS256',
              'PS384',
              'PS512',
              'ES256',
              'ES384',
              'ES512',
              'EdDSA',
            ]),
          )
          .min(1)
          .default(['RS256', 'ES256']),
        usernameClaim: z.string().min(1).default('preferred_username'),
        roleClaim: z.string().min(1).default('roles'),
        departmentClaim: z.string().min(1).default('department'),
        /** Identity-provider role value → Custos role. */
        roleMap: z.record(z.string()).default({}),
        clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
      })
      .strict()
      .optional(),
    /**
     * Header validation at ingest (docs/validation.md): 'strict' rejects every defect, 'standard' quarantines
     * missing Type 1 and patient-identity defects and warns on the rest, 'lenient' warns. The sending AE's own
     * level wins over its channel's, which wins over the default.
     */
    validation: z
      .object({
        default: ValidationLevelSchema,
        byAe: z.record(z.string().regex(/^[ -[\]-~]{1,16}$/, 'must be an AE title'), ValidationLevelSchema),
        byChannel: z.record(z.enum(['stow-rs', 'import', 'c-store']), ValidationLevelSchema),
      })
      .strict(),
    /** This Custos node's name in audit records (default: the host name). */
    nodeName: z.string().min(1).max(255),
    audit: z
      .object({
        /** Ed25519 key that signs ledger checkpoints; default <dataDir>/keys/audit-signing.pem. */
        signingKeyFile: z.string().min(1).optional(),
        /**
         * External append-only file every signed checkpoint is also written to; default
         * <dataDir>/audit/checkpoints.jsonl. Put it on another volume so a database rewrite shows.
         */
        checkpointFile: z.string().min(1).optional(),
        /** How often a running server signs the ledger head (seconds). */
        checkpointSeconds: z.number().int().min(1).max(86_400),
        /**
         * Audit record repository (IHE ATNA): every ledger record is forwarded as a DICOM audit message (PS3.15
         * A.5) by syslog over TLS (RFC 5425, port 6514 by default) or UDP (RFC 5426, port 514). Absent: no
         * forwarding. ca / cert / key are PEM files (CA of the repository; client certificate and key).
         */
        syslog: z
          .object({
            transport: z.enum(['tls', 'udp']),
            host: z.string().min(1),
            port: z.number().int().min(1).max(65535).optional(),
            ca: z.string().min(1).optional(),
            cert: z.string().min(1).optional(),
            key: z.string().min(1).optional(),
          })
          .strict()
          .superRefine((s, ctx) => {
            if (s.transport === 'udp')
              for (const k of ['ca', 'cert', 'key'] as const)
                if (s[k])
                  ctx.addIssue({ code: 'custom', path: [k], message: 'applies to transport tls only' });
            if (s.cert && !s.key)
              ctx.addIssue({ code: 'custom', path: ['key'], message: 'required with cert' });
            if (s.key && !s.cert)
              ctx.addIssue({ code: 'custom', path: ['cert'], message: 'required with key' });
          })
          .optional(),
      })
      .strict(),
    hl7: z
      .object({
        /** MLLP listener port; null (the default) leaves HL7 off. */
        port: z.number().int().min(0).max(65535).nullable(),
        /** Interface to listen on; default: http.host. */
        host: z.string().min(1).optional(),
        /** Senders allowed to feed the archive, as 'APP^FACILITY' (MSH-3^MSH-4); others get AR and are audited. */
        senders: z.array(z.string().regex(/^[^^]+\^[^^]*$/, "must be 'APPLICATION^FACILITY'")),
        /** Largest message accepted (bytes inside one MLLP frame). */
        maxMessageBytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024),
        /** A connection silent for this long is closed. */
        idleTimeoutSeconds: z.number().int().min(1).max(86_400),
        /** How long an applied message is remembered so that its sender's resend is not applied again (docs/hl7.md). */
        resendWindowDays: z.number().int().min(1).max(3650),
        /** MSH-3 and MSH-4 of the ACKs the archive sends. */
        application: z.string().min(1),
        facility: z.string().min(1),
        /** MLLP over TLS (1.2 or later) on a port of its own. */
        tls: z
          .object({
            port: z.number().int().min(0).max(65535),
            cert: z.string().min(1),
            key: z.string().min(1),
            ca: z.string().min(1).optional(),
            /** PEM CRL(s) of `ca`: a client certificate they revoke is refused at handshake. */
            crl: z.string().min(1).optional(),
            requireClientCert: z.boolean().default(false),
          })
          .strict()
          .superRefine(clientCaRequired)
          .optional(),
      })
      .strict(),
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
        /** Associations the DIMSE listeners hold at once; one more is rejected as transient (local limit exceeded). */
        maxAssociations: z.number().int().min(1),
        /** The same, per calling AE title. */
        maxAssociationsPerAe: z.number().int().min(1),
        connectTimeoutMs: z.number().int().min(100),
        /**
         * How long Custos waits for a peer's answer to a C-STORE it sent (C-MOVE and C-GET sub-operations) before it
         * aborts that association and counts the sub-operation failed.
         */
        responseTimeoutMs: z.number().int().min(100),
        /** When C-STORE answers success: once durable and indexed, or once received and validated. */
        storeAck: z.enum(['committed', 'received']),
        tls: z
          .object({
            port: z.number().int().min(0).max(65535),
            cert: z.string().min(1),
            key: z.string().min(1),
            ca: z.string().min(1).optional(),
            /** PEM CRL(s) of `ca`: a client certificate they revoke is refused at handshake. */
            crl: z.string().min(1).optional(),
            requireClientCert: z.boolean().default(false),
          })
          .strict()
          .superRefine(clientCaRequired)
          .optional(),
      })
      .strict(),
    /** Break-glass windows (docs/access-control.md): default length, and the longest a request may ask for. */
    breakGlass: z
      .object({
        minutes: z.number().int().min(1).max(1440),
        maxMinutes: z.number().int().min(1).max(1440),
      })
      .strict()
      .refine((b) => b.minutes <= b.maxMinutes, {
        path: ['minutes'],
        message: 'must not exceed breakGlass.maxMinutes',
      }),
  })
  .strict();

type SyslogInput = NonNullable<z.infer<typeof ConfigSchema>['audit']['syslog']>;
/** The audit repository after loading: port defaulted per transport, PEM paths absolute. */
export type SyslogConfig = SyslogInput & { port: number };

export type CustosConfig = Omit<z.infer<typeof ConfigSchema>, 'audit'> & {
  keyFile: string;
  audit: Omit<z.infer<typeof ConfigSchema>['audit'], 'syslog'> & {
    signingKeyFile: string;
    checkpointFile: string;
    syslog?: SyslogConfig;
  };
};

function resolveSyslog(s: SyslogInput, cwd: string): SyslogConfig {
  return {
    ...s,
    port: s.port ?? (s.transport === 'tls' ? 6514 : 514),
    ...(s.ca ? { ca: resolve(cwd, s.ca) } : {}),
    ...(s.cert ? { cert: resolve(cwd, s.cert) } : {}),
    ...(s.key ? { key: resolve(cwd, s.key) } : {}),
  };
}

const DEFAULTS = {
  dataDir: './custos-data',
  http: { host: '0.0.0.0', port: 8080, workers: 1, corsOrigins: [], inactivityTimeoutMs: 120_000 },
  database: {},
  blob: { chunkSize: 256 * 1024, fsync: true, minFreeBytes: 256 * 1024 ** 2 },
  limits: {
    maxRequestBytes: 64 * 1024 ** 3,
    maxInstanceBytes: 16 * 1024 ** 3,
    maxHeaderBytes: 64 * 1024 ** 2,
    maxQueryResults: 10_000,
  },
  admin: { username: 'admin' },
  auth: {
    password: { minLength: 12, maxLength: 256, rejectUsername: true, rejectCommon: true },
    lockout: { maxFailures: 5, windowMinutes: 15, lockMinutes: 15 },
    // docs/accounts.md: the roles policies/default.cedar permits export-clinical, export-deidentified,
    // approve-deletion or administer (which includes applying policies); a unit test holds the list to the file.
    mfa: {
      requiredRoles: [
        'radiologist',
        'referring-physician',
        'researcher',
        'data-owner',
        'sysadmin',
        'data-custodian',
        'administrator',
      ],
      requireForAll: false,
      issuer: 'Custos',
    },
    session: { idleMinutes: 15, absoluteHours: 8 },
  },
  nodeName: hostname(),
  memory: { trimGrowthMiB: 64 },
  fixity: { intervalDays: 30, bytesPerSecond: 50 * 1024 * 1024, sliceSeconds: 60, checkSeconds: 300 },
  audit: { checkpointSeconds: 60 },
  hl7: {
    port: null,
    senders: [],
    maxMessageBytes: 1024 * 1024,
    idleTimeoutSeconds: 300,
    resendWindowDays: 7,
    application: 'CUSTOS',
    facility: 'CUSTOS',
  },
  validation: { default: 'standard', byAe: {}, byChannel: {} },
  dicom: {
    port: 11112,
    host: '0.0.0.0',
    aeTitle: 'CUSTOS',
    maxPduLength: 1024 * 1024,
    artimTimeoutMs: 30_000,
    idleTimeoutMs: 300_000,
    maxAssociations: 100,
    maxAssociationsPerAe: 20,
    connectTimeoutMs: 10_000,
    responseTimeoutMs: 60_000,
    storeAck: 'committed',
  },
  breakGlass: { minutes: 60, maxMinutes: 240 },
};

type Json = Record<string, unknown>;

/**
 * Environment variables and the config path each one sets. 'number' where the schema takes fractions (until 6 Dec
 * 2026 those were 'int', and CUSTOS_AUTH_SESSION_ABSOLUTE_HOURS=0.5 was refused though the file took 0.5).
 */
const ENV: Record<
  string,
  { path: string[]; type: 'string' | 'int' | 'number' | 'bool' | 'list' | 'port-or-off' }
> = {
  CUSTOS_DATA_DIR: { path: ['dataDir'], type: 'string' },
  CUSTOS_HTTP_HOST: { path: ['http', 'host'], type: 'string' },
  CUSTOS_HTTP_PORT: { path: ['http', 'port'], type: 'int' },
  CUSTOS_HTTP_WORKERS: { path: ['http', 'workers'], type: 'int' },
  CUSTOS_HTTP_INACTIVITY_TIMEOUT_MS: { path: ['http', 'inactivityTimeoutMs'], type: 'int' },
  CUSTOS_HTTP_CONSOLE_DIR: { path: ['http', 'consoleDir'], type: 'string' },
  CUSTOS_HTTP_CORS_ORIGINS: { path: ['http', 'corsOrigins'], type: 'list' },
  CUSTOS_HTTP_PUBLIC_URL: { path: ['http', 'publicUrl'], type: 'string' },
  CUSTOS_HTTP_TLS_CERT: { path: ['http', 'tls', 'cert'], type: 'string' },
  CUSTOS_HTTP_TLS_KEY: { path: ['http', 'tls', 'key'], type: 'string' },
  CUSTOS_DATABASE_URL: { path: ['database', 'url'], type: 'string' },
  CUSTOS_DATABASE_SCHEMA: { path: ['database', 'schema'], type: 'string' },
  CUSTOS_KEY_FILE: { path: ['keyFile'], type: 'string' },
  CUSTOS_BLOB_CHUNK_SIZE: { path: ['blob', 'chunkSize'], type: 'int' },
  CUSTOS_BLOB_FSYNC: { path: ['blob', 'fsync'], type: 'bool' },
  CUSTOS_BLOB_MIN_FREE_BYTES: { path: ['blob', 'minFreeBytes'], type: 'int' },
  CUSTOS_MAX_REQUEST_BYTES: { path: ['limits', 'maxRequestBytes'], type: 'int' },
  CUSTOS_MAX_INSTANCE_BYTES: { path: ['limits', 'maxInstanceBytes'], type: 'int' },
  CUSTOS_MAX_HEADER_BYTES: { path: ['limits', 'maxHeaderBytes'], type: 'int' },
  CUSTOS_MAX_QUERY_RESULTS: { path: ['limits', 'maxQueryResults'], type: 'int' },
  CUSTOS_ADMIN_USERNAME: { path: ['admin', 'username'], type: 'string' },
  CUSTOS_NODE_NAME: { path: ['nodeName'], type: 'string' },
  CUSTOS_AUTH_MFA_REQUIRED_ROLES: { path: ['auth', 'mfa', 'requiredRoles'], type: 'list' },
  CUSTOS_AUTH_MFA_REQUIRE_FOR_ALL: { path: ['auth', 'mfa', 'requireForAll'], type: 'bool' },
  CUSTOS_AUTH_SESSION_IDLE_MINUTES: { path: ['auth', 'session', 'idleMinutes'], type: 'int' },
  CUSTOS_AUTH_SESSION_ABSOLUTE_HOURS: { path: ['auth', 'session', 'absoluteHours'], type: 'number' },
  CUSTOS_AUTH_LOCKOUT_MAX_FAILURES: { path: ['auth', 'lockout', 'maxFailures'], type: 'int' },
  CUSTOS_OIDC_ISSUER: { path: ['oidc', 'issuer'], type: 'string' },
  CUSTOS_OIDC_AUDIENCE: { path: ['oidc', 'audience'], type: 'string' },
  CUSTOS_OIDC_JWKS_URI: { path: ['oidc', 'jwksUri'], type: 'string' },
  CUSTOS_VALIDATION_DEFAULT: { path: ['validation', 'default'], type: 'string' },
  CUSTOS_MEMORY_TRIM_GROWTH_MIB: { path: ['memory', 'trimGrowthMiB'], type: 'int' },
  CUSTOS_FIXITY_INTERVAL_DAYS: { path: ['fixity', 'intervalDays'], type: 'number' },
  CUSTOS_FIXITY_BYTES_PER_SECOND: { path: ['fixity', 'bytesPerSecond'], type: 'int' },
  CUSTOS_FIXITY_SLICE_SECONDS: { path: ['fixity', 'sliceSeconds'], type: 'int' },
  CUSTOS_FIXITY_CHECK_SECONDS: { path: ['fixity', 'checkSeconds'], type: 'int' },
  CUSTOS_AUDIT_SIGNING_KEY_FILE: { path: ['audit', 'signingKeyFile'], type: 'string' },
  CUSTOS_AUDIT_CHECKPOINT_FILE: { path: ['audit', 'checkpointFile'], type: 'string' },
  CUSTOS_AUDIT_CHECKPOINT_SECONDS: { path: ['audit', 'checkpointSeconds'], type: 'int' },
  CUSTOS_AUDIT_SYSLOG_TRANSPORT: { path: ['audit', 'syslog', 'transport'], type: 'string' },
  CUSTOS_AUDIT_SYSLOG_HOST: { path: ['audit', 'syslog', 'host'], type: 'string' },
  CUSTOS_AUDIT_SYSLOG_PORT: { path: ['audit', 'syslog', 'port'], type: 'int' },
  CUSTOS_AUDIT_SYSLOG_CA: { path: ['audit', 'syslog', 'ca'], type: 'string' },
  CUSTOS_AUDIT_SYSLOG_CERT: { path: ['audit', 'syslog', 'cert'], type: 'string' },
  CUSTOS_AUDIT_SYSLOG_KEY: { path: ['audit', 'syslog', 'key'], type: 'string' },
  CUSTOS_HL7_PORT: { path: ['hl7', 'port'], type: 'port-or-off' },
  CUSTOS_HL7_HOST: { path: ['hl7', 'host'], type: 'string' },
  CUSTOS_HL7_SENDERS: { path: ['hl7', 'senders'], type: 'list' },
  CUSTOS_HL7_MAX_MESSAGE_BYTES: { path: ['hl7', 'maxMessageBytes'], type: 'int' },
  CUSTOS_HL7_IDLE_TIMEOUT_SECONDS: { path: ['hl7', 'idleTimeoutSeconds'], type: 'int' },
  CUSTOS_HL7_RESEND_WINDOW_DAYS: { path: ['hl7', 'resendWindowDays'], type: 'int' },
  CUSTOS_HL7_APPLICATION: { path: ['hl7', 'application'], type: 'string' },
  CUSTOS_HL7_FACILITY: { path: ['hl7', 'facility'], type: 'string' },
  CUSTOS_HL7_TLS_PORT: { path: ['hl7', 'tls', 'port'], type: 'int' },
  CUSTOS_HL7_TLS_CERT: { path: ['hl7', 'tls', 'cert'], type: 'string' },
  CUSTOS_HL7_TLS_KEY: { path: ['hl7', 'tls', 'key'], type: 'string' },
  CUSTOS_HL7_TLS_CA: { path: ['hl7', 'tls', 'ca'], type: 'string' },
  CUSTOS_HL7_TLS_CRL: { path: ['hl7', 'tls', 'crl'], type: 'string' },
  CUSTOS_HL7_TLS_REQUIRE_CLIENT_CERT: { path: ['hl7', 'tls', 'requireClientCert'], type: 'bool' },
  CUSTOS_DICOM_PORT: { path: ['dicom', 'port'], type: 'port-or-off' },
  CUSTOS_DICOM_HOST: { path: ['dicom', 'host'], type: 'string' },
  CUSTOS_DICOM_AE_TITLE: { path: ['dicom', 'aeTitle'], type: 'string' },
  CUSTOS_DICOM_MAX_PDU_LENGTH: { path: ['dicom', 'maxPduLength'], type: 'int' },
  CUSTOS_DICOM_ARTIM_TIMEOUT_MS: { path: ['dicom', 'artimTimeoutMs'], type: 'int' },
  CUSTOS_DICOM_IDLE_TIMEOUT_MS: { path: ['dicom', 'idleTimeoutMs'], type: 'int' },
  CUSTOS_DICOM_MAX_ASSOCIATIONS: { path: ['dicom', 'maxAssociations'], type: 'int' },
  CUSTOS_DICOM_MAX_ASSOCIATIONS_PER_AE: { path: ['dicom', 'maxAssociationsPerAe'], type: 'int' },
  CUSTOS_DICOM_RESPONSE_TIMEOUT_MS: { path: ['dicom', 'responseTimeoutMs'], type: 'int' },
  CUSTOS_DICOM_STORE_ACK: { path: ['dicom', 'storeAck'], type: 'string' },
  CUSTOS_BREAK_GLASS_MINUTES: { path: ['breakGlass', 'minutes'], type: 'int' },
  CUSTOS_BREAK_GLASS_MAX_MINUTES: { path: ['breakGlass', 'maxMinutes'], type: 'int' },
  CUSTOS_DICOM_TLS_PORT: { path: ['dicom', 'tls', 'port'], type: 'int' },
  CUSTOS_DICOM_TLS_CERT: { path: ['dicom', 'tls', 'cert'], type: 'string' },
  CUSTOS_DICOM_TLS_KEY: { path: ['dicom', 'tls', 'key'], type: 'string' },
  CUSTOS_DICOM_TLS_CA: { path: ['dicom', 'tls', 'ca'], type: 'string' },
  CUSTOS_DICOM_TLS_CRL: { path: ['dicom', 'tls', 'crl'], type: 'string' },
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
    } else if (spec.type === 'number') {
      if (!/^\d+(\.\d+)?$/.test(raw)) throw configError(name, `must be a non-negative number, got '${raw}'`);
      value = Number(raw);
    } else if (spec.type === 'bool') {
      if (!['true', 'false', '1', '0'].includes(raw))
        throw configError(name, `must be true or false, got '${raw}'`);
      value = raw === 'true' || raw === '1';
    } else if (spec.type === 'list') {
      // Comma-separated; empty entries dropped (CUSTOS_HL7_SENDERS='ADT1^HOSP,RIS^HOSP').
      value = raw
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
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

/** The settings that name files, as paths into the config. */
const PATH_SETTINGS = [
  ['dataDir'],
  ['keyFile'],
  ['audit', 'signingKeyFile'],
  ['audit', 'checkpointFile'],
  ['audit', 'syslog', 'ca'],
  ['audit', 'syslog', 'cert'],
  ['audit', 'syslog', 'key'],
  ['http', 'tls', 'cert'],
  ['http', 'tls', 'key'],
  ['hl7', 'tls', 'cert'],
  ['hl7', 'tls', 'key'],
  ['hl7', 'tls', 'ca'],
  ['hl7', 'tls', 'crl'],
  ['dicom', 'tls', 'cert'],
  ['dicom', 'tls', 'key'],
  ['dicom', 'tls', 'ca'],
  ['dicom', 'tls', 'crl'],
];

/**
 * A relative path in the config file is relative to the file's directory, whatever directory the command runs
 * in (until 5 Dec 2026 it was relative to the working directory, so `keyFile: "secrets/kek.json"` named another
 * file, or none, when custos was started from elsewhere). Paths from the environment and flags stay relative to
 * the working directory.
 */
function anchorPaths(filePart: Json, base: string): Json {
  const out = structuredClone(filePart);
  for (const path of PATH_SETTINGS) {
    let node: unknown = out;
    for (const key of path.slice(0, -1)) node = (node as Record<string, unknown> | undefined)?.[key];
    const leaf = path.at(-1)!;
    if (typeof node !== 'object' || node === null) continue;
    const value = (node as Record<string, unknown>)[leaf];
    if (typeof value === 'string' && value !== '' && !isAbsolute(value))
      (node as Record<string, unknown>)[leaf] = resolve(base, value);
  }
  return out;
}

export function loadConfig(input: LoadConfigInput): CustosConfig {
  const envPart = fromEnv(input.env);
  const flags = input.flags ?? {};
  const preliminaryDataDir = (flags.dataDir ?? envPart.dataDir ?? DEFAULTS.dataDir) as string;
  const filePath = input.configFile ?? join(resolve(input.cwd, preliminaryDataDir), 'custos.json');
  let filePart: Json = {};
  if (input.configFile !== undefined || existsSync(filePath)) {
    try {
      // An editor's byte order mark (Windows Notepad saves one) is not JSON; until 6 Dec 2026 it was refused.
      filePart = JSON.parse(readFileSync(filePath, 'utf8').replace(/^\uFEFF/, '')) as Json;
    } catch (err) {
      throw configError(filePath, `cannot read the config file: ${(err as Error).message}`);
    }
    if (typeof filePart !== 'object' || filePart === null || Array.isArray(filePart))
      throw configError(filePath, 'the config file must hold one JSON object of settings');
    filePart = anchorPaths(filePart, dirname(resolve(input.cwd, filePath)));
  }
  const merged = merge(merge(merge(DEFAULTS as Json, filePart), envPart), flags);
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key =
      issue.code === 'unrecognized_keys'
        ? [...issue.path, issue.keys[0]].join('.')
        : issue.path.join('.') || '(root)';
    const variable =
      issue.code === 'unrecognized_keys' ? undefined : envVariableOf(issue.path, input.env, flags);
    throw configError(
      variable ? `${variable} (${key})` : key,
      issue.code === 'unrecognized_keys'
        ? 'is not a known setting'
        : (missingTlsFile(issue) ?? issue.message),
    );
  }
  const cfg = parsed.data;
  refusePortClashes(cfg);
  const dataDir = isAbsolute(cfg.dataDir) ? cfg.dataDir : resolve(input.cwd, cfg.dataDir);
  refuseFileAsDataDir(dataDir);
  const keyFile = cfg.keyFile ? resolve(input.cwd, cfg.keyFile) : join(dataDir, 'keys', 'kek.json');
  const { syslog, ...auditRest } = cfg.audit;
  const audit = {
    ...auditRest,
    signingKeyFile: cfg.audit.signingKeyFile
      ? resolve(input.cwd, cfg.audit.signingKeyFile)
      : join(dataDir, 'keys', 'audit-signing.pem'),
    checkpointFile: cfg.audit.checkpointFile
      ? resolve(input.cwd, cfg.audit.checkpointFile)
      : join(dataDir, 'audit', 'checkpoints.jsonl'),
    ...(syslog ? { syslog: resolveSyslog(syslog, input.cwd) } : {}),
  };
  const hl7 = cfg.hl7.tls
    ? {
        ...cfg.hl7,
        tls: {
          ...cfg.hl7.tls,
          cert: resolve(input.cwd, cfg.hl7.tls.cert),
          key: resolve(input.cwd, cfg.hl7.tls.key),
          ...(cfg.hl7.tls.ca ? { ca: resolve(input.cwd, cfg.hl7.tls.ca) } : {}),
          ...(cfg.hl7.tls.crl ? { crl: resolve(input.cwd, cfg.hl7.tls.crl) } : {}),
        },
      }
    : cfg.hl7;
  const dicomTls = cfg.dicom.tls
    ? {
        ...cfg.dicom.tls,
        cert: resolve(input.cwd, cfg.dicom.tls.cert),
        key: resolve(input.cwd, cfg.dicom.tls.key),
        ...(cfg.dicom.tls.ca ? { ca: resolve(input.cwd, cfg.dicom.tls.ca) } : {}),
        ...(cfg.dicom.tls.crl ? { crl: resolve(input.cwd, cfg.dicom.tls.crl) } : {}),
      }
    : undefined;
  const http = cfg.http.tls
    ? {
        ...cfg.http,
        tls: { cert: resolve(input.cwd, cfg.http.tls.cert), key: resolve(input.cwd, cfg.http.tls.key) },
      }
    : cfg.http;
  return {
    ...cfg,
    dataDir,
    keyFile,
    audit,
    http,
    hl7,
    dicom: { ...cfg.dicom, ...(dicomTls ? { tls: dicomTls } : {}) },
  };
}

const startsWith = (path: readonly PropertyKey[], prefix: readonly string[]) =>
  prefix.length <= path.length && prefix.every((p, i) => String(path[i]) === p);

/**
 * The environment variable a setting's value came from, so that an error about it names what the operator typed
 * (until 6 Dec 2026 only the config key, which a reader of the service's unit file does not find there). A flag
 * setting the same key wins over the variable.
 */
function envVariableOf(
  issuePath: readonly PropertyKey[],
  env: NodeJS.ProcessEnv,
  flags: Json,
): string | undefined {
  let fromFlag: unknown = flags;
  for (const p of issuePath) fromFlag = (fromFlag as Json | undefined)?.[String(p)];
  if (fromFlag !== undefined) return undefined;
  return Object.entries(ENV).find(
    ([name, spec]) => env[name] !== undefined && issuePath.length > 0 && startsWith(issuePath, spec.path),
  )?.[0];
}

/** What turns each TLS listener on without naming its files, as the operator may have typed it. */
const TLS_TRIGGER = new Map([
  ['http', 'for HTTPS'],
  ['hl7', 'with hl7.tls.port (CUSTOS_HL7_TLS_PORT)'],
  ['dicom', 'with dicom.tls.port (--dicom-tls-port, CUSTOS_DICOM_TLS_PORT)'],
]);

/**
 * A TLS listener asked for without its certificate or key (`custos serve --dicom-tls-port 2762` alone) is told which
 * settings name the two files; until 7 Dec 2026 the error said only `configuration dicom.tls.cert: Required`.
 */
function missingTlsFile(issue: z.ZodIssue): string | undefined {
  if (issue.code !== 'invalid_type' || issue.received !== 'undefined') return undefined;
  const [section = '', tls, leaf, ...rest] = issue.path.map(String);
  const trigger = TLS_TRIGGER.get(section);
  if (!trigger || tls !== 'tls' || (leaf !== 'cert' && leaf !== 'key') || rest.length) return undefined;
  const variable = (k: string) =>
    Object.entries(ENV).find(([, spec]) => spec.path.join('.') === `${section}.tls.${k}`)![0];
  return (
    `is required ${trigger}: name the PEM server certificate (chain) and its private key with ` +
    `${section}.tls.cert and ${section}.tls.key in the config file, or ${variable('cert')} and ${variable('key')}`
  );
}

type ParsedConfig = z.infer<typeof ConfigSchema>;

/**
 * Two listeners given one port on hosts that overlap (the same host, or either listening on every address) would
 * fail at the second listen, after the archive was initialised and its one-time password printed (until 6 Dec
 * 2026); port 0 (any free port) never clashes.
 */
function refusePortClashes(cfg: ParsedConfig): void {
  const hl7Host = cfg.hl7.host ?? cfg.http.host;
  const listeners: { key: string; port: number | null | undefined; host: string }[] = [
    { key: 'http.port', port: cfg.http.port, host: cfg.http.host },
    { key: 'dicom.port', port: cfg.dicom.port, host: cfg.dicom.host },
    { key: 'dicom.tls.port', port: cfg.dicom.tls?.port, host: cfg.dicom.host },
    { key: 'hl7.port', port: cfg.hl7.port, host: hl7Host },
    { key: 'hl7.tls.port', port: cfg.hl7.tls?.port, host: hl7Host },
  ];
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::';
  const on = listeners.filter((l) => typeof l.port === 'number' && l.port !== 0);
  for (const [i, a] of on.entries())
    for (const b of on.slice(i + 1))
      if (a.port === b.port && (a.host === b.host || wildcard(a.host) || wildcard(b.host)))
        throw configError(
          b.key,
          `port ${b.port} is also ${a.key} (hosts ${a.host} and ${b.host} overlap); give each listener a port of its own`,
        );
}

/**
 * A data directory that names a file (`--data image.dcm`), or lies below one, is refused as a setting; until 6 Dec
 * 2026 it reached mkdir and ended with Node's `EEXIST` or `ENOTDIR` alone.
 */
function refuseFileAsDataDir(dataDir: string): void {
  for (let p = dataDir; ; p = dirname(p)) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(p).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(p) === p) return;
      continue;
    }
    if (isDirectory) return;
    throw configError(
      'dataDir',
      `${dataDir} ${p === dataDir ? 'is a file' : `lies below ${p}, a file`}, not a directory; name a directory (or one to create) with --data or CUSTOS_DATA_DIR`,
    );
  }
}

/** An absolute http(s) URL, a path allowed, no user, query or fragment (http.publicUrl). */
function isPublicUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return (
      (u.protocol === 'http:' || u.protocol === 'https:') &&
      !u.username &&
      !u.password &&
      !u.search &&
      !u.hash &&
      !text.includes('?') &&
      !text.includes('#')
    );
  } catch {
    return false;
  }
}

/** 'https://host[:port]' exactly as a browser sends it in an Origin header: no path, no trailing slash. */
function isOrigin(text: string): boolean {
  try {
    const u = new URL(text);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === text;
  } catch {
    return false;
  }
}
