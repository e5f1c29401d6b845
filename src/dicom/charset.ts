import { isUtf8 } from 'node:buffer';

/**
 * Specific Character Set (0008,0005) to a text decoder (PS3.3 C.12.1.1.2, PS3.5 §6.1). Node ships full ICU, so
 * TextDecoder covers the ISO 8859 parts, UTF-8, GB18030/GBK, EUC-KR, ISO 2022 JP and EUC-JP (for JIS X 0212).
 */

/** Single-valued defined terms without code extensions (PS3.3 Table C.12-2 and C.12-5). */
const SINGLE: Record<string, string> = {
  '': 'default',
  ISO_IR_6: 'default',
  ISO_IR_100: 'latin1',
  ISO_IR_101: 'iso-8859-2',
  ISO_IR_109: 'iso-8859-3',
  ISO_IR_110: 'iso-8859-4',
  ISO_IR_144: 'iso-8859-5',
  ISO_IR_127: 'iso-8859-6',
  ISO_IR_126: 'iso-8859-7',
  ISO_IR_138: 'iso-8859-8',
  ISO_IR_148: 'iso-8859-9',
  ISO_IR_203: 'iso-8859-15',
  ISO_IR_13: 'jis-x0201',
  ISO_IR_166: 'windows-874',
  ISO_IR_192: 'utf-8',
  GB18030: 'gb18030',
  GBK: 'gbk',
};
/** PS3.3 C.12.1.1.2: these may only be the single value of Specific Character Set (no code extensions). */
const SINGLE_ONLY = new Set(['ISO_IR_192', 'GB18030', 'GBK']);

/**
 * One graphic character set reachable through ISO 2022 escapes (PS3.3 Table C.12-3 and C.12-4). `g` is the
 * code element it is designated to; `decoder` decodes a run of bytes in that set.
 */
interface G {
  g: 0 | 1;
  decoder: string;
}
const ASCII: G = { g: 0, decoder: 'latin1' };
const ESCAPES: Record<string, G> = {
  '\x1b(B': ASCII,
  '\x1b(J': { g: 0, decoder: 'jis-x0201' },
  '\x1b)I': { g: 1, decoder: 'jis-x0201-kana' },
  '\x1b-A': { g: 1, decoder: 'latin1' },
  '\x1b-B': { g: 1, decoder: 'iso-8859-2' },
  '\x1b-C': { g: 1, decoder: 'iso-8859-3' },
  '\x1b-D': { g: 1, decoder: 'iso-8859-4' },
  '\x1b-L': { g: 1, decoder: 'iso-8859-5' },
  '\x1b-G': { g: 1, decoder: 'iso-8859-6' },
  '\x1b-F': { g: 1, decoder: 'iso-8859-7' },
  '\x1b-H': { g: 1, decoder: 'iso-8859-8' },
  '\x1b-M': { g: 1, decoder: 'iso-8859-9' },
  '\x1b-b': { g: 1, decoder: 'iso-8859-15' },
  '\x1b-T': { g: 1, decoder: 'windows-874' },
  '\x1b$B': { g: 0, decoder: 'jis-x0208' },
  '\x1b$(D': { g: 0, decoder: 'jis-x0212' },
  '\x1b$)C': { g: 1, decoder: 'euc-kr' },
  '\x1b$)A': { g: 1, decoder: 'gbk' },
};
/** The escape each ISO 2022 defined term stands for; its set is active at the start of a value when named first. */
const EXTENSION: Record<string, string[]> = {
  ISO_2022_IR_6: ['\x1b(B'],
  ISO_2022_IR_100: ['\x1b-A'],
  ISO_2022_IR_101: ['\x1b-B'],
  ISO_2022_IR_109: ['\x1b-C'],
  ISO_2022_IR_110: ['\x1b-D'],
  ISO_2022_IR_144: ['\x1b-L'],
  ISO_2022_IR_127: ['\x1b-G'],
  ISO_2022_IR_126: ['\x1b-F'],
  ISO_2022_IR_138: ['\x1b-H'],
  ISO_2022_IR_148: ['\x1b-M'],
  ISO_2022_IR_203: ['\x1b-b'],
  ISO_2022_IR_166: ['\x1b-T'],
  ISO_2022_IR_13: ['\x1b(J', '\x1b)I'],
  ISO_2022_IR_87: ['\x1b$B'],
  ISO_2022_IR_159: ['\x1b$(D'],
  ISO_2022_IR_149: ['\x1b$)C'],
  ISO_2022_IR_58: ['\x1b$)A'],
};

