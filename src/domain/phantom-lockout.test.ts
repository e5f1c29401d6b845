import { describe, expect, it } from 'vitest';
import { PhantomLockout } from './phantom-lockout.js';

const settings = { maxFailures: 3, windowMinutes: 15, lockMinutes: 10 };
const at = (minutes: number) => new Date(Date.UTC(2026, 11, 6, 12, 0) + minutes * 60_000);

describe('PhantomLockout', () => {
  it('locks a name at the failure that reaches the limit, for lockMinutes, in any letter case', () => {
    const l = new PhantomLockout(settings);
    expect(l.fail('ghost', at(0))).toBeUndefined();
    expect(l.fail('GHOST', at(1))).toBeUndefined();
    expect(l.fail('Ghost', at(2))).toEqual(at(12));
    expect(l.lockedUntil('ghost', at(11))).toEqual(at(12));
    expect(l.lockedUntil('ghost', at(12))).toBeUndefined();
    expect(l.lockedUntil('other', at(2))).toBeUndefined();
  });

  it('starts a new window once the old one is over', () => {
    const l = new PhantomLockout(settings);
    l.fail('ghost', at(0));
    l.fail('ghost', at(1));
    expect(l.fail('ghost', at(16))).toBeUndefined();
    expect(l.fail('ghost', at(17))).toBeUndefined();
    expect(l.fail('ghost', at(18))).toEqual(at(28));
  });

  it('never locks with maxFailures 0, and forgets the oldest names beyond its bound', () => {
    const off = new PhantomLockout({ ...settings, maxFailures: 0 });
    for (let i = 0; i < 10; i++) expect(off.fail('ghost', at(i))).toBeUndefined();
    const small = new PhantomLockout({ ...settings, maxFailures: 1 }, 2);
    small.fail('a', at(0));
    small.fail('b', at(0));
    small.fail('c', at(0));
    expect(small.lockedUntil('a', at(1))).toBeUndefined();
    expect(small.lockedUntil('b', at(1))).toEqual(at(10));
    expect(small.lockedUntil('c', at(1))).toEqual(at(10));
  });
});
