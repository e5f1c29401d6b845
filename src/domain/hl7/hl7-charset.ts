import { Hl7ErrorCode, peekHeader, type Hl7Problem } from './hl7-message.js';

/** How a message's bytes were read: the character set its ACK is written in (encodeAck). */
export interface ReadAs {
  encoding: 'utf8' | 'latin1';
  /** The message's MSH-18. */
  declared: string;
}

/** A message's bytes as text, or why they cannot be read in the character set MSH-18 declares. */
export type DecodedMessage =
  { text: string; readAs: ReadAs } | { text: string; readAs: ReadAs; problem: Hl7Problem };

/** The character sets (MSH-18, HL7 table 0211) this archive reads and writes. */
const READABLE = new Set(['', 'ASCII', '8859/1', 'UNICODE UTF-8']);

const MSH_18 = { segment: 'MSH', sequence: 1, field: 18 } as const;

/**
 * Decode a message's bytes by MSH-18 (v2.5.1 §2.15.9.18): empty (the ASCII default, which many senders leave
 * empty while sending UTF-8 or Latin-1: read as UTF-8 when the bytes are valid UTF-8, else as ISO 8859-1),
 * 'ASCII', '8859/1' and 'UNICODE UTF-8'. Another value is refused (103), and bytes the declared character set
 * cannot hold (102): guessing would put other letters in a patient's name. The text of a refused message is
 * still returned, read as Latin-1, to address the reply.
 */
export function decodeHl7Bytes(bytes: Buffer): DecodedMessage {
  // MSH-18 (HL7 table 0211) is read before the text is decoded: the MSH segment's delimiters and this field are
  // ASCII in every character set this archive reads, so the bytes read as Latin-1 give it.
  const latin1 = bytes.toString('latin1');
  const charset = peekHeader(latin1).characterSet;
  const asLatin1 = { encoding: 'latin1', declared: charset } as const;
  const asUtf8 = { encoding: 'utf8', declared: charset } as const;
  const invalid = (offset: number): DecodedMessage => ({
    text: latin1,
    readAs: asLatin1,
    problem: {
      code: Hl7ErrorCode.DataTypeError,
      message: `the message declares MSH-18 '${charset}' but byte ${offset} (0x${bytes[offset]!.toString(16).padStart(2, '0')}) is not valid in it; nothing of the message was applied`,
      location: MSH_18,
    },
  });
  switch (charset) {
    case '':
      try {
        return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), readAs: asUtf8 };
      } catch {
        return { text: latin1, readAs: asLatin1 };
      }
    case 'ASCII': {
      const bad = bytes.findIndex((b) => b > 0x7f);
      return bad === -1 ? { text: latin1, readAs: asLatin1 } : invalid(bad);
    }
    case '8859/1':
      return { text: latin1, readAs: asLatin1 };
    case 'UNICODE UTF-8':
      try {
        return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), readAs: asUtf8 };
      } catch {
        return invalid(firstInvalidUtf8(bytes));
      }
    default:
      return {
        text: latin1,
        readAs: asLatin1,
        problem: {
          code: Hl7ErrorCode.TableValueNotFound,
          message: `MSH-18 character set '${charset}' is not one this archive reads (empty for ASCII, ASCII, 8859/1, UNICODE UTF-8); nothing of the message was applied`,
          location: MSH_18,
        },
      };
  }
}

/**
 * The bytes of an ACK, in the character set the message it answers was read in, and the MSH-18 that says so
 * (v2.5.1 §2.15.9.18: an empty MSH-18 means ASCII). `build` writes the ACK declaring the character set it is given.
 * An ACK in ASCII declares what the message declared; one holding other characters (an echoed MSH-4 `MÜNCHEN`,
 * a name quoted in ERR-8) is written in ISO 8859-1 declaring `8859/1` when the message was read so (and the
 * text fits), else in UTF-8 declaring `UNICODE UTF-8`. Until 7 Dec 2026 every ACK was written in UTF-8 with no
 * MSH-18, so a sender of `8859/1` read its own echoed facility as other letters.
 */
export function encodeAck(build: (characterSet: string) => string, readAs: ReadAs): Buffer {
  const draft = build('');
  // eslint-disable-next-line no-control-regex
  if (/^[\u0000-\u007f]*$/.test(draft)) {
    const echoed = READABLE.has(readAs.declared) ? readAs.declared : '';
    return Buffer.from(echoed ? build(echoed) : draft, 'latin1');
  }
  // eslint-disable-next-line no-control-regex
  if (readAs.encoding === 'latin1' && /^[\u0000-\u00ff]*$/.test(draft))
    return Buffer.from(build('8859/1'), 'latin1');
  return Buffer.from(build('UNICODE UTF-8'), 'utf8');
}

/** Offset of the first byte that makes `bytes` invalid UTF-8 (they are known to be invalid). */
function firstInvalidUtf8(bytes: Buffer): number {
  const lenient = bytes.toString('utf8');
  return Buffer.byteLength(lenient.slice(0, lenient.indexOf('\uFFFD')), 'utf8');
}
