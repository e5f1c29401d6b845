import { toDicomAuditXml, type DicomAuditOptions } from '../../domain/audit-dicom.js';
import type { AuditRecord } from '../../domain/audit-record.js';
import type { AuditSink } from '../../ports/audit-sink.js';
import { formatSyslog } from './rfc5424.js';
import type { SyslogTransport } from './tls-transport.js';

export interface SyslogAuditSinkOptions extends DicomAuditOptions {
  /** RFC 5424 APP-NAME. */
  appName?: string;
  /** RFC 5424 MSGID; IHE ITI-20 names the DICOM audit message format IHE+RFC-3881. */
  msgId?: string;
  procId?: string;
}

/** Audit records as DICOM audit messages (PS3.15 A.5) in RFC 5424 syslog messages, over a syslog transport. */
export class SyslogAuditSink implements AuditSink {
  constructor(
    private readonly transport: SyslogTransport,
    private readonly opts: SyslogAuditSinkOptions = {},
  ) {}

  format(record: AuditRecord): Buffer {
    return formatSyslog(
      {
        timestamp: record.ts,
        hostname: record.node,
        appName: this.opts.appName ?? 'custos',
        msgId: this.opts.msgId ?? 'IHE+RFC-3881',
        ...(this.opts.procId ? { procId: this.opts.procId } : {}),
      },
      toDicomAuditXml(record, this.opts),
    );
  }

  deliver(records: readonly AuditRecord[]): Promise<void> {
    return this.transport.send(records.map((r) => this.format(r)));
  }

  connection() {
    return this.transport.connection();
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
