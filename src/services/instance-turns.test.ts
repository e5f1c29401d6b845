import { describe, expect, it } from 'vitest';
import { InstanceTurns } from './instance-turns.js';

describe('InstanceTurns', () => {
  it('lets a second object with the same UID go only once the first is done, in the order taken', async () => {
    const turns = new InstanceTurns();
    const order: string[] = [];
    const first = turns.take('1.2.3');
    const second = turns.take('1.2.3');
    const third = turns.take('1.2.3');
    void third.ready.then(() => order.push('third'));
    void second.ready.then(() => order.push('second'));
    await first.ready;
    order.push('first');
    await Promise.resolve();
    expect(order).toEqual(['first']);
    first.done();
    await second.ready;
    expect(order).toEqual(['first', 'second']);
    second.done();
    await third.ready;
    expect(order).toEqual(['first', 'second', 'third']);
    third.done();
    expect(turns.size).toBe(0);
  });

  it('never holds back an object with another UID', async () => {
    const turns = new InstanceTurns();
    const held = turns.take('1.2.3');
    const other = turns.take('1.2.4');
    await other.ready;
    other.done();
    held.done();
    expect(turns.size).toBe(0);
  });
});
