import { describe, expect, it } from 'vitest';
import { lookupTag, tagForKeyword } from './dictionary.js';
import { tag } from './tags.js';

describe('dictionary', () => {
  it('knows VR, keyword and VM of standard attributes', () => {
    expect(lookupTag(tag(0x0010, 0x0010))).toMatchObject({ vr: 'PN', keyword: 'PatientName', vm: '1' });
    expect(lookupTag(tag(0x0008, 0x0008))).toMatchObject({ vr: 'CS', keyword: 'ImageType', vm: '2-n' });
    expect(lookupTag(tag(0x0008, 0x1140))?.vr).toBe('SQ');
    expect(lookupTag(tag(0x0008, 0x0001))?.retired).toBe(true);
  });

  it('takes the first VR where PS3.6 allows several, marked ambiguous, and none for item tags', () => {
    expect(lookupTag(tag(0x7fe0, 0x0010))).toMatchObject({ vr: 'OB', ambiguous: true });
    expect(lookupTag(tag(0x0028, 0x0106))).toMatchObject({ vr: 'US', ambiguous: true });
    expect(lookupTag(tag(0x0028, 0x1200))).toMatchObject({ vr: 'US', ambiguous: true });
    expect(lookupTag(tag(0x6002, 0x3000))?.ambiguous).toBe(true);
    expect(lookupTag(tag(0x0018, 0x0015))).toEqual({
      vr: 'CS',
      keyword: 'BodyPartExamined',
      vm: '1',
      retired: false,
    });
    expect(lookupTag(tag(0xfffe, 0xe000))).toMatchObject({ vr: '', keyword: 'Item' });
  });

  it('matches repeating groups: overlay (60xx) and curve (50xx) data', () => {
    expect(lookupTag(tag(0x6002, 0x3000))).toMatchObject({ keyword: 'OverlayData', vr: 'OB' });
    expect(lookupTag(tag(0x601e, 0x0010))).toMatchObject({ keyword: 'OverlayRows', vr: 'US' });
    expect(lookupTag(tag(0x5010, 0x3000))).toMatchObject({ keyword: 'CurveData' });
  });

  it('reads group lengths as UL and leaves private and unknown tags undefined', () => {
    expect(lookupTag(tag(0x0010, 0x0000))?.vr).toBe('UL');
    expect(lookupTag(tag(0x0009, 0x1001))).toBeUndefined();
    expect(lookupTag(tag(0x0010, 0x9999))).toBeUndefined();
  });

  it('maps keywords back to tags', () => {
    expect(tagForKeyword('StudyInstanceUID')).toBe(0x0020000d);
    expect(tagForKeyword('FloatPixelData')).toBe(0x7fe00008);
    expect(tagForKeyword('NoSuchKeyword')).toBeUndefined();
  });
});
