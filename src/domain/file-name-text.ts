import { terminalText } from './terminal-text.js';

/**
 * A file name as the bytes the file system holds, written for a person to read. Linux takes any bytes but '/' and
 * NUL in a name, and a directory written by an older modality or a Windows share often holds names in Latin-1
 * (`IM\xe9G0001`, 0xE9 being é there), which are not UTF-8. Valid UTF-8 is shown as it is; each byte outside a valid
 * UTF-8 sequence is written `\xNN`, and a backslash `\\`, so that two different names never read the same (the
 * convention of `ls -b`); control characters are escaped as terminalText does, so a crafted name cannot act on the
 * terminal it is printed on.
 */
export function fileNameText(bytes: Uint8Array): string {
  const decoder = new TextDecoder('utf-8');
  const text = (valid: Uint8Array) => terminalText(decoder.decode(valid).replaceAll('\\', '\\\\'));
  let out = '';
  let run = 0; // start of the current run of valid UTF-8
  let i = 0;
  while (i < bytes.length) {
    const n = utf8SequenceLength(bytes, i);
    if (n) {
      i += n;
      continue;
    }
    out += text(bytes.subarray(run, i)) + `\\x${bytes[i]!.toString(16).padStart(2, '0')}`;
    run = ++i;
  }
  return out + text(bytes.subarray(run));
}

/** The length of the valid UTF-8 sequence at `i` (RFC 3629 §4: no overlong forms, no surrogates), 0 if none. */
function utf8SequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (!n || i + n > b.length) return 0;
  for (let k = 1; k < n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return 0;
  const second = b[i + 1]!;
  if ((c === 0xe0 && second < 0xa0) || (c === 0xf0 && second < 0x90)) return 0;
  if ((c === 0xed && second >= 0xa0) || (c === 0xf4 && second >= 0x90)) return 0;
  return n;
}
