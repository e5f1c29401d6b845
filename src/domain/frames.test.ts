import { describe, expect, it } from 'vitest';
import { frameRanges, sliceRanges, type BulkMap } from './frames.js';

const geometry = { rows: 2, columns: 3, samplesPerPixel: 1, bitsAllocated: 16, numberOfFrames: 3 };

describe('frameRanges', () => {
  it('slices native pixel data by frame size', () => {
    const bulk: BulkMap = {
      datasetStart: 132,
      deflated: false,
      elements: {},
      pixel: { tagPath: '7FE00010', offset: 1000, length: 36, encapsulated: false },
    };
    expect(frameRanges(bulk, geometry, [2, 1])).toEqual([
      [{ offset: 1012, length: 12 }],
      [{ offset: 1000, length: 12 }],
    ]);
  });
  it('maps encapsulated frames through the Basic Offset Table', () => {
    // Item headers are 8 bytes: fragment values at 508 (len 10), 526 (len 4), 538 (len 6); BOT says frame 2 starts at the 3rd item.
    const frags = [
      { offset: 508, length: 10 },
      { offset: 526, length: 4 },
      { offset: 538, length: 6 },
    ];
    const bulk: BulkMap = {
      datasetStart: 132,
      deflated: false,
      elements: {},
      pixel: {
        tagPath: '7FE00010',
        offset: 500,
        length: -1,
        encapsulated: true,
        fragments: frags,
        basicOffsetTable: [0, 30],
      },
    };
    expect(frameRanges(bulk, { ...geometry, numberOfFrames: 2 }, [1, 2])).toEqual([
      [frags[0], frags[1]],
      [frags[2]],
    ]);
  });
  it('uses one fragment per frame without a table, or all fragments for a single frame', () => {
    const frags = [
      { offset: 508, length: 10 },
      { offset: 526, length: 4 },
    ];
    const px = { tagPath: '7FE00010', offset: 500, length: -1, encapsulated: true, fragments: frags };
    expect(
      frameRanges(
        { datasetStart: 0, deflated: false, elements: {}, pixel: px },
        { ...geometry, numberOfFrames: 2 },
        [2],
      ),
    ).toEqual([[frags[1]]]);
    expect(
      frameRanges(
        { datasetStart: 0, deflated: false, elements: {}, pixel: px },
        { ...geometry, numberOfFrames: 1 },
        [1],
      ),
    ).toEqual([frags]);
  });
  it('refuses frames that do not exist', () => {
    const bulk: BulkMap = {
      datasetStart: 0,
      deflated: false,
      elements: {},
      pixel: { tagPath: '7FE00010', offset: 0, length: 36, encapsulated: false },
    };
    expect(() => frameRanges(bulk, geometry, [4])).toThrow(/frame 4 does not exist/);
    expect(() => frameRanges({ datasetStart: 0, deflated: false, elements: {} }, geometry, [1])).toThrow(
      /no pixel data/,
    );
  });
  it('refuses a frame the stored pixel data does not hold whole (a header promising more frames)', () => {
    // Three frames of 12 bytes promised, 30 bytes held: frames 1 and 2 are whole, frame 3 is cut short.
    const bulk: BulkMap = {
      datasetStart: 0,
      deflated: false,
      elements: {},
      pixel: { tagPath: '7FE00010', offset: 0, length: 30, encapsulated: false },
    };
    expect(frameRanges(bulk, geometry, [2])).toEqual([[{ offset: 12, length: 12 }]]);
    expect(() => frameRanges(bulk, geometry, [1, 3])).toThrow(
      'frame 3 is not in the stored pixel data: the header describes 3 frame(s) of 12 bytes, the pixel data holds 30 bytes',
    );
  });
});

describe('sliceRanges', () => {
  const ranges = [
    { offset: 100, length: 10 },
    { offset: 500, length: 5 },
    { offset: 900, length: 20 },
  ];
  it('maps bytes of the value the ranges make up onto the object', () => {
    expect(sliceRanges(ranges, 0, 34)).toEqual(ranges);
    expect(sliceRanges(ranges, 2, 3)).toEqual([{ offset: 102, length: 2 }]);
    expect(sliceRanges(ranges, 8, 16)).toEqual([
      { offset: 108, length: 2 },
      { offset: 500, length: 5 },
      { offset: 900, length: 2 },
    ]);
    expect(sliceRanges(ranges, 15, 15)).toEqual([{ offset: 900, length: 1 }]);
    expect(sliceRanges(ranges, 30, 34)).toEqual([{ offset: 915, length: 5 }]);
  });
});
