import { describe, expect, it } from 'vitest';
import { lookupTag, tagForKeyword } from './dictionary.js';
import {
  Tags,
  isPrivateCreatorTag,
  isPrivateDataTag,
  isPrivateTag,
  parseTagHex,
  tag,
  tagToHex,
} from './tags.js';

describe('tags', () => {
  it('packs group and element into an unsigned 32-bit number', () => {
    expect(tag(0x0010, 0x0010)).toBe(0x00100010);
    expect(tag(0xfffe, 0xe000)).toBe(0xfffee000);
    expect(tag(0xfffe, 0xe000)).toBeGreaterThan(0);
  });

  it('prints tags as 8 upper-case hex digits, the DICOM JSON key form', () => {
    expect(tagToHex(Tags.PixelData)).toBe('7FE00010');
    expect(tagToHex(Tags.StudyInstanceUID)).toBe('0020000D');
    expect(tagToHex(tag(0x0008, 0x0005))).toBe('00080005');
  });

  it('tells private creators and private data elements from standard ones (PS3.5 §7.8.1)', () => {
    expect(isPrivateTag(tag(0x0029, 0x1010))).toBe(true);
    expect(isPrivateCreatorTag(tag(0x0029, 0x0010))).toBe(true);
    expect(isPrivateCreatorTag(tag(0x0029, 0x00ff))).toBe(true);
    expect(isPrivateDataTag(tag(0x0029, 0x1010))).toBe(true);
    expect(isPrivateDataTag(tag(0x0029, 0xff00))).toBe(true);
    // (gggg,0001-000F) are neither; 0001, 0003, 0005, 0007 and FFFF are not private groups; even groups are standard.
    expect(isPrivateCreatorTag(tag(0x0029, 0x000f))).toBe(false);
    expect(isPrivateDataTag(tag(0x0029, 0x00ff))).toBe(false);
    for (const group of [0x0001, 0x0003, 0x0005, 0x0007, 0xffff, 0x0010, 0x7fe0]) {
      expect(isPrivateTag(tag(group, 0x1010))).toBe(false);
      expect(isPrivateCreatorTag(tag(group, 0x0010))).toBe(false);
      expect(isPrivateDataTag(tag(group, 0x1010))).toBe(false);
    }
  });

  it('parses the usual written forms and rejects others', () => {
    expect(parseTagHex('0010,0010')).toBe(Tags.PatientName);
    expect(parseTagHex('00100010')).toBe(Tags.PatientName);
    expect(parseTagHex('(7fe0,0010)')).toBe(Tags.PixelData);
    expect(parseTagHex('0010,001')).toBeUndefined();
    expect(parseTagHex('PatientName')).toBeUndefined();
  });

  it('names every Tags entry after its PS3.6 keyword', () => {
    for (const [keyword, t] of Object.entries(Tags)) {
      expect(tagForKeyword(keyword), keyword).toBe(t);
      expect(lookupTag(t)?.keyword, keyword).toBe(keyword);
    }
  });
});
