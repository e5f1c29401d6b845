/**
 * HL7 v2 messages (v2.5.1 Chapter 2): parse the ER7 ("pipe and hat") encoding into segments, fields,
 * repetitions, components and subcomponents with escape sequences resolved, and encode the other way. Pure: no
 * I/O, no clock.
 */

/** The encoding characters a message declares in MSH-1 and MSH-2 (v2.5.1 §2.5.4). */
export interface Hl7Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

export const DEFAULT_DELIMITERS: Hl7Delimiters = {
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
};

/** A field: its repetitions, each a list of components, each a list of subcomponents (unescaped text). */
export type Hl7Field = string[][][];

export interface Hl7Segment {
  id: string;
  /** fields[n] is field n as the standard numbers it (fields[0] is unused; for MSH, MSH-1 is the separator). */
  fields: Hl7Field[];
}

/** HL7 table 0357 (message error condition codes) as used in ERR-3. */
export const Hl7ErrorCode = {
  SegmentSequenceError: 100,
  RequiredFieldMissing: 101,
  DataTypeError: 102,
  TableValueNotFound: 103,
  UnsupportedMessageType: 200,
  UnsupportedEventCode: 201,
  UnsupportedProcessingId: 202,
  UnsupportedVersionId: 203,
  UnknownKeyIdentifier: 204,
  DuplicateKeyIdentifier: 205,
  ApplicationRecordLocked: 206,
  ApplicationInternalError: 207,
} as const;
export type Hl7ErrorCodeValue = (typeof Hl7ErrorCode)[keyof typeof Hl7ErrorCode];

export const HL7_ERROR_TEXT: Record<Hl7ErrorCodeValue, string> = {
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  200: 'Unsupported message type',
  201: 'Unsupported event code',
  202: 'Unsupported processing id',
  203: 'Unsupported version id',
  204: 'Unknown key identifier',
  205: 'Duplicate key identifier',
  206: 'Application record locked',
  207: 'Application internal error',
};

/** Where in a message a problem is (ERR-2, data type ERL): segment id, its sequence, field, component. */
export interface Hl7Location {
  segment: string;
  /** 1-based occurrence of the segment in the message. */
  sequence?: number;
  field?: number;
  repetition?: number;
  component?: number;
  subcomponent?: number;
}

/** A problem with a message, as the ACK's ERR segment reports it. */
export interface Hl7Problem {
  code: Hl7ErrorCodeValue;
  /** What was wrong, in words the sending system's operator can act on (ERR-8). */
  message: string;
  location?: Hl7Location;
  severity?: 'E' | 'W';
}

export class Hl7Error extends Error {
  /** `detail`: what the ledger's record of the refusal should say beyond the problem (not sent in the ACK). */
  constructor(
    readonly problem: Hl7Problem,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(problem.message);
    this.name = 'Hl7Error';
  }
}

const SEGMENT_ID = /^[A-Z][A-Z0-9]{2}$/;

/**
 * The MSH-12 versions this archive reads: HL7 v2 from 2.1 (2.5.1 is what it was written against; the PID, MRG,
 * ORC and OBR fields it reads keep their places across v2). Anything else is another standard's message.
 */
export const SUPPORTED_VERSIONS = /^2\.[1-9](\.\d+)?$/;

/** The problem with a message's MSH-12 (v2.5.1 §2.9.2.1: an unsupported version is rejected, AR/203), if any. */
export function versionProblem(msg: Hl7Message): Hl7Problem | undefined {
  if (SUPPORTED_VERSIONS.test(msg.version)) return undefined;
  return {
    code: Hl7ErrorCode.UnsupportedVersionId,
    message: `MSH-12 version '${msg.version}' is not supported: this archive reads HL7 v2 messages (2.1 to 2.9, written against 2.5.1)`,
    location: { segment: 'MSH', sequence: 1, field: 12 },
  };
}

