import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // vitest's default: one worker fewer than the cores, so on 2 cores one test file at a time. Two at a time was
    // measured on 7 Dec 2026 in two clean-clone CI runs on one machine: 1258 s of vitest against 1448 s serially
    // (13 % less; each file ran about 1.7 times as long, the tests being mostly CPU-bound). It was left serial, since
    // one passing run says little about timer-driven tests meeting their moments on a loaded machine.
    reporters: ['default'],
  },
});
