import { createHash, randomBytes } from 'node:crypto';
import { acknowledgments, buildAck, type AckCode, type AckRequest } from '../../domain/hl7/hl7-ack.js';
import { readFeedCommand } from '../../domain/hl7/feed-commands.js';
import { decodeHl7Bytes, encodeAck, type ReadAs } from '../../domain/hl7/hl7-charset.js';
import {
  Hl7Error,
  Hl7ErrorCode,
  parseHl7,
  peekHeader,
  versionProblem,
  type Hl7Problem,
} from '../../domain/hl7/hl7-message.js';
import { asUserId } from '../../domain/ids.js';
import type { Principal } from '../../domain/principal.js';
import type { Clock } from '../../ports/clock.js';
import type { FeedMessageInfo, PatientFeedService } from '../../services/patient-feed.js';

/** Who is on the other end of an MLLP connection. */
export interface Hl7Peer {
  address: string;
  tls: boolean;
  /** Subject CN of a verified client certificate. */
  certificateSubject?: string;
}

export interface Hl7HandlerOptions {
  feed: PatientFeedService;
  clock: Clock;
  /** Allowed senders as 'APP^FACILITY' (MSH-3^MSH-4); everything else is rejected (deny by default). */
  senders: readonly string[];
  self: { application: string; facility: string };
  onError?: (err: unknown) => void;
}

/** Codes that reject the message as such (MSH-9, -11, -12 unacceptable, v2.5.1 §2.9.2.1) rather than its content. */
const REJECT_CODES = new Set<number>([
  Hl7ErrorCode.UnsupportedMessageType,
  Hl7ErrorCode.UnsupportedEventCode,
  Hl7ErrorCode.UnsupportedProcessingId,
  Hl7ErrorCode.UnsupportedVersionId,
]);

/**
 * One HL7 message in, one ACK out: never throws, so a bad message costs only its own AE/AR. Each message's
 * fate (applied, refused, failed) is in the audit ledger.
 */
export class Hl7Handler {
  private readonly senders: Set<string>;
  constructor(private readonly opts: Hl7HandlerOptions) {
    this.senders = new Set(opts.senders);
  }

  /**
   * One MLLP frame: its bytes decoded by the character set MSH-18 declares, then handled; refused (AR) if they cannot
   * be. The acknowledgments to send back, in order: one in original mode; in enhanced mode those MSH-15 and MSH-16
   * ask for (none, the accept ack, the application ack, or both).
   */
  async frame(bytes: Buffer, peer: Hl7Peer): Promise<Buffer[]> {
    const decoded = decodeHl7Bytes(bytes);
    if (!('problem' in decoded)) return this.handle(decoded.text, peer, decoded.readAs);
    const header = peekHeader(decoded.text);
    const sender = `${header.sendingApplication}^${header.sendingFacility}`;
    const info: FeedMessageInfo = {
      sender,
      controlId: header.controlId,
      messageType: `${header.messageCode}^${header.triggerEvent}`,
    };
    await this.opts.feed.recordRefusal(
      this.principal(sender, peer),
      'hl7-message',
      'failure',
      info,
      decoded.problem.message,
      { hl7Error: decoded.problem.code, peer: peer.address },
    );
    return this.acks({ ...header }, 'AR', [decoded.problem], decoded.readAs);
  }

