/**
 * The members of a JSON object's text, each value kept as its own text: stored DICOM JSON can then be spliced
 * into a response without parsing every element and serialising it again. Returns undefined when `text` is not
 * one JSON object whose member names need no unescaping (callers then parse it); it does not validate the value
 * texts beyond finding where each one ends, so it is meant for text this program wrote with JSON.stringify.
 */
export function jsonMembers(text: string): Map<string, string> | undefined {
  const n = text.length;
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== LBRACE) return undefined;
  i = skipSpace(text, i + 1);
  const out = new Map<string, string>();
  if (text.charCodeAt(i) === RBRACE) return skipSpace(text, i + 1) === n ? out : undefined;
  for (;;) {
    if (text.charCodeAt(i) !== QUOTE) return undefined;
    const nameStart = i + 1;
    const nameEnd = text.indexOf('"', nameStart);
    if (nameEnd < 0 || text.lastIndexOf('\\', nameEnd) >= nameStart) return undefined;
    i = skipSpace(text, nameEnd + 1);
    if (text.charCodeAt(i) !== COLON) return undefined;
    const valueStart = skipSpace(text, i + 1);
    const valueEnd = endOfValue(text, valueStart);
    if (valueEnd < 0) return undefined;
    out.set(text.slice(nameStart, nameEnd), text.slice(valueStart, valueEnd));
    i = skipSpace(text, valueEnd);
    const c = text.charCodeAt(i);
    if (c === RBRACE) return skipSpace(text, i + 1) === n ? out : undefined;
    if (c !== COMMA) return undefined;
    i = skipSpace(text, i + 1);
  }
}

const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** Index just past the JSON value starting at `i`, or -1 if the text ends inside it. */
function endOfValue(text: string, i: number): number {
  const n = text.length;
  let depth = 0;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
      if (i >= n) return -1;
      if (depth === 0) return i + 1;
    } else if (c === LBRACE || c === LBRACKET) {
      depth++;
    } else if (c === RBRACE || c === RBRACKET) {
      if (depth === 0) return i;
      depth--;
      if (depth === 0) return i + 1;
    } else if (depth === 0 && (c === COMMA || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09)) {
      return i;
    }
  }
  return depth === 0 ? n : -1;
}
