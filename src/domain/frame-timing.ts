// How long each frame of a multi-frame image is shown when it is played (an animated GIF of WADO-RS rendered,
// PS3.18 Table 8.7.4-1), from the Cine Module's timing (PS3.3 C.7.6.5).

/** What the header says of a multi-frame image's timing, each absent when the header has none that is usable. */
export interface CineTiming {
  /** Frame Time (0018,1063): milliseconds from one frame to the next. */
  frameTime?: number;
  /** Frame Time Vector (0018,1065): milliseconds from each frame to the next, the first always 0. */
  frameTimeVector?: number[];
  /** Recommended Display Frame Rate (0008,2144), frames a second. */
  recommendedFrameRate?: number;
  /** Cine Rate (0018,0040), frames a second. */
  cineRate?: number;
}

/** Shown when the header gives no timing: ten frames a second. */
export const DEFAULT_FRAME_MS = 100;

/**
 * The milliseconds each of `frames` frames is shown. The Frame Time Vector's increments when it holds one value a
 * frame (C.7.6.5.1.2: value i is the time from frame i−1 to frame i, so frame i is shown for value i+1; the last
 * frame for as long as the one before it); else the Frame Time; else the recommended display frame rate or the
 * cine rate; else DEFAULT_FRAME_MS.
 */
export function frameDurations(frames: number, timing: CineTiming): number[] {
  const v = timing.frameTimeVector;
  if (frames > 1 && v && v.length === frames && v.every((t) => Number.isFinite(t) && t >= 0))
    return Array.from({ length: frames }, (_, i) => v[Math.min(i + 1, frames - 1)]!);
  const rate = [timing.recommendedFrameRate, timing.cineRate].find((r) => r !== undefined && r > 0);
  const each =
    timing.frameTime !== undefined && Number.isFinite(timing.frameTime) && timing.frameTime > 0
      ? timing.frameTime
      : rate !== undefined && Number.isFinite(rate)
        ? 1000 / rate
        : DEFAULT_FRAME_MS;
  return Array.from({ length: frames }, () => each);
}
