import { foldCase } from './case-fold.js';
import { normalisePersonName } from './index-record.js';

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

/**
 * The component groups a PN query key asks for, each in the index's matching form (normalisePersonName), or
 * undefined for a group it leaves open. A key with no '=' is one group, matched against each stored group
 * (alphabetic, ideographic and phonetic), so a site that searches by the ideographic name (`山田*`) finds
 * `Yamada^Tarou=山田^太郎=やまだ^たろう`. A key with '=' names its groups by position and each given group must
 * match the stored group in that position: `=山田*` asks for the ideographic group alone, `Yamada^Tarou=` for the
 * alphabetic group alone. An empty group or `*` leaves that group open. (PS3.5 §6.2.1.2 defines the groups; PS3.4
 * C.2.2.2.1 and C.2.2.2.4 leave how a PN key is matched to the archive.)
 */
export type PersonNameQuery = { anyGroup: string } | { groups: [string?, string?, string?] };

export function personNameQuery(value: string): PersonNameQuery {
  if (!value.includes('=')) return { anyGroup: normalisePersonName(value) };
  const groups: [string?, string?, string?] = [];
  for (const [i, group] of value.split('=').entries()) {
    const form = normalisePersonName(group);
    if (form !== '' && !/^\*+$/.test(form)) groups[i] = form;
  }
  return { groups };
}
