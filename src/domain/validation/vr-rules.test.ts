import { describe, expect, it } from 'vitest';
import {
  checkAS,
  checkCS,
  checkDA,
  checkDS,
  checkDT,
  checkIS,
  checkPN,
  checkTM,
  checkUI,
  checkValue,
  checkVm,
} from './vr-rules.js';

describe('VR rules', () => {
  it('DA accepts real calendar dates only', () => {
    expect(checkDA('20240229')).toBeUndefined();
    expect(checkDA('20230229')).toMatch(/does not exist/);
    expect(checkDA('20241301')).toMatch(/month 13/);
    expect(checkDA('2024-01-15')).toMatch(/not a date/);
    expect(checkDA('2024011')).toMatch(/not a date/);
  });
  it('TM accepts HH, HHMM, HHMMSS and fractions up to six digits', () => {
    for (const v of ['10', '1015', '101530', '101530.1', '235959.999999', '235960'])
      expect(checkTM(v)).toBeUndefined();
    for (const v of ['24', '1060', '10:15:30', '101530.1234567', '1']) expect(checkTM(v), v).toBeDefined();
  });
  it('DT accepts partial date-times with an optional UTC offset', () => {
    for (const v of ['2024', '202401', '20240115101530.123456+0100', '20240115-0500'])
      expect(checkDT(v), v).toBeUndefined();
    for (const v of ['20241315', '2024011510153', '20240115T1015', '20240115+2500'])
      expect(checkDT(v), v).toBeDefined();
  });
  it('UI refuses leading zeros, empty components, other characters and more than 64 characters', () => {
    expect(checkUI('1.2.840.10008.5.1.4.1.1.2')).toBeUndefined();
    expect(checkUI('1.2.0.3')).toBeUndefined();
    expect(checkUI('1.02.3')).toMatch(/leading zeros/);
    expect(checkUI('1..3')).toBeDefined();
    expect(checkUI('1.2.a')).toBeDefined();
    expect(checkUI(`1.${'2'.repeat(63)}`)).toMatch(/more than 64/);
  });
  it('PN allows three groups of five components', () => {
    expect(checkPN('Doe^Jane^^Dr^PhD=ド^ジェーン=')).toBeUndefined();
    expect(checkPN('a=b=c=d')).toMatch(/component groups/);
    expect(checkPN('a^b^c^d^e^f')).toMatch(/5 name components/);
    expect(checkPN('x'.repeat(65))).toMatch(/64/);
  });
  it('CS allows upper case, digits, space and underscore up to 16 characters', () => {
    expect(checkCS('ORIGINAL')).toBeUndefined();
    expect(checkCS('ISO_IR 192')).toBeUndefined();
    expect(checkCS('original')).toMatch(/repertoire/);
    expect(checkCS('A'.repeat(17))).toMatch(/16/);
  });
  it('IS, DS and AS', () => {
    expect(checkIS('-12')).toBeUndefined();
    expect(checkIS('1.5')).toBeDefined();
    expect(checkIS('9999999999')).toBeDefined();
    expect(checkDS('-1.5e3')).toBeUndefined();
    expect(checkDS('abc')).toBeDefined();
    expect(checkAS('045Y')).toBeUndefined();
    expect(checkAS('45Y')).toBeDefined();
  });
  it('text VRs refuse the control characters PS3.5 excludes, and let ESC (and in reports TAB, CR, LF, FF) pass', () => {
    expect(checkValue('LO', 'CT\0HEAD')).toBe("'CT\0HEAD' contains the control character U+0000");
    expect(checkValue('SH', 'A\x07')).toBe("'A\x07' contains the control character U+0007");
    expect(checkValue('LO', 'Yamada\x1b$B;3ED\x1b(B')).toBeUndefined();
    expect(checkValue('AE', 'MOD\x1bA')).toBeDefined();
    expect(checkValue('LT', 'Findings:\r\n\tnone.\f')).toBeUndefined();
    expect(checkValue('UT', 'a\0b')).toBeDefined();
    expect(checkValue('LO', 'x'.repeat(60) + '\0')).toBe(
      `'${'x'.repeat(40)}...' contains the control character U+0000`,
    );
    expect(checkValue('LO', 'Müller')).toBeUndefined();
  });
  it('VM forms of PS3.6', () => {
    expect(checkVm(1, '1')).toBe(true);
    expect(checkVm(2, '1')).toBe(false);
    expect(checkVm(1, '2-n')).toBe(false);
    expect(checkVm(5, '1-n')).toBe(true);
    expect(checkVm(3, '1-3')).toBe(true);
    expect(checkVm(4, '1-3')).toBe(false);
    expect(checkVm(4, '2-2n')).toBe(true);
    expect(checkVm(3, '2-2n')).toBe(false);
    expect(checkVm(6, '6')).toBe(true);
  });
});
