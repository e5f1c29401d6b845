/**
 * The DIMSE listeners: plain TCP and DICOM TLS (PS3.15 Annex B: TLS 1.2 or later, server certificate, optional
 * client certificate bound to the AE entry). Each connection becomes one ScpAssociation.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { serverTlsContext, type ServerTlsMaterial } from '../server/tls-context.js';
import { ScpAssociation, type ScpOptions } from './scp-association.js';
import type { DimseServices } from './dimse-services.js';

export interface DimseTlsOptions {
  port: number;
  host: string;
  cert: Buffer;
  key: Buffer;
  ca?: Buffer | undefined;
  /** Refuse the TLS handshake without a client certificate signed by `ca`. */
  requireClientCert: boolean;
}

export interface DimseServerOptions extends ScpOptions {
  host: string;
  /** null: no plain listener (TLS only). */
  port: number | null;
  tls?: DimseTlsOptions | undefined;
}

export class DimseServer {
  private plain: Server | undefined;
  private secure: TlsServer | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly associations = new Set<Promise<void>>();

  constructor(
    private readonly services: DimseServices,
    private readonly opts: DimseServerOptions,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  private accept = (socket: Socket) => {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.once('close', () => this.sockets.delete(socket));
    const run = new ScpAssociation(socket, this.services, this.opts, this.onError).run().catch(this.onError);
    this.associations.add(run);
    void run.finally(() => this.associations.delete(run));
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
        { ...serverTlsContext(t), requestCert: true, rejectUnauthorized: t.requireClientCert },
        this.accept,
      );
      server.on('tlsClientError', () => undefined);
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
    this.services.useTlsClient({ cert: m.cert, key: m.key, ca: m.ca });
  }

  async close(): Promise<void> {
    const closing = [this.plain, this.secure]
      .filter((s): s is Server => !!s)
      .map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of this.sockets) s.destroy();
    await Promise.all(closing);
    await Promise.allSettled([...this.associations]);
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
