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
    expect(a.toString('utf8')).toBe('{"a":"Müller"}');
    expect(rows.get('1.2.3', 'k1', render('other'))).toBe(a);
    expect(renders).toBe(1);
    expect(rows.get('1.2.3', 'k2', render('{"a":"Meier"}')).toString()).toBe('{"a":"Meier"}');
    expect(renders).toBe(2);
    expect(rows.size).toBe(1);
    // Its own memory, not a slice of Buffer's shared pool.
    expect(a.buffer.byteLength).toBe(a.length);
  });

  it('drops the least recently used rows beyond its entry and byte bounds', () => {
    const rows = new RenderedRows(3, 1000);
    for (const id of ['a', 'b', 'c']) rows.get(id, 'k', () => id);
    rows.get('a', 'k', () => 'never');
    rows.get('d', 'k', () => 'd');
    expect(rows.size).toBe(3);
    let rendered = '';
    rows.get('b', 'k', () => (rendered = 'b again'));
    expect(rendered).toBe('b again');
    const big = new RenderedRows(100, 1000);
    for (let i = 0; i < 10; i++) big.get(String(i), 'k', () => 'x'.repeat(300));
    expect(big.size).toBe(3);
  });
});