  /** A message's text, read as `readAs` says (its ACK is written the same way). */
  async handle(text: string, peer: Hl7Peer, readAs: ReadAs = UTF8): Promise<Buffer[]> {
    const ack = (request: AckRequest, code: 'AA' | 'AE' | 'AR', problems: Hl7Problem[]) =>
      this.acks(request, code, problems, readAs);
    const header = peekHeader(text);
    const request: AckRequest = { ...header };
    const sender = `${header.sendingApplication}^${header.sendingFacility}`;
    const info: FeedMessageInfo = {
      sender,
      controlId: header.controlId,
      messageType: `${header.messageCode}^${header.triggerEvent}`,
    };
    const principal = this.principal(sender, peer);
    try {
      let msg;
      try {
        msg = parseHl7(text);
      } catch (err) {
        if (!(err instanceof Hl7Error)) throw err;
        // A message without a readable MSH cannot be attributed to an allowed sender; it is rejected outright.
        const code =
          err.problem.location?.segment === 'MSH' || !text.trimStart().startsWith('MSH') ? 'AR' : 'AE';
        await this.opts.feed.recordRefusal(principal, 'hl7-message', 'failure', info, err.problem.message, {
          hl7Error: err.problem.code,
          peer: peer.address,
        });
        return ack(request, code, [err.problem]);
      }
      if (!this.senders.has(sender)) {
        const problem: Hl7Problem = {
          code: Hl7ErrorCode.ApplicationInternalError,
          message: `sending application ${sender} (MSH-3^MSH-4) is not allowed to send to this archive: add it to hl7.senders`,
          location: { segment: 'MSH', sequence: 1, field: 3 },
        };
        await this.opts.feed.recordRefusal(principal, 'hl7-message', 'denied', info, problem.message, {
          peer: peer.address,
        });
        return ack(request, 'AR', [problem]);
      }
      if (msg.processingId !== 'P') {
        const problem: Hl7Problem = {
          code: Hl7ErrorCode.UnsupportedProcessingId,
          message: `processing id '${msg.processingId}' is not accepted: the archive applies production (P) messages only`,
          location: { segment: 'MSH', sequence: 1, field: 11 },
        };
        await this.opts.feed.recordRefusal(principal, 'hl7-message', 'failure', info, problem.message);
        return ack(request, 'AR', [problem]);
      }
      const version = versionProblem(msg);
      if (version) {
        await this.opts.feed.recordRefusal(principal, 'hl7-message', 'failure', info, version.message, {
          hl7Error: version.code,
        });
        return ack(request, 'AR', [version]);
      }
      try {
        const command = readFeedCommand(msg);
        await this.opts.feed.apply(principal, command, { ...info, digest: contentDigest(text) });
        return ack(request, 'AA', []);
      } catch (err) {
        if (!(err instanceof Hl7Error)) throw err;
        await this.opts.feed.recordRefusal(principal, 'hl7-message', 'failure', info, err.problem.message, {
          hl7Error: err.problem.code,
          ...err.detail,
        });
        return ack(request, REJECT_CODES.has(err.problem.code) ? 'AR' : 'AE', [err.problem]);
      }
    } catch (err) {
      this.opts.onError?.(err);
      const problem: Hl7Problem = {
        code: Hl7ErrorCode.ApplicationInternalError,
        message: `the archive could not apply the message (${err instanceof Error ? err.message : String(err)}); it was not applied: send it again`,
      };
      await this.opts.feed
        .recordRefusal(principal, 'hl7-message', 'failure', info, problem.message)
        .catch((e: unknown) => this.opts.onError?.(e));
      return this.acks(request, 'AE', [problem], readAs, true);
    }
  }

  /** The reply to bytes that arrived outside any MLLP frame. */
  async garbage(bytes: Buffer, peer: Hl7Peer): Promise<Buffer> {
    const problem: Hl7Problem = {
      code: Hl7ErrorCode.SegmentSequenceError,
      message: `${bytes.length} byte(s) arrived outside an MLLP frame (a message starts with 0x0B and ends with 0x1C 0x0D) and were ignored`,
    };
    await this.opts.feed.recordRefusal(
      this.principal('unknown', peer),
      'hl7-message',
      'failure',
      emptyInfo,
      problem.message,
      {
        peer: peer.address,
      },
    );
    return this.ack(emptyRequest, 'AR', [problem]);
  }

  /**
   * The reply to a frame cut short by the start of another (MLLP start block 0x0B before its end block): the
   * sender gave it up. It is answered on its own (AR, addressed by what of its MSH arrived), and the next frame is
   * read as the message it is.
   */
  async abandoned(head: Buffer, size: number, peer: Hl7Peer): Promise<Buffer> {
    const problem: Hl7Problem = {
      code: Hl7ErrorCode.SegmentSequenceError,
      message: `a frame of ${size} byte(s) was not finished: a new start block (0x0B) came before its end block (0x1C 0x0D), so it was ignored and nothing of it was applied`,
    };
    const header = await this.recordFrameRefused(head, peer, problem.message, { hl7Error: problem.code });
    return this.ack({ ...header }, 'AR', [problem]);
  }

  /**
   * A frame the connection ended inside (the peer dropped, or was silent past hl7.idleTimeoutSeconds): nothing of
   * it was applied, and no ACK can tell the sender so; the ledger does.
   */
  async unfinished(head: Buffer, size: number, peer: Hl7Peer, withinMs?: number): Promise<void> {
    await this.recordFrameRefused(
      head,
      peer,
      withinMs === undefined
        ? `the connection closed ${size} byte(s) into a frame, before its end block (0x1C 0x0D): nothing of it was applied`
        : `the frame was not finished within ${withinMs / 1000} s of its start (hl7.idleTimeoutSeconds): the connection was closed ${size} byte(s) into it, before its end block (0x1C 0x0D), and nothing of it was applied`,
    );
  }

  /**
   * A run of bytes outside a frame (answered AR/100 as it began) still going on hl7.idleTimeoutSeconds after its
   * first byte: the connection was closed.
   */
  async slowOutside(size: number, withinMs: number, peer: Hl7Peer): Promise<void> {
    await this.recordOutside(
      `${size} byte(s) arrived outside an MLLP frame over more than ${withinMs / 1000} s (hl7.idleTimeoutSeconds) with no frame after them: the connection was closed`,
      peer,
    );
  }

  /** Records bytes outside a frame for which the connection was closed (slowOutside, overrun). */
  private async recordOutside(message: string, peer: Hl7Peer): Promise<void> {
    await this.opts.feed.recordRefusal(
      this.principal('unknown', peer),
      'hl7-message',
      'failure',
      emptyInfo,
      message,
      { hl7Error: Hl7ErrorCode.SegmentSequenceError, peer: peer.address },
    );
  }

