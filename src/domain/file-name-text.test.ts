import { describe, expect, it } from 'vitest';
import { fileNameText } from './file-name-text.js';

const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

describe('fileNameText', () => {
  it('shows a UTF-8 name as it is', () => {
    expect(fileNameText(bytes('Müller/山田.dcm'))).toBe('Müller/山田.dcm');
  });
  it('writes each byte that is not UTF-8 as \\xNN (a Latin-1 é)', () => {
    expect(fileNameText(bytes('IM', [0xe9], 'G0001'))).toBe('IM\\xe9G0001');
    expect(fileNameText(bytes([0xff, 0xfe]))).toBe('\\xff\\xfe');
  });
  it('refuses overlong forms, surrogates and a sequence cut short', () => {
    expect(fileNameText(bytes([0xc0, 0xaf]))).toBe('\\xc0\\xaf');
    expect(fileNameText(bytes([0xed, 0xa0, 0x80]))).toBe('\\xed\\xa0\\x80');
    expect(fileNameText(bytes('a', [0xe5, 0xb1]))).toBe('a\\xe5\\xb1');
  });
  it('writes a backslash as \\\\, so that a name spelled IM\\xe9G0001 in ASCII reads differently', () => {
    expect(fileNameText(bytes('IM\\xe9G0001'))).toBe('IM\\\\xe9G0001');
  });
  it('escapes control characters in a name, so that it cannot act on the terminal', () => {
    expect(fileNameText(bytes('a\x1b[2J\r', [0xc2, 0x9b], [0xe9], '.dcm'))).toBe(
      'a\\x1b[2J\\r\\u009b\\xe9.dcm',
    );
  });
});
