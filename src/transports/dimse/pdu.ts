/**
 * DICOM upper layer protocol data units (PS3.8 §9.3): decoding from a byte stream and encoding. Lengths and
 * numbers in PDU headers are big endian (PS3.8 §9.3.1); the DIMSE messages carried inside are little endian.
 */
import { IMPLEMENTATION_VERSION_NAME } from '../../dicom/implementation.js';

export const PduType = {
  AssociateRq: 0x01,
  AssociateAc: 0x02,
  AssociateRj: 0x03,
  PData: 0x04,
  ReleaseRq: 0x05,
  ReleaseRp: 0x06,
  Abort: 0x07,
} as const;

export const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';

/** PS3.8 §9.3.7 A-ABORT reasons when the source is the service provider (2). */
export const AbortReason = {
  NotSpecified: 0,
  UnrecognizedPdu: 1,
  UnexpectedPdu: 2,
  UnrecognizedPduParameter: 4,
  UnexpectedPduParameter: 5,
  InvalidPduParameterValue: 6,
} as const;

/** PS3.8 Table 9-21: A-ASSOCIATE-RJ result, source and reason. */
export const RejectReason = {
  NoReason: 1,
  ApplicationContextNotSupported: 2,
  CallingAeNotRecognized: 3,
  CalledAeNotRecognized: 7,
} as const;

/** PS3.8 Table 9-21, source 2 (service provider, ACSE related function): reason 2, protocol version not supported. */
export const ProtocolVersionNotSupported = { result: 1, source: 2, reason: 2 } as const;

/**
 * PS3.8 Table 9-21, source 3 (service provider, presentation related function): reason 2, local limit exceeded,
 * given with result 2 (rejected-transient), which tells the requestor to try again later.
 */
export const PresentationLimitExceeded = { result: 2, source: 3, reason: 2 } as const;

export interface ProposedContext {
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

export interface RoleSelection {
  sopClassUid: string;
  scu: boolean;
  scp: boolean;
}

/** PS3.7 D.3.3.7.1 User Identity sub-item of an A-ASSOCIATE-RQ. */
export interface UserIdentity {
  /** 1 username, 2 username and passcode, 3 Kerberos, 4 SAML, 5 JSON Web Token. */
  type: number;
  positiveResponseRequested: boolean;
  primary: Buffer;
  secondary: Buffer;
}

/** PS3.7 D.3.3.5 SOP Class Extended Negotiation sub-item: a SOP class and its service-class-application-information. */
export interface ExtendedNegotiation {
  sopClassUid: string;
  info: Buffer;
}

export interface UserInformation {
  maxPduLength: number;
  implementationClassUid?: string;
  implementationVersionName?: string;
  roles: RoleSelection[];
  identity?: UserIdentity;
  extended?: ExtendedNegotiation[];
}

export interface AssociateRq {
  type: 'associate-rq';
  calledAe: string;
  callingAe: string;
  applicationContext: string;
  contexts: ProposedContext[];
  user: UserInformation;
  /** The requestor supports protocol version 1 (bit 0 of the protocol version field). */
  protocolVersion1: boolean;
}

/** PS3.8 Table 9-18 presentation context results. */
export const ContextResult = {
  Acceptance: 0,
  UserRejection: 1,
  NoReason: 2,
  AbstractSyntaxNotSupported: 3,
  TransferSyntaxesNotSupported: 4,
} as const;

export interface AcceptedContext {
  id: number;
  result: number;
  transferSyntax: string;
}

export interface AssociateAc {
  type: 'associate-ac';
  calledAe: string;
  callingAe: string;
  applicationContext: string;
  contexts: AcceptedContext[];
  user: UserInformation;
}

export interface AssociateRj {
  type: 'associate-rj';
  result: number;
  source: number;
  reason: number;
}

export interface Pdv {
  contextId: number;
  command: boolean;
  last: boolean;
  data: Buffer;
}

export type Pdu =
  | AssociateRq
  | AssociateAc
  | AssociateRj
  | { type: 'p-data'; pdvs: Pdv[] }
  | { type: 'release-rq' }
  | { type: 'release-rp' }
  | { type: 'abort'; source: number; reason: number };

/** A PDU that violates PS3.8: the association is aborted with `reason`. */
export class PduError extends Error {
  constructor(
    message: string,
    readonly reason: number = AbortReason.InvalidPduParameterValue,
  ) {
    super(message);
    this.name = 'PduError';
  }
}

const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1483.2';
const IMPLEMENTATION_VERSION = IMPLEMENTATION_VERSION_NAME;

/**
 * The 6-byte header of a PDV item (PS3.8 §9.3.5.1) at `at` in `b`, with `room` bytes left in its P-DATA-TF PDU
 * from there: the item's context, message control header and value length, checked against the PDU.
 */
function pdvItemHeader(b: Buffer, at: number, room: number): Omit<Pdv, 'data'> & { valueLength: number } {
  const len = b.readUInt32BE(at);
  if (len < 2 || 4 + len > room) throw new PduError('a PDV item length overruns its P-DATA-TF PDU');
  const mch = b[at + 5]!;
  return { contextId: b[at + 4]!, command: (mch & 1) === 1, last: (mch & 2) === 2, valueLength: len - 2 };
}

/**
 * Incremental framing: push socket bytes, take whole PDUs. Holds at most one PDU plus one socket chunk.
 *
 * With `next(true)`, a P-DATA-TF PDU is not gathered whole: its PDV items come out as pieces (a `Pdv` holding
 * part of an item's value; `last` only on the final piece of an item that ends a message) as their bytes arrive, each at most one socket chunk, with the item and PDU lengths checked as they go. A peer
 * may send a whole data set as one PDU of our maximum (dcmtk's storescu sends a 580 KB CT image as one 1 MiB
 * PDU): taken whole, the PDU was held and joined in memory, and nothing of the object reached the ingest (the
 * Part 10 parser, the blob writer) until its last byte had come. Streamed, the object is parsed while it arrives
 * and an association holds no more than a socket chunk beyond what the ingest has taken (back-pressure).
 */
/**
 * The largest A-ASSOCIATE-RQ or -AC taken (its whole body is held while it is decoded): 1 MiB. A storage SCU that
 * offers each of its 120-odd SOP classes with a dozen transfer syntaxes sends some 64 KiB and more; until 6 Dec 2026
 * such a request was over the 64 KiB limit of the other PDUs and aborted.
 */
export const ASSOCIATION_PDU_LIMIT = 1024 * 1024;

export class PduFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes of the current P-DATA-TF PDU not yet taken (streaming only; 0: between PDUs). */
  private pduLeft = 0;
  /** Value bytes of the current PDV item not yet taken, and that item's header. */
  private itemLeft = 0;
  private item = { contextId: 0, command: false, last: false };

