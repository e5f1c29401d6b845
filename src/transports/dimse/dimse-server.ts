/**
 * The DIMSE listeners: plain TCP and DICOM TLS (PS3.15 Annex B: TLS 1.2 or later, server certificate, optional
 * client certificate bound to the AE entry). Each connection becomes one ScpAssociation.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { asUserId } from '../../domain/ids.js';
import { serverTlsContext, type ServerTlsMaterial } from '../server/tls-context.js';
import { ScpAssociation, type ScpOptions } from './scp-association.js';
import { AssociationLimits } from './association-limits.js';
import type { DimseServices } from './dimse-services.js';

export interface DimseTlsOptions {
  port: number;
  host: string;
  cert: Buffer;
  key: Buffer;
  ca?: Buffer | undefined;
  crl?: Buffer | undefined;
  /** Refuse the TLS handshake without a client certificate signed by `ca`. */
  requireClientCert: boolean;
}

export interface DimseServerOptions extends ScpOptions {
  host: string;
  /** null: no plain listener (TLS only). */
  port: number | null;
  tls?: DimseTlsOptions | undefined;
  /** Associations held at once, in all and per calling AE title (dicom.maxAssociations, …PerAe). */
  maxAssociations: number;
  maxAssociationsPerAe: number;
}

export class DimseServer {
  private plain: Server | undefined;
  private secure: TlsServer | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly associations = new Map<ScpAssociation, Promise<void>>();
  /** close() was called: a connection whose TLS handshake ends now is not taken. */
  private closing = false;
  private readonly limits: AssociationLimits;

  /** One log line per refused handshake, at most one a minute (`(and N more)`): a scanner cannot flood the log. */
  private readonly refusals = { lastAt: -Infinity, suppressed: 0 };

  constructor(
    private readonly services: DimseServices,
    private readonly opts: DimseServerOptions,
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly notice: (line: string) => void = () => undefined,
  ) {
    this.limits = new AssociationLimits(opts.maxAssociations, opts.maxAssociationsPerAe);
  }

  /**
   * A TLS connection refused: closed (until 5 Dec 2026 one whose handshake never ended stayed open for good, its
   * descriptor held by a peer that had said nothing), and the operator's log says why; a client certificate
   * refused is also an authentication failure in the ledger (until then neither said anything).
   */
  private refuse(socket: TLSSocket, reason: string, certificate: boolean): void {
    const address = socket.remoteAddress ?? 'unknown';
    socket.destroy();
    const now = Date.now();
    if (now - this.refusals.lastAt >= 60_000) {
      const more = this.refusals.suppressed
        ? ` (and ${this.refusals.suppressed} more since the last such line)`
        : '';
      this.notice(`DICOM TLS: refused a connection from ${address}: ${reason}${more}`);
      this.refusals.lastAt = now;
      this.refusals.suppressed = 0;
    } else this.refusals.suppressed++;
    if (certificate)
      void this.services.ledger
        .append({
          principal: {
            kind: 'ae',
            id: asUserId('ae:'),
            name: '',
            role: 'none',
            source: address,
            channel: 'dimse',
          },
          action: 'dicom-associate',
          outcome: 'denied',
          policy: 'builtin:dicom-tls',
          detail: { reason: `TLS client certificate refused: ${reason}`, tls: true },
        })
        .catch(this.onError);
  }

  /** A handshake that failed or timed out (tlsClientError). */
  private handshakeFailed = (err: Error & { code?: string }, socket: TLSSocket) =>
    this.refuse(
      socket,
      err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
        ? `no TLS handshake within ${this.opts.artimMs} ms (the ARTIM timeout)`
        : handshakeRefusal(err),
      false,
    );

  /**
   * A handshake done: with `requireClientCert`, the client's certificate must chain to the configured CA. Checked
   * here rather than by the TLS layer, which closes such a connection without telling anyone.
   */
  private secured = (socket: TLSSocket) => {
    // A revoked certificate (dicom.tls.crl) is refused even where client certificates are optional: an AE bound to
    // it would otherwise be admitted by its fingerprint.
    if (String(socket.authorizationError) === 'CERT_REVOKED') {
      this.refuse(socket, 'its client certificate is revoked (dicom.tls.crl)', true);
      return;
    }
    if (this.opts.tls?.requireClientCert && !socket.authorized) {
      const presented = Object.keys(socket.getPeerCertificate()).length > 0;
      this.refuse(
        socket,
        presented
          ? `its client certificate does not verify against dicom.tls.ca (${String(socket.authorizationError)})`
          : 'it presented no client certificate (dicom.tls.requireClientCert)',
        true,
      );
      return;
    }
    this.accept(socket);
  };