/** A parsed message with typed access to its header. */
export class Hl7Message {
  constructor(
    readonly delimiters: Hl7Delimiters,
    readonly segments: Hl7Segment[],
  ) {}

  /** The first segment with this id, or the n-th (1-based) when `occurrence` is given. */
  segment(id: string, occurrence = 1): Hl7Segment | undefined {
    let n = 0;
    for (const s of this.segments) if (s.id === id && ++n === occurrence) return s;
    return undefined;
  }

  all(id: string): Hl7Segment[] {
    return this.segments.filter((s) => s.id === id);
  }

  get msh(): Hl7Segment {
    return this.segments[0]!;
  }

  get messageCode(): string {
    return value(this.msh, 9, 1);
  }
  get triggerEvent(): string {
    return value(this.msh, 9, 2);
  }
  get messageStructure(): string {
    return value(this.msh, 9, 3);
  }
  get controlId(): string {
    return value(this.msh, 10);
  }
  get processingId(): string {
    return value(this.msh, 11);
  }
  get version(): string {
    return value(this.msh, 12);
  }
  get sendingApplication(): string {
    return value(this.msh, 3);
  }
  get sendingFacility(): string {
    return value(this.msh, 4);
  }
  get receivingApplication(): string {
    return value(this.msh, 5);
  }
  get receivingFacility(): string {
    return value(this.msh, 6);
  }
  /** MSH-18 character set (first repetition); empty means ASCII (v2.5.1 §2.15.9.18). */
  get characterSet(): string {
    return value(this.msh, 18);
  }
}

/** Text at field/repetition/component/subcomponent (1-based), '' when absent. */
export function value(
  seg: Hl7Segment | undefined,
  field: number,
  component = 1,
  subcomponent = 1,
  rep = 1,
): string {
  return seg?.fields[field]?.[rep - 1]?.[component - 1]?.[subcomponent - 1] ?? '';
}

/** Every repetition of a field. */
export function repetitions(seg: Hl7Segment | undefined, field: number): string[][][] {
  return seg?.fields[field] ?? [];
}

/**
 * Split the segments of a message: v2.5.1 §2.5.1 terminates segments with a carriage return; linefeeds and
 * CRLF pairs, which file transfers and some senders introduce, are tolerated.
 */
function splitSegments(text: string): string[] {
  return text.split(/\r\n|\r|\n/).filter((s) => s.trim() !== '');
}

/**
 * Parse one message. Throws Hl7Error with a table 0357 code and location when the message cannot be read; the
 * header fields needed to address an ACK are kept by `peekHeader` for that case.
 */
