// A Custos server for bench/policy-overhead.ts: the real composition over a prepared data directory, with the
// real access gate (Cedar decisions, SQL narrowing, break-glass windows) or, with --enforcement off, the
// allow-all gate of bench/allow-all-gate.ts. HTTP only, in a process of its own per variant.
//   npx tsx bench/policy-serve.ts DATA_DIR [--enforcement on|off]
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/app/config.js';
import { openApp } from '../src/app/custos-app.js';
import { startServer } from '../src/app/serve.js';
import { AllowAllGate } from './allow-all-gate.js';

const { values, positionals } = parseArgs({
  options: { enforcement: { type: 'string', default: 'on' } },
  allowPositionals: true,
});
if (values.enforcement !== 'on' && values.enforcement !== 'off') throw new Error('--enforcement on|off');
const dataDir = positionals[0]!;
const config = loadConfig({
  env: {},
  cwd: dataDir,
  flags: { dataDir, http: { host: '127.0.0.1', port: 0 }, dicom: { port: null } },
});
const app = await openApp(config, values.enforcement === 'off' ? { wrapGate: () => new AllowAllGate() } : {});
const server = await startServer(app);
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
process.once('SIGTERM', () => {
  void (async () => {
    await server.close();
    await app.close();
    process.exit(0);
  })();
});
