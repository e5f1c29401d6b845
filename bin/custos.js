#!/usr/bin/env node
// Thin entry point: the CLI lives in src/app (compiled to dist/app).
//
// This file is CommonJS (bin/package.json) so that it runs before anything has used libuv's thread pool (the
// ES module loader reads files through it), and sets the pool's size first. The pool runs the file system calls,
// and fsync/fdatasync hold a pool thread until the disk answers: with the default 4 threads, a few concurrent
// commits (each an object's fdatasync and its directory's fsync, and the index's WAL sync) queue behind each
// other and behind every file read. More threads let the kernel fold concurrent syncs into one journal commit.
'use strict';

process.env.UV_THREADPOOL_SIZE ??= '16';

import('../dist/app/cli.js')
  .then(({ main }) => main(process.argv.slice(2)))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`custos: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
