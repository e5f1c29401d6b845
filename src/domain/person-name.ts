import { foldCase } from './case-fold.js';

/**
 * Person Name (PN) comparison for access scopes: a referring physician's account is linked to the studies
 * whose ReferringPhysicianName names them. PS3.5 §6.2.1: a PN value holds up to three component groups
 * (alphabetic, ideographic, phonetic) separated by '='; each holds up to five components separated by '^'
 * (family, given, middle, prefix, suffix); trailing empty components and groups carry no meaning, nor does
 * leading or trailing space padding of a component. The match compares family and given name,
 * case-insensitively, in any component group both sides have.
 */

/**
 * One comparison key per non-empty component group: 'FAMILY^GIVEN', case-folded as the index folds names (the SQL
 * scope compares these with referring_physician_norm), padding trimmed.
 */
export function personNameKeys(pn: string | null | undefined): string[] {
  if (!pn) return [];
  const keys: string[] = [];
  for (const group of pn.split('=')) {
    const [family = '', given = ''] = group.split('^').map((c) => foldCase(c.trim()));
    // A name without a family name identifies nobody; family alone must not match every given name.
    if (family === '') continue;
    const key = `${family}^${given}`;
    if (!keys.includes(key)) keys.push(key);
  }
  return keys;
}

/** True when both values name the same person by family and given name in some component group. */
export function personNamesMatch(a: string | null | undefined, b: string | null | undefined): boolean {
  const bk = new Set(personNameKeys(b));
  return personNameKeys(a).some((k) => bk.has(k));
}
