import { describe, expect, it } from 'vitest';
import { base32Decode, base32Encode, hotp, matchTotp, otpauthUri, totp } from './totp.js';

// RFC 4226 Appendix D: secret "12345678901234567890", counters 0..9.
const RFC4226 = [
  '755224',
  '287082',
  '359152',
  '969429',
  '338314',
  '254676',
  '287922',
  '162583',
  '399871',
  '520489',
];
const seed20 = Buffer.from('12345678901234567890', 'ascii');
const seed32 = Buffer.from('12345678901234567890123456789012', 'ascii');
const seed64 = Buffer.from('1234567890123456789012345678901234567890123456789012345678901234', 'ascii');

// RFC 6238 Appendix B: 8-digit codes per time and hash.
const RFC6238: [number, string, string, string][] = [
  [59, '94287082', '46119246', '90693936'],
  [1111111109, '07081804', '68084774', '25091201'],
  [1111111111, '14050471', '67062674', '99943326'],
  [1234567890, '89005924', '91819424', '93441116'],
  [2000000000, '69279037', '90698825', '38618901'],
  [20000000000, '65353130', '77737706', '47863826'],
];

describe('HOTP and TOTP', () => {
  it('computes the RFC 4226 Appendix D values', () => {
    expect(RFC4226.map((_, i) => hotp(seed20, i))).toEqual(RFC4226);
  });

  it('computes the RFC 6238 Appendix B values for SHA-1, SHA-256 and SHA-512', () => {
    for (const [t, sha1, sha256, sha512] of RFC6238) {
      const at = new Date(t * 1000);
      expect(totp(seed20, at, 8, 'sha1'), `T=${t}`).toBe(sha1);
      expect(totp(seed32, at, 8, 'sha256'), `T=${t}`).toBe(sha256);
      expect(totp(seed64, at, 8, 'sha512'), `T=${t}`).toBe(sha512);
    }
  });

  it('accepts a code of the step before or after now, and refuses two steps away or malformed codes', () => {
    const at = new Date(1111111109 * 1000);
    const step = Math.floor(1111111109 / 30);
    expect(matchTotp(seed20, hotp(seed20, step), at)).toBe(step);
    expect(matchTotp(seed20, hotp(seed20, step - 1), at)).toBe(step - 1);
    expect(matchTotp(seed20, hotp(seed20, step + 1), at)).toBe(step + 1);
    expect(matchTotp(seed20, hotp(seed20, step - 2), at)).toBeUndefined();
    expect(matchTotp(seed20, hotp(seed20, step + 2), at)).toBeUndefined();
    expect(matchTotp(seed20, '12345', at)).toBeUndefined();
    expect(matchTotp(seed20, '12345a', at)).toBeUndefined();
  });
});

describe('base32 and otpauth URIs', () => {
  it('encodes the RFC 4648 test vectors (unpadded) and decodes them back', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'MY'],
      ['fo', 'MZXQ'],
      ['foo', 'MZXW6'],
      ['foob', 'MZXW6YQ'],
      ['fooba', 'MZXW6YTB'],
      ['foobar', 'MZXW6YTBOI'],
    ];
    for (const [plain, enc] of vectors) {
      expect(base32Encode(Buffer.from(plain))).toBe(enc);
      expect(base32Decode(enc).toString()).toBe(plain);
    }
    expect(() => base32Decode('MZ1')).toThrow(/base32/);
  });

  it('names issuer, account, algorithm, digits and period in the key URI', () => {
    const text = otpauthUri('Custos', 'rad 1', seed20);
    expect(text.startsWith('otpauth://totp/Custos:rad%201?')).toBe(true);
    const uri = new URL(text);
    expect(uri.searchParams.get('secret')).toBe('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    expect(uri.searchParams.get('digits')).toBe('6');
    expect(uri.searchParams.get('period')).toBe('30');
    expect(uri.searchParams.get('algorithm')).toBe('SHA1');
  });
});
