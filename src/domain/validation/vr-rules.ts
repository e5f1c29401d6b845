/**
 * Value checks per value representation (PS3.5 §6.2 Table 6.2-1) on decoded, unpadded values. Pure: each
 * function returns why a value is wrong, or undefined when it is acceptable.
 */

import { asciiText } from '../ascii-text.js';

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function checkDate(y: number, m: number, d: number): string | undefined {
  if (m < 1 || m > 12) return `month ${m} is not 01..12`;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const max = m === 2 && !leap ? 28 : DAYS_IN_MONTH[m - 1]!;
  if (d < 1 || d > max) return `day ${d} does not exist in month ${m} of ${y}`;
  return undefined;
}

/** DA: YYYYMMDD, a real calendar date. */
export function checkDA(v: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(v);
  if (!m) return `'${v}' is not a date YYYYMMDD`;
  return checkDate(Number(m[1]), Number(m[2]), Number(m[3]));
}

/** TM: HH[MM[SS[.F{1,6}]]], 24-hour clock; a leap second (60) is allowed. */
export function checkTM(v: string): string | undefined {
  if (v.length > 14) return `'${v}' is longer than 14 characters`;
  if (!/^([01]\d|2[0-3])([0-5]\d(([0-5]\d|60)(\.\d{1,6})?)?)?$/.test(v))
    return `'${v}' is not a time HH[MM[SS[.FFFFFF]]]`;
  return undefined;
}

/** DT: YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX] (PS3.5 Table 6.2-1). */
export function checkDT(v: string): string | undefined {
  if (v.length > 26) return `'${v}' is longer than 26 characters`;
  const m =
    /^(\d{4})(?:(\d{2})(?:(\d{2})(?:([01]\d|2[0-3])(?:([0-5]\d)(?:([0-5]\d|60)(?:\.\d{1,6})?)?)?)?)?)?([+-](?:0\d|1[0-4])[0-5]\d)?$/.exec(
      v,
    );
  if (!m) return `'${v}' is not a date-time YYYYMMDDHHMMSS.FFFFFF&ZZXX`;
  if (m[2] !== undefined) {
    const month = Number(m[2]);
    if (month < 1 || month > 12) return `month ${month} is not 01..12`;
    if (m[3] !== undefined) return checkDate(Number(m[1]), month, Number(m[3]));
  }
  return undefined;
}

/** UI: at most 64 characters, dot-separated numeric components without leading zeros (PS3.5 §9.1). */
export function checkUI(v: string): string | undefined {
  if (v.length > 64) return `'${v}' is ${v.length} characters long, more than 64`;
  if (!/^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/.test(v))
    return `'${v}' is not a UID (digits and dots, no leading zeros, no empty component)`;
  return undefined;
}

/** PN: up to three component groups of up to five components, each group at most 64 characters. */
export function checkPN(v: string): string | undefined {
  const groups = v.split('=');
  if (groups.length > 3) return `'${v}' has ${groups.length} component groups, at most 3`;
  for (const g of groups) {
    if (g.length > 64) return `a component group of '${v}' is longer than 64 characters`;
    if (g.split('^').length > 5) return `'${v}' has more than 5 name components`;
  }
  // ESC (0x1B) introduces ISO 2022 code extensions and is allowed; other control characters are not.
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1a\x1c-\x1f\\]/.test(v)) return `'${v}' contains a control character or backslash`;
  return undefined;
}

/** CS: upper-case letters, digits, space and underscore, at most 16 characters. */
export function checkCS(v: string): string | undefined {
  if (v.length > 16) return `'${v}' is longer than 16 characters`;
  if (!/^[A-Z0-9 _]*$/.test(v))
    return `'${v}' has characters outside the CS repertoire (A-Z, 0-9, space, underscore)`;
  return undefined;
}

/** The range of an IS value (PS3.5 Table 6.2-1), and of the index's integer columns that hold one. */
export const IS_MIN = -(2 ** 31);
export const IS_MAX = 2 ** 31 - 1;
export const inIsRange = (n: number) => Number.isInteger(n) && n >= IS_MIN && n <= IS_MAX;

