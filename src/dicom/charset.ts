/**
 * Specific Character Set (0008,0005) to a text decoder (PS3.3 C.12.1.1.2, PS3.5 §6.1). Node ships full ICU, so
 * TextDecoder covers the single-byte ISO 8859 parts, UTF-8, GB18030/GBK and ISO 2022 JP.
 */
const SINGLE: Record<string, string> = {
  '': 'latin1',
  ISO_IR_6: 'latin1',
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
  ISO_IR_13: 'shift_jis',
  ISO_IR_166: 'windows-874',
  ISO_IR_192: 'utf-8',
  GB18030: 'gb18030',
  GBK: 'gbk',
};
const EXTENSION: Record<string, string> = {
  ISO_2022_IR_6: 'latin1',
  ISO_2022_IR_100: 'latin1',
  ISO_2022_IR_101: 'iso-8859-2',
  ISO_2022_IR_109: 'iso-8859-3',
  ISO_2022_IR_110: 'iso-8859-4',
  ISO_2022_IR_144: 'iso-8859-5',
  ISO_2022_IR_127: 'iso-8859-6',
  ISO_2022_IR_126: 'iso-8859-7',
  ISO_2022_IR_138: 'iso-8859-8',
  ISO_2022_IR_148: 'iso-8859-9',
  ISO_2022_IR_203: 'iso-8859-15',
  ISO_2022_IR_13: 'shift_jis',
  ISO_2022_IR_166: 'windows-874',
  ISO_2022_IR_87: 'iso-2022-jp',
  ISO_2022_IR_159: 'iso-2022-jp',
  ISO_2022_IR_149: 'euc-kr',
  ISO_2022_IR_58: 'gb2312',
};

export interface TextDecoding {
  decode(bytes: Buffer): string;
  /** Set when the character set could only be approximated. */
  warning?: string;
}

const cache = new Map<string, TextDecoding>();

function decoderFor(label: string): (b: Buffer) => string {
  if (label === 'latin1') return (b) => b.toString('latin1');
  if (label === 'utf-8') return (b) => b.toString('utf8');
  const d = new TextDecoder(label);
  return (b) => d.decode(b);
}

export function textDecoding(values: string[] | undefined): TextDecoding {
  const key = (values ?? []).join('\\');
  const hit = cache.get(key);
  if (hit) return hit;
  const norm = (values ?? []).map((v) => v.trim().replace(/[ -]/g, '_'));
  let result: TextDecoding;
  if (norm.length <= 1 && SINGLE[norm[0] ?? ''] !== undefined) {
    result = { decode: decoderFor(SINGLE[norm[0] ?? '']!) };
  } else if (norm.every((v) => v === '' || EXTENSION[v] !== undefined)) {
    // Code extensions: when a multi-byte set is named, its ISO 2022 decoder handles the escape sequences;
    // otherwise the first single-byte set applies.
    const multi = norm
      .map((v) => EXTENSION[v])
      .find((l) => l === 'iso-2022-jp' || l === 'euc-kr' || l === 'gb2312');
    const label = multi ?? EXTENSION[norm.find((v) => v !== '') ?? 'ISO_2022_IR_6']!;
    result = {
      decode: decoderFor(label),
      ...(norm.length > 1 && multi !== 'iso-2022-jp'
        ? { warning: `character set ${key}: ISO 2022 code extensions decoded approximately as ${label}` }
        : {}),
    };
  } else {
    result = {
      decode: decoderFor('latin1'),
      warning: `unknown Specific Character Set '${key}': text decoded as ISO 8859-1`,
    };
  }
  cache.set(key, result);
  return result;
}
