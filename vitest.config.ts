import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two test files at a time even on a machine of two cores, where vitest's default (one fewer than the cores)
    // ran them one by one: most of a file's time is spent waiting on the peers it drives (dcmtk, Orthanc,
    // Chromium, PostgreSQL, fsync), so a second file fills it. Until 7 Dec 2026 the whole suite ran serially.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    reporters: ['default'],
  },
});
