import { isIP } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { CustosError } from '../../domain/errors.js';
import { octetCountingFrame } from './rfc5424.js';

export interface SyslogTransport {
  /** Sends the messages in order; resolves once each was written to the transport, rejects on any failure. */
  send(messages: readonly Buffer[]): Promise<void>;
  connection(): { epoch: number; open: boolean };
  close(): Promise<void>;
}

export interface TlsSyslogOptions {
  host: string;
  port: number;
  /** PEM: CA certificate(s) that signed the repository's certificate (default: Node's built-in roots). */
  ca?: string | Buffer;
  /** PEM client certificate and key, for repositories that authenticate the sender (IHE ATNA node auth). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name the server certificate must carry; defaults to host when it is a name. */
  serverName?: string;
  connectTimeoutMs?: number;
  /** How long a batch of writes may wait for the socket to accept them. */
  sendTimeoutMs?: number;
}

/**
 * RFC 5425 syslog over TLS: one long-lived connection, TLS 1.2 or later, server certificate always verified,
 * each message framed by octet counting. RFC 5425 has no application acknowledgement: a write that completed
 * reached the local TCP stack, not necessarily the repository; see `connection()` for how the forwarder narrows
 * that window.
 */
export class TlsSyslogTransport implements SyslogTransport {
  private socket: TLSSocket | undefined;
  private connecting: Promise<TLSSocket> | undefined;
  /** The socket of a connection attempt still in its handshake. */
  private pending: TLSSocket | undefined;
  private epoch = 0;
  private open = false;

  constructor(private readonly opts: TlsSyslogOptions) {}

  connection() {
    return { epoch: this.epoch, open: this.open };
  }

  private connect(): Promise<TLSSocket> {
    if (this.socket && this.open) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<TLSSocket>((resolve, reject) => {
      const { host, port } = this.opts;
      const socket = connect({
        host,
        port,
        minVersion: 'TLSv1.2',
        rejectUnauthorized: true,
        ...(this.opts.ca ? { ca: this.opts.ca } : {}),
        ...(this.opts.cert ? { cert: this.opts.cert } : {}),
        ...(this.opts.key ? { key: this.opts.key } : {}),
        ...((this.opts.serverName ?? (isIP(host) ? undefined : host))
          ? { servername: this.opts.serverName ?? host }
          : {}),
      });
      this.pending = socket;
      const timer = setTimeout(
        () =>
          socket.destroy(new Error(`no TLS connection within ${this.opts.connectTimeoutMs ?? 10_000} ms`)),
        this.opts.connectTimeoutMs ?? 10_000,
      );
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        this.epoch++;
        this.open = true;
        this.socket = socket;
        this.pending = undefined;
        this.connecting = undefined;
        resolve(socket);
      });
      // A receiver sends nothing (RFC 5425 §4.3); reading keeps the socket flowing so a close is noticed.
      socket.on('data', () => {});
      socket.on('end', () => socket.destroy());
      socket.on('error', (err) => {
        clearTimeout(timer);
        if (this.connecting) {
          this.connecting = undefined;
          reject(
            new CustosError({
              code: 'syslog.connect-failed',
              message: `cannot reach the audit record repository at ${host}:${port} over TLS: ${err.message}`,
              cause: err,
            }),
          );
        }
      });
      socket.on('close', () => {
        clearTimeout(timer);
        if (this.pending === socket) this.pending = undefined;
        if (this.socket === socket) {
          this.open = false;
          this.socket = undefined;
        }
        if (this.connecting) {
          this.connecting = undefined;
          reject(
            new CustosError({
              code: 'syslog.connect-failed',
              message: `the audit record repository at ${host}:${port} closed the TLS connection`,
            }),
          );
        }
      });
    });
    return this.connecting;
  }

  async send(messages: readonly Buffer[]): Promise<void> {
    if (!messages.length) return;
    const socket = await this.connect();
    const writes = messages.map(
      (m) =>
        new Promise<void>((resolve, reject) => {
          socket.write(octetCountingFrame(m), (err) => (err ? reject(err) : resolve()));
        }),
    );
    // A repository that stops reading fills the socket buffer and the writes never complete: give up on the
    // connection after sendTimeoutMs so the forwarder retries (and stop() is not held forever).
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`writes not accepted within ${this.opts.sendTimeoutMs ?? 30_000} ms`)),
        this.opts.sendTimeoutMs ?? 30_000,
      );
    });
    try {
      const all = Promise.all(writes);
      all.catch(() => {}); // settled by the race below; a later rejection must not go unhandled
      await Promise.race([all, timeout]);
    } catch (err) {
      socket.destroy();
      if (this.socket === socket) {
        this.socket = undefined;
        this.open = false;
      }
      throw new CustosError({
        code: 'syslog.send-failed',
        message: `sending to the audit record repository failed: ${(err as Error).message}`,
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
    if (socket.destroyed) {
      throw new CustosError({
        code: 'syslog.send-failed',
        message: 'the TLS connection to the audit record repository closed while sending',
      });
    }
  }

  async close(): Promise<void> {
    this.pending?.destroy();
    const socket = this.socket;
    this.socket = undefined;
    this.open = false;
    if (!socket || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
      setTimeout(() => socket.destroy(), 2000).unref();
    });
  }
}
