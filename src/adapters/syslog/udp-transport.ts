import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { CustosError } from '../../domain/errors.js';
import type { SyslogTransport } from './tls-transport.js';

export interface UdpSyslogOptions {
  host: string;
  port: number;
  /** Largest datagram sent; RFC 5426 §3.2: larger messages are truncated. IPv4 UDP carries at most 65,507. */
  maxMessageBytes?: number;
}

/**
 * RFC 5426 syslog over UDP: one message per datagram, no framing, no acknowledgement. Delivery is best effort by
 * the protocol's design (a datagram lost on the network is not noticed); use TLS where that matters.
 */
export class UdpSyslogTransport implements SyslogTransport {
  private readonly socket: Socket;
  private readonly max: number;
  /** Messages cut to `maxMessageBytes` (RFC 5426 §3.2); the XML of such a message is incomplete. */
  truncated = 0;

  constructor(private readonly opts: UdpSyslogOptions) {
    this.socket = createSocket(isIP(opts.host) === 6 ? 'udp6' : 'udp4');
    this.socket.on('error', () => {});
    this.socket.unref();
    this.max = opts.maxMessageBytes ?? 65_507;
  }

  connection() {
    return { epoch: 1, open: true };
  }

  async send(messages: readonly Buffer[]): Promise<void> {
    for (const m of messages) {
      const datagram = m.length > this.max ? m.subarray(0, this.max) : m;
      if (datagram !== m) this.truncated++;
      await new Promise<void>((resolve, reject) => {
        this.socket.send(datagram, this.opts.port, this.opts.host, (err) =>
          err
            ? reject(
                new CustosError({
                  code: 'syslog.send-failed',
                  message: `cannot send to the audit record repository at ${this.opts.host}:${this.opts.port} over UDP: ${err.message}`,
                  cause: err,
                }),
              )
            : resolve(),
        );
      });
    }
  }

  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
