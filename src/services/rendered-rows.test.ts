import { describe, expect, it } from 'vitest';
import { RenderedRows } from './rendered-rows.js';

describe('RenderedRows', () => {
  it('renders once per key and again when the key changes', () => {
    const rows = new RenderedRows();
    let renders = 0;
    const render = (text: string) => () => {
      renders++;
      return text;
    };
    const a = rows.get('1.2.3', 'k1', render('{"a":"Müller"}'));
    expect(a).toBe('{"a":"Müller"}');
    expect(rows.get('1.2.3', 'k1', render('other'))).toBe(a);
    expect(renders).toBe(1);
    expect(rows.get('1.2.3', 'k2', render('{"a":"Meier"}'))).toBe('{"a":"Meier"}');
    expect(renders).toBe(2);
    expect(rows.size).toBe(1);
  });

  it('peeks at a row without rendering: only under its key, and a peek counts as a use', () => {
    const rows = new RenderedRows(2, 1000, 1);
    expect(rows.peek('a', 'k')).toBeUndefined();
    rows.get('a', 'k', () => 'A');
    rows.get('b', 'k', () => 'B');
    expect(rows.peek('a', 'other')).toBeUndefined();
    expect(rows.peek('a', 'k')).toBe('A');
    // 'a' was used last, so a third row pushes out 'b'.
    rows.get('c', 'k', () => 'C');
    expect(rows.peek('a', 'k')).toBe('A');
    expect(rows.peek('b', 'k')).toBeUndefined();
    expect(rows.size).toBe(2);
  });

  it('drops the least recently used rows beyond its entry and character bounds', () => {
    const rows = new RenderedRows(3, 1000, 1);
    for (const id of ['a', 'b', 'c']) rows.get(id, 'k', () => id);
    rows.get('a', 'k', () => 'never');
    rows.get('d', 'k', () => 'd');
    expect(rows.size).toBe(3);
    let rendered = '';
    rows.get('b', 'k', () => (rendered = 'b again'));
    expect(rendered).toBe('b again');
    const big = new RenderedRows(100, 1000, 1);
    for (let i = 0; i < 10; i++) big.get(String(i), 'k', () => 'x'.repeat(300));
    expect(big.size).toBe(3);
    // A row larger than the whole bound is rendered, not kept.
    big.get('huge', 'k', () => 'x'.repeat(1001));
    expect(big.size).toBe(3);
    let again = 0;
    big.get('huge', 'k', () => (again++, 'x'.repeat(1001)));
    expect(again).toBe(1);
  });

  it('keeps finding rows when the same sweep over more studies than fit comes again', () => {
    const rows = new RenderedRows(100, 1_000_000);
    let renders = 0;
    const sweep = () => {
      for (let i = 0; i < 200; i++)
        rows.get(String(i), 'k', () => {
          renders++;
          return `row ${i}`;
        });
    };
    sweep();
    expect(rows.size).toBe(100);
    for (let pass = 0; pass < 5; pass++) {
      renders = 0;
      sweep();
      // Least-recently-used alone would push out every row before it is asked for again (200 renders a pass);
      // with one in eight refused rows admitted, most of the first hundred stay and are found.
      expect(renders).toBeLessThan(120);
      expect(rows.size).toBe(100);
    }
  });

  it('replaces a row whose key changed even when full', () => {
    const rows = new RenderedRows(2, 1000);
    rows.get('a', 'k1', () => 'a1');
    rows.get('b', 'k1', () => 'b1');
    expect(rows.get('a', 'k2', () => 'a2')).toBe('a2');
    let renders = 0;
    expect(rows.get('a', 'k2', () => (renders++, 'x'))).toBe('a2');
    expect(renders).toBe(0);
  });
});
