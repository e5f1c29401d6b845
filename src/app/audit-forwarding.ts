import { readFile } from 'node:fs/promises';
import { SqlForwardLease } from '../adapters/sql/sql-forward-lease.js';
import { SyslogAuditSink } from '../adapters/syslog/syslog-audit-sink.js';
import { TlsSyslogTransport } from '../adapters/syslog/tls-transport.js';
import { UdpSyslogTransport } from '../adapters/syslog/udp-transport.js';
import { CustosError } from '../domain/errors.js';
import type { AuditStore } from '../ports/audit-ledger.js';
import type { Clock } from '../ports/clock.js';
import type { IndexDb } from '../ports/database.js';
import { AuditForwarder } from '../services/audit-forwarder.js';
import type { CustosConfig } from './config.js';

async function pem(key: string, path: string | undefined): Promise<Buffer | undefined> {
  if (!path) return undefined;
  try {
    return await readFile(path);
  } catch (err) {
    throw new CustosError({
      code: 'config.invalid',
      message: `configuration audit.syslog.${key}: cannot read ${path}: ${(err as Error).message}`,
      detail: { key: `audit.syslog.${key}` },
      cause: err,
    });
  }
}

/**
 * The syslog forwarder of the configured audit record repository, not yet started (a server starts it; one-shot
 * CLI commands never forward). Undefined when no repository is configured.
 */
export async function buildAuditForwarder(
  config: CustosConfig,
  index: IndexDb,
  store: AuditStore,
  clock: Clock,
): Promise<AuditForwarder | undefined> {
  const s = config.audit.syslog;
  if (!s) return undefined;
  const transport =
    s.transport === 'tls'
      ? new TlsSyslogTransport({
          host: s.host,
          port: s.port,
          ...(s.ca ? { ca: (await pem('ca', s.ca))! } : {}),
          ...(s.cert ? { cert: (await pem('cert', s.cert))! } : {}),
          ...(s.key ? { key: (await pem('key', s.key))! } : {}),
        })
      : new UdpSyslogTransport({ host: s.host, port: s.port });
  return new AuditForwarder({
    store,
    sink: new SyslogAuditSink(transport, { procId: String(process.pid) }),
    lease: new SqlForwardLease(index),
    clock,
    owner: `${config.nodeName}:${process.pid}`,
  });
}