/** IS: an integer in -2^31..2^31-1, at most 12 characters. */
export function checkIS(v: string): string | undefined {
  if (v.length > 12) return `'${v}' is longer than 12 characters`;
  if (!/^[+-]?\d+$/.test(v)) return `'${v}' is not an integer string`;
  if (!inIsRange(Number(v))) return `'${v}' is outside the 32-bit signed range`;
  return undefined;
}

/** DS: a decimal number in fixed or exponential notation, at most 16 characters. */
export function checkDS(v: string): string | undefined {
  if (v.length > 16) return `'${v}' is longer than 16 characters`;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) return `'${v}' is not a decimal string`;
  return undefined;
}

/** AS: nnnD, nnnW, nnnM or nnnY. */
export function checkAS(v: string): string | undefined {
  return /^\d{3}[DWMY]$/.test(v) ? undefined : `'${v}' is not an age nnnD, nnnW, nnnM or nnnY`;
}

const MAX_CHARS: Record<string, number> = { AE: 16, SH: 16, LO: 64, ST: 1024, LT: 10240, UC: Infinity };

const BY_VR: Record<string, (v: string) => string | undefined> = {
  DA: checkDA,
  TM: checkTM,
  DT: checkDT,
  UI: checkUI,
  PN: checkPN,
  CS: checkCS,
  IS: checkIS,
  DS: checkDS,
  AS: checkAS,
};

/**
 * Control characters each text VR forbids (PS3.5 Table 6.2-1): all but ESC (ISO 2022 code extensions) in SH, LO
 * and UC, all in AE; in ST, LT and UT also all but LF, FF and CR, where TAB, common in reports, is let pass too.
 * A NUL inside a value is the usual case: a C string copied with its terminator or garbage after it.
 */
/* eslint-disable no-control-regex */
const SINGLE_LINE = /[\x00-\x1a\x1c-\x1f\x7f]/;
const CONTROL: Record<string, RegExp> = {
  AE: /[\x00-\x1f\x7f]/,
  SH: SINGLE_LINE,
  LO: SINGLE_LINE,
  UC: SINGLE_LINE,
  ST: /[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]/,
  LT: /[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]/,
  UT: /[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]/,
};
/* eslint-enable no-control-regex */

/** Why one (non-empty) value of this VR is invalid, or undefined. */
export function checkValue(vr: string, v: string): string | undefined {
  const rule = BY_VR[vr];
  if (rule) return rule(v);
  const max = MAX_CHARS[vr];
  if (max !== undefined && v.length > max) return `'${v.slice(0, 40)}...' is longer than ${max} characters`;
  const control = CONTROL[vr]?.exec(v);
  if (control)
    return `'${v.slice(0, 40)}${v.length > 40 ? '...' : ''}' contains the control character ${asciiText(control[0])}`;
  return undefined;
}

/** A PS3.6 value multiplicity as a test on the number of values; an unparseable VM accepts any count. */
function vmRule(vm: string): (count: number) => boolean {
  const fixed = /^(\d+)$/.exec(vm);
  if (fixed) {
    const n = Number(fixed[1]);
    return (count) => count === n;
  }
  const range = /^(\d+)-(\d+)$/.exec(vm);
  if (range) {
    const [lo, hi] = [Number(range[1]), Number(range[2])];
    return (count) => count >= lo && count <= hi;
  }
  const open = /^(\d+)-n$/.exec(vm);
  if (open) {
    const lo = Number(open[1]);
    return (count) => count >= lo;
  }
  const multiple = /^(\d+)-(\d+)n$/.exec(vm);
  if (multiple) {
    const [lo, step] = [Number(multiple[1]), Number(multiple[2])];
    return (count) => count >= lo && count % step === 0;
  }
  return () => true;
}

/** Parsed once per distinct VM string (the dictionary has a few dozen). */
const vmRules = new Map<string, (count: number) => boolean>();

/**
 * Whether `count` values satisfy a PS3.6 value multiplicity: '1', '3', '1-3', '1-n', '2-n', '2-2n', '3-3n'.
 * An unparseable VM is not held against the value.
 */
export function checkVm(count: number, vm: string): boolean {
  let rule = vmRules.get(vm);
  if (!rule) {
    rule = vmRule(vm);
    vmRules.set(vm, rule);
  }
  return rule(count);
}
