import { describe, expect, it } from 'vitest';
import { personNameKeys, personNameQuery, personNamesMatch } from './person-name.js';

describe('person name matching (PS3.5 §6.2.1)', () => {
  it('compares family and given name case-insensitively', () => {
    expect(personNamesMatch('SMITH^JOHN', 'smith^john')).toBe(true);
    expect(personNamesMatch('Smith^John', 'SMITH^JANE')).toBe(false);
    expect(personNamesMatch('SMITH^JOHN', 'SMYTH^JOHN')).toBe(false);
  });

  it('ignores trailing empty components and component padding', () => {
    expect(personNamesMatch('SMITH^JOHN^^^', 'smith^john')).toBe(true);
    expect(personNamesMatch(' SMITH ^ JOHN ', 'smith^john')).toBe(true);
    expect(personNamesMatch('SMITH^JOHN', 'SMITH^JOHN^^^=')).toBe(true);
  });

  it('compares family and given only: middle name, prefix and suffix do not decide', () => {
    expect(personNamesMatch('SMITH^JOHN^A^DR^MD', 'smith^john')).toBe(true);
  });

  it('does not link a family name alone to a full name', () => {
    expect(personNamesMatch('SMITH', 'smith^john')).toBe(false);
    expect(personNamesMatch('SMITH^^', 'smith')).toBe(true);
  });

  it('matches in any component group both values have (alphabetic, ideographic, phonetic)', () => {
    expect(personNamesMatch('Yamada^Tarou=山田^太郎=やまだ^たろう', '山田^太郎')).toBe(true);
    expect(personNamesMatch('=山田^太郎', 'yamada^tarou')).toBe(false);
    expect(personNameKeys('Yamada^Tarou=山田^太郎=やまだ^たろう')).toEqual([
      'YAMADA^TAROU',
      '山田^太郎',
      'やまだ^たろう',
    ]);
  });

  it("folds each character to one, as the index folds names: 'ß' stays, it is not 'SS'", () => {
    expect(personNameKeys('Strauß^Eva')).toEqual(['STRAUß^EVA']);
    expect(personNamesMatch('STRAUẞ^EVA', 'strauß^eva')).toBe(true);
  });

  it('never matches empty names', () => {
    expect(personNamesMatch('', '')).toBe(false);
    expect(personNamesMatch('^JOHN', '^john')).toBe(false);
    expect(personNamesMatch(null, 'SMITH^JOHN')).toBe(false);
    expect(personNameKeys(undefined)).toEqual([]);
  });

  it('reads a query key of one group as any group, and a key with = group by group, in the matching form', () => {
    expect(personNameQuery('山田*')).toEqual({ anyGroup: '山田*' });
    expect(personNameQuery('yamada^tarou^^')).toEqual({ anyGroup: 'YAMADA^TAROU' });
    expect(personNameQuery('Yamada^Tarou=山田^太郎')).toEqual({ groups: ['YAMADA^TAROU', '山田^太郎'] });
    // An empty group, or '*' alone, leaves its place open; a trailing '=' still says the key is positional.
    expect(personNameQuery('=山田*')).toEqual({ groups: [undefined, '山田*'] });
    expect(personNameQuery('*==やまだ^')).toEqual({ groups: [undefined, undefined, 'やまだ'] });
    expect(personNameQuery('Yamada^Tarou=')).toEqual({ groups: ['YAMADA^TAROU'] });
  });
});
