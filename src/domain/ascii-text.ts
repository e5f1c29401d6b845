/**
 * `text` in printable ASCII: each other character written as U+XXXX, and a backslash as '/'. For the places that
 * take nothing else: an HTTP header value (Node throws on the rest) and a DIMSE command's Error Comment (default
 * repertoire, LO of one value: a backslash would split it, PS3.5 §6.2). What goes there often quotes a value from
 * an object (`'Doe\0^山田'` becomes `'DoeU+0000^U+5C71U+7530'`, `'ISO_IR 100\ISO_IR 999'` becomes
 * `'ISO_IR 100/ISO_IR 999'`).
 */
export function asciiText(text: string): string {
  return text.replace(/[^\x20-\x5b\x5d-\x7e]/gu, (c) =>
    c === '\\' ? '/' : `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`,
  );
}
