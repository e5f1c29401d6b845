/** Where a text stops being JSON (RFC 8259), and what was expected there. */
export interface JsonSyntaxFault {
  /** 1-based line (lines end at LF, CR or CR LF). */
  line: number;
  /** 1-based column on that line, in characters (code points). */
  column: number;
  /** What RFC 8259 allows at that place, in words. */
  expected: string;
}

type Want = 'value' | 'value-or-]' | 'name' | 'name-or-}' | 'colon' | 'comma-or-close' | 'end';

const EXPECTED: Record<Exclude<Want, 'comma-or-close'>, string> = {
  value: 'a value',
  'value-or-]': "a value or ']'",
  name: 'a member name in double quotes',
  'name-or-}': "a member name in double quotes or '}'",
  colon: "':'",
  end: 'the end of the body',
};

const isWs = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r';
const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isHex = (c: string | undefined) => c !== undefined && /^[0-9A-Fa-f]$/.test(c);

/**
 * The first place at which `text` is not JSON (RFC 8259 §2-§7), or undefined if it is JSON. Said by line and
 * column, never by quoting the text: a body that fails to parse may hold a password. Iterative (an explicit stack),
 * so that a body nested thousands deep cannot exhaust the call stack. JSON.parse's own message is not used: it has
 * the position only for some faults, and for others quotes the text.
 */
export function jsonSyntaxFault(text: string): JsonSyntaxFault | undefined {
  const stack: ('{' | '[')[] = [];
  let i = 0;
  let want: Want = 'value';
  const after = (): Want => (stack.length ? 'comma-or-close' : 'end');
  const fault = (at: number, expected: string): JsonSyntaxFault => {
    let line = 1;
    let lineStart = 0;
    for (let k = 0; k < at; k++) {
      const c = text[k];
      if (c === '\n' || (c === '\r' && text[k + 1] !== '\n')) {
        line++;
        lineStart = k + 1;
      }
    }
    const column = [...text.slice(lineStart, at)].length + 1;
    return {
      line,
      column,
      expected: at >= text.length ? `${expected} before the end of the body` : expected,
    };
  };
  /** A string from its opening quote at `i`: the index after its closing quote, or the fault. */
  const string = (): number | JsonSyntaxFault => {
    let k = i + 1;
    for (;;) {
      const c = text[k];
      if (c === undefined) return fault(k, "'\"' closing the string");
      if (c === '"') return k + 1;
      if (c === '\\') {
        const e = text[k + 1];
        if (e === 'u') {
          for (let h = 2; h < 6; h++)
            if (!isHex(text[k + h])) return fault(k + h, 'four hexadecimal digits after \\u');
          k += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) k += 2;
        else return fault(k + 1, 'an escape: one of " \\ / b f n r t u after \\');
      } else if (c < ' ') return fault(k, 'no control character in a string (escape it: \\n, \\t, \\u0000)');
      else k++;
    }
  };
  /** A number from `i` (RFC 8259 §6): the index after it, or the fault. */
  const number = (): number | JsonSyntaxFault => {
    let k = i;
    if (text[k] === '-') k++;
    if (text[k] === '0') k++;
    else if (isDigit(text[k])) while (isDigit(text[k])) k++;
    else return fault(k, 'a digit');
    if (text[k] === '.') {
      if (!isDigit(text[++k])) return fault(k, "a digit after '.'");
      while (isDigit(text[k])) k++;
    }
    if (text[k] === 'e' || text[k] === 'E') {
      k++;
      if (text[k] === '+' || text[k] === '-') k++;
      if (!isDigit(text[k])) return fault(k, 'a digit in the exponent');
      while (isDigit(text[k])) k++;
    }
    return k;
  };
  for (;;) {
    while (isWs(text[i])) i++;
    const c = text[i];
    if (want === 'end') return c === undefined ? undefined : fault(i, EXPECTED.end);
    if (want === 'comma-or-close') {
      const close = stack.at(-1) === '{' ? '}' : ']';
      if (c === ',') {
        i++;
        want = stack.at(-1) === '{' ? 'name' : 'value';
      } else if (c === close) {
        i++;
        stack.pop();
        want = after();
      } else return fault(i, `',' or '${close}'`);
      continue;
    }
    if (c === undefined) return fault(i, EXPECTED[want]);
    if (want === 'colon') {
      if (c !== ':') return fault(i, EXPECTED.colon);
      i++;
      want = 'value';
      continue;
    }
    if (want === 'name' || want === 'name-or-}') {
      if (want === 'name-or-}' && c === '}') {
        i++;
        stack.pop();
        want = after();
        continue;
      }
      if (c !== '"') return fault(i, EXPECTED[want]);
      const end = string();
      if (typeof end !== 'number') return end;
      i = end;
      want = 'colon';
      continue;
    }
    // A value (or, first in an array, its end).
    if (want === 'value-or-]' && c === ']') {
      i++;
      stack.pop();
      want = after();
      continue;
    }
    if (c === '{' || c === '[') {
      i++;
      stack.push(c);
      want = c === '{' ? 'name-or-}' : 'value-or-]';
      continue;
    }
    let end: number | JsonSyntaxFault;
    if (c === '"') end = string();
    else if (c === '-' || isDigit(c)) end = number();
    else {
      const literal = ['true', 'false', 'null'].find((l) => l[0] === c);
      if (!literal) return fault(i, EXPECTED[want]);
      const wrong = [...literal].findIndex((l, k) => text[i + k] !== l);
      end = wrong === -1 ? i + literal.length : fault(i + wrong, `'${literal}'`);
    }
    if (typeof end !== 'number') return end;
    i = end;
    want = after();
  }
}
