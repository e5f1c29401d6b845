import { describe, expect, it } from 'vitest';
import { foldCase } from './case-fold.js';

describe('foldCase', () => {
  it('upper-cases ASCII and the letters whose upper case is one letter', () => {
    expect(foldCase('Doe^John')).toBe('DOE^JOHN');
    expect(foldCase('Müller^Änne')).toBe('MÜLLER^ÄNNE');
    expect(foldCase('Иванов')).toBe('ИВАНОВ');
  });

  it("folds each character to one: 'ß', 'ẞ' and ligatures keep their length", () => {
    expect(foldCase('Weiß')).toBe('WEIß');
    expect(foldCase('WEIẞ')).toBe('WEIß');
    expect(foldCase('ﬁscher')).toBe('ﬁSCHER');
    for (const s of ['Weiß', 'ﬁscher', 'ŉ', 'ǰ', 'ΐ', 'İstanbul'])
      expect([...foldCase(s)].length).toBe([...s].length);
  });

  it('folds Greek final and medial sigma alike', () => {
    expect(foldCase('Παπαδόπουλος')).toBe('ΠΑΠΑΔΌΠΟΥΛΟΣ');
    expect(foldCase('σ')).toBe(foldCase('ς'));
  });
});
