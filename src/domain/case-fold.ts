/**
 * The case fold of case-insensitive name matching (PatientName, ReferringPhysicianName; PS3.18 QIDO-RS, PS3.4
 * C.2.2.2.1) and of the access scopes that link a physician to studies by name. Each character folds to exactly one
 * character, its upper case where that is one character: String.toUpperCase turns 'ß' into 'SS' and 'ﬁ' into 'FI',
 * so the '?' wildcard (one character) no longer matched them (until 6 Dec 2026). A character whose lower case is one
 * character is folded from that, so 'ẞ' and 'ß' fold alike; Greek final and medial sigma both fold to 'Σ'.
 */
export function foldCase(text: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return text.toUpperCase();
  let out = '';
  for (const c of text) {
    const lower = c.toLowerCase();
    const base = [...lower].length === 1 ? lower : c;
    const upper = base.toUpperCase();
    out += [...upper].length === 1 ? upper : base;
  }
  return out;
}
