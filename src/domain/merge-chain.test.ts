import { describe, expect, it } from 'vitest';
import { followMerges, type MergeStep } from './merge-chain.js';

/** Merges as (prior, survivor, order): each patient's latest merge is the one with the highest order. */
const merges = (...rows: [number, number, number][]) => {
  return async (pk: number): Promise<MergeStep | undefined> =>
    rows
      .filter(([prior]) => prior === pk)
      .map(([, survivor, order]) => ({ survivor, order }))
      .sort((a, b) => b.order - a.order)[0];
};

describe('followMerges', () => {
  it('ends at the patient with no merge of its own, however long the chain', async () => {
    const chain = Array.from({ length: 40 }, (_, i): [number, number, number] => [i + 1, i + 2, i + 1]);
    expect(await followMerges(1, merges(...chain))).toEqual({
      survivor: 41,
      path: Array.from({ length: 41 }, (_, i) => i + 1),
      loop: false,
      cycle: [],
      cycleMerges: [],
    });
    expect(await followMerges(7, merges())).toEqual({
      survivor: 7,
      path: [7],
      loop: false,
      cycle: [],
      cycleMerges: [],
    });
  });

  it('ends a loop at the survivor of its newest merge, whichever patient it starts from', async () => {
    // 1 into 2 (order 10), then 2 into 1 (order 11): the newest merge says 1 survives.
    const loop = merges([1, 2, 10], [2, 1, 11]);
    expect(await followMerges(1, loop)).toEqual({
      survivor: 1,
      path: [1, 2],
      loop: true,
      cycle: [1, 2],
      cycleMerges: [10, 11],
    });
    expect(await followMerges(2, loop)).toEqual({
      survivor: 1,
      path: [2, 1],
      loop: true,
      cycle: [2, 1],
      cycleMerges: [11, 10],
    });
    // A chain into a longer loop: 5 into 3, 3 into 4, 4 into 6, 6 into 3 (newest: 4 into 6).
    const tail = merges([5, 3, 1], [3, 4, 2], [4, 6, 9], [6, 3, 3]);
    for (const start of [5, 3, 4, 6]) expect((await followMerges(start, tail)).survivor).toBe(6);
    // The loop is 3, 4, 6, without the tail that led into it.
    expect((await followMerges(5, tail)).cycle).toEqual([3, 4, 6]);
    expect((await followMerges(5, tail)).cycleMerges).toEqual([2, 9, 3]);
  });
});
