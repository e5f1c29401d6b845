/**
 * `text` in printable ASCII: each other character written as U+XXXX. For the places that take nothing else: an
 * HTTP header value (Node throws on the rest) and a DIMSE command's Error Comment (default repertoire). What goes
 * there often quotes a value from an object (`'Doe\0^山田'` becomes `'DoeU+0000^U+5C71U+7530'`).
 */
export function asciiText(text: string): string {
  return text.replace(
    /[^\x20-\x7e]/gu,
    (c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`,
  );
}
