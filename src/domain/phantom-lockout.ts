/**
 * Lockout for sign-in names that name no usable account (none, inactive, or without a password), counted as a
 * real account's failures are (docs/accounts.md): after `maxFailures` failures within `windowMinutes` such a
 * name is answered "locked" for `lockMinutes`, as an account would be. Without it a guesser learned which names
 * are accounts: five wrong passwords locked a real account (423) and never a made-up one (401 for ever).
 *
 * Kept in memory, bounded: the oldest names are forgotten first once `maxNames` are counted.
 */
export interface LockoutSettings {
  maxFailures: number;
  windowMinutes: number;
  lockMinutes: number;
}

interface Entry {
  failures: number;
  windowStart: number;
  lockedUntil?: number;
}

export class PhantomLockout {
  private readonly names = new Map<string, Entry>();

  constructor(
    private readonly settings: LockoutSettings,
    private readonly maxNames = 10_000,
  ) {}

  /** When the name is locked at `now`, the end of its lock. */
  lockedUntil(name: string, now: Date): Date | undefined {
    const e = this.names.get(name.toLowerCase());
    return e?.lockedUntil !== undefined && e.lockedUntil > now.getTime()
      ? new Date(e.lockedUntil)
      : undefined;
  }

  /** Counts a failure; the failure that reaches the limit locks the name and returns the end of the lock. */
  fail(name: string, now: Date): Date | undefined {
    const { maxFailures, windowMinutes, lockMinutes } = this.settings;
    if (maxFailures === 0) return undefined;
    const key = name.toLowerCase();
    const t = now.getTime();
    const old = this.names.get(key);
    const inWindow = old !== undefined && old.windowStart > t - windowMinutes * 60_000;
    const e: Entry = inWindow ? { ...old, failures: old.failures + 1 } : { failures: 1, windowStart: t };
    // Re-inserted, so that the map's order is the order of last failure and the oldest go first.
    this.names.delete(key);
    if (e.failures >= maxFailures) {
      this.names.set(key, { failures: 0, windowStart: 0, lockedUntil: t + lockMinutes * 60_000 });
    } else this.names.set(key, e);
    while (this.names.size > this.maxNames) this.names.delete(this.names.keys().next().value!);
    return this.lockedUntil(key, now);
  }
}
