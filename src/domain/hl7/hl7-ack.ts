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

/**
 * Acknowledgment codes (HL7 table 0008): the application's accept, error, reject (original mode, and the
 * application ack of enhanced mode), and enhanced mode's accept acknowledgment: commit accept, error, reject.
 */
export type AckCode = 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR';

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
  /**
   * An ACK of enhanced mode (v2.5.1 §2.9.3): its MSH-15 and MSH-16 say NE, so the sender sends no acknowledgment
   * of it back on the connection.
   */
  enhanced?: boolean;
}

/**
 * The acknowledgments a message's outcome is answered with (v2.5.1 §2.9): one ACK in original mode (MSH-15 and
 * MSH-16 empty), else those MSH-15 (accept ack: CA, CE, CR) and MSH-16 (application ack: AA, AE, AR) ask for, each
 * by its type (HL7 table 0155): AL always, NE never, ER only for an error or a rejection, SU only for success; a
 * type left empty in enhanced mode is AL. A message not accepted (CR, CE) has no application ack: it was not
 * applied. An AR (the message as such rejected: its type, version, processing id or sender) is CR; an application
 * internal error (the archive could not commit it: send it again) is CE; anything else was accepted (CA).
 */
export function acknowledgments(
  request: Pick<AckRequest, 'acceptAckType' | 'applicationAckType'>,
  code: 'AA' | 'AE' | 'AR',
  internalError: boolean,
): { code: AckCode; enhanced: boolean }[] {
  const accept = request.acceptAckType ?? '';
  const application = request.applicationAckType ?? '';
  if (accept === '' && application === '') return [{ code, enhanced: false }];
  const wanted = (type: string, ok: boolean) =>
    type === 'NE' ? false : type === 'ER' ? !ok : type === 'SU' ? ok : true;
  const acceptCode: AckCode = code === 'AR' ? 'CR' : internalError ? 'CE' : 'CA';
  const out: { code: AckCode; enhanced: boolean }[] = [];
  if (wanted(accept, acceptCode === 'CA')) out.push({ code: acceptCode, enhanced: true });
  if (acceptCode === 'CA' && wanted(application, code === 'AA')) out.push({ code, enhanced: true });
  return out;
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
    input.enhanced ? 'NE' : '',
    input.enhanced ? 'NE' : '',
    '',
    input.characterSet ?? '',
  ]);
  const problems = input.problems ?? [];
  // An accept ack that accepts (CA) reports no problem: those of the application are its application ack's.
  const reported = input.code === 'CA' ? [] : problems;
  // Before v2.5 the error code and its place had fields of their own, which v2.5 keeps for backward compatibility
  // only: MSA-6 (error condition, CE of table 0357) and ERR-1 (error code and location, ELD: segment ID^sequence^field
  // position^code). A sender of such a version reads those, not ERR-2 and ERR-3, which its version does not define;
  // until 8 Dec 2026 they were left empty, so a v2.3 feed's ACK carried no error code its sender could read.
  const before25 = /^2\.[1-4](\.|$)/.test(version);
  const condition = (p: Hl7Problem) => [String(p.code), HL7_ERROR_TEXT[p.code], 'HL70357'];
  const msa = encodeSegment('MSA', [
    input.code,
    r.controlId,
    reported[0] ? reported[0].message.slice(0, 80) : '',
    '',
    '',
    before25 && reported[0] ? condition(reported[0]) : '',
  ]);
  const errs = reported.map((p) =>
    encodeSegment('ERR', [
      before25
        ? [
            p.location?.segment ?? '',
            p.location ? String(p.location.sequence ?? 1) : '',
            p.location?.field === undefined ? '' : String(p.location.field),
            condition(p),
          ]
        : '',
      location(p.location),
      condition(p),
      p.severity ?? 'E',
      '',
      '',
      '',
      p.message,
    ]),
  );
  return encodeMessage([msh, msa, ...errs]);
}
