import { describe, expect, it } from 'vitest';
import { textDecoding, textEncoding, writableCharacterSet } from './charset.js';

const esc = (s: string) => Buffer.from(s, 'latin1');
const YAMADA = Buffer.concat([
  esc('Yamada^Tarou=\x1b$B'),
  Buffer.from([0x3b, 0x33, 0x45, 0x44]),
  esc('\x1b(B^\x1b$B'),
  Buffer.from([0x42, 0x40, 0x4f, 0x3a]),
  esc('\x1b(B'),
]);
const decode = (cs: string[] | undefined, bytes: Buffer) => textDecoding(cs).decode(bytes);

describe('textDecoding', () => {
  it('reads the default repertoire and ISO_IR 100 (Latin-1)', () => {
    expect(decode(undefined, Buffer.from('Doe^John'))).toBe('Doe^John');
    expect(decode(['ISO_IR 100'], Buffer.from([0x4d, 0xfc, 0x6c, 0x6c, 0x65, 0x72]))).toBe('Müller');
  });

  it('reads bytes above 0x7F without Specific Character Set as UTF-8 where valid UTF-8, else as ISO 8859-1', () => {
    expect(decode(undefined, Buffer.from('Jönsson^Åsa', 'utf8'))).toBe('Jönsson^Åsa');
    expect(decode([''], Buffer.from('山田^太郎', 'utf8'))).toBe('山田^太郎');
    expect(decode(['ISO_IR 6'], Buffer.from('Jönsson', 'utf8'))).toBe('Jönsson');
    expect(decode(undefined, Buffer.from('Håkansson^Märta', 'latin1'))).toBe('Håkansson^Märta');
    // One byte of a UTF-8 sequence alone is no UTF-8: the value is Latin-1 whole.
    expect(decode(undefined, Buffer.from([0x4a, 0xc3, 0xb6, 0x6e, 0xe9]))).toBe('JÃ¶né');
  });

  it('reads ISO_IR 192 (UTF-8) Japanese and Greek', () => {
    expect(decode(['ISO_IR 192'], Buffer.from('山田^太郎', 'utf8'))).toBe('山田^太郎');
    expect(decode(['ISO_IR 192'], Buffer.from('Γιώργος', 'utf8'))).toBe('Γιώργος');
  });

  it('reads the single-byte ISO 8859 parts and Thai', () => {
    expect(decode(['ISO_IR 144'], Buffer.from([0xb8, 0xd2, 0xd0, 0xdd, 0xde, 0xd2]))).toBe('Иванов');
    expect(decode(['ISO_IR 126'], Buffer.from([0xc4, 0xe9, 0xef, 0xed, 0xf5, 0xf3, 0xe9, 0xef, 0xf2]))).toBe(
      'Διονυσιος',
    );
    expect(decode(['ISO_IR 101'], Buffer.from([0xa3, 0xf3, 0x64, 0xbc]))).toBe('Łódź');
    expect(decode(['ISO_IR 138'], Buffer.from([0xf9, 0xf8, 0xe5, 0xef]))).toBe('שרון');
    expect(decode(['ISO_IR 127'], Buffer.from([0xe2, 0xc8, 0xc7, 0xe6, 0xea]))).toBe('قباني');
    expect(decode(['ISO_IR 148'], Buffer.from([0xfe, 0x69]))).toBe('şi');
    expect(decode(['ISO_IR 166'], Buffer.from([0xb9, 0xd2, 0xc2]))).toBe('นาย');
  });

  it('reads GB18030 and GBK', () => {
    const wang = Buffer.concat([
      esc('Wang^XiaoDong='),
      Buffer.from([0xcd, 0xf5, 0x5e, 0xd0, 0xa1, 0xb6, 0xab]),
    ]);
    expect(decode(['GB18030'], wang)).toBe('Wang^XiaoDong=王^小东');
    expect(decode(['GBK'], wang)).toBe('Wang^XiaoDong=王^小东');
  });

  it('reads ISO 2022 IR 87 kanji behind escapes (PS3.5 H.3.2)', () => {
    const b = Buffer.concat([
      esc('Yamada^Tarou='),
      esc('\x1b$B'),
      Buffer.from([0x3b, 0x33, 0x45, 0x44]),
      esc('\x1b(B^\x1b$B'),
      Buffer.from([0x42, 0x40, 0x4f, 0x3a]),
      esc('\x1b(B'),
    ]);
    const d = textDecoding(['', 'ISO 2022 IR 87']);
    expect(d.decode(b)).toBe('Yamada^Tarou=山田^太郎');
    expect(d.warning).toBeUndefined();
  });

  it('reads ISO 2022 IR 13 half-width katakana with IR 87 kanji (PS3.5 H.3.1)', () => {
    const b = Buffer.concat([
      Buffer.from([0xd4, 0xcf, 0xc0, 0xde, 0x5e, 0xc0, 0xdb, 0xb3]),
      esc('=\x1b$B'),
      Buffer.from([0x3b, 0x33, 0x45, 0x44]),
      esc('\x1b(J^\x1b$B'),
      Buffer.from([0x42, 0x40, 0x4f, 0x3a]),
      esc('\x1b(J'),
    ]);
    expect(decode(['ISO 2022 IR 13', 'ISO 2022 IR 87'], b)).toBe('ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎');
  });

  it('reads JIS X 0201 0x5C as a yen in LT, ST and UT, and as the value delimiter elsewhere (PS3.5 H.1.1)', () => {
    const b = Buffer.from([0xd4, 0xcf, 0x5c, 0xc0, 0xdb]);
    expect(textDecoding(['ISO_IR 13']).decode(b, undefined, 'none')).toBe('ﾔﾏ¥ﾀﾛ');
    expect(textDecoding(['ISO_IR 13']).decode(b, undefined, 'values')).toBe('ﾔﾏ\\ﾀﾛ');
    expect(textDecoding(['ISO_IR 13']).decode(b, undefined, 'person-name')).toBe('ﾔﾏ\\ﾀﾛ');
    expect(textDecoding(['ISO 2022 IR 13', 'ISO 2022 IR 87']).decode(b, undefined, 'none')).toBe('ﾔﾏ¥ﾀﾛ');
    expect(textDecoding(['ISO 2022 IR 13', 'ISO 2022 IR 87']).decode(b, undefined, 'values')).toBe('ﾔﾏ\\ﾀﾛ');
  });

  it('reads ISO 2022 IR 149 Korean in G1 (PS3.5 I.2)', () => {
    const b = Buffer.concat([
      esc('Hong^Gildong=\x1b$)C'),
      Buffer.from([0xfb, 0xf3]),
      esc('^\x1b$)C'),
      Buffer.from([0xd1, 0xce, 0xd4, 0xd7]),
      esc('=\x1b$)C'),
      Buffer.from([0xc8, 0xab]),
      esc('^\x1b$)C'),
      Buffer.from([0xb1, 0xe6, 0xb5, 0xbf]),
    ]);
    expect(decode(['', 'ISO 2022 IR 149'], b)).toBe('Hong^Gildong=洪^吉洞=홍^길동');
  });

  it('switches between single-byte sets with escapes (ISO 2022 IR 100 and IR 144)', () => {
    const b = Buffer.concat([
      Buffer.from([0x4d, 0xfc]),
      esc('^\x1b-L'),
      Buffer.from([0xb8, 0xd2, 0xd0, 0xdd]),
    ]);
    expect(decode(['ISO 2022 IR 100', 'ISO 2022 IR 144'], b)).toBe('Mü^Иван');
  });

  it('makes value 1 active again before control characters and the VR delimiters (PS3.5 §6.1.2.5.3)', () => {
    const d = textDecoding(['ISO 2022 IR 100', 'ISO 2022 IR 144']);
    // Cyrillic left in G1 before the delimiter: Müller after it is Latin-1 again.
    const leftOpen = (sep: string) =>
      Buffer.concat([
        esc('\x1b-L'),
        Buffer.from([0xb8, 0xd2, 0xd0, 0xdd]),
        esc(sep),
        Buffer.from('Müller', 'latin1'),
      ]);
    expect(d.decode(leftOpen('^'), undefined, 'person-name')).toBe('Иван^Müller');
    expect(d.decode(leftOpen('='), undefined, 'person-name')).toBe('Иван=Müller');
    expect(d.decode(leftOpen('\\'), undefined, 'person-name')).toBe('Иван\\Müller');
    expect(d.decode(leftOpen('\\'), undefined, 'values')).toBe('Иван\\Müller');
    expect(d.decode(leftOpen('\r\n'), undefined, 'none')).toBe('Иван\r\nMüller');
    expect(d.decode(leftOpen('\t'), undefined, 'none')).toBe('Иван\tMüller');
    // Not delimiters of the VR: the set stays (ќ is 0xFC in ISO 8859-5).
    expect(d.decode(leftOpen('^'), undefined, 'values')).toBe('Иван^Mќller');
    expect(d.decode(leftOpen('\\'), undefined, 'none')).toBe('Иван\\Mќller');
  });

  it('keeps a delimiter byte inside a JIS X 0208 character as part of it', () => {
    // 表 is 0x49 0x3D and 能 0x47 0x3D in JIS X 0208: 0x3D is '=' in ASCII.
    const b = Buffer.concat([esc('Ka=\x1b$B'), Buffer.from([0x49, 0x3d, 0x47, 0x3d]), esc('\x1b(B')]);
    expect(textDecoding(['', 'ISO 2022 IR 87']).decode(b, undefined, 'person-name')).toBe('Ka=表能');
  });

  it('reads ISO 2022 IR 159 (JIS X 0212) behind its escape, as EUC-JP holds it', () => {
    const d = textDecoding(['', 'ISO 2022 IR 159']);
    expect(d.warning).toBeUndefined();
    const problems: string[] = [];
    const b = Buffer.concat([esc('A\x1b$(D'), Buffer.from([0x30, 0x21]), esc('\x1b(BZ')]);
    expect(d.decode(b, (p) => problems.push(p))).toBe('A丂Z');
    expect(problems).toEqual([]);
  });

  it('warns about unknown terms, and still returns text', () => {
    const unknown = textDecoding(['ISO_IR 999']);
    expect(unknown.warning).toMatch(/ISO_IR 999/);
    expect(unknown.unknown).toBe(true);
    expect(unknown.decode(Buffer.from('abc'))).toBe('abc');
  });

  it('reads a term misspelt in case or separators in the set it names, and says so', () => {
    const jerome = Buffer.from('Jérôme', 'utf8');
    const utf8 = textDecoding(['UTF-8']);
    expect(utf8.decode(jerome)).toBe('Jérôme');
    expect(utf8.warning).toBe(
      "Specific Character Set 'UTF-8' is not a Defined Term: text read as ISO_IR 192",
    );
    expect(utf8.unknown).toBeUndefined();
    expect(textDecoding(['ISO_IR100']).decode(Buffer.from('Jérôme', 'latin1'))).toBe('Jérôme');
    expect(textDecoding(['iso_ir 144']).decode(Buffer.from([0xb8, 0xd2, 0xd0, 0xdd]))).toBe('Иван');
    const jis = textDecoding(['ISO 2022 IR 6', 'ISO2022IR87']);
    expect(jis.warning).toBe(
      "Specific Character Set 'ISO 2022 IR 6\\ISO2022IR87' is not a Defined Term: text read as ISO 2022 IR 6\\ISO 2022 IR 87",
    );
    expect(jis.decode(YAMADA)).toBe('Yamada^Tarou=山田^太郎');
  });

  it('reports bytes a character set does not define, and reads them as U+FFFD or ?', () => {
    const problems = (cs: string[], bytes: Buffer) => {
      const out: string[] = [];
      const text = textDecoding(cs).decode(bytes, (p) => out.push(p));
      return { text, problems: out };
    };
    expect(problems(['ISO_IR 192'], Buffer.from('M\xfcller', 'latin1'))).toEqual({
      text: 'M\ufffdller',
      problems: ['not valid UTF-8, read as U+FFFD'],
    });
    expect(problems(['GB18030'], Buffer.from([0x41, 0x81, 0x20]))).toEqual({
      text: 'A\ufffd ',
      problems: ['not valid GB18030, read as U+FFFD'],
    });
    expect(problems(['ISO_IR 13'], Buffer.from([0xb1, 0x80, 0xe0]))).toEqual({
      text: 'ｱ\ufffd\ufffd',
      problems: ['not valid JIS X 0201, read as U+FFFD'],
    });
    expect(problems(['ISO_IR 138'], Buffer.from([0xf9, 0xa1]))).toEqual({
      text: 'ש\ufffd',
      problems: ['not valid ISO-8859-8, read as U+FFFD'],
    });
    // JIS X 0208 is two bytes a character: an odd count leaves one without its partner.
    const odd = problems(
      ['', 'ISO 2022 IR 87'],
      Buffer.concat([esc('\x1b$B'), Buffer.from([0x3b, 0x33, 0x45])]),
    );
    expect(odd.text).toBe('山\ufffd');
    expect(odd.problems).toEqual(['not valid JIS X 0208, read as U+FFFD']);
    expect(problems(['', 'ISO 2022 IR 87'], esc('A\x1b$(Q\x30\x21\x1b(BZ'))).toEqual({
      text: 'A?Z',
      problems: ["unknown escape ESC $(Q, read as '?'"],
    });
    // Valid text is not reported.
    expect(problems(['ISO_IR 192'], Buffer.from('Müller', 'utf8')).problems).toEqual([]);
    expect(problems(['', 'ISO 2022 IR 87'], YAMADA).problems).toEqual([]);
  });

  it('warns about ISO_IR 192, GB18030 and GBK among several values (PS3.3 C.12.1.1.2) and reads the text in it', () => {
    const utf8 = textDecoding(['ISO_IR 192', 'ISO 2022 IR 87']);
    expect(utf8.warning).toBe(
      "Specific Character Set 'ISO_IR 192\\ISO 2022 IR 87': ISO_IR 192 must be its only value; text read as ISO_IR 192",
    );
    expect(utf8.decode(Buffer.from('Müller', 'utf8'))).toBe('Müller');
    const gb = textDecoding(['', 'GB18030']);
    expect(gb.warning).toMatch(/GB18030 must be its only value/);
    expect(gb.decode(Buffer.from([0xcd, 0xf5]))).toBe('王');
  });
});

