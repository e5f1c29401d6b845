// A Custos server for bench/validation-cost.ts: the real composition, with header validation at ingest (the
// default) or, with --no-validation, without it (OpenAppOptions.validateHeaders: a code-level switch, no
// configuration turns validation off). A process of its own so neither variant's work stalls the other.
//   npx tsx bench/validation-serve.ts DATA_DIR [--no-validation]
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/app/config.js';
import { openApp } from '../src/app/custos-app.js';
import { startServer } from '../src/app/serve.js';
import { systemPrincipal } from '../src/services/auth-service.js';

const { values, positionals } = parseArgs({
  options: { 'no-validation': { type: 'boolean', default: false } },
  allowPositionals: true,
});
const dataDir = positionals[0]!;
const config = loadConfig({
  env: {},
  cwd: dataDir,
  flags: { dataDir, http: { host: '127.0.0.1', port: 0 }, dicom: { port: null } },
});
const app = await openApp(config, values['no-validation'] ? { validateHeaders: false } : {});
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
