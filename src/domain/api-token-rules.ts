/**
 * What an API token may be called and how long it may live, for every way one is made (the console and admin
 * API, `custos token create`): the edges turn a refusal into their own error, with the same words.
 */

/** Ten years: a token that must outlive that should be replaced, not extended. */
export const TOKEN_DAYS_MAX = 3650;
export const TOKEN_NAME_MAX = 100;

export const TOKEN_DAYS_RULE = `a whole number of days from 1 to ${TOKEN_DAYS_MAX}`;
export const TOKEN_NAME_RULE = `a label of 1-${TOKEN_NAME_MAX} printable characters (no control characters or line breaks)`;

/** Why `days` is not a token lifetime, or undefined when it is. */
export function tokenDaysProblem(days: number): string | undefined {
  if (!Number.isInteger(days) || days < 1 || days > TOKEN_DAYS_MAX) return `expected ${TOKEN_DAYS_RULE}`;
  return undefined;
}

// Cc: control characters (a newline once made a name two lines in listings and the ledger); Cf: invisible
// format characters such as bidirectional overrides, which make a label read as something else; Zl, Zp: line
// and paragraph separators.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/** The name to store (trimmed), or the reason it cannot be one. */
export function tokenName(raw: string): { name: string } | { problem: string } {
  const name = raw.trim();
  const length = [...name].length;
  if (length === 0 || length > TOKEN_NAME_MAX)
    return { problem: `expected ${TOKEN_NAME_RULE}; got ${length} characters` };
  const bad = UNPRINTABLE.exec(name);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    return {
      problem: `expected ${TOKEN_NAME_RULE}; got U+${code} at character ${[...name.slice(0, bad.index)].length + 1}`,
    };
  }
  return { name };
}
