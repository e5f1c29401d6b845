import { DICTIONARY_DATA } from './dictionary-data.js';
import { tagToHex } from './tags.js';

export interface DictionaryEntry {
  /** The VR; where PS3.6 allows several ('US or SS'), the one an implicit VR reader assumes. */
  vr: string;
  /** PS3.6 allows more than one VR ('US or SS', 'OB or OW'): `vr` is then a guess, not the attribute's VR. */
  ambiguous?: boolean;
  keyword: string;
  vm: string;
  retired: boolean;
}

let byTag: Map<number, DictionaryEntry> | undefined;
let byKeyword: Map<string, number> | undefined;
/** Repeating-group entries such as (60xx,3000): mask of fixed bits, value, entry. */
let masked: { mask: number; value: number; entry: DictionaryEntry }[] = [];

function load() {
  if (byTag) return;
  byTag = new Map();
  byKeyword = new Map();
  masked = [];
  for (const line of DICTIONARY_DATA.split('\n')) {
    const [hex, vrs, keyword, vm, retired] = line.split('|') as [string, string, string, string, string?];
    const [vr = '', ...others] = vrs.split('/');
    const entry: DictionaryEntry = {
      vr,
      keyword,
      vm,
      retired: retired === 'R',
      ...(others.length ? { ambiguous: true } : {}),
    };
    if (/X/.test(hex)) {
      let mask = 0;
      let value = 0;
      for (const ch of hex) {
        mask = mask * 16 + (ch === 'X' ? 0 : 15);
        value = value * 16 + (ch === 'X' ? 0 : Number.parseInt(ch, 16));
      }
      masked.push({ mask: mask >>> 0, value: value >>> 0, entry });
      continue;
    }
    const tag = Number.parseInt(hex, 16) >>> 0;
    byTag.set(tag, entry);
    byKeyword.set(keyword, tag);
  }
}

/** PS3.6 entry for a tag (private and unknown tags: undefined). Group length tags (gggg,0000) are UL. */
export function lookupTag(tag: number): DictionaryEntry | undefined {
  load();
  const hit = byTag!.get(tag);
  if (hit) return hit;
  if ((tag & 0xffff) === 0) return { vr: 'UL', keyword: 'GroupLength', vm: '1', retired: true };
  for (const m of masked) if ((tag & m.mask) >>> 0 === m.value) return m.entry;
  return undefined;
}

export function tagForKeyword(keyword: string): number | undefined {
  load();
  return byKeyword!.get(keyword);
}

/** '(0010,0010) PatientName' for messages. */
export function tagLabel(tag: number): string {
  const hex = tagToHex(tag);
  const kw = lookupTag(tag)?.keyword;
  return `(${hex.slice(0, 4)},${hex.slice(4)})${kw ? ` ${kw}` : ''}`;
}
