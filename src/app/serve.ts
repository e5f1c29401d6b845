import type { CliIO } from './cli.js';
import type { CustosConfig } from './config.js';
import { firstStartBanner, openApp, type CustosApp } from './custos-app.js';
import { HttpServer } from '../transports/server/http-server.js';
import { buildRouter } from '../transports/server/routes.js';

export interface RunningServer {
  app: CustosApp;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Start the archive's network services on an opened app. */
export async function startServer(app: CustosApp, onError?: (err: unknown) => void): Promise<RunningServer> {
  const router = buildRouter(app);
  const http = new HttpServer({
    host: app.config.http.host,
    port: app.config.http.port,
    router,
    auth: app.auth,
    ...(onError ? { onError } : {}),
  });
  const { port } = await http.listen();
  const shownHost =
    app.config.http.host === '0.0.0.0' || app.config.http.host === '::' ? '127.0.0.1' : app.config.http.host;
  return {
    app,
    port,
    url: `http://${shownHost}:${port}`,
    close: async () => {
      await http.close();
    },
  };
}

export async function serve(config: CustosConfig, io: CliIO): Promise<number> {
  const app = await openApp(config);
  if (app.firstStart) io.out(firstStartBanner(app.firstStart));
  const server = await startServer(app, (err) =>
    io.err(`custos: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`),
  );
  io.out(
    `custos: data directory ${config.dataDir} (${config.database.url ? 'PostgreSQL index' : 'SQLite index'})\n`,
  );
  io.out(`custos: listening on ${server.url} (DICOMweb at ${server.url}/dicom-web)\n`);
  const signal = await io.stopSignal();
  io.err(`custos: ${signal}, shutting down\n`);
  await server.close();
  await app.close();
  return 0;
}
