import { describe, expect, it } from 'vitest';
import { terminalText } from './terminal-text.js';

describe('terminalText', () => {
  it('escapes ESC, BEL, CR and the other C0 controls, and DEL', () => {
    expect(terminalText('a\x1b[2J\x07\r\n\t\x00\x7fz')).toBe('a\\x1b[2J\\x07\\r\\n\\t\\x00\\x7fz');
  });
  it('escapes C1 controls and the invisible direction and line controls as \\uNNNN', () => {
    expect(terminalText('\x9b2J\u202eabc\u2066\u2028')).toBe('\\u009b2J\\u202eabc\\u2066\\u2028');
  });
  it('leaves other text as it is, a backslash included', () => {
    expect(terminalText('Müller^山田 ISO_IR 100\\ISO_IR 192 é')).toBe('Müller^山田 ISO_IR 100\\ISO_IR 192 é');
  });
});