  constructor(private readonly maxPduLength: number) {}

  push(chunk: Buffer) {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next whole PDU (type byte and body), or with `streamPData` the next piece of a P-DATA-TF PDU's PDV
   * items; undefined when more bytes are needed. One framer is read one way throughout.
   */
  next(): { type: number; body: Buffer } | undefined;
  next(streamPData: true): { type: number; body: Buffer } | Pdv | undefined;
  next(streamPData = false): { type: number; body: Buffer } | Pdv | undefined {
    if (this.pduLeft > 0) return this.nextPiece();
    if (this.buffered < 6) return undefined;
    const head = this.peek(6);
    const type = head[0]!;
    const length = head.readUInt32BE(2);
    if (type < PduType.AssociateRq || type > PduType.Abort)
      throw new PduError(`unknown PDU type 0x${type.toString(16)}`, AbortReason.UnrecognizedPdu);
    // Our advertised maximum applies to P-DATA-TF; the others are bounded separately (ASSOCIATION_PDU_LIMIT).
    const limit =
      type === PduType.PData
        ? this.maxPduLength + 6
        : type === PduType.AssociateRq || type === PduType.AssociateAc
          ? ASSOCIATION_PDU_LIMIT
          : 64 * 1024;
    if (length > limit)
      throw new PduError(
        `PDU of ${length} bytes exceeds the ${limit}-byte limit`,
        AbortReason.InvalidPduParameterValue,
      );
    if (type === PduType.PData && streamPData) {
      if (length === 0) throw new PduError('a P-DATA-TF PDU without PDV items');
      this.take(6);
      this.pduLeft = length;
      return this.nextPiece();
    }
    if (this.buffered < 6 + length) return undefined;
    const all = this.take(6 + length);
    return { type, body: all.subarray(6) };
  }

  private nextPiece(): Pdv | undefined {
    if (this.itemLeft === 0) {
      if (this.pduLeft < 6) throw new PduError('a PDV item is truncated');
      if (this.buffered < 6) return undefined;
      const { valueLength, ...item } = pdvItemHeader(this.take(6), 0, this.pduLeft);
      this.item = item;
      this.pduLeft -= 6;
      this.itemLeft = valueLength;
      if (this.itemLeft === 0) return { ...this.item, data: Buffer.alloc(0) };
    }
    if (this.buffered === 0) return undefined;
    const data = this.take(Math.min(this.itemLeft, this.chunks[0]!.length));
    this.itemLeft -= data.length;
    this.pduLeft -= data.length;
    return { ...this.item, last: this.item.last && this.itemLeft === 0, data };
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(this.chunks);
      out = joined.subarray(0, n);
      this.chunks = joined.length > n ? [joined.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}

const aeText = (b: Buffer, at: number) => b.toString('latin1', at, at + 16).trim();
const uidText = (b: Buffer) => b.toString('latin1').replace(/\0+$/, '').trim();

function need(b: Buffer, n: number, what: string) {
  if (b.length < n) throw new PduError(`${what} is truncated`, AbortReason.InvalidPduParameterValue);
}

/** Walk `type(1) reserved(1) length(2)` items. */
function* items(b: Buffer, what: string): Generator<{ type: number; value: Buffer }> {
  let o = 0;
  while (o < b.length) {
    need(b.subarray(o), 4, what);
    const type = b[o]!;
    const len = b.readUInt16BE(o + 2);
    if (o + 4 + len > b.length) throw new PduError(`an item of ${what} overruns its PDU`);
    yield { type, value: b.subarray(o + 4, o + 4 + len) };
    o += 4 + len;
  }
}

function decodeUserInfo(v: Buffer): UserInformation {
  const user: UserInformation = { maxPduLength: 0, roles: [] };
  for (const sub of items(v, 'the user information item')) {
    if (sub.type === 0x51) {
      need(sub.value, 4, 'the maximum length sub-item');
      user.maxPduLength = sub.value.readUInt32BE(0);
    } else if (sub.type === 0x52) user.implementationClassUid = uidText(sub.value);
    else if (sub.type === 0x55) user.implementationVersionName = sub.value.toString('latin1').trim();
    else if (sub.type === 0x54) {
      need(sub.value, 2, 'the role selection sub-item');
      const n = sub.value.readUInt16BE(0);
      need(sub.value, 4 + n, 'the role selection sub-item');
      user.roles.push({
        sopClassUid: uidText(sub.value.subarray(2, 2 + n)),
        scu: sub.value[2 + n] === 1,
        scp: sub.value[3 + n] === 1,
      });
    } else if (sub.type === 0x56) {
      need(sub.value, 2, 'the SOP class extended negotiation sub-item');
      const n = sub.value.readUInt16BE(0);
      need(sub.value, 2 + n, 'the SOP class extended negotiation sub-item');
      (user.extended ??= []).push({
        sopClassUid: uidText(sub.value.subarray(2, 2 + n)),
        info: sub.value.subarray(2 + n),
      });
    } else if (sub.type === 0x58) {
      need(sub.value, 4, 'the user identity sub-item');
      const primaryLength = sub.value.readUInt16BE(2);
      need(sub.value, 6 + primaryLength, 'the user identity sub-item');
      const secondaryLength = sub.value.readUInt16BE(4 + primaryLength);
      need(sub.value, 6 + primaryLength + secondaryLength, 'the user identity sub-item');
      user.identity = {
        type: sub.value[0]!,
        positiveResponseRequested: sub.value[1] === 1,
        primary: sub.value.subarray(4, 4 + primaryLength),
        secondary: sub.value.subarray(6 + primaryLength, 6 + primaryLength + secondaryLength),
      };
    }
  }
  return user;
}

function decodeAssociate(type: number, body: Buffer): AssociateRq | AssociateAc {
  need(body, 68, 'the A-ASSOCIATE PDU');
  // PS3.8 §9.3.2: bit 0 of the protocol version says version 1 is supported. A request without it is answered
  // with an A-ASSOCIATE-RJ (protocol-version-not-supported), an acceptance without it is a broken peer.
  const protocolVersion1 = (body.readUInt16BE(0) & 1) === 1;
  if (!protocolVersion1 && type !== PduType.AssociateRq)
    throw new PduError('protocol version 1 is not offered', AbortReason.InvalidPduParameterValue);
  const calledAe = aeText(body, 4);
  const callingAe = aeText(body, 20);
  let applicationContext = '';
  const rqContexts: ProposedContext[] = [];
  const acContexts: AcceptedContext[] = [];
  let user: UserInformation = { maxPduLength: 0, roles: [] };
  let sawUser = false;
  for (const it of items(body.subarray(68), 'the A-ASSOCIATE PDU')) {
    if (it.type === 0x10) applicationContext = uidText(it.value);
    else if (it.type === 0x20 && type === PduType.AssociateRq) {
      need(it.value, 4, 'a presentation context item');
      const ctx: ProposedContext = { id: it.value[0]!, abstractSyntax: '', transferSyntaxes: [] };
      for (const sub of items(it.value.subarray(4), 'a presentation context item')) {
        if (sub.type === 0x30) ctx.abstractSyntax = uidText(sub.value);
        else if (sub.type === 0x40) ctx.transferSyntaxes.push(uidText(sub.value));
      }
      if (!ctx.abstractSyntax || ctx.transferSyntaxes.length === 0 || ctx.id % 2 === 0)
        throw new PduError(`presentation context ${ctx.id} is malformed`);
      // PS3.8 §9.3.2.2: each proposed context has its own ID. Until 6 Dec 2026 a second one with the same ID was
      // accepted too, the acceptor's answer then naming one ID twice and its table keeping the later.
      if (rqContexts.some((c) => c.id === ctx.id))
        throw new PduError(`presentation context ${ctx.id} is proposed twice`);
      rqContexts.push(ctx);
    } else if (it.type === 0x21 && type === PduType.AssociateAc) {
      need(it.value, 4, 'a presentation context item');
      let ts = '';
      for (const sub of items(it.value.subarray(4), 'a presentation context item'))
        if (sub.type === 0x40) ts = uidText(sub.value);
      acContexts.push({ id: it.value[0]!, result: it.value[2]!, transferSyntax: ts });
    } else if (it.type === 0x50) {
      user = decodeUserInfo(it.value);
      sawUser = true;
    } else if (it.type === 0x20 || it.type === 0x21) {
      // A presentation context item of the other PDU (a requestor's in an acceptance, or the reverse).
      throw new PduError(
        `unexpected item 0x${it.type.toString(16)} in an A-ASSOCIATE PDU`,
        AbortReason.UnexpectedPduParameter,
      );
    }
    // PS3.8 §9.3.1: items of unrecognized types are ignored and skipped (as sub-items of the presentation context and
    // user information items are). Until 7 Dec 2026 such an item, which a later edition of the standard may define,
    // had the association aborted.
  }
  if (!applicationContext) throw new PduError('the A-ASSOCIATE PDU has no application context');
  if (!sawUser) throw new PduError('the A-ASSOCIATE PDU has no user information item');
  return type === PduType.AssociateRq
    ? {
        type: 'associate-rq',
        calledAe,
        callingAe,
        applicationContext,
        contexts: rqContexts,
        user,
        protocolVersion1,
      }
    : { type: 'associate-ac', calledAe, callingAe, applicationContext, contexts: acContexts, user };
}

export function decodePdu(type: number, body: Buffer): Pdu {
  switch (type) {
    case PduType.AssociateRq:
    case PduType.AssociateAc:
      return decodeAssociate(type, body);
    case PduType.AssociateRj:
      need(body, 4, 'the A-ASSOCIATE-RJ PDU');
      return { type: 'associate-rj', result: body[1]!, source: body[2]!, reason: body[3]! };
    case PduType.PData: {
      // Read in place, without a view of each header or a spread: a C-FIND answer is one PDU of two items, and
      // a query can bring thousands of them.
      const pdvs: Pdv[] = [];
      let o = 0;
      while (o < body.length) {
        need(body, o + 6, 'a PDV item');
        const h = pdvItemHeader(body, o, body.length - o);
        const data = body.subarray(o + 6, o + 6 + h.valueLength);
        pdvs.push({ contextId: h.contextId, command: h.command, last: h.last, data });
        o += 6 + h.valueLength;
      }
      if (pdvs.length === 0) throw new PduError('a P-DATA-TF PDU without PDV items');
      return { type: 'p-data', pdvs };
    }
    case PduType.ReleaseRq:
      return { type: 'release-rq' };
    case PduType.ReleaseRp:
      return { type: 'release-rp' };
    case PduType.Abort:
      need(body, 4, 'the A-ABORT PDU');
      return { type: 'abort', source: body[2]!, reason: body[3]! };
  }
  throw new PduError(`unknown PDU type 0x${type.toString(16)}`, AbortReason.UnrecognizedPdu);
}

function item(type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = type;
  h.writeUInt16BE(value.length, 2);
  return Buffer.concat([h, value]);
}

function pdu(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(6);
  h[0] = type;
  h.writeUInt32BE(body.length, 2);
  return Buffer.concat([h, body]);
}

/**
 * A user information sub-item that names a SOP class (PS3.7 D.3.3.4 SCP/SCU Role Selection, D.3.3.5 SOP Class
 * Extended Negotiation): the UID's length (2 bytes), the UID, then what the sub-item says of the class.
 */
function sopClassItem(type: number, sopClassUid: string, tail: Buffer): Buffer {
  const uid = Buffer.from(sopClassUid, 'latin1');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(uid.length);
  return item(type, Buffer.concat([length, uid, tail]));
}

const ae16 = (s: string) => Buffer.from(s.padEnd(16, ' ').slice(0, 16), 'latin1');

function userInfo(
  maxPduLength: number,
  roles: RoleSelection[],
  identityResponse?: Buffer,
  extended: ExtendedNegotiation[] = [],
): Buffer {
  const max = Buffer.alloc(4);
  max.writeUInt32BE(maxPduLength);
  const subs = [
    item(0x51, max),
    item(0x52, Buffer.from(IMPLEMENTATION_CLASS_UID, 'latin1')),
    ...roles.map((r) => sopClassItem(0x54, r.sopClassUid, Buffer.from([r.scu ? 1 : 0, r.scp ? 1 : 0]))),
    item(0x55, Buffer.from(IMPLEMENTATION_VERSION, 'latin1')),
    ...extended.map((e) => sopClassItem(0x56, e.sopClassUid, e.info)),
  ];
  if (identityResponse) {
    // PS3.7 D.3.3.7.2: the server response's length, then the response (empty for user name and passcode).
    const v = Buffer.alloc(2 + identityResponse.length);
    v.writeUInt16BE(identityResponse.length, 0);
    identityResponse.copy(v, 2);
    subs.push(item(0x59, v));
  }
  return item(0x50, Buffer.concat(subs));
}

function associateHeader(called: string, calling: string): Buffer {
  const h = Buffer.alloc(68);
  h.writeUInt16BE(1, 0);
  ae16(called).copy(h, 4);
  ae16(calling).copy(h, 20);
  return h;
}

export function encodeAssociateAc(
  rq: AssociateRq,
  contexts: AcceptedContext[],
  maxPduLength: number,
  roles: RoleSelection[],
  /** The User Identity server response, when the requestor asked for a positive response and was identified. */
  identityResponse?: Buffer,
  /** The SOP Class Extended Negotiation answers (PS3.7 D.3.3.5.2); a class left out negotiated nothing. */
  extended: ExtendedNegotiation[] = [],
): Buffer {
  const parts = [
    associateHeader(rq.calledAe, rq.callingAe),
    item(0x10, Buffer.from(APPLICATION_CONTEXT, 'latin1')),
  ];
  for (const c of contexts) {
    const head = Buffer.from([c.id, 0, c.result, 0]);
    parts.push(item(0x21, Buffer.concat([head, item(0x40, Buffer.from(c.transferSyntax, 'latin1'))])));
  }
  parts.push(userInfo(maxPduLength, roles, identityResponse, extended));
  return pdu(PduType.AssociateAc, Buffer.concat(parts));
}

export function encodeAssociateRq(
  calledAe: string,
  callingAe: string,
  contexts: ProposedContext[],
  maxPduLength: number,
  roles: RoleSelection[] = [],
  extended: ExtendedNegotiation[] = [],
): Buffer {
  const parts = [
    associateHeader(calledAe, callingAe),
    item(0x10, Buffer.from(APPLICATION_CONTEXT, 'latin1')),
  ];
  for (const c of contexts) {
    const subs = [
      item(0x30, Buffer.from(c.abstractSyntax, 'latin1')),
      ...c.transferSyntaxes.map((t) => item(0x40, Buffer.from(t, 'latin1'))),
    ];
    parts.push(item(0x20, Buffer.concat([Buffer.from([c.id, 0, 0, 0]), ...subs])));
  }
  parts.push(userInfo(maxPduLength, roles, undefined, extended));
  return pdu(PduType.AssociateRq, Buffer.concat(parts));
}

export const encodeAssociateRj = (result: number, source: number, reason: number) =>
  pdu(PduType.AssociateRj, Buffer.from([0, result, source, reason]));

export const encodeReleaseRq = () => pdu(PduType.ReleaseRq, Buffer.alloc(4));
export const encodeReleaseRp = () => pdu(PduType.ReleaseRp, Buffer.alloc(4));
/** Source 0 = service user, 2 = service provider (PS3.8 Table 9-26). */
export const encodeAbort = (source: number, reason: number) =>
  pdu(PduType.Abort, Buffer.from([0, 0, source, reason]));

/** The 6-byte PDU header plus 6-byte PDV header for one PDV of `length` bytes, to write before its data. */
export function pdvHeader(contextId: number, command: boolean, last: boolean, length: number): Buffer {
  const h = Buffer.alloc(12);
  h[0] = PduType.PData;
  h.writeUInt32BE(length + 6, 2);
  h.writeUInt32BE(length + 2, 6);
  h[10] = contextId;
  h[11] = (command ? 1 : 0) | (last ? 2 : 0);
  return h;
}