  /** The reply to a frame longer than hl7.maxMessageBytes. */
  async oversize(head: Buffer, size: number, limit: number, peer: Hl7Peer): Promise<Buffer> {
    const problem: Hl7Problem = {
      code: Hl7ErrorCode.ApplicationInternalError,
      message: `the message is ${size} bytes, more than the ${limit} bytes this archive accepts (hl7.maxMessageBytes); it was not applied`,
    };
    const header = await this.recordFrameRefused(head, peer, problem.message);
    return this.ack({ ...header }, 'AR', [problem]);
  }

  /**
   * A peer that sent more bytes in a row than the decoder discards (MllpDecoder): a run outside a frame (`head`
   * undefined), answered AR/100 already as it began, or a frame twice as long as hl7.maxMessageBytes with no end block
   * yet, answered AR as an over-long frame is. Recorded; the connection is closed after the reply.
   */
  async overrun(head: Buffer | undefined, size: number, limit: number, peer: Hl7Peer): Promise<Buffer[]> {
    if (head === undefined) {
      await this.recordOutside(
        `${size} byte(s) arrived outside an MLLP frame in a row, more than the ${limit} bytes this archive reads there (hl7.maxMessageBytes): the connection was closed`,
        peer,
      );
      return [];
    }
    const problem: Hl7Problem = {
      code: Hl7ErrorCode.ApplicationInternalError,
      message: `the message is ${size} bytes so far with no end block (0x1C 0x0D), more than twice the ${limit} bytes this archive accepts (hl7.maxMessageBytes); it was not applied, and the connection was closed`,
    };
    const header = await this.recordFrameRefused(head, peer, problem.message, { hl7Error: problem.code });
    return [this.ack({ ...header }, 'AR', [problem])];
  }

  /**
   * Records a frame that was not applied as a whole message (cut short, abandoned, too large), addressed by what of
   * its MSH arrived; returns that header for the AR, where one can be sent.
   */
  private async recordFrameRefused(
    head: Buffer,
    peer: Hl7Peer,
    message: string,
    detail: Record<string, unknown> = {},
  ) {
    const header = peekHeader(head.toString('utf8'));
    const sender = `${header.sendingApplication}^${header.sendingFacility}`;
    await this.opts.feed.recordRefusal(
      this.principal(sender, peer),
      'hl7-message',
      'failure',
      { sender, controlId: header.controlId, messageType: `${header.messageCode}^${header.triggerEvent}` },
      message,
      { ...detail, peer: peer.address },
    );
    return header;
  }

  /**
   * The acknowledgments of a message's outcome (acknowledgments(): original or enhanced mode); `internalError` for
   * a message the archive could not commit (CE in enhanced mode).
   */
  private acks(
    request: AckRequest,
    code: 'AA' | 'AE' | 'AR',
    problems: Hl7Problem[],
    readAs: ReadAs,
    internalError = false,
  ): Buffer[] {
    return acknowledgments(request, code, internalError).map((a) =>
      this.ack(request, a.code, problems, readAs, a.enhanced),
    );
  }

  private ack(
    request: AckRequest,
    code: AckCode,
    problems: Hl7Problem[],
    readAs: ReadAs = UTF8,
    enhanced = false,
  ): Buffer {
    const controlId = randomBytes(8).toString('hex');
    const now = this.opts.clock.now();
    return encodeAck(
      (characterSet) =>
        buildAck({ request, code, problems, controlId, now, self: this.opts.self, characterSet, enhanced }),
      readAs,
    );
  }

  private principal(sender: string, peer: Hl7Peer): Principal {
    return {
      kind: 'system',
      id: asUserId(`hl7:${sender}`),
      name: `hl7:${sender}`,
      role: 'hl7-sender',
      source: peer.address,
      channel: 'hl7',
      via: peer.certificateSubject ? `tls-cert:${peer.certificateSubject}` : peer.tls ? 'mllp-tls' : 'mllp',
    };
  }
}

/**
 * What tells a resend from another message under the same control id: MSH-9 and the segments after MSH, as text.
 * The rest of MSH (its time, MSH-7, above all) a sender may write anew when it sends a message again.
 */
function contentDigest(text: string): string {
  const segments = text.split(/\r\n|\r|\n/).filter((s) => s.trim() !== '');
  const msh = segments.findIndex((s) => s.startsWith('MSH'));
  const messageType = peekHeader(text);
  return createHash('sha256')
    .update(`${messageType.messageCode}^${messageType.triggerEvent}\r`)
    .update(segments.slice(msh + 1).join('\r'))
    .digest('hex');
}

/** A text read as UTF-8 (no MSH-18): garbage, an oversized frame's head. */
const UTF8: ReadAs = { encoding: 'utf8', declared: '' };

const emptyInfo: FeedMessageInfo = { sender: '', controlId: '', messageType: '' };
const emptyRequest: AckRequest = {
  sendingApplication: '',
  sendingFacility: '',
  receivingApplication: '',
  receivingFacility: '',
  controlId: '',
  processingId: '',
  version: '2.5.1',
  triggerEvent: '',
};
