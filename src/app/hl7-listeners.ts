import { Hl7Handler } from '../transports/hl7/hl7-handler.js';
import { MllpServer } from '../transports/hl7/mllp-server.js';
import type { CustosApp } from './custos-app.js';
import { loadTlsMaterial, type TlsMaterial } from './tls-material.js';

export interface Hl7Listeners {
  ports?: { port?: number; tlsPort?: number };
  /** The TLS listener's certificate as read at start (serve.ts's reload puts the renewed one here). */
  tls?: TlsMaterial;
  /** Reads hl7.tls's files again and presents them from the next handshake on; throws (keeping the old) if bad. */
  reloadTls?(): Promise<TlsMaterial>;
  close(): Promise<void>;
}

/**
 * Start the HL7 v2 MLLP listeners the configuration asks for: plain MLLP on hl7.port and MLLP over TLS on
 * hl7.tls.port. Nothing listens when neither is set (HL7 is off by default).
 */
export async function startHl7(app: CustosApp, onError?: (err: unknown) => void): Promise<Hl7Listeners> {
  const cfg = app.config.hl7;
  if (cfg.port === null && !cfg.tls) return { close: async () => undefined };
  const handler = new Hl7Handler({
    feed: app.feed,
    clock: app.clock,
    senders: cfg.senders,
    self: { application: cfg.application, facility: cfg.facility },
    ...(onError ? { onError } : {}),
  });
  const common = {
    host: cfg.host ?? app.config.http.host,
    handler,
    maxMessageBytes: cfg.maxMessageBytes,
    idleTimeoutMs: cfg.idleTimeoutSeconds * 1000,
    ...(onError ? { onError } : {}),
  };
  const servers: MllpServer[] = [];
  const ports: { port?: number; tlsPort?: number } = {};
  let tls: TlsMaterial | undefined;
  let secure: MllpServer | undefined;
  try {
    if (cfg.port !== null) {
      const plain = new MllpServer({ ...common, port: cfg.port });
      servers.push(plain);
      ports.port = await plain.listen();
    }
    if (cfg.tls) {
      tls = await loadTlsMaterial('hl7.tls', cfg.tls, app.clock.now());
      secure = new MllpServer({
        ...common,
        port: cfg.tls.port,
        tls: {
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca ? { ca: tls.ca } : {}),
          ...(tls.crl ? { crl: tls.crl } : {}),
          requireClientCert: cfg.tls.requireClientCert,
        },
      });
      servers.push(secure);
      ports.tlsPort = await secure.listen();
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }
  // Constants for the closure below (a `let` is not narrowed inside one).
  const tlsCfg = cfg.tls;
  const tlsServer = secure;
  return {
    ports,
    ...(tls && tlsCfg && tlsServer
      ? {
          tls,
          reloadTls: async () => {
            const renewed = await loadTlsMaterial('hl7.tls', tlsCfg, app.clock.now());
            tlsServer.useCertificate(renewed);
            return renewed;
          },
        }
      : {}),
    close: async () => {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}
