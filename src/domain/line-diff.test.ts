import { describe, expect, it } from 'vitest';
import { unifiedDiff } from './line-diff.js';

describe('unified line diff', () => {
  it('is empty for equal texts', () => {
    expect(unifiedDiff('a\nb\n', 'a\nb\n', ['x', 'y'])).toBe('');
  });

  it('shows a changed line with context and hunk positions', () => {
    const a = ['1', '2', '3', '4', '5', '6', '7', '8', '9'].join('\n');
    const b = ['1', '2', '3', '4', 'five', '6', '7', '8', '9'].join('\n');
    expect(unifiedDiff(a, b, ['active', 'file'])).toBe(
      [
        '--- active',
        '+++ file',
        '@@ -2,7 +2,7 @@',
        ' 2',
        ' 3',
        ' 4',
        '-5',
        '+five',
        ' 6',
        ' 7',
        ' 8',
        '',
      ].join('\n'),
    );
  });

  it('shows additions and removals in separate hunks when far apart', () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i}`).join('\n');
    const b = ['new', ...Array.from({ length: 19 }, (_, i) => `l${i}`)].join('\n');
    const d = unifiedDiff(a, b, ['a', 'b']);
    expect(d).toContain('@@ -1,3 +1,4 @@\n+new\n l0\n l1\n l2\n');
    expect(d).toContain('@@ -17,4 +18,3 @@\n l16\n l17\n l18\n-l19\n');
  });
});