export function parseHl7(text: string): Hl7Message {
  const lines = splitSegments(text.trimStart());
  const first = lines[0];
  if (!first || !first.startsWith('MSH')) {
    throw new Hl7Error({
      code: Hl7ErrorCode.SegmentSequenceError,
      message: first
        ? `the message must begin with an MSH segment, but it begins with '${first.slice(0, 3)}'`
        : 'the message is empty: it must begin with an MSH segment',
      location: { segment: first ? first.slice(0, 3) : 'MSH', sequence: 1 },
    });
  }
  if (first.length < 8) {
    throw new Hl7Error({
      code: Hl7ErrorCode.RequiredFieldMissing,
      message: 'MSH-1 and MSH-2 (the field separator and encoding characters) are missing',
      location: { segment: 'MSH', sequence: 1, field: 2 },
    });
  }
  const field = first[3]!;
  const enc = first.slice(4, first.indexOf(field, 4) === -1 ? undefined : first.indexOf(field, 4));
  if (
    enc.length < 4 ||
    new Set([field, ...enc.slice(0, 4)]).size !== 5 ||
    /[A-Za-z0-9\s]/.test(field + enc)
  ) {
    throw new Hl7Error({
      code: Hl7ErrorCode.DataTypeError,
      message: `MSH-2 must hold four distinct encoding characters (component, repetition, escape, subcomponent), got '${enc}'`,
      location: { segment: 'MSH', sequence: 1, field: 2 },
    });
  }
  const d: Hl7Delimiters = {
    field,
    component: enc[0]!,
    repetition: enc[1]!,
    escape: enc[2]!,
    subcomponent: enc[3]!,
  };
  const segments: Hl7Segment[] = [];
  const seen = new Map<string, number>();
  for (const line of lines) {
    const id = line.slice(0, 3);
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    if (!SEGMENT_ID.test(id) || (line.length > 3 && line[3] !== field)) {
      throw new Hl7Error({
        code: Hl7ErrorCode.SegmentSequenceError,
        message: `'${line.slice(0, 20)}' is not a segment: a segment starts with a three-character id followed by '${field}'`,
        location: { segment: SEGMENT_ID.test(id) ? id : '', sequence: n },
      });
    }
    // One frame is one message (v2.5.1 §2.9.1): a second MSH would start another message, one the sender checks,
    // made on the first MSH only, never saw. The whole frame is refused rather than split or partly applied.
    if (id === 'MSH' && n > 1) {
      throw new Hl7Error({
        code: Hl7ErrorCode.SegmentSequenceError,
        message: `segment ${segments.length + 1} is a second MSH: one MLLP frame carries one message, so nothing of this frame was applied; send each message in its own frame`,
        location: { segment: 'MSH', sequence: n },
      });
    }
    const raw = line.split(field);
    const fields: Hl7Field[] = [[]];
    if (id === 'MSH') {
      // MSH-1 is the field separator itself and MSH-2 the encoding characters, taken literally.
      fields.push([[[field]]], [[[raw[1]!]]]);
      for (const f of raw.slice(2)) fields.push(parseField(f, d));
    } else {
      for (const f of raw.slice(1)) fields.push(parseField(f, d));
    }
    segments.push({ id, fields });
  }
  const msg = new Hl7Message(d, segments);
  const required: [number, string][] = [
    [9, 'MSH-9 (message type)'],
    [10, 'MSH-10 (message control id)'],
    [11, 'MSH-11 (processing id)'],
    [12, 'MSH-12 (version id)'],
  ];
  for (const [f, name] of required) {
    if (value(msg.msh, f) === '')
      throw new Hl7Error({
        code: Hl7ErrorCode.RequiredFieldMissing,
        message: `${name} is required and empty`,
        location: { segment: 'MSH', sequence: 1, field: f },
      });
  }
  if (value(msg.msh, 9, 2) === '' && msg.messageCode !== 'ACK')
    throw new Hl7Error({
      code: Hl7ErrorCode.RequiredFieldMissing,
      message: 'MSH-9.2 (trigger event) is required and empty',
      location: { segment: 'MSH', sequence: 1, field: 9, component: 2 },
    });
  return msg;
}

/** The MSH fields that address a reply. */
export interface Hl7Header {
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  controlId: string;
  /** MSH-11, its first component (HL7 table 0103: P, T, D); '' when empty. */
  processingId: string;
  version: string;
  messageCode: string;
  triggerEvent: string;
  /** MSH-18, its first repetition's first component (HL7 table 0211); '' when empty. */
  characterSet: string;
  /**
   * MSH-15 and MSH-16, the accept and application acknowledgment types (HL7 table 0155: AL, NE, ER, SU); both ''
   * for original acknowledgment mode (v2.5.1 §2.9.2), either valued for enhanced mode (§2.9.3).
   */
  acceptAckType?: string;
  applicationAckType?: string;
  /**
   * MSH-3..6 whole, each HD's components as text (namespace ID, universal ID, its type), for the ACK to address
   * the sender as it named itself; the fields above are their namespace IDs, which `hl7.senders` matches.
   */
  addresses: {
    sendingApplication: string[];
    sendingFacility: string[];
    receivingApplication: string[];
    receivingFacility: string[];
  };
}

