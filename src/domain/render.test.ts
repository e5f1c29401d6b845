import { describe, expect, it } from 'vitest';
import { fitToViewport, parseViewport, renderToRgba, type RenderParams } from './render.js';

const base: RenderParams = {
  rows: 1,
  columns: 3,
  samplesPerPixel: 1,
  bitsAllocated: 16,
  bitsStored: 12,
  pixelRepresentation: 0,
  photometric: 'MONOCHROME2',
  planarConfiguration: 0,
  bigEndian: false,
  rescaleSlope: 1,
  rescaleIntercept: 0,
};
const px = (...v: number[]) => {
  const b = Buffer.alloc(v.length * 2);
  v.forEach((x, i) => b.writeInt16LE(x, i * 2));
  return b;
};
const grey = (rgba: Buffer) => [rgba[0], rgba[4], rgba[8]];

describe('renderToRgba', () => {
  it('spreads the full range when no window is given', () => {
    expect(grey(renderToRgba(px(0, 2048, 4095), base))).toEqual([0, 128, 255]);
  });
  it('applies the window and inverts MONOCHROME1', () => {
    const w = { ...base, windowCenter: 100, windowWidth: 101 };
    expect(grey(renderToRgba(px(0, 100, 4000), w))).toEqual([0, 129, 255]);
    expect(grey(renderToRgba(px(0, 100, 4000), { ...w, photometric: 'MONOCHROME1' }))).toEqual([255, 126, 0]);
  });
  it('sign-extends stored bits and applies the modality rescale', () => {
    const ct = {
      ...base,
      pixelRepresentation: 1,
      rescaleIntercept: -1024,
      windowCenter: 40,
      windowWidth: 400,
    };
    // -2000 stored in 12 bits is masked to its 12-bit pattern and sign-extended back.
    expect(grey(renderToRgba(px(-2000 & 0xfff, 1064, 1500), ct))).toEqual([0, 128, 255]);
    // 3000 does not fit 12 signed bits: it reads as -1096, far below the window.
    expect(grey(renderToRgba(px(3000), { ...ct, columns: 1 }))[0]).toBe(0);
  });
  it('refuses what it cannot render', () => {
    expect(() =>
      renderToRgba(Buffer.alloc(9), {
        ...base,
        samplesPerPixel: 3,
        photometric: 'YBR_PARTIAL_420',
        bitsAllocated: 8,
      }),
    ).toThrow(/colour/);
  });
});

describe('viewport (PS3.18 §8.3.5.1.3)', () => {
  /** A width × height RGBA image whose red channel is `value(x, y)`. */
  const image = (width: number, height: number, value: (x: number, y: number) => number) => {
    const b = Buffer.alloc(width * height * 4, 255);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) b[(y * width + x) * 4] = value(x, y);
    return b;
  };
  const reds = (r: { data: Buffer; width: number; height: number }) =>
    Array.from({ length: r.height }, (_, y) =>
      Array.from({ length: r.width }, (_, x) => r.data[(y * r.width + x) * 4]),
    );

  it('parses vw,vh and vw,vh,sx,sy,sw,sh and names what is wrong', () => {
    expect(parseViewport('128,64')).toEqual({ width: 128, height: 64 });
    expect(parseViewport('10,10,2,3,-4,5')).toEqual({
      width: 10,
      height: 10,
      region: { x: 2, y: 3, width: -4, height: 5 },
    });
    expect(parseViewport('10,10,,,,')).toEqual({
      width: 10,
      height: 10,
      region: { x: 0, y: 0, width: 0, height: 0 },
    });
    for (const bad of ['128', '0,10', '10,5000', 'a,b', '10,10,1,1,0,4', '10,10,-1,0,4,4', '1.5,2'])
      expect(() => parseViewport(bad), bad).toThrow(/viewport/);
  });

  it('averages what each output pixel covers, keeping the aspect ratio', () => {
    // 4 × 2 into 2 × 2: the image becomes 2 × 1, each pixel the mean of a 2 × 2 block.
    const src = image(4, 2, (x, y) => [10, 20, 30, 40][x]! + y * 100);
    const out = fitToViewport(src, 4, 2, { width: 2, height: 2 });
    expect([out.width, out.height]).toEqual([2, 1]);
    expect(reds(out)).toEqual([[(10 + 20 + 110 + 120) / 4, (30 + 40 + 130 + 140) / 4]]);
  });

  it('enlarges to fit, each output pixel taking the nearest source pixel', () => {
    const out = fitToViewport(
      image(2, 1, (x) => (x ? 200 : 50)),
      2,
      1,
      { width: 4, height: 4 },
    );
    expect([out.width, out.height]).toEqual([4, 2]);
    expect(reds(out)).toEqual([
      [50, 50, 200, 200],
      [50, 50, 200, 200],
    ]);
  });

  it('cuts out a region given in fractions of the image, and enlarges it only when allowed', () => {
    const src = image(5, 4, (x, y) => 10 * x + 100 * y);
    const fraction = { x0: 0.2, y0: 0, x1: 0.6, y1: 0.5 };
    // Columns floor(0.2 × 5) = 1 to ceil(0.6 × 5) − 1 = 2, rows 0 to ceil(0.5 × 4) − 1 = 1.
    expect(reds(fitToViewport(src, 5, 4, { width: 4096, height: 4096, fraction, shrinkOnly: true }))).toEqual(
      [
        [10, 20],
        [110, 120],
      ],
    );
    const big = fitToViewport(src, 5, 4, { width: 4, height: 4, fraction });
    expect([big.width, big.height]).toEqual([4, 4]);
    const small = fitToViewport(src, 5, 4, { width: 4, height: 4, shrinkOnly: true });
    expect([small.width, small.height]).toEqual([4, 3]);
  });

  it('cuts the region out, mirroring an axis whose size is negative, and refuses one outside the image', () => {
    const src = image(3, 2, (x, y) => 10 * x + 100 * y);
    expect(
      reds(fitToViewport(src, 3, 2, { width: 2, height: 2, region: { x: 1, y: 0, width: 2, height: 2 } })),
    ).toEqual([
      [10, 20],
      [110, 120],
    ]);
    expect(
      reds(fitToViewport(src, 3, 2, { width: 3, height: 2, region: { x: 0, y: 0, width: -3, height: 0 } })),
    ).toEqual([
      [20, 10, 0],
      [120, 110, 100],
    ]);
    expect(() =>
      fitToViewport(src, 3, 2, { width: 2, height: 2, region: { x: 2, y: 0, width: 2, height: 1 } }),
    ).toThrow(/not inside the 3 × 2 image/);
  });
});
