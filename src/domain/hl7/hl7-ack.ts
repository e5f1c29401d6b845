import {
  HL7_ERROR_TEXT,
  encodeMessage,
  encodeSegment,
  hl7Timestamp,
  SUPPORTED_VERSIONS,
  type Hl7Header,
  type Hl7Location,
  type Hl7Problem,
} from './hl7-message.js';

/** Original-mode acknowledgment codes (HL7 table 0008): accept, error, reject. */
export type AckCode = 'AA' | 'AE' | 'AR';

/** What an ACK answers: the header of the message (or as much of it as could be read). */
export type AckRequest = Omit<Hl7Header, 'messageCode' | 'characterSet' | 'addresses'> &
  Partial<Pick<Hl7Header, 'addresses'>>;

export interface AckInput {
  request: AckRequest;
  code: AckCode;
  /** Problems to report, one ERR segment each (none for a plain AA). */
  problems?: Hl7Problem[];
  /** Control id of the ACK itself (MSH-10). */
  controlId: string;
  now: Date;
  /** Our application/facility, used when the message did not name the receiver. */
  self: { application: string; facility: string };
  /** MSH-18 of the ACK: the character set its bytes are written in (encodeAck); empty for ASCII. */
  characterSet?: string;
}

function location(l: Hl7Location | undefined): (string | string[])[] {
  if (!l) return [];
  const n = (v: number | undefined) => (v === undefined ? '' : String(v));
  return [
    l.segment,
    n(l.sequence ?? 1),
    n(l.field),
    n(l.repetition ?? (l.field ? 1 : undefined)),
    n(l.component),
    n(l.subcomponent),
  ];
}

/**
 * An ACK (v2.5.1 §2.14.1): MSH addressed back to the sender, MSA with the acknowledgment code and the original
 * control id, and one ERR per problem with ERR-2 location (ERL), ERR-3 the table 0357 code, ERR-4 severity and
 * ERR-8 the user message. MSA-3 repeats the first message for receivers that predate ERR-8.
 */
export function buildAck(input: AckInput): string {
  const r = input.request;
  // An HD echoed whole (ADT1^1.2.840.1^ISO): until 7 Dec 2026 only its namespace ID was, and a sender that names
  // itself by universal ID was addressed as another application.
  const hd = (text: string, whole: string[] | undefined) => (whole && whole.length > 1 ? whole : text);
  const a = r.addresses;
  const version = SUPPORTED_VERSIONS.test(r.version) ? r.version : '2.5.1';
  const msh = encodeSegment('MSH', [
    r.receivingApplication ? hd(r.receivingApplication, a?.receivingApplication) : input.self.application,
    r.receivingFacility ? hd(r.receivingFacility, a?.receivingFacility) : input.self.facility,
    hd(r.sendingApplication, a?.sendingApplication),
    hd(r.sendingFacility, a?.sendingFacility),
    hl7Timestamp(input.now),
    '',
    ['ACK', r.triggerEvent, 'ACK'],
    input.controlId,
    // The message's own processing id (table 0103), so that a test system's message is answered as one (until 7
    // Dec 2026 every ACK said P, also the AR/202 of a T message); P when it named none of them.
    /^[DPT]$/.test(r.processingId) ? r.processingId : 'P',
    version,
    '',
    '',
    '',
    '',
    '',
    input.characterSet ?? '',
  ]);
  const problems = input.problems ?? [];
  const first = problems[0];
  const msa = encodeSegment('MSA', [input.code, r.controlId, first ? first.message.slice(0, 80) : '']);
  const errs = problems.map((p) =>
    encodeSegment('ERR', [
      '',
      location(p.location),
      [String(p.code), HL7_ERROR_TEXT[p.code], 'HL70357'],
      p.severity ?? 'E',
      '',
      '',
      '',
      p.message,
    ]),
  );
  return encodeMessage([msh, msa, ...errs]);
}