/**
 * The MSH fields of a message that may not parse, best effort, to address an ACK to its sender (sending
 * application and facility, control id, version, message type).
 */
export function peekHeader(text: string): Hl7Header {
  const line = splitSegments(text.trimStart()).find((l) => l.startsWith('MSH')) ?? '';
  const sep = line[3] ?? '|';
  const comp = line[4] ?? '^';
  const f = line.split(sep);
  // f[1] is MSH-2, so MSH-n is f[n - 1].
  const at = (n: number) => f[n - 1] ?? '';
  const first = (s: string) => s.split(comp)[0] ?? '';
  // MSH-10 is kept as text (escape sequences resolved), as the parser would read it: the ACK encodes it again for
  // MSA-2, so a control id like A\F\B is echoed escaped once, the way the sender wrote it.
  const enc = line.slice(4, 8);
  const d: Hl7Delimiters =
    enc.length === 4 && new Set([sep, ...enc]).size === 5
      ? { field: sep, component: enc[0]!, repetition: enc[1]!, escape: enc[2]!, subcomponent: enc[3]! }
      : DEFAULT_DELIMITERS;
  // MSH-3..6 likewise: the ACK encodes them again (swapped), so they are kept as text, not as sent.
  const asText = (n: number) => unescapeHl7(first(at(n)), d);
  const components = (n: number) =>
    at(n)
      .split(comp)
      .map((c) => unescapeHl7(c, d));
  return {
    sendingApplication: asText(3),
    sendingFacility: asText(4),
    receivingApplication: asText(5),
    receivingFacility: asText(6),
    controlId: unescapeHl7(at(10), d),
    processingId: first(at(11)),
    version: first(at(12)),
    messageCode: first(at(9)),
    triggerEvent: at(9).split(comp)[1] ?? '',
    characterSet: first(at(18).split(d.repetition)[0] ?? '').trim(),
    acceptAckType: first(at(15)).trim(),
    applicationAckType: first(at(16)).trim(),
    addresses: {
      sendingApplication: components(3),
      sendingFacility: components(4),
      receivingApplication: components(5),
      receivingFacility: components(6),
    },
  };
}

function parseField(raw: string, d: Hl7Delimiters): string[][][] {
  if (raw === '') return [];
  return raw
    .split(d.repetition)
    .map((rep) => rep.split(d.component).map((c) => c.split(d.subcomponent).map((s) => unescapeHl7(s, d))));
}

/**
 * Resolve escape sequences (v2.5.1 §2.7): \F\ \S\ \T\ \R\ \E\ stand for the delimiters, \Xhh..\ for bytes given
 * in hexadecimal (read as Latin-1 when they are not valid UTF-8). Formatting commands (§2.7.6) that end a line
 * (\.br\, \.sp\ n, \.ce\) become line feeds and \.sk\ n spaces, so the words either side stay apart (until 7 Dec
 * 2026 they were dropped, and `CT HEAD\.br\W/O CONTRAST` read `CT HEADW/O CONTRAST`); the others (\H\ \N\
 * highlighting, \.in\ \.ti\ indents, \.fi\ \.nf\, \Cxxyy\ \Mxxyyzz\ character set switches, \Z…\ local ones)
 * carry no text and are dropped. An unterminated escape is kept literally.
 */
