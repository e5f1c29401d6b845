/**
 * `text` made safe to print on an operator's terminal: each character that a terminal acts on instead of showing
 * is written as an escape. C0 controls and DEL as `\xNN` (`\t`, `\n`, `\r` by name), C1 controls (U+0080-U+009F;
 * U+009B is a CSI on some terminals) and the invisible direction and line controls (U+200E/F, U+2028/9,
 * U+202A-U+202E, U+2066-U+2069) as `\uNNNN`. A file name or a DICOM value quoted in a summary could otherwise
 * clear the screen, move the cursor, retitle the window or hide text (`\x1b[2J`, `\r`, `\x1b]0;…\x07`).
 * Everything else (text in any script, a backslash) is shown as it is.
 */
export function terminalText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    if (c === '\t') return '\\t';
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    return code < 0x80
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
