import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMemoryReturn, loadMemoryReturn, startMemoryReturn } from './memory-return.js';

const run = promisify(execFile);

// A child process allocates ~200 MiB of small malloc'd blocks (Buffers below the mmap threshold, so they come from
// the heap and stay resident when freed), frees them, and stays busy or goes quiet; `mode` says what then returns
// them. It prints its resident set (MiB) after the allocation and at the end, and the trims counted on the way.
type Mode = 'none' | 'trim' | 'growth' | 'ended' | 'period';
const child = (file: string, mode: Mode) => `
const helper = require(${JSON.stringify(file)});
const rss = () => Math.round(process.memoryUsage.rss() / 1048576);
const out = {};
const mode = ${JSON.stringify(mode)};
if (mode === 'growth') helper.start(50, 8 * 1048576, 600_000);
if (mode === 'ended') helper.start(50, 1024 * 1048576, 600_000);
if (mode === 'period') helper.start(50, 1024 * 1048576, 300);
let held = [];
for (let i = 0; i < 200 * 32; i++) {
  held.push(Buffer.allocUnsafeSlow(32 * 1024).fill(1));
  // Growth: after every 8 MiB, 60 ms of busy work, so the thread (looking every 50 ms) sees each step however
  // fast or slow the machine allocates.
  if (mode === 'growth' && i % 256 === 255) { const until = Date.now() + 60; while (Date.now() < until); }
}
out.allocated = rss();
out.trimsWhileAllocating = helper.trims();
held = null;
global.gc();
global.gc();
if (mode === 'period') {
  const until = Date.now() + 1500;
  while (Date.now() < until) Buffer.allocUnsafeSlow(32 * 1024).fill(2);
  out.trimsWhileBusy = helper.trims();
}
const finish = () => {
  out.end = rss();
  out.trims = helper.trims();
  process.stdout.write(JSON.stringify(out));
};
if (mode === 'trim') { helper.trim(); finish(); }
else setTimeout(finish, mode === 'none' ? 0 : 1000);
`;

describe('memory return (native helper)', () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-native-'));
    const built = await buildMemoryReturn(join(dir, 'memory-return.node'));
    // The CI machine has a C compiler and the Node headers: there the helper must build.
    if (!built.built) throw new Error(`the helper did not build: ${built.reason}`);
    file = built.file;
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const measure = async (mode: Mode) => {
    const { stdout } = await run(process.execPath, ['--expose-gc', '-e', child(file, mode)]);
    return JSON.parse(stdout) as {
      allocated: number;
      trimsWhileAllocating: number;
      trimsWhileBusy?: number;
      end: number;
      trims: number;
    };
  };

  it('returns freed heap memory that glibc would keep resident', async () => {
    const kept = await measure('none');
    // Without a trim, most of the freed blocks stay resident: this is what the helper is for.
    expect(kept.allocated - kept.end).toBeLessThan(100);
    expect(kept.trims).toBe(0);
    const trimmed = await measure('trim');
    expect(trimmed.trims).toBe(1);
    expect(trimmed.allocated - trimmed.end).toBeGreaterThan(150);
  });

  it('trims on its own thread while work goes on when the resident set grew by the given amount', async () => {
    const r = await measure('growth');
    // 200 MiB of growth in 25 steps of 8 MiB, 60 ms apart; the thread looks every 50 ms.
    expect(r.trimsWhileAllocating).toBeGreaterThan(5);
  });

  it('trims on its own thread once the work has ended, which returns what was freed', async () => {
    const r = await measure('ended');
    // 200 MiB is less than the growth bound (1 GiB) and the period (10 min) does not pass.
    expect(r.trimsWhileAllocating).toBe(0);
    expect(r.trims).toBeGreaterThan(0);
    expect(r.allocated - r.end).toBeGreaterThan(150);
  });

  it('trims once per period of uninterrupted work', async () => {
    const r = await measure('period');
    // 1.5 s of allocating and freeing without growth, with a period of 300 ms.
    expect(r.trimsWhileBusy! - r.trimsWhileAllocating).toBeGreaterThanOrEqual(2);
    expect(r.allocated - r.end).toBeGreaterThan(150);
  });

  it('says why it does not run: turned off, or not built', () => {
    expect(startMemoryReturn(0, file)).toMatch(/memory.trimGrowthMiB is 0/);
    expect(startMemoryReturn(16, join(dir, 'missing.node'))).toMatch(/missing.node is not built/);
    expect(loadMemoryReturn(join(dir, 'missing.node'))).toEqual({
      unavailable: expect.stringMatching(/is not built/),
    });
  });

  it('rejects nonsense timing', () => {
    const helper = loadMemoryReturn(file);
    if ('unavailable' in helper) throw new Error(helper.unavailable);
    expect(() => helper.start(1, 0, 1000)).toThrow(RangeError);
  });
});
