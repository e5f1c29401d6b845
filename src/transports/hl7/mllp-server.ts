import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, Server as TlsServer, type TLSSocket } from 'node:tls';
import { serverTlsContext, type ServerTlsMaterial } from '../server/tls-context.js';
import type { Hl7Handler, Hl7Peer } from './hl7-handler.js';
import { MllpDecoder, mllpFrame } from './mllp-decoder.js';

/** How long a connection closed for an overrun is read (and dropped) after its FIN, for its last replies to arrive. */
const LINGER_MS = 2000;

export interface MllpServerOptions {
  host: string;
  port: number;
  handler: Hl7Handler;
  maxMessageBytes: number;
  idleTimeoutMs: number;
  /** PEM material for MLLP over TLS (TLS 1.2 or later). */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; crl?: Buffer; requireClientCert: boolean };
  onError?: (err: unknown) => void;
}

/**
 * An MLLP listener. Messages on one connection are handled one after another and answered in the order they
 * came (a sender pairs ACKs with messages by order); a bad frame is answered and the connection keeps going.
 */
export class MllpServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Records of connections that closed inside a frame, still being written. */
  private readonly closing = new Set<Promise<void>>();

  constructor(private readonly opts: MllpServerOptions) {
    const onConnection = (socket: Socket) => this.serve(socket);
    this.server = opts.tls
      ? createTlsServer(
          {
            ...serverTlsContext(opts.tls),
            requestCert: opts.tls.requireClientCert,
            rejectUnauthorized: opts.tls.requireClientCert,
          },
          onConnection,
        )
      : createTcpServer(onConnection);
    // A failed handshake or a reset connection is the peer's problem, not the listener's.
    this.server.on('tlsClientError', () => undefined);
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', (err) => this.opts.onError?.(err));
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : this.opts.port;
  }

  /** Presents this certificate from the next TLS handshake on (a renewed one); connections made keep theirs. */
  useCertificate(m: ServerTlsMaterial): void {
    if (this.server instanceof TlsServer) this.server.setSecureContext(serverTlsContext(m));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all(this.closing);
  }

  private serve(socket: Socket) {
    this.sockets.add(socket);
    const tlsSocket = this.opts.tls ? (socket as TLSSocket) : undefined;
    const cert = tlsSocket?.authorized ? tlsSocket.getPeerCertificate() : undefined;
    const subject = cert?.subject?.CN;
    const peer: Hl7Peer = {
      address: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`,
      tls: tlsSocket !== undefined,
      ...(typeof subject === 'string' ? { certificateSubject: subject } : {}),
    };
    const decoder = new MllpDecoder(this.opts.maxMessageBytes);
    const handler = this.opts.handler;
    let chain: Promise<void> = Promise.resolve();
    /** Frames received and not yet answered. */
    let unanswered = 0;
    const reply = (make: () => Promise<Buffer | Buffer[]>) => {
      unanswered++;
      chain = chain.then(async () => {
        try {
          // One ACK, or in enhanced acknowledgment mode as many as the message asked for (none, one or two).
          const acks = await make();
          for (const ack of Array.isArray(acks) ? acks : [acks])
            if (!socket.destroyed) socket.write(mllpFrame(ack));
        } finally {
          unanswered--;
        }
      });
      chain.catch((err: unknown) => this.opts.onError?.(err));
    };
    // Idle is the peer's silence while nothing is owed to it: a sender waiting for the ACK of a message still being
    // applied is not idle, and the ACK's write starts the idle time again (until 7 Dec 2026 such a connection was
    // closed, the message applied and its ACK lost, and the sender would send it again).
    socket.setTimeout(this.opts.idleTimeoutMs, () => {
      if (unanswered === 0) socket.destroy();
    });
    // A frame, or a run of bytes outside one, must be done within hl7.idleTimeoutSeconds of its first byte: a peer
    // that trickles it (a byte now and then, each starting the idle time again) is closed then. Until 8 Dec 2026 such a
    // peer held its connection as long as it went on.
    let timed: { run: number; timer: NodeJS.Timeout } | undefined;
    /** Set when the connection is closed for a run that took too long: what the close records. */
    let tooSlow: { run: 'frame' | 'outside'; size: number } | undefined;
    const timeRun = () => {
      const run = decoder.run;
      if (run === timed?.run) return;
      if (timed) clearTimeout(timed.timer);
      timed = undefined;
      if (run === undefined) return;
      const timer = setTimeout(() => {
        if (decoder.run !== run || socket.destroyed) return;
        const frame = decoder.unfinished();
        tooSlow = frame ? { run: 'frame', size: frame.size } : { run: 'outside', size: decoder.pending };
        socket.destroy();
      }, this.opts.idleTimeoutMs);
      timer.unref();
      timed = { run, timer };
    };
    socket.on('data', (chunk: Buffer) => {
      for (const ev of decoder.push(chunk)) {
        if (ev.kind === 'frame') reply(() => handler.frame(ev.payload, peer));
        else if (ev.kind === 'garbage') reply(() => handler.garbage(ev.bytes, peer));
        else if (ev.kind === 'abandoned') reply(() => handler.abandoned(ev.head, ev.size, peer));
        else if (ev.kind === 'oversize')
          reply(() => handler.oversize(ev.head, ev.size, this.opts.maxMessageBytes, peer));
        else {
          reply(() => handler.overrun(ev.head, ev.size, this.opts.maxMessageBytes, peer));
          // A peer sending bytes without end is closed once the replies owed to it are written: what else it sends
          // is read and dropped (so the close is a FIN behind them, not a reset that could discard them) until it
          // closes too or LINGER_MS have passed.
          void chain
            .catch(() => undefined)
            .then(() => {
              socket.end();
              setTimeout(() => socket.destroy(), LINGER_MS).unref();
            });
        }
      }
      timeRun();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      // A connection that ends inside a frame (the peer dropped, or went silent past the idle timeout) leaves a
      // message no ACK can answer: it is recorded as not applied (until 7 Dec 2026 it left no trace).
      if (timed) clearTimeout(timed.timer);
      const cut = decoder.unfinished();
      const slow = tooSlow;
      if (!cut && slow?.run !== 'outside') return;
      const within = slow ? this.opts.idleTimeoutMs : undefined;
      const recorded = chain
        .catch(() => undefined)
        .then(() =>
          cut
            ? handler.unfinished(cut.head, cut.size, peer, within)
            : handler.slowOutside(slow!.size, within!, peer),
        )
        .catch((err: unknown) => this.opts.onError?.(err));
      this.closing.add(recorded);
      void recorded.finally(() => this.closing.delete(recorded));
    });
  }
}
