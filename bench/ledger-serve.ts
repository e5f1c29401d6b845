// A Custos server for bench/ledger.ts's overhead figure: the real composition, with the real ledger or (with
// --unaudited) one that records nothing, in a process of its own so neither variant's work stalls the other.
//   npx tsx bench/ledger-serve.ts DATA_DIR [--unaudited]
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/app/config.js';
import { openApp } from '../src/app/custos-app.js';
import { startServer } from '../src/app/serve.js';
import { systemPrincipal } from '../src/services/auth-service.js';

const { values, positionals } = parseArgs({
  options: { unaudited: { type: 'boolean', default: false } },
  allowPositionals: true,
});
const dataDir = positionals[0]!;
const config = loadConfig({
  env: {},
  cwd: dataDir,
  // HTTP only: the figure is about DICOMweb, and two DIMSE listeners would want the same default port.
  flags: { dataDir, http: { host: '127.0.0.1', port: 0 }, dicom: { port: null } },
});
const app = await openApp(
  config,
  values.unaudited
    ? {
        wrapLedger: () => ({
          append: async () => undefined,
          appendIn: async () => undefined,
          lockIn: async () => undefined,
        }),
      }
    : {},
);
const server = await startServer(app);
const { token } = await app.auth.createToken(systemPrincipal('bench'), config.admin.username);
process.stdout.write(`${JSON.stringify({ url: server.url, token })}\n`);
process.once('SIGTERM', () => {
  void (async () => {
    await server.close();
    await app.close();
    process.exit(0);
  })();
});