/** Hears what in a value could not be decoded (those bytes come out as U+FFFD or '?'). */
export type DecodeProblem = (problem: string) => void;

/**
 * The delimiters of a value's VR, before which the set named in value 1 of Specific Character Set is active again
 * (PS3.5 §6.1.2.5.3): '\\' between the values of a multi-valued VR, and '^' and '=' too in a PN. Control characters
 * (CR, LF, TAB, ...) do so in every VR.
 */
export type Delimiters = 'none' | 'values' | 'person-name';

export interface TextDecoding {
  /**
   * The text of a value; bytes the character set does not define are replaced, and told to `report`. `delimiters`
   * (default 'none') matters only with ISO 2022 code extensions.
   */
  decode(bytes: Buffer, report?: DecodeProblem, delimiters?: Delimiters): string;
  /** Set when the character set could only be approximated. */
  warning?: string;
  /** Set when a term is none Custos knows, even misspelt: text outside ASCII was read as ISO 8859-1, a guess. */
  unknown?: true;
}

type Decoder = (b: Buffer, report?: DecodeProblem, delimiters?: Delimiters) => string;

const decoders = new Map<string, Decoder>();

/** How a decoder's character set is named in a report. */
const setName = (label: string) =>
  label.startsWith('jis-x') ? `JIS X ${label.slice(5)}` : label.toUpperCase();
const invalid = (label: string) => `not valid ${setName(label)}, read as U+FFFD`;

/** A WHATWG decoder that reports bytes it cannot decode (a fatal decode is tried first: errors are rare). */
function reportingDecoder(label: string): Decoder {
  const fatal = new TextDecoder(label, { fatal: true });
  const lenient = new TextDecoder(label);
  return (b, report) => {
    if (!report) return lenient.decode(b);
    try {
      return fatal.decode(b);
    } catch {
      report(invalid(label));
      return lenient.decode(b);
    }
  };
}

function decoderFor(label: string): Decoder {
  const hit = decoders.get(label);
  if (hit) return hit;
  let d: Decoder;
  if (label === 'latin1') d = (b) => b.toString('latin1');
  else if (label === 'default')
    // No Specific Character Set: the default repertoire, ASCII (PS3.5 §6.1.2.1), defines no byte above 0x7F, yet
    // senders put them there, in UTF-8 (most modalities and gateways of today) or in ISO 8859-1 (older ones). A value
    // that is valid UTF-8 is read as UTF-8, any other as ISO 8859-1: text in ISO 8859-1 is valid UTF-8 only where a
    // letter such as 'Ã' is followed by a symbol of 0x80-0xBF ('Ã©'), which names do not hold. ASCII reads the same
    // either way. Until 8 Dec 2026 every such value was read as ISO 8859-1, so 'Jönsson' sent in UTF-8 was stored,
    // served and matched as 'JÃ¶nsson'.
    d = (b) => (isUtf8(b) ? b.toString('utf8') : b.toString('latin1'));
  else if (label === 'utf-8')
    d = (b, report) => {
      const s = b.toString('utf8');
      if (report && s.includes('\ufffd') && !isUtf8(b)) report(invalid(label));
      return s;
    };
  else if (label === 'jis-x0201' || label === 'jis-x0201-kana') {
    // JIS X 0201: its G0 half is ASCII except 0x7E (overline) and 0x5C (yen); its G1 half is half-width katakana
    // (0xA1-0xDF to U+FF61-U+FF9F). '-kana' is the G1 half alone, beside ASCII in G0. PS3.5 H.1.1: in SH, LO, PN and
    // UC 0x5C is the delimiter between values, not a yen, so it stays a backslash there; in LT, ST and UT it is the
    // YEN SIGN, as dcmtk reads it (until 7 Dec 2026 it was a backslash there too).
    const roman = label === 'jis-x0201';
    d = (b, report, delimiters = 'none') => {
      let out = '';
      let bad = false;
      for (const byte of b) {
        if (roman && byte === 0x7e) out += '\u203e';
        else if (roman && byte === 0x5c && delimiters === 'none') out += '\u00a5';
        else if (byte < 0x80) out += String.fromCharCode(byte);
        else if (byte >= 0xa1 && byte <= 0xdf) out += String.fromCharCode(0xff61 + byte - 0xa1);
        else {
          out += '\ufffd';
          bad = true;
        }
      }
      if (bad) report?.(invalid('jis-x0201'));
      return out;
    };
  } else if (label === 'jis-x0208') {
    // A run of JIS X 0208 bytes (designated to G0): the ISO-2022-JP decoder reads it once the escape is restored.
    const jp = reportingDecoder('iso-2022-jp');
    d = (b, report) =>
      jp(
        Buffer.concat([Buffer.from('\x1b$B', 'latin1'), b, Buffer.from('\x1b(B', 'latin1')]),
        report && (() => report(invalid(label))),
      );
  } else if (label === 'jis-x0212') {
    // A run of JIS X 0212 bytes (G0, two bytes a character): EUC-JP holds them as 0x8F and the two bytes with their
    // high bit set. Control characters and space stay single bytes.
    const euc = reportingDecoder('euc-jp');
    d = (b, report) => {
      const out: number[] = [];
      let i = 0;
      while (i < b.length) {
        const c = b[i]!;
        if (c <= 0x20 || c === 0x7f) {
          out.push(c);
          i++;
        } else {
          // A lone last byte has no partner: 0x8F then one byte is invalid EUC-JP, and is reported as such.
          out.push(0x8f, c | 0x80);
          if (i + 1 < b.length) out.push(b[i + 1]! | 0x80);
          i += 2;
        }
      }
      return euc(Buffer.from(out), report && (() => report(invalid(label))));
    };
  } else d = reportingDecoder(label);
  decoders.set(label, d);
  return d;
}

