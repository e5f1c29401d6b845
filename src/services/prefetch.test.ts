import { describe, expect, it } from 'vitest';
import { prefetch } from './prefetch.js';

async function* source(n: number, size: number, log: number[], failAt?: number) {
  for (let i = 0; i < n; i++) {
    if (i === failAt) throw new Error('boom');
    log.push(i);
    yield Buffer.alloc(size, i);
  }
}

describe('prefetch', () => {
  it('reads ahead up to the byte bound before anyone consumes, and yields everything in order', async () => {
    const log: number[] = [];
    const it = prefetch(source(10, 100, log), 250);
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual([0, 1, 2]);
    const got: number[] = [];
    for await (const b of it) got.push(b[0]!);
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
  it('passes a source failure on to the consumer after the bytes before it', async () => {
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const b of prefetch(source(5, 10, [], 3), 1000)) got.push(b[0]!);
      })(),
    ).rejects.toThrow('boom');
    expect(got).toEqual([0, 1, 2]);
  });
});

describe('prefetch close', () => {
  async function* tracked(n: number, state: { closed: boolean; read: number }) {
    try {
      for (let i = 0; i < n; i++) {
        state.read++;
        yield Buffer.alloc(10, i);
      }
    } finally {
      state.closed = true;
    }
  }
  it('releases a source that is never consumed', async () => {
    const state = { closed: false, read: 0 };
    const p = prefetch(tracked(100, state), 30);
    await new Promise((r) => setTimeout(r, 10));
    expect(state.read).toBe(3);
    expect(state.closed).toBe(false);
    await p.close();
    expect(state.closed).toBe(true);
    expect(state.read).toBe(3);
  });
  it('releases the source when the consumer stops early, and not twice', async () => {
    const state = { closed: false, read: 0 };
    const p = prefetch(tracked(100, state), 30);
    for await (const b of p) if (b[0] === 1) break;
    expect(state.closed).toBe(true);
    await p.close();
    expect(state.read).toBeLessThan(10);
  });
});
