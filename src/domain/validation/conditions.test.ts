import { describe, expect, it } from 'vitest';
import { parseConditionText } from './conditions.js';
import { MODULE_CONDITIONS } from './iod-modules-data.js';

describe('PS3.3 Annex A module conditions', () => {
  it('parses the mechanical forms of the standard text', () => {
    expect(
      parseConditionText('Required if Photometric Interpretation (0028,0004) has a value of PALETTE COLOR'),
    ).toEqual({ kind: 'value', keyword: 'PhotometricInterpretation', in: ['PALETTE COLOR'] });
    expect(
      parseConditionText(
        'Required if Image Type (0008,0008) Value 3 is TOMO, GATED TOMO, RECON TOMO or RECON GATED TOMO',
      ),
    ).toEqual({
      kind: 'value',
      keyword: 'ImageType',
      index: 2,
      in: ['TOMO', 'GATED TOMO', 'RECON TOMO', 'RECON GATED TOMO'],
    });
    expect(
      parseConditionText(
        'Required if Frame Increment Pointer (0028,0009) is Frame Time (0018,1063) or Frame Time Vector (0018,1065)',
      ),
    ).toEqual({ kind: 'value', keyword: 'FrameIncrementPointer', in: ['FrameTime', 'FrameTimeVector'] });
    expect(
      parseConditionText(
        'Required if Image Position (Patient) (0020,0032) or Image Orientation (Patient) (0020,0037) are present. May be present otherwise.',
      ),
    ).toEqual({ kind: 'present', any: ['ImagePositionPatient', 'ImageOrientationPatient'] });
    expect(parseConditionText('Required if Number of Frames is greater than 1')).toEqual({
      kind: 'greater',
      keyword: 'NumberOfFrames',
      than: 1,
    });
  });

  it('leaves what needs knowledge outside the dataset unevaluated', () => {
    expect(parseConditionText('Required if contrast media was used in this image')).toBeUndefined();
    expect(parseConditionText('Required if pixel data is Multi-frame Cine data')).toBeUndefined();
    expect(parseConditionText('Required if time synchronization was applied.')).toBeUndefined();
  });

  it('parses the conditions of the IODs Custos covers as docs/validation.md lists them', () => {
    const covered = [
      'secondary-capture-image',
      'digital-x-ray-image',
      'x-ray-angiographic-image',
      'nuclear-medicine-image',
    ];
    const parsed = covered.flatMap((iod) =>
      Object.entries(MODULE_CONDITIONS[iod] ?? {})
        .filter(([, text]) => parseConditionText(text))
        .map(([m]) => `${iod}:${m}`),
    );
    expect(parsed).toEqual(
      expect.arrayContaining([
        'secondary-capture-image:frame-of-reference',
        'digital-x-ray-image:voi-lut',
        'x-ray-angiographic-image:modality-lut',
        'nuclear-medicine-image:nm-multi-gated-acquisition',
      ]),
    );
  });
});