/** G0 sets whose characters take two bytes, each of which may be a delimiter's byte; an unknown set may be one. */
const TWO_BYTE_G0 = new Set(['jis-x0208', 'jis-x0212', 'unknown']);
/** Bytes that are delimiters in a single-byte G0 set, by the VR's delimiters (PS3.5 §6.1.2.5.3). */
const DELIMITER_BYTES: Record<Delimiters, readonly number[]> = {
  none: [],
  values: [0x5c],
  'person-name': [0x5c, 0x5e, 0x3d],
};

/**
 * PS3.5 §6.1.2.5: ISO 2022 code extensions. Escape sequences switch G0 (bytes 0x21-0x7E) or G1 (0xA1-0xFE)
 * to another set; each run between escapes is decoded with the sets active at that point. PS3.5 §6.1.2.5.3: before
 * a control character and before the VR's delimiters the sets named by value 1 are active again: in a PN sent as
 * ESC - L 'Иван' '^' 'Müller' under ISO 2022 IR 100 and IR 144, the given name is Latin-1, as dcmtk reads it (until
 * 7 Dec 2026 it was read in the Cyrillic set left in G1, 'Mќller'). A delimiter byte inside a two-byte G0
 * character (JIS X 0208 uses 0x21-0x7E for both bytes) is part of that character.
 */
function iso2022Decoder(initial: string[]): Decoder {
  const start = { g0: ASCII, g1: undefined as G | undefined };
  for (const esc of initial) {
    const set = ESCAPES[esc];
    if (!set) continue;
    if (set.g === 0) start.g0 = set;
    else start.g1 = set;
  }
  return (b, report, delimiters = 'none') => {
    let g0 = start.g0;
    let g1 = start.g1;
    let out = '';
    let runStart = 0;
    const flush = (end: number) => {
      if (end <= runStart) return;
      out += decodeRun(b.subarray(runStart, end), g0, g1, report, delimiters);
    };
    const delimiterBytes = DELIMITER_BYTES[delimiters];
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      if (c !== 0x1b) {
        const resets = c < 0x20 || (delimiterBytes.includes(c) && !TWO_BYTE_G0.has(g0.decoder));
        if (resets && (g0 !== start.g0 || g1 !== start.g1)) {
          flush(i);
          g0 = start.g0;
          g1 = start.g1;
          runStart = i;
        }
        continue;
      }
      flush(i);
      let matched = false;
      for (const len of [3, 4]) {
        const esc = b.toString('latin1', i, i + len);
        const set = ESCAPES[esc];
        if (set) {
          if (set.g === 0) g0 = set;
          else g1 = set;
          i += len - 1;
          matched = true;
          break;
        }
      }
      if (!matched) {
        // An escape to a set we cannot decode: its bytes come out as '?' runs, not garbage.
        const esc = b.toString('latin1', i, i + 4);
        const length = esc.startsWith('\x1b$(') || esc.startsWith('\x1b$)') ? 4 : 3;
        report?.(`unknown escape ESC ${esc.slice(1, length)}, read as '?'`);
        g0 = { g: 0, decoder: 'unknown' };
        i += length - 1;
      }
      runStart = i + 1;
    }
    flush(b.length);
    return out;
  };
}

