import { randomBytes } from 'node:crypto';
import { CustosError } from './errors.js';

export interface PasswordPolicy {
  minLength: number;
  maxLength: number;
  /** Refuse a password that contains the account name (case-insensitive). */
  rejectUsername: boolean;
  /** Refuse passwords on the built-in list of common passwords (and those lists' obvious variants). */
  rejectCommon: boolean;
}

export const DEFAULT_PASSWORD_POLICY: PasswordPolicy = {
  minLength: 12,
  maxLength: 256,
  rejectUsername: true,
  rejectCommon: true,
};

// The most common passwords of public breach corpora that are 8 characters or longer, plus local favourites;
// compared case-insensitively after stripping trailing digits and punctuation ("Password123!" is "password").
const COMMON = new Set([
  'password',
  'passw0rd',
  'p@ssword',
  'p@ssw0rd',
  'qwertyuiop',
  'qwerty',
  'qwertz',
  'azerty',
  'asdfghjkl',
  'zxcvbnm',
  'iloveyou',
  'sunshine',
  'princess',
  'football',
  'baseball',
  'welcome',
  'letmein',
  'trustno',
  'dragon',
  'monkey',
  'master',
  'superman',
  'starwars',
  'whatever',
  'changeme',
  'administrator',
  'admin',
  'secret',
  'abcdefgh',
  'abcdefghijkl',
  'abc',
  'qazwsx',
  'hospital',
  'radiology',
  'custos',
  'dicom',
  'summer',
  'winter',
  'spring',
  'autumn',
  'correcthorsebatterystaple',
]);

const weak = (rule: string, message: string) =>
  new CustosError({
    code: 'account.weak-password',
    message: `the password does not meet the password policy: ${message}`,
    httpStatus: 400,
    detail: { rule },
  });

/** Throws account.weak-password naming the first rule a new password breaks. */
export function checkPassword(policy: PasswordPolicy, username: string, password: string): void {
  const length = [...password].length;
  if (length < policy.minLength)
    throw weak('min-length', `it must be at least ${policy.minLength} characters long`);
  if (length > policy.maxLength)
    throw weak('max-length', `it must be at most ${policy.maxLength} characters long`);
  if (
    policy.rejectUsername &&
    username.length >= 3 &&
    password.toLowerCase().includes(username.toLowerCase())
  )
    throw weak('contains-username', 'it must not contain the account name');
  if (policy.rejectCommon) {
    const lower = password.toLowerCase();
    const stem = lower.replace(/[\d\W_]+$/u, '');
    if (COMMON.has(lower) || COMMON.has(stem) || /^(.)\1*$/u.test(lower) || isSequence(lower))
      throw weak('common', 'it is a common or easily guessed password');
  }
}

/** Ascending or descending runs like "123456789012" or "abcdefghijkl". */
function isSequence(s: string): boolean {
  const codes = [...s].map((c) => c.codePointAt(0)!);
  const steps = new Set(codes.slice(1).map((c, i) => (c - codes[i]! + 10) % 10 === 1 || c - codes[i]! === 1));
  const down = codes.slice(1).every((c, i) => codes[i]! - c === 1);
  return (steps.size === 1 && steps.has(true)) || down;
}

/**
 * A one-time password that every policy this module accepts lets through: 20 URL-safe base64 characters
 * (120 bits) of randomness; regenerated on the astronomically unlikely chance it contains the account name.
 */
export function generatePassword(policy: PasswordPolicy, username: string): string {
  const length = Math.max(20, policy.minLength);
  for (;;) {
    const candidate = randomBytes(Math.ceil((length * 3) / 4))
      .toString('base64url')
      .slice(0, length);
    try {
      checkPassword(policy, username, candidate);
      return candidate;
    } catch {
      // try again
    }
  }
}
