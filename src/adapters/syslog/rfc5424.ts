import { CustosError } from '../../domain/errors.js';

/**
 * RFC 5424 syslog message formatting. IHE ATNA (ITI-20) and DICOM PS3.15 A.5 send audit messages as the MSG of
 * a syslog message: facility 10 (security/authorization, "authpriv"), severity 5 (notice), MSGID IHE+RFC-3881.
 */
export interface SyslogHeader {
  facility?: number;
  severity?: number;
  /** RFC 3339 timestamp of the event. */
  timestamp: string;
  hostname: string;
  appName: string;
  procId?: string;
  msgId: string;
}

/** RFC 5424 §6.2: PRINTUSASCII fields with a maximum length; the NILVALUE '-' when empty. */
function field(name: string, value: string | undefined, max: number): string {
  if (value === undefined || value === '') return '-';
  const clean = value.replace(/[^\x21-\x7e]/g, '_');
  if (clean.length > max) {
    throw new CustosError({
      code: 'syslog.field-too-long',
      message: `syslog ${name} '${clean.slice(0, 40)}…' is longer than RFC 5424 allows (${max})`,
    });
  }
  return clean;
}

/** RFC 5424 §6.2.3: TIME-SECFRAC has at most six digits; ISO strings from the ledger have three. */
function timestamp(ts: string): string {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/.test(ts)) {
    throw new CustosError({ code: 'syslog.bad-timestamp', message: `'${ts}' is not an RFC 3339 timestamp` });
  }
  return ts;
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * One syslog message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`. The MSG is UTF-8 and starts with
 * the BOM (RFC 5424 §6.4: MSG-UTF8), which is how a receiver knows it is UTF-8.
 */
export function formatSyslog(h: SyslogHeader, msg: string, opts: { bom?: boolean } = {}): Buffer {
  const facility = h.facility ?? 10;
  const severity = h.severity ?? 5;
  const head =
    `<${facility * 8 + severity}>1 ${timestamp(h.timestamp)} ${field('HOSTNAME', h.hostname, 255)} ` +
    `${field('APP-NAME', h.appName, 48)} ${field('PROCID', h.procId, 128)} ${field('MSGID', h.msgId, 32)} - `;
  return Buffer.concat([
    Buffer.from(head, 'ascii'),
    ...(opts.bom === false ? [] : [BOM]),
    Buffer.from(msg, 'utf8'),
  ]);
}

/** RFC 5425 §4.3 (RFC 6587 octet counting): `MSG-LEN SP SYSLOG-MSG`, the length in octets. */
export function octetCountingFrame(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${message.length} `, 'ascii'), message]);
}

/**
 * Splits a stream of octet-counted frames (the receiving side, for tests and tools): returns whole messages and
 * the bytes of an incomplete trailing frame.
 */
export function parseOctetCounted(buf: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let at = 0;
  for (;;) {
    const sp = buf.indexOf(0x20, at);
    if (sp < 0) break;
    const lenText = buf.subarray(at, sp).toString('ascii');
    if (!/^[1-9]\d{0,8}$/.test(lenText)) throw new Error(`bad octet count '${lenText}' at offset ${at}`);
    const len = Number(lenText);
    if (buf.length < sp + 1 + len) break;
    messages.push(buf.subarray(sp + 1, sp + 1 + len));
    at = sp + 1 + len;
  }
  return { messages, rest: buf.subarray(at) };
}
