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

// V8 collects the young generation with helper threads and frees dead ArrayBuffers on another one. Custos's young
// generations hold little that survives (~0.4 MB a collection while objects stream in), so on the machines it runs
// on (a few cores, busy with the event loop, the blob thread and the disk) handing that work out and waiting for it
// costs more than it saves: the blob thread's collections, which free the ciphertext buffers it has written, took
// about half their time with these off (bench/README.md, 4 Dec 2026). Major collections keep their helpers.
require('node:v8').setFlagsFromString('--no-parallel-scavenge');
require('node:v8').setFlagsFromString('--no-concurrent-array-buffer-sweeping');

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
