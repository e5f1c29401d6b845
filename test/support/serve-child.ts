// A Custos server in its own process, for tests that kill it (crash consistency).
import { loadConfig } from '../../src/app/config.js';
import { openApp } from '../../src/app/custos-app.js';
import { startServer } from '../../src/app/serve.js';
import { systemPrincipal } from '../../src/services/auth-service.js';

const dataDir = process.argv[2]!;
const config = loadConfig({
  env: {},
  cwd: dataDir,
  flags: { dataDir, http: { host: '127.0.0.1', port: 0 }, dicom: { host: '127.0.0.1', port: 0 } },
});
const app = await openApp(config);
const server = await startServer(app);
const { token } = await app.auth.createToken(systemPrincipal('test'), 'admin');
process.stdout.write(JSON.stringify({ url: server.url, token }) + '\n');
