import { describe, expect, it } from 'vitest';
import { checkPassword, DEFAULT_PASSWORD_POLICY, generatePassword } from './password-policy.js';

const rule = (username: string, password: string) => {
  try {
    checkPassword(DEFAULT_PASSWORD_POLICY, username, password);
    return 'ok';
  } catch (err) {
    return (err as { detail: { rule: string } }).detail.rule;
  }
};

describe('password policy', () => {
  it('names the rule a password breaks', () => {
    expect(rule('rad1', 'short-pw')).toBe('min-length');
    expect(rule('rad1', 'x'.repeat(200) + 'Yz!'.repeat(20))).toBe('max-length');
    expect(rule('jsmith', 'my-JSmith-secret-2026')).toBe('contains-username');
    expect(rule('rad1', 'Password1234!')).toBe('common');
    expect(rule('rad1', 'qwertyuiop12')).toBe('common');
    expect(rule('rad1', 'aaaaaaaaaaaaaa')).toBe('common');
    expect(rule('rad1', '123456789012')).toBe('common');
    expect(rule('rad1', 'abcdefghijklm')).toBe('common');
    expect(rule('rad1', 'tulip-harbour-47-violin')).toBe('ok');
    expect(rule('rad1', 'x'.repeat(11))).toBe('min-length');
  });

  it('counts characters, not bytes, and honours a configured policy', () => {
    expect(rule('rad1', 'ñandú-çoffee-ø')).toBe('ok');
    expect(() =>
      checkPassword(
        { minLength: 8, maxLength: 16, rejectUsername: false, rejectCommon: false },
        'rad1',
        'rad1rad1',
      ),
    ).not.toThrow();
  });

  it('generates one-time passwords the policy accepts', () => {
    for (let i = 0; i < 50; i++) {
      const p = generatePassword(DEFAULT_PASSWORD_POLICY, 'ab');
      expect(p).toHaveLength(20);
      expect(rule('ab', p)).toBe('ok');
    }
    expect(generatePassword({ ...DEFAULT_PASSWORD_POLICY, minLength: 40 }, 'ab')).toHaveLength(40);
  });
});
