import { describe, expect, it } from 'vitest';
import { renderToRgba, type RenderParams } from './render.js';

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
