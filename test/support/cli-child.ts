// The CLI in a process of its own (as bin/custos.js runs it), for tests of process-level behaviour.
import { main } from '../../src/app/cli.js';

process.exitCode = await main(process.argv.slice(2));
