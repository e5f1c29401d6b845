import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { createServer, type TLSSocket } from 'node:tls';
import { parseOctetCounted } from '../../src/adapters/syslog/rfc5424.js';

/** A syslog message as received, split into its RFC 5424 header fields and MSG. */
export interface ReceivedSyslog {
  raw: Buffer;
  pri: number;
  version: string;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  structuredData: string;
  bom: boolean;
  msg: string;
}

export function parseSyslog(raw: Buffer): ReceivedSyslog {
  const m = /^<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) /.exec(raw.toString('latin1'));
  if (!m) throw new Error(`not an RFC 5424 message: ${raw.subarray(0, 80).toString('latin1')}`);
  let body = raw.subarray(Buffer.byteLength(m[0], 'latin1'));
  const bom = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
  if (bom) body = body.subarray(3);
  return {
    raw,
    pri: Number(m[1]),
    version: m[2]!,
    timestamp: m[3]!,
    hostname: m[4]!,
    appName: m[5]!,
    procId: m[6]!,
    msgId: m[7]!,
    structuredData: m[8]!,
    bom,
    msg: body.toString('utf8'),
  };
}

export interface SyslogReceiver {
  port: number;
  messages: ReceivedSyslog[];
  /** Peer certificate subjects and TLS versions seen (TLS only). */
  clientSubjects: string[];
  protocols: string[];
  /** Resolves once at least `n` messages arrived (rejects after `ms`). */
  waitFor(n: number, ms?: number): Promise<ReceivedSyslog[]>;
  close(): Promise<void>;
}

function waiter(messages: ReceivedSyslog[]) {
  return (n: number, ms = 10_000) =>
    new Promise<ReceivedSyslog[]>((resolve, reject) => {
      const started = Date.now();
      const tick = () => {
        if (messages.length >= n) return resolve(messages);
        if (Date.now() - started > ms)
          return reject(new Error(`expected ${n} syslog messages, got ${messages.length} within ${ms} ms`));
        setTimeout(tick, 20);
      };
      tick();
    });
}

/** An RFC 5425 receiver on loopback: TLS, octet-counting framing; `port` 0 picks a free port. */
export async function startTlsReceiver(opts: {
  cert: string;
  key: string;
  ca?: string;
  requestCert?: boolean;
  port?: number;
}): Promise<SyslogReceiver> {
  const messages: ReceivedSyslog[] = [];
  const clientSubjects: string[] = [];
  const protocols: string[] = [];
  const sockets = new Set<TLSSocket>();
  const server = createServer(
    {
      cert: opts.cert,
      key: opts.key,
      minVersion: 'TLSv1.2',
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.requestCert ? { requestCert: true, rejectUnauthorized: true } : {}),
    },
    (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      const peer = socket.getPeerCertificate();
      if (peer?.subject) clientSubjects.push(String(peer.subject.CN));
      protocols.push(String(socket.getProtocol()));
      let pending = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        const { messages: got, rest } = parseOctetCounted(Buffer.concat([pending, chunk]));
        pending = Buffer.from(rest);
        for (const g of got) messages.push(parseSyslog(Buffer.from(g)));
      });
    },
  );
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    messages,
    clientSubjects,
    protocols,
    waitFor: waiter(messages),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An RFC 5426 receiver on loopback: one message per datagram. */
export async function startUdpReceiver(): Promise<SyslogReceiver> {
  const messages: ReceivedSyslog[] = [];
  const socket = createSocket('udp4');
  socket.on('message', (msg) => messages.push(parseSyslog(msg)));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    messages,
    clientSubjects: [],
    protocols: [],
    waitFor: waiter(messages),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