describe('textEncoding', () => {
  it('encodes UTF-8 and Latin-1 and refuses what the set cannot hold', () => {
    expect(textEncoding(['ISO_IR 192'])('山')).toEqual(Buffer.from('山', 'utf8'));
    expect(textEncoding(['ISO_IR 100'])('ü')).toEqual(Buffer.from([0xfc]));
    expect(textEncoding(['ISO_IR 100'])('山')).toBeUndefined();
    expect(textEncoding(['ISO_IR 144'])('Иван')).toBeUndefined();
    expect(textEncoding(['ISO_IR 144'])('Ivan')).toEqual(Buffer.from('Ivan'));
    // No Specific Character Set is the default repertoire, ASCII (PS3.5 §6.1.2.1), not ISO 8859-1.
    expect(textEncoding(undefined)('Muller')).toEqual(Buffer.from('Muller'));
    expect(textEncoding(undefined)('Müller')).toBeUndefined();
  });

  it('encodes the other single-byte sets when asked, and refuses what each cannot hold', () => {
    const sets = { singleByteSets: true };
    expect(textEncoding(['ISO_IR 144'], sets)('Иван')).toEqual(Buffer.from([0xb8, 0xd2, 0xd0, 0xdd]));
    expect(textEncoding(['ISO_IR 144'], sets)('Müller')).toBeUndefined();
    expect(textEncoding(['ISO_IR 126'], sets)('Γιώργος')).toEqual(
      Buffer.from([0xc3, 0xe9, 0xfe, 0xf1, 0xe3, 0xef, 0xf2]),
    );
    expect(textEncoding(['ISO_IR 101'], sets)('Łódź')).toEqual(Buffer.from([0xa3, 0xf3, 0x64, 0xbc]));
    expect(textEncoding(['ISO_IR 138'], sets)('שרון')).toEqual(Buffer.from([0xf9, 0xf8, 0xe5, 0xef]));
    expect(textEncoding(['ISO_IR 144'], sets)('山')).toBeUndefined();
    expect(textEncoding(['ISO 2022 IR 144'], sets)('Иван')).toBeUndefined();
    // Every byte an encoder writes reads back as the character it was given.
    for (const term of ['ISO_IR 101', 'ISO_IR 144', 'ISO_IR 126', 'ISO_IR 127', 'ISO_IR 138', 'ISO_IR 166']) {
      const text = textDecoding([term]).decode(Buffer.from(Array.from({ length: 96 }, (_, i) => 0xa0 + i)));
      const defined = [...text].filter((c) => c !== '\ufffd').join('');
      expect(textDecoding([term]).decode(textEncoding([term], sets)(defined)!), term).toBe(defined);
    }
  });
});

describe('writableCharacterSet', () => {
  it('names the Defined Term a query in that set can be answered in, and none for a set Custos cannot write', () => {
    expect(writableCharacterSet(['ISO_IR 100'])).toBe('ISO_IR 100');
    expect(writableCharacterSet(['iso_ir100'])).toBe('ISO_IR 100');
    expect(writableCharacterSet(['UTF-8'])).toBe('ISO_IR 192');
    expect(writableCharacterSet(undefined)).toBe('');
    expect(writableCharacterSet([''])).toBe('');
    expect(writableCharacterSet(['ISO_IR 6'])).toBe('');
    expect(writableCharacterSet(['ISO_IR 144'])).toBe('ISO_IR 144');
    expect(writableCharacterSet(['iso-ir 126'])).toBe('ISO_IR 126');
    expect(writableCharacterSet(['ISO_IR 13'])).toBeUndefined();
    expect(writableCharacterSet(['', 'ISO 2022 IR 87'])).toBeUndefined();
    expect(writableCharacterSet(['GB18030'])).toBeUndefined();
    expect(writableCharacterSet(['FOO'])).toBeUndefined();
  });
});
