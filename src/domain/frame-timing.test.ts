import { describe, expect, it } from 'vitest';
import { DEFAULT_FRAME_MS, frameDurations } from './frame-timing.js';

describe('frameDurations', () => {
  it('shows each frame until the next, by the Frame Time Vector, the last as long as the one before', () => {
    // PS3.3 C.7.6.5.1.2: the first increment is 0, the time from frame 1 to itself.
    expect(frameDurations(4, { frameTimeVector: [0, 40, 250, 30], frameTime: 99 })).toEqual([
      40, 250, 30, 30,
    ]);
  });

  it('takes the Frame Time when the vector does not hold one usable value a frame', () => {
    expect(frameDurations(3, { frameTimeVector: [0, 40], frameTime: 66.7 })).toEqual([66.7, 66.7, 66.7]);
    expect(frameDurations(2, { frameTimeVector: [0, -1], frameTime: 50 })).toEqual([50, 50]);
  });

  it('falls back to a frame rate, then to ten frames a second', () => {
    expect(frameDurations(2, { recommendedFrameRate: 25, cineRate: 10 })).toEqual([40, 40]);
    expect(frameDurations(2, { cineRate: 20 })).toEqual([50, 50]);
    expect(frameDurations(2, { frameTime: 0, cineRate: 0 })).toEqual([DEFAULT_FRAME_MS, DEFAULT_FRAME_MS]);
    expect(DEFAULT_FRAME_MS).toBe(100);
  });
});
