#!/usr/bin/env node
// Thin entry point: the CLI lives in src/app (compiled to dist/app).
import { main } from '../dist/app/cli.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`custos: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