function decodeRun(
  run: Buffer,
  g0: G,
  g1: G | undefined,
  report: DecodeProblem | undefined,
  delimiters: Delimiters,
): string {
  if (g0.decoder === 'unknown') return '?'.repeat(Math.ceil(run.length / 2));
  if (g0.decoder === 'jis-x0208' || g0.decoder === 'jis-x0212') {
    // Control characters (CR, LF, TAB, FF) stay single bytes even while a two-byte set is in G0.
    return decoderFor(g0.decoder)(run, report);
  }
  if (!g1 || g1.decoder === 'latin1') return decoderFor(g0.decoder)(run, report, delimiters);
  // G0 is a single-byte set, G1 gives meaning to the high half: decode high bytes with the G1 set.
  if (g0.decoder === 'latin1') return decoderFor(g1.decoder)(run, report);
  let out = '';
  let i = 0;
  while (i < run.length) {
    let j = i;
    const high = run[i]! >= 0x80;
    while (j < run.length && run[j]! >= 0x80 === high) j++;
    out += decoderFor(high ? g1.decoder : g0.decoder)(run.subarray(i, j), report, delimiters);
    i = j;
  }
  return out;
}

const cache = new Map<string, TextDecoding>();

/** A term by its letters and digits alone: 'ISO_IR100', 'iso ir 100' and 'ISO_IR 100' are one. */
const compact = (term: string) => term.toUpperCase().replace(/[^A-Z0-9]/g, '');
/** The Defined Terms by their compact form, and IANA's UTF-8, which some senders write for ISO_IR 192. */
const MISSPELT = new Map(
  [...Object.keys(SINGLE), ...Object.keys(EXTENSION)]
    .filter((term) => term !== '')
    .map((term) => [compact(term), term] as const)
    .concat([['UTF8', 'ISO_IR_192']]),
);

/** A Specific Character Set value list as Defined Terms with underscores (`ISO_IR 100` → `ISO_IR_100`). */
function definedTerms(values: string[] | undefined): string[] {
  return (values ?? []).map((v) => v.trim().replace(/[ -]/g, '_'));
}

/** The decoder for a Specific Character Set value list (undefined or empty: the default repertoire). */
export function textDecoding(values: string[] | undefined): TextDecoding {
  const key = (values ?? []).join('\\');
  const hit = cache.get(key);
  if (hit) return hit;
  const norm = definedTerms(values);
  let result: TextDecoding;
  const singleOnly = norm.findIndex((v) => SINGLE_ONLY.has(v));
  if (norm.length <= 1 && SINGLE[norm[0] ?? ''] !== undefined) {
    result = { decode: decoderFor(SINGLE[norm[0] ?? '']!) };
  } else if (singleOnly >= 0) {
    // PS3.3 C.12.1.1.2: UTF-8, GB18030 and GBK take no code extensions; a sender that names one among others most
    // likely wrote it.
    const term = (values ?? [])[singleOnly]!.trim();
    result = {
      decode: decoderFor(SINGLE[norm[singleOnly]!]!),
      warning: `Specific Character Set '${key}': ${term} must be its only value; text read as ${term}`,
    };
  } else if (norm.every((v) => v === '' || EXTENSION[v] !== undefined || SINGLE[v] !== undefined)) {
    // PS3.3 C.12.1.1.2: with code extensions, value 1 is the set active at the start of every value (empty value 1 is
    // ASCII); a single-byte term without ISO 2022 in value 1 is treated as its ISO 2022 twin.
    const first = norm[0] ?? '';
    const initial = EXTENSION[first] ?? EXTENSION[first.replace(/^ISO_IR/, 'ISO_2022_IR')] ?? [];
    const named = norm.flatMap((v) => EXTENSION[v] ?? EXTENSION[v.replace(/^ISO_IR/, 'ISO_2022_IR')] ?? []);
    const unsupported = named.filter((e) => !ESCAPES[e]);
    result = {
      decode: iso2022Decoder(initial),
      ...(unsupported.length
        ? { warning: `character set ${key}: ${unsupported.length} of its code extensions cannot be decoded` }
        : {}),
    };
  } else {
    // A Defined Term misspelt in case or separators ('ISO_IR100', 'iso_ir 144') is read in the set it
    // names, with a warning; until 7 Dec 2026 it was read as ISO 8859-1 whatever it named ('UTF-8' text came out as
    // 'JÃ©rÃ´me'), and a C-FIND key in it found nothing.
    const terms = norm.map((v) =>
      v === '' || SINGLE[v] !== undefined || EXTENSION[v] ? v : MISSPELT.get(compact(v)),
    );
    if (terms.every((v) => v !== undefined)) {
      const named = terms.map((v) => v.replace(/_/g, ' ').replace(/^ISO IR/, 'ISO_IR')).join('\\');
      const read = textDecoding(terms);
      const misspelt = `Specific Character Set '${key}' is not a Defined Term: text read as ${named}`;
      result = { ...read, warning: read.warning ? `${misspelt}; ${read.warning}` : misspelt };
    } else {
      result = {
        decode: decoderFor('latin1'),
        warning: `unknown Specific Character Set '${key}': text decoded as ISO 8859-1`,
        unknown: true,
      };
    }
  }
  cache.set(key, result);
  return result;
}