  private accept = (socket: Socket) => {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.once('close', () => this.sockets.delete(socket));
    const association = new ScpAssociation(socket, this.services, this.opts, this.onError, this.limits);
    const run = association.run().catch(this.onError);
    this.associations.set(association, run);
    void run.finally(() => this.associations.delete(association));
  };

  /** Start listening; resolves with the bound ports (null where a listener is off). */
  async listen(): Promise<{ port: number | null; tlsPort: number | null }> {
    try {
      return await this.bindAll();
    } catch (err) {
      // The plain port bound before the TLS one failed (taken, or bad TLS material) would keep the process alive.
      await this.close();
      throw err;
    }
  }

  private async bindAll(): Promise<{ port: number | null; tlsPort: number | null }> {
    let port: number | null = null;
    let tlsPort: number | null = null;
    if (this.opts.port !== null) {
      const server = createServer({ noDelay: true }, this.accept);
      this.plain = server;
      port = await bind(server, this.opts.port, this.opts.host);
    }
    if (this.opts.tls) {
      const t = this.opts.tls;
      const server = createTlsServer(
        {
          ...serverTlsContext(t),
          requestCert: true,
          // requireClientCert is enforced in secured(), which says why it refuses.
          rejectUnauthorized: false,
          // The ARTIM timer (PS3.8 §9.1.5) starts with the connection: a handshake gets no more than it.
          handshakeTimeout: this.opts.artimMs,
        },
        this.secured,
      );
      server.on('tlsClientError', this.handshakeFailed);
      // Connections still in their handshake are closed with the rest on close().
      server.on('connection', (raw: Socket) => {
        this.sockets.add(raw);
        raw.once('close', () => this.sockets.delete(raw));
      });
      this.secure = server;
      tlsPort = await bind(server, t.port, t.host);
    }
    return { port, tlsPort };
  }

  /**
   * Presents this certificate from the next TLS handshake on (a renewed one); connections already made keep theirs.
   * Calls out with it too.
   */
  useCertificate(m: ServerTlsMaterial): void {
    this.secure?.setSecureContext(serverTlsContext(m));
    this.services.useTlsClient({ cert: m.cert, key: m.key, ca: m.ca, crl: m.crl });
  }

  /**
   * Stop listening and end every association. With `graceMs` (SIGTERM, SIGINT) each association first finishes the
   * operation in progress (ScpAssociation.stop()) and those still going after `graceMs` are cut; without, all are
   * cut at once.
   */
  async close(graceMs = 0): Promise<void> {
    this.closing = true;
    const closing = [this.plain, this.secure]
      .filter((s): s is Server => !!s)
      .map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    if (graceMs > 0 && this.associations.size) {
      for (const association of this.associations.keys()) association.stop();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.associations.values()]),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
    }
    // What is left: connections still in their TLS handshake, and associations past the grace period.
    for (const s of this.sockets) s.destroy();
    await Promise.all(closing);
    await Promise.allSettled([...this.associations.values()]);
    await this.services.drain();
  }
}

function bind(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/**
 * What an operator can act on, for the OpenSSL errors a refused handshake most often ends with, OpenSSL's own
 * text after it; until 6 Dec 2026 the log carried that text alone (`…:error:0A000102:SSL routines::unsupported
 * protocol`).
 */
const HANDSHAKE_REFUSALS: Record<string, string> = {
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'the client offers no TLS version Custos takes (TLS 1.2 or 1.3)',
  ERR_SSL_NO_SHARED_CIPHER: 'the client offers none of the cipher suites Custos takes (BCP 195)',
  ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM:
    'the client takes none of the signature algorithms of the certificate',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "the client refused Custos's certificate (bad certificate)",
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: "the client refused Custos's certificate (certificate unknown)",
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "the client does not trust the CA of Custos's certificate (unknown CA)",
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: "the client refused Custos's certificate as expired",
  ERR_SSL_WRONG_VERSION_NUMBER: 'the client did not speak TLS (plain DICOM on the TLS port?)',
  ERR_SSL_HTTP_REQUEST: 'the client sent an HTTP request, not TLS',
  ECONNRESET: 'the client closed the connection during the handshake',
};

export function handshakeRefusal(err: Error & { code?: string }): string {
  const raw = err.message.trim();
  const readable = err.code ? HANDSHAKE_REFUSALS[err.code] : undefined;
  return readable ? `${readable} [${raw}]` : raw;
}
