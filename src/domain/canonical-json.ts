/**
 * RFC 8785 JSON Canonicalization Scheme: object members sorted by the UTF-16 code units of their names, no
 * whitespace, numbers in ECMAScript shortest form, strings escaped as JSON.stringify does. The ledger hashes
 * this form, so a record reads back to the same bytes whatever database or driver stored it.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return jsonString(value);
    case 'number':
      if (!Number.isFinite(value))
        throw new TypeError('canonical JSON has no representation for NaN or Infinity');
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value))
        return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
      const obj = value as Record<string, unknown>;
      // Default sort compares UTF-16 code units, which is what RFC 8785 §3.2.3 asks for.
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${jsonString(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot represent a ${typeof value}`);
  }
}

// String.prototype.isWellFormed (ES2024, native in Node 20) is not in the ES2023 lib this project compiles with.
const isWellFormed = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

function jsonString(s: string): string {
  // RFC 8785 §3.2.2.2 requires well-formed Unicode: a lone surrogate has no canonical form.
  if (!isWellFormed(s)) throw new TypeError('canonical JSON refuses a string with a lone surrogate');
  return JSON.stringify(s);
}
