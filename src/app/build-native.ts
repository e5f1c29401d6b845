// `npm run build` step: builds the native memory-return helper when this machine can (src/app/memory-return.ts).
// Never fails the build: without it the server runs and says so at start.
import { buildMemoryReturn } from './memory-return.js';

const result = await buildMemoryReturn();
process.stdout.write(
  result.built
    ? `custos: built ${result.file}\n`
    : `custos: the native memory-return helper was not built (${result.reason}); the server runs without it\n`,
);
