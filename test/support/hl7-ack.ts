import { parseHl7, value } from '../../src/domain/hl7/hl7-message.js';

/**
 * What a test reads of an HL7 ACK: MSA-1 (code) and MSA-2 (control id), MSH-15/16 (the ack types asked of the
 * sender), and of its ERR segment the error code (ERR-3), its location (ERR-2's components, joined with ^ and
 * without empty trailing ones: `OBR^2`, `MRG^1^4`, `PV1^1^8^2^2`) and the user message (ERR-8).
 */
export function ackOf(text: string) {
  const ack = parseHl7(text);
  const err = ack.segment('ERR');
  return {
    code: value(ack.segment('MSA'), 1),
    controlId: value(ack.segment('MSA'), 2),
    acceptAckType: value(ack.msh, 15),
    applicationAckType: value(ack.msh, 16),
    errorCode: value(err, 3),
    errorLocation: [1, 2, 3, 4, 5]
      .map((c) => value(err, 2, c))
      .join('^')
      .replace(/\^+$/, ''),
    userMessage: value(err, 8),
  };
}
