import { describe, expect, it } from 'vitest';
import { MllpDecoder, mllpFrame } from './mllp-decoder.js';

const frames = (events: ReturnType<MllpDecoder['push']>) =>
  events.map((e) => (e.kind === 'frame' ? e.payload.toString() : e.kind));

describe('MLLP decoder', () => {
  it('reassembles a frame split across reads and splits several frames in one read', () => {
    const d = new MllpDecoder(1024);
    const a = mllpFrame('MSH|A\r');
    const b = mllpFrame('MSH|B\r');
    expect(frames(d.push(a.subarray(0, 3)))).toEqual([]);
    expect(frames(d.push(Buffer.concat([a.subarray(3), b, b.subarray(0, 2)])))).toEqual([
      'MSH|A\r',
      'MSH|B\r',
    ]);
    expect(frames(d.push(b.subarray(2)))).toEqual(['MSH|B\r']);
  });

  it('splits the end block itself across reads and tolerates FS without CR', () => {
    const d = new MllpDecoder(1024);
    const a = mllpFrame('MSH|A\r');
    expect(frames(d.push(a.subarray(0, a.length - 1)))).toEqual(['MSH|A\r']);
    expect(
      frames(
        d.push(Buffer.concat([a.subarray(a.length - 1), Buffer.from('\x0bMSH|B\r\x1c\x0bMSH|C\x1c\r')])),
      ),
    ).toEqual(['MSH|B\r', 'MSH|C']);
  });

  it('reports bytes outside frames, but not whitespace between frames', () => {
    const d = new MllpDecoder(1024);
    expect(frames(d.push(Buffer.concat([Buffer.from('\r\n  '), mllpFrame('MSH|A')])))).toEqual(['MSH|A']);
    const events = d.push(Buffer.concat([Buffer.from('junk'), mllpFrame('MSH|B')]));
    expect(events[0]).toEqual({ kind: 'garbage', bytes: Buffer.from('junk') });
    expect(frames(events.slice(1))).toEqual(['MSH|B']);
  });

  it('reports bytes outside a frame at the end of the read that brought them, once per run up to the next frame', () => {
    const d = new MllpDecoder(1024);
    // Until 7 Dec 2026 nothing was reported until a start block came, which a peer that is no MLLP sender never sends.
    expect(d.push(Buffer.from('\x16\x03\x01junk'))).toEqual([
      { kind: 'garbage', bytes: Buffer.from('\x16\x03\x01junk') },
    ]);
    expect(d.push(Buffer.from('more junk'))).toEqual([]);
    expect(d.push(Buffer.concat([Buffer.from('and more'), mllpFrame('MSH|A')]))).toEqual([
      { kind: 'frame', payload: Buffer.from('MSH|A') },
    ]);
    expect(d.push(Buffer.from('again'))).toEqual([{ kind: 'garbage', bytes: Buffer.from('again') }]);
  });

  it('ends a frame that a start block interrupts, reporting it cut short, and reads the new frame', () => {
    const d = new MllpDecoder(1024);
    const events = d.push(Buffer.concat([Buffer.from('\x0bMSH|A|cut'), mllpFrame('MSH|B')]));
    expect(events[0]).toEqual({ kind: 'abandoned', head: Buffer.from('MSH|A|cut'), size: 9 });
    expect(frames(events.slice(1))).toEqual(['MSH|B']);
    // Across reads too.
    expect(frames(d.push(Buffer.from('\x0bMSH|C')))).toEqual([]);
    expect(frames(d.push(Buffer.concat([Buffer.from('|more'), mllpFrame('MSH|D')])))).toEqual([
      'abandoned',
      'MSH|D',
    ]);
  });

  it('tells the frame begun and not ended, if any', () => {
    const d = new MllpDecoder(1024);
    expect(d.unfinished()).toBeUndefined();
    d.push(Buffer.concat([mllpFrame('MSH|A'), Buffer.from('\x0bMSH|B|par')]));
    expect(d.unfinished()).toEqual({ head: Buffer.from('MSH|B|par'), size: 9 });
    d.push(Buffer.from('t\x1c\r'));
    expect(d.unfinished()).toBeUndefined();
  });

  it('drops an over-long frame as it arrives, keeping its head, and reads the next frame', () => {
    const d = new MllpDecoder(2048);
    // Longer than the limit, and ending within twice the limit (longer ones are an overrun, below).
    const big = mllpFrame(`MSH|^~\\&|APP|FAC|||1||ADT^A08|BIG|P|2.5.1\r${'x'.repeat(4_000)}`);
    const events = [];
    for (let i = 0; i < big.length; i += 700) events.push(...d.push(big.subarray(i, i + 700)));
    expect(events).toHaveLength(1);
    const ev = events[0]!;
    if (ev.kind !== 'oversize') throw new Error('expected oversize');
    expect(ev.size).toBe(big.length - 3);
    expect(ev.head.toString().startsWith('MSH|^~\\&|APP|FAC')).toBe(true);
    expect(ev.head.length).toBeLessThanOrEqual(4096);
    expect(frames(d.push(mllpFrame('MSH|next')))).toEqual(['MSH|next']);
  });

  it('stops at a run outside a frame longer than the limit, whitespace included, reporting an overrun', () => {
    // Until 8 Dec 2026 such a run was read for as long as the peer sent it, and the connection never closed.
    const d = new MllpDecoder(1024);
    expect(d.push(Buffer.from('junk'))).toEqual([{ kind: 'garbage', bytes: Buffer.from('junk') }]);
    expect(d.push(Buffer.alloc(1020, 'j'))).toEqual([]);
    expect(d.push(Buffer.from('j'))).toEqual([{ kind: 'overrun', head: undefined, size: 1025 }]);
    expect(d.push(mllpFrame('MSH|A'))).toEqual([]);
    const blank = new MllpDecoder(1024);
    expect(blank.push(Buffer.alloc(1024, '\r\n'))).toEqual([]);
    expect(blank.push(Buffer.from('\n'))).toEqual([{ kind: 'overrun', head: undefined, size: 1025 }]);
    // A frame starts the count again.
    const framed = new MllpDecoder(1024);
    expect(frames(framed.push(Buffer.concat([Buffer.alloc(1000, ' '), mllpFrame('MSH|A')])))).toEqual([
      'MSH|A',
    ]);
    expect(framed.push(Buffer.alloc(1000, ' '))).toEqual([]);
  });

  it('stops at a frame twice as long as the limit with no end block, reporting its head and size', () => {
    const d = new MllpDecoder(1024);
    const head = Buffer.from('MSH|^~\\&|APP|FAC|||1||ADT^A08|ENDLESS|P|2.5.1\r');
    expect(d.push(Buffer.concat([Buffer.of(0x0b), head]))).toEqual([]);
    let events: ReturnType<MllpDecoder['push']> = [];
    let sent = head.length;
    while (events.length === 0 && sent < 100_000) {
      events = d.push(Buffer.alloc(100, 'x'));
      sent += 100;
    }
    expect(events).toEqual([{ kind: 'overrun', head: expect.any(Buffer), size: sent }]);
    expect(sent).toBeGreaterThan(2048);
    expect(sent).toBeLessThanOrEqual(2148);
    const ev = events[0]!;
    if (ev.kind !== 'overrun') throw new Error('expected overrun');
    expect(ev.head!.subarray(0, head.length)).toEqual(head);
    // Nothing more is read, and the frame is not reported again as unfinished when the connection closes.
    expect(d.push(Buffer.from('\x1c\r'))).toEqual([]);
    expect(d.unfinished()).toBeUndefined();
    // An over-long frame that ends within twice the limit is still answered as such.
    const ending = new MllpDecoder(1024);
    expect(ending.push(mllpFrame(Buffer.alloc(2048, 'x')))).toEqual([
      { kind: 'oversize', head: expect.any(Buffer), size: 2048 },
    ]);
  });

  it('numbers each run a peer is in the middle of: a frame, or bytes outside one other than whitespace', () => {
    const d = new MllpDecoder(1024);
    expect(d.run).toBeUndefined();
    d.push(Buffer.from('\r\n'));
    expect(d.run).toBeUndefined();
    d.push(Buffer.from('\x0bMSH|A'));
    const frame = d.run;
    expect(frame).toBeDefined();
    d.push(Buffer.from('|more'));
    expect(d.run).toBe(frame);
    d.push(Buffer.from('\x1c\r\n'));
    expect(d.run).toBeUndefined();
    d.push(Buffer.from('junk'));
    const junk = d.run;
    expect(junk).toBeDefined();
    expect(junk).not.toBe(frame);
    d.push(Buffer.from('\x0bMSH|B\x1c\r'));
    expect(d.run).toBeUndefined();
    // A frame a start block cuts short, and the one it begins, are two runs.
    d.push(Buffer.from('\x0bMSH|C'));
    const cut = d.run;
    d.push(Buffer.from('\x0bMSH|D'));
    expect(d.run).not.toBe(cut);
  });
});
