import { createHmac, timingSafeEqual } from 'node:crypto';

/** RFC 6238 TOTP as authenticator apps implement it: HMAC-SHA-1, 6 digits, 30-second steps. */
export const TOTP_DIGITS = 6;
export const TOTP_STEP_SECONDS = 30;

/** RFC 4226 §5.3: HOTP with dynamic truncation, for any digit count up to 9 and any HMAC hash. */
export function hotp(secret: Buffer, counter: number, digits = TOTP_DIGITS, hash = 'sha1'): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(hash, secret).update(msg).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return String(code).padStart(digits, '0');
}

/** The RFC 6238 time step of a moment (T = floor((unix time - T0) / X), T0 = 0). */
export const totpStep = (at: Date, stepSeconds = TOTP_STEP_SECONDS) =>
  Math.floor(at.getTime() / 1000 / stepSeconds);

export function totp(secret: Buffer, at: Date, digits = TOTP_DIGITS, hash = 'sha1'): string {
  return hotp(secret, totpStep(at), digits, hash);
}

/**
 * The time step a code belongs to, looking one step either side of now (RFC 6238 §5.2 allows for clock drift
 * and transmission delay), or undefined when it matches none. Constant-time comparison per step.
 */
export function matchTotp(secret: Buffer, code: string, at: Date, window = 1): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const now = totpStep(at);
  let found: number | undefined;
  for (let step = now - window; step <= now + window; step++) {
    const expected = Buffer.from(hotp(secret, step), 'ascii');
    if (timingSafeEqual(expected, Buffer.from(code, 'ascii')) && found === undefined) found = step;
  }
  return found;
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without padding, as otpauth:// URIs carry secrets. */
export function base32Encode(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

export function base32Decode(text: string): Buffer {
  const clean = text.toUpperCase().replace(/=+$/, '');
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const v = B32.indexOf(ch);
    if (v < 0) throw new RangeError(`'${ch}' is not a base32 character`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** Key URI for authenticator apps (the de-facto Google Authenticator format). */
export function otpauthUri(issuer: string, account: string, secret: Buffer): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const params = new URLSearchParams({
    secret: base32Encode(secret),
    issuer,
    algorithm: 'SHA1',
    digits: String(TOTP_DIGITS),
    period: String(TOTP_STEP_SECONDS),
  });
  return `otpauth://totp/${label}?${params.toString()}`;
}
