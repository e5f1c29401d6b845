/** Time is passed in (CONVENTIONS.md: no hidden globals) so records are reproducible in tests. */
export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };
