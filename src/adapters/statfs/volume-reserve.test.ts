import { statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CustosError } from '../../domain/errors.js';
import { VolumeReserve } from './volume-reserve.js';

const here = { what: 'the blob volume', path: tmpdir(), device: statSync(tmpdir()).dev };

describe('VolumeReserve', () => {
  it('lets objects in while the volume has more free space than the reserve', async () => {
    await expect(new VolumeReserve([here], 1).ensureRoom()).resolves.toBeUndefined();
  });

  it('refuses with storage.full (A700, 507) naming the volume, its free space and the reserve', async () => {
    const err = await new VolumeReserve([here], 2 ** 52).ensureRoom().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CustosError);
    expect(err).toMatchObject({ code: 'storage.full', httpStatus: 507, dicomStatus: 0xa700 });
    expect((err as Error).message).toMatch(
      /the blob volume has \d+ MiB free, less than the 4294967296 MiB reserve/,
    );
  });

  it('measures a file system once however many of its paths are named, and reports it', async () => {
    const r = new VolumeReserve([here, { ...here, what: "the index's volume" }], 10);
    const [only, ...rest] = await r.report();
    expect(rest).toEqual([]);
    expect(only).toMatchObject({ what: 'the blob volume', reserveBytes: 10 });
    expect(only!.freeBytes).toBeGreaterThan(0);
  });

  it('asks statfs again only once a measurement is 250 ms old', async () => {
    let now = 0;
    const r = new VolumeReserve([here], 1, () => now);
    const first = (await r.report())[0]!.freeBytes;
    now = 249;
    expect((await r.report())[0]!.freeBytes).toBe(first);
    now = 250;
    let measured = 0;
    const counting = new VolumeReserve([here], 1, () => {
      measured++;
      return now;
    });
    await counting.report();
    const afterFirst = measured;
    await counting.report();
    // Within 250 ms the clock is read to compare, statfs is not asked: one read for the check, none to record.
    expect(measured - afterFirst).toBe(1);
    now += 250;
    await counting.report();
    // Stale: asked again, and the new measurement's time is recorded (a second read of the clock).
    expect(measured - afterFirst).toBe(3);
  });

  it('tells the operator when a volume crosses the reserve, once, not at every measurement', async () => {
    const lines: string[] = [];
    let now = 0;
    const r = new VolumeReserve(
      [here],
      2 ** 52,
      () => now,
      (line) => lines.push(line),
    );
    await r.ensureRoom().catch(() => undefined);
    now += 250;
    await r.ensureRoom().catch(() => undefined);
    expect(lines).toEqual([
      expect.stringMatching(/^the blob volume has \d+ MiB free, less than .*: new objects are refused/),
    ]);
    const roomy = new VolumeReserve(
      [here],
      1,
      () => now,
      (line) => lines.push(line),
    );
    await roomy.ensureRoom();
    expect(lines).toHaveLength(1);
  });

  it('never refuses for room with a reserve of 0', async () => {
    const r = new VolumeReserve([here], 0);
    await expect(r.ensureRoom()).resolves.toBeUndefined();
    expect((await r.report())[0]).toMatchObject({ belowReserve: false, refusesWrites: false });
  });

  it('refuses with storage.unwritable (A700, 503) when a small write to the volume fails, tells it once, and tells when it takes writes again', async () => {
    // A path that is a file stands for a directory whose writes fail: writing under it gives ENOTDIR, as a
    // read-only volume gives EROFS (test/storage-unwritable.test.ts fails a real ext4 volume).
    const base = await mkdtemp(join(tmpdir(), 'custos-reserve-'));
    const path = join(base, 'volume');
    await writeFile(path, 'not a directory');
    let now = 0;
    const lines: string[] = [];
    const r = new VolumeReserve(
      // The SQLite index on the blob volume: what is said of the one volume says that nothing is recorded either.
      [
        { what: 'the blob volume', path, device: 1 },
        { what: "the index's volume", path, device: 1, holdsIndex: true },
      ],
      0,
      () => now,
      (line) => lines.push(line),
    );
    try {
      const err = await r.ensureRoom().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'storage.unwritable', httpStatus: 503, dicomStatus: 0xa700 });
      expect((err as Error).message).toMatch(/\(the blob volume refuses writes: ENOTDIR: not a directory\)/);
      now += 250;
      expect((await r.report())[0]).toMatchObject({ refusesWrites: true });
      expect(lines).toEqual([
        expect.stringMatching(
          /^the blob volume \(.*volume\) refuses writes \(ENOTDIR: not a directory\): nothing can be stored or recorded, so nothing is served either, until/,
        ),
      ]);
      await rm(path);
      await mkdir(path);
      now += 250;
      await expect(r.ensureRoom()).resolves.toBeUndefined();
      expect(lines[1]).toMatch(/^the blob volume \(.*volume\) takes writes again$/);
      expect(lines).toHaveLength(2);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });

  it('measures on its own while watching, and stops when told', async () => {
    let measured = 0;
    const r = new VolumeReserve([here], 1, () => {
      measured++;
      return performance.now();
    });
    const stop = r.watch(5);
    await new Promise((res) => setTimeout(res, 300));
    stop();
    const seen = measured;
    expect(seen).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, 300));
    expect(measured).toBe(seen);
  });
});