export function unescapeHl7(s: string, d: Hl7Delimiters = DEFAULT_DELIMITERS): string {
  if (!s.includes(d.escape)) return s;
  let out = '';
  let i = 0;
  while (i < s.length) {
    const ch = s[i]!;
    if (ch !== d.escape) {
      out += ch;
      i++;
      continue;
    }
    const end = s.indexOf(d.escape, i + 1);
    if (end === -1) {
      out += s.slice(i);
      break;
    }
    const seq = s.slice(i + 1, end);
    i = end + 1;
    switch (seq) {
      case 'F':
        out += d.field;
        continue;
      case 'S':
        out += d.component;
        continue;
      case 'T':
        out += d.subcomponent;
        continue;
      case 'R':
        out += d.repetition;
        continue;
      case 'E':
        out += d.escape;
        continue;
    }
    if (/^X([0-9A-Fa-f]{2})+$/.test(seq)) {
      const bytes = Buffer.from(seq.slice(1), 'hex');
      const utf8 = bytes.toString('utf8');
      out += utf8.includes('\uFFFD') ? bytes.toString('latin1') : utf8;
      continue;
    }
    const format = /^\.(br|sp|ce|sk)\s*([+-]?\d*)$/.exec(seq);
    if (format) {
      const count = Math.min(Math.max(Number(format[2] || '1'), 1), 100);
      out += format[1] === 'sk' ? ' '.repeat(count) : format[1] === 'sp' ? '\n'.repeat(count) : '\n';
      continue;
    }
    if (/^(H|N|\.[a-z]{2}\s*[+-]?\d*|C[0-9A-Fa-f]{4}|M[0-9A-Fa-f]{4,6}|Z.*)$/.test(seq)) continue;
    out += d.escape + seq + d.escape;
  }
  return out;
}

/** Escape text so that it reads back as the same text in any field position (v2.5.1 §2.7.1). */
export function escapeHl7(s: string, d: Hl7Delimiters = DEFAULT_DELIMITERS): string {
  let out = '';
  for (const ch of s) {
    if (ch === d.escape) out += `${d.escape}E${d.escape}`;
    else if (ch === d.field) out += `${d.escape}F${d.escape}`;
    else if (ch === d.component) out += `${d.escape}S${d.escape}`;
    else if (ch === d.subcomponent) out += `${d.escape}T${d.escape}`;
    else if (ch === d.repetition) out += `${d.escape}R${d.escape}`;
    else if (ch === '\r') out += `${d.escape}X0D${d.escape}`;
    else if (ch === '\n') out += `${d.escape}X0A${d.escape}`;
    else out += ch;
  }
  return out;
}

/** A field to encode: text, or components (each text or subcomponents), or repetitions of those. */
export type Hl7FieldValue =
  string | (string | string[])[] | { repetitions: (string | (string | string[])[])[] };

/** Encode a segment from its field values (fields[0] is field 1; for MSH, field 3 onwards). */
export function encodeSegment(
  id: string,
  fields: Hl7FieldValue[],
  d: Hl7Delimiters = DEFAULT_DELIMITERS,
): string {
  const one = (v: string | (string | string[])[]): string =>
    typeof v === 'string'
      ? escapeHl7(v, d)
      : v
          .map((c) =>
            typeof c === 'string' ? escapeHl7(c, d) : c.map((s) => escapeHl7(s, d)).join(d.subcomponent),
          )
          .join(d.component);
  const encoded = fields.map((f) =>
    typeof f === 'object' && !Array.isArray(f) ? f.repetitions.map(one).join(d.repetition) : one(f),
  );
  // Trailing empty fields are left off (v2.5.1 §2.5.3).
  while (encoded.length > 0 && encoded[encoded.length - 1] === '') encoded.pop();
  if (id === 'MSH') {
    const enc = d.component + d.repetition + d.escape + d.subcomponent;
    return ['MSH', enc, ...encoded].join(d.field);
  }
  return [id, ...encoded].join(d.field);
}

/** Join encoded segments into a message: each segment terminated by a carriage return. */
export function encodeMessage(segments: string[]): string {
  return segments.map((s) => `${s}\r`).join('');
}

/** HL7 DTM (YYYYMMDDHHMMSS+ZZZZ) of a UTC instant. */
export function hl7Timestamp(at: Date): string {
  return `${at.toISOString().replace(/[-:T]/g, '').slice(0, 14)}+0000`;
}