/** The single-byte sets besides ISO_IR 100 that textEncoding writes when asked (PS3.3 Table C.12-2). */
const SINGLE_BYTE = new Set([
  'ISO_IR_101',
  'ISO_IR_109',
  'ISO_IR_110',
  'ISO_IR_144',
  'ISO_IR_127',
  'ISO_IR_126',
  'ISO_IR_138',
  'ISO_IR_148',
  'ISO_IR_203',
  'ISO_IR_166',
]);

const singleByteEncoders = new Map<string, (s: string) => Buffer | undefined>();

/**
 * An encoder for a single-byte set: ASCII in G0, and in G1 (0xA0-0xFF) the characters the decoder of that set reads
 * there, the table turned round; a character the set does not hold is refused (undefined).
 */
function singleByteEncoder(label: string): (s: string) => Buffer | undefined {
  const hit = singleByteEncoders.get(label);
  if (hit) return hit;
  const byChar = new Map<number, number>();
  const decoder = new TextDecoder(label);
  for (let byte = 0xa0; byte <= 0xff; byte++) {
    const c = decoder.decode(Buffer.from([byte]));
    if (c.length === 1 && c !== '\ufffd') byChar.set(c.charCodeAt(0), byte);
  }
  const encode = (s: string): Buffer | undefined => {
    const out = Buffer.allocUnsafe(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      const byte = c < 0x80 ? c : byChar.get(c);
      if (byte === undefined) return undefined;
      out[i] = byte;
    }
    return out;
  };
  singleByteEncoders.set(label, encode);
  return encode;
}

/**
 * Encoder for the writer: UTF-8 for ISO_IR 192, ISO 8859-1 for ISO_IR 100, ASCII for the default repertoire (no
 * Specific Character Set: PS3.5 §6.1.2.1, until 6 Dec 2026 it was written as ISO 8859-1) and for every other set;
 * with `singleByteSets`, the other single-byte sets of PS3.3 Table C.12-2 (the ISO 8859 parts and TIS 620) in their
 * own bytes too. Node's TextEncoder writes only UTF-8, and the multi-byte sets and code extensions are not written:
 * callers pass those values as bytes, or write the data set in UTF-8.
 */
export function textEncoding(
  values: string[] | undefined,
  opts: { singleByteSets?: boolean } = {},
): (s: string) => Buffer | undefined {
  const norm = definedTerms(values);
  const first = norm[0] ?? '';
  if (norm.length <= 1 && first === 'ISO_IR_192') return (s) => Buffer.from(s, 'utf8');
  if (norm.length <= 1 && first === 'ISO_IR_100')
    return (s) => ([...s].every((c) => c.charCodeAt(0) <= 0xff) ? Buffer.from(s, 'latin1') : undefined);
  if (opts.singleByteSets && norm.length <= 1 && SINGLE_BYTE.has(first))
    return singleByteEncoder(SINGLE[first]!);
  return (s) => ([...s].every((c) => c.charCodeAt(0) < 0x80) ? Buffer.from(s, 'latin1') : undefined);
}

/**
 * The Defined Term a data set can be written back in for a Specific Character Set as a requestor gave it, misspelt
 * or not: '' for the default repertoire (none given, or ISO_IR 6), 'ISO_IR 192', or a single-byte set (ISO_IR 100,
 * the other ISO 8859 parts, ISO_IR 166), the sets textEncoding writes with `singleByteSets`; undefined for any other
 * (code extensions, ISO_IR 13, the multi-byte sets, a term Custos does not know).
 */
export function writableCharacterSet(values: string[] | undefined): string | undefined {
  const norm = definedTerms(values);
  if (norm.length > 1) return undefined;
  const given = norm[0] ?? '';
  const term = given === '' || SINGLE[given] !== undefined ? given : MISSPELT.get(compact(given));
  if (term === '' || term === 'ISO_IR_6') return '';
  if (term === 'ISO_IR_100' || term === 'ISO_IR_192' || (term && SINGLE_BYTE.has(term)))
    return term.replace('ISO_IR_', 'ISO_IR ');
  return undefined;
}
