/**
 * The acceptor side of one association (PS3.8 §9.2 state machine, reduced to what an SCP needs): ARTIM until
 * the A-ASSOCIATE-RQ, AE admission against the registry, presentation context negotiation, then DIMSE messages
 * until release or abort. Malformed PDUs end in an A-ABORT; nothing here can take the process down.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { asciiText } from '../../domain/ascii-text.js';
import { asUserId } from '../../domain/ids.js';
import type { Principal } from '../../domain/principal.js';
import { DicomStatus } from '../../domain/errors.js';
import { isRetryLater } from '../../domain/retry-later.js';
import { TransferSyntax } from '../../dicom/tags.js';
import { Cmd, NO_DATASET, type Command } from './command.js';
import { DimseConnection, usablePeerMaxPdu, type DataSink } from './connection.js';
import {
  AbortReason,
  APPLICATION_CONTEXT,
  ContextResult,
  decodePdu,
  encodeAbort,
  encodeAssociateAc,
  encodeAssociateRj,
  encodeReleaseRp,
  PduError,
  PduFramer,
  PresentationLimitExceeded,
  ProtocolVersionNotSupported,
  RejectReason,
  type AcceptedContext,
  type AssociateRq,
  type ExtendedNegotiation,
  type RoleSelection,
} from './pdu.js';
import { isStorageSopClass, PLAIN_SYNTAXES, QUERY_RETRIEVE, Sop, STORAGE_SYNTAXES } from './sop-classes.js';
import type { DimseServices } from './dimse-services.js';
import type { AssociationLimits } from './association-limits.js';

export interface ScpOptions {
  aeTitle: string;
  maxPduLength: number;
  /** ARTIM (PS3.8 §9.1.5): time allowed for the A-ASSOCIATE-RQ and for the peer to close after release/reject. */
  artimMs: number;
  /** DIMSE idle timeout: an established association with no traffic and nothing in progress is aborted. */
  idleMs: number;
}

export interface NegotiatedContext {
  id: number;
  abstractSyntax: string;
  transferSyntax: string;
}

/**
 * Requests that carry a data set (PS3.7 Tables 9.1-1, 9.1-2, 9.1-3, 9.1-4, 10.1-4): one declared without is
 * answered with this status (C-STORE's and C-FIND's "cannot understand", a storage commitment's processing failure).
 */
const DATA_SET_REQUIRED = new Map<number, { name: string; status: number }>([
  [Cmd.CStoreRq, { name: 'C-STORE-RQ', status: 0xc000 }],
  [Cmd.CFindRq, { name: 'C-FIND-RQ', status: 0xc000 }],
  [Cmd.CMoveRq, { name: 'C-MOVE-RQ', status: 0xc000 }],
  [Cmd.CGetRq, { name: 'C-GET-RQ', status: 0xc000 }],
  [Cmd.NActionRq, { name: 'N-ACTION-RQ', status: 0x0110 }],
]);

/**
 * The most of a C-FIND, C-MOVE or C-GET identifier held in memory: one has a few keys, a UID list of some
 * thousands at most (docs/dimse.md).
 */
export const QUERY_DATA_SET_LIMIT = 1024 * 1024;

/**
 * The most of a storage commitment N-ACTION data set held in memory, whole, then parsed: 16 MiB is some 140,000
 * references with 64-character UIDs, more than the largest studies. It was 1 MiB (about 9,200 such references, a
 * large CT or tomosynthesis study) until 6 Dec 2026.
 */
export const COMMITMENT_DATA_SET_LIMIT = 16 * 1024 * 1024;

/**
 * How a request whose data set is over its limit is answered (the rest of it is read and dropped): PS3.7 Annex C
 * resource limitation for the N-ACTION, out of resources for the others (PS3.4 Tables C.4-1, C.4-2, C.4-3).
 * Until 6 Dec 2026 the association was aborted.
 */
const OVER_LIMIT = new Map<number, { name: string; limit: number; status: number }>([
  [Cmd.CFindRq, { name: 'C-FIND', limit: QUERY_DATA_SET_LIMIT, status: 0xa700 }],
  [Cmd.CMoveRq, { name: 'C-MOVE', limit: QUERY_DATA_SET_LIMIT, status: 0xa701 }],
  [Cmd.CGetRq, { name: 'C-GET', limit: QUERY_DATA_SET_LIMIT, status: 0xa701 }],
  [Cmd.NActionRq, { name: 'N-ACTION', limit: COMMITMENT_DATA_SET_LIMIT, status: 0x0213 }],
]);

/** The requests an SCP takes, by command field. */
const REQUEST_NAMES = new Map<number, string>([
  [Cmd.CEchoRq, 'C-ECHO-RQ'],
  [Cmd.CStoreRq, 'C-STORE-RQ'],
  [Cmd.CFindRq, 'C-FIND-RQ'],
  [Cmd.CMoveRq, 'C-MOVE-RQ'],
  [Cmd.CGetRq, 'C-GET-RQ'],
  [Cmd.NActionRq, 'N-ACTION-RQ'],
]);

const FIND_CLASSES = new Set<string>([Sop.PatientRootFind, Sop.StudyRootFind]);
const MOVE_CLASSES = new Set<string>([Sop.PatientRootMove, Sop.StudyRootMove]);

/** The request a presentation context's SOP class serves (PS3.4: one DIMSE service per SOP class here). */
function serviceOf(abstractSyntax: string): number | undefined {
  if (abstractSyntax === Sop.Verification) return Cmd.CEchoRq;
  if (abstractSyntax === Sop.StorageCommitmentPush) return Cmd.NActionRq;
  if (isStorageSopClass(abstractSyntax)) return Cmd.CStoreRq;
  if (FIND_CLASSES.has(abstractSyntax)) return Cmd.CFindRq;
  if (MOVE_CLASSES.has(abstractSyntax)) return Cmd.CMoveRq;
  if (QUERY_RETRIEVE.has(abstractSyntax)) return Cmd.CGetRq;
  return undefined;
}

export class ScpAssociation {
  private readonly framer: PduFramer;
  /** 'releasing': the A-RELEASE-RQ came while operations ran; their final responses still go (release()). */
  private state: 'awaiting-rq' | 'established' | 'releasing' | 'released' | 'closed' = 'awaiting-rq';
  /** Why the requestor is leaving or left (released, aborted, closed the connection), once it has. */
  private leftBy: string | undefined;
  /** What waits for the operations whose final response is still owed (`owed`) to end: release(). */
  private answeredWaiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  readonly contexts = new Map<number, NegotiatedContext>();
  /** SOP classes for which the peer accepted the SCP role (C-GET sub-operations go to it). */
  readonly peerScpRoles = new Set<string>();
  conn: DimseConnection | undefined;
  principal: Principal | undefined;
  callingAe = '';

  /**
   * The association's principal for one DIMSE operation: every record the operation makes names the service
   * (and, for a C-MOVE, where the objects go), so that a C-FIND is told from a QIDO-RS and a refused C-MOVE names
   * its destination (until 6 Dec 2026 such records said neither).
   */
  principalFor(service: string, extra: Readonly<Record<string, string>> = {}): Principal {
    return { ...this.principal!, channel: 'dimse', channelDetail: { service, ...extra } };
  }
  private busy = 0;
  /** Operations whose final response has not gone yet (work after it, such as a commitment report, is not). */
  private owed = 0;
  /** The archive is shutting down (stop()): the association ends once nothing is owed. */
  private stopping = false;
  /**
   * Message IDs of the C-FIND, C-MOVE and C-GET requests in progress, and of those among them a C-CANCEL named. A
   * Message ID names one operation while it is outstanding (PS3.7 §9.1.2.1.1: no two outstanding operations share
   * one), and an SCU may use it again once that one has ended (pynetdicom's send_c_find, send_c_move and send_c_get
   * use 1 every time): a C-CANCEL is for the operation in progress, and one naming none (come after the final
   * response) is ignored. Until 7 Dec 2026 a C-CANCEL was kept for the rest of the association, so each later
   * request with its Message ID was cancelled before its first answer.
   */
  private readonly cancellable = new Set<number>();
  private readonly cancelled = new Set<number>();
  /** Gives back this association's slot under `limits` (once the A-ASSOCIATE-RQ took one). */
  private releaseSlot: () => void = () => undefined;

  constructor(
    readonly socket: Socket,
    private readonly services: DimseServices,
    readonly opts: ScpOptions,
    private readonly onError: (err: unknown) => void,
    /** The listeners' limits on open associations (DimseServer): a slot is held from the request to the end. */
    private readonly limits?: AssociationLimits,
  ) {
    this.framer = new PduFramer(opts.maxPduLength);
    socket.setNoDelay(true);
    this.arm(opts.artimMs, 'no A-ASSOCIATE-RQ within the ARTIM timeout');
  }

  get open(): boolean {
    return (this.state === 'established' || this.state === 'releasing') && !this.socket.destroyed;
  }

  /**
   * Why the requestor is going or gone (`the requestor aborted the association`, `… released …`, `… closed the
   * connection`), or undefined while it is there: a C-MOVE or C-GET starts no sub-operation after that.
   */
  get leaving(): string | undefined {
    return this.leftBy;
  }

  /** The requestor sent an A-RELEASE-RQ (whether or not the A-RELEASE-RP has gone yet). */
  get releasedByRequestor(): boolean {
    return this.released;
  }
  private released = false;

  isCancelled(messageId: number): boolean {
    return this.cancelled.has(messageId);
  }

  /**
   * Track work in progress so the idle timer never aborts an association that is busy on our side; `owed`: it
   * ends with the operation's final response, which an A-RELEASE-RP waits for.
   */
  async track<T>(work: Promise<T>, owed = true): Promise<T> {
    this.busy++;
    if (owed) this.owed++;
    try {
      return await work;
    } finally {
      this.busy--;
      if (owed) this.owed--;
      if (this.busy === 0 && this.state === 'established') this.arm(this.opts.idleMs, 'DIMSE idle timeout');
      if (this.owed === 0) for (const wake of this.answeredWaiters.splice(0)) wake();
      this.endIfStopping();
    }
  }

  /**
   * The archive is shutting down (SIGTERM, SIGINT): the operation in progress finishes and its final response goes
   * (a C-STORE being received is read to its end, stored and answered; a C-MOVE or C-GET starts no further
   * sub-operation and answers with the rest failed), then the association ends with an A-ABORT, as only the
   * requestor may release (PS3.8 §7.2); one doing nothing ends at once. A release under way is let finish. The
   * requestor sees no half-answered request: what it sent and was answered is stored, and what was not answered
   * it sends again. Until 6 Dec 2026 every association was cut at once, a C-STORE in flight with it.
   */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.leftBy ??= 'the archive is shutting down';
    this.endIfStopping();
  }

  private endIfStopping(): void {
    if (!this.stopping || this.owed > 0 || this.conn?.midMessage) return;
    if (this.state === 'established' || this.state === 'awaiting-rq')
      void this.abort(AbortReason.NotSpecified, 'the archive is shutting down');
  }

  /** Work after an operation's final response (a storage commitment report): tracked, but not owed. */
  background(work: Promise<void>): void {
    void this.track(work, false).catch((err: unknown) => this.onError(err));
  }

  async run(): Promise<void> {
    try {
      // Errors are handled inside the loop: leaving a for-await destroys the socket before the A-ABORT is out.
      for await (const chunk of this.socket as AsyncIterable<Buffer>) {
        try {
          this.framer.push(chunk);
          for (let next = this.framer.next(true); next; next = this.framer.next(true)) {
            // A P-DATA-TF PDU comes in pieces of its PDV items, each handled as it arrives (pdu.ts).
            await this.handle(
              'body' in next ? decodePdu(next.type, next.body) : { type: 'p-data', pdvs: [next] },
            );
            if (this.state === 'closed') return;
          }
        } catch (err) {
          if (err instanceof PduError) await this.abort(err.reason);
          else if (!this.socket.destroyed) {
            this.onError(err);
            await this.abort(AbortReason.NotSpecified);
          }
          return;
        }
      }
    } catch {
      // socket errors (reset by peer): the finally below cleans up
    } finally {
      this.disarm();
      // What waited on the association learns how it ended: until 6 Dec 2026 a C-GET whose requestor released
      // and closed read 'the peer closed the association before the data set ended' whatever it was doing.
      const why = this.conn?.midMessage
        ? 'the peer closed the association before the data set ended'
        : this.state === 'releasing'
          ? 'the requestor released the association and closed the connection'
          : 'the requestor closed the connection';
      this.leftBy ??= why;
      this.state = 'closed';
      this.releaseSlot();
      this.conn?.failPending(new Error(why));
      this.socket.destroy();
    }
  }

  private arm(ms: number, why: string) {
    this.disarm();
    if (ms <= 0) return;
    this.timer = setTimeout(() => {
      // Busy on our side (a C-MOVE, a commit) is not idleness; a peer silent in the middle of a message is.
      if (this.busy > 0 && !this.conn?.midMessage) return this.arm(ms, why);
      void this.abort(AbortReason.NotSpecified, why);
    }, ms);
    this.timer.unref();
  }

  private disarm() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  async abort(reason: number, why?: string) {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.releaseSlot();
    this.leftBy ??= `the association was aborted${why ? ` (${why})` : ''}`;
    this.conn?.failPending(new Error('the association was aborted'));
    if (!this.socket.destroyed) {
      await new Promise<void>((resolve) => this.socket.write(encodeAbort(2, reason), () => resolve()));
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 500).unref();
    }
  }

  private async handle(pdu: ReturnType<typeof decodePdu>) {
    if (this.state === 'awaiting-rq') {
      if (pdu.type !== 'associate-rq')
        throw new PduError(`${pdu.type} before A-ASSOCIATE-RQ`, AbortReason.UnexpectedPdu);
      // ARTIM stops once the request is in (PS3.8 §9.2, AE-6); until 6 Dec 2026 it ran on through the registry and
      // ledger steps, and a request that came late in it was aborted on a busy server. Deciding on it is bounded
      // by the idle timeout instead.
      this.arm(this.opts.idleMs, 'the A-ASSOCIATE-RQ was not decided within the DIMSE idle timeout');
      try {
        await this.associate(pdu);
      } catch (err) {
        // The association's audit record could not be written (a full index volume, the index database out of
        // reach): nothing was answered yet, so it is refused as transient, and the modality retries later instead
        // of seeing it aborted.
        if (!isRetryLater(err) || this.answered()) throw err;
        const { result, source, reason } = PresentationLimitExceeded;
        await this.reject(reason, result, source);
      }
      return;
    }
    if (this.state === 'established') this.arm(this.opts.idleMs, 'DIMSE idle timeout');
    switch (pdu.type) {
      case 'p-data':
        // While releasing, a C-GET's sub-operations still read their C-STORE responses.
        if (this.state !== 'established' && this.state !== 'releasing')
          throw new PduError('P-DATA-TF outside an association', AbortReason.UnexpectedPdu);
        {
          const room = this.conn!.receive(pdu.pdvs, (id) => this.contexts.has(id));
          if (room) await room;
          // A message that ended here and started no operation (a C-CANCEL) leaves nothing owed.
          this.endIfStopping();
        }
        return;
      case 'release-rq':
        if (this.state !== 'established')
          throw new PduError('a second A-RELEASE-RQ', AbortReason.UnexpectedPdu);
        // PS3.8 §9.3.5: a message's fragments end with the last one; a release before it leaves the message half
        // sent, which cannot be answered. Aborted, and the C-STORE's half object is not stored: until 6 Dec 2026 the
        // release waited for the rest of it until the idle timeout.
        if (this.conn?.midMessage)
          throw new PduError('an A-RELEASE-RQ in the middle of a message', AbortReason.UnexpectedPdu);
        this.state = 'releasing';
        this.released = true;
        this.leftBy ??= 'the requestor released the association';
        // Not awaited: the PDUs that follow (a C-GET's C-STORE responses) are still to be read.
        void this.release().catch(this.onError);
        return;
      case 'abort':
        this.leftBy ??= 'the requestor aborted the association';
        this.state = 'closed';
        this.releaseSlot();
        this.conn?.failPending(new Error('the peer aborted the association'));
        this.socket.destroy();
        return;
      default:
        throw new PduError(`unexpected ${pdu.type} on an established association`, AbortReason.UnexpectedPdu);
    }
  }

  /**
   * PS3.8 §7.2, Sta8: an A-RELEASE-RQ that comes while operations run is answered once they have ended, their
   * final responses sent (a C-MOVE or C-GET starts no new sub-operation meanwhile: `leaving`). Until 6 Dec 2026
   * the A-RELEASE-RP went at once, and a C-MOVE went on sending its sub-operations to the destination for a
   * requestor that had gone.
   */
  private async release() {
    if (this.owed > 0) await new Promise<void>((resolve) => this.answeredWaiters.push(resolve));
    if (this.state !== 'releasing') return;
    this.state = 'released';
    // Given back before the A-RELEASE-RP goes: a requestor that associates again once it has it finds the slot free.
    this.releaseSlot();
    await this.conn!.writeRaw(encodeReleaseRp());
    this.arm(this.opts.artimMs, 'peer did not close after release');
    this.socket.end();
  }

  /** Whether the association request was already answered with a rejection. */
  private answered(): boolean {
    return this.state === 'closed';
  }

  private async reject(reason: number, result = 1, source = 1) {
    this.state = 'closed';
    this.releaseSlot();
    await new Promise<void>((resolve) =>
      this.socket.write(encodeAssociateRj(result, source, reason), () => resolve()),
    );
    this.socket.end();
    setTimeout(() => this.socket.destroy(), this.opts.artimMs).unref();
  }

  /**
   * User Identity negotiation (PS3.7 D.3.3.7): a token (type 5, "JSON Web Token", or the passcode of type 2 with
   * the user name it belongs to) authenticated like a DICOMweb bearer token makes its user the association's
   * principal in place of the calling AE's, so the decision point decides, and the ledger records, for that
   * person. A token that does not authenticate refuses the association (recorded).
   *
   * A bare user name (type 1) is taken as PS3.15 B.4 (Basic User Identity) lets an acceptor take it, unverified: it
   * is named in the association's record and answered with the positive response when one is asked for (empty,
   * PS3.7 D.3.3.7.2), but grants nothing: the AE's principal stays. Until 7 Dec 2026 it had no answer, and dcmtk's
   * requestors that ask for one (`--user NAME --pos-response`) gave up before associating. Kerberos and SAML (types
   * 3, 4) are not taken: no positive response (it would have to carry a ticket or a SAML response), the AE's
   * principal stays.
   */
  private async userIdentity(
    rq: AssociateRq,
    address: string,
  ): Promise<
    { type: number; response: Buffer | undefined; unverifiedUser?: string } | 'refused' | undefined
  > {
    const identity = rq.user.identity;
    if (identity?.type === 1) {
      const unverifiedUser = identity.primary.toString('utf8').trim().slice(0, 64);
      return {
        type: 1,
        response: identity.positiveResponseRequested ? Buffer.alloc(0) : undefined,
        unverifiedUser,
      };
    }
    if (!identity || (identity.type !== 2 && identity.type !== 5)) return undefined;
    const primary = identity.primary.toString('utf8').trim();
    // The claimed user goes into the refusal's record (a type 2 user name; a JWT is not kept whole).
    const claimed = identity.type === 2 ? { user: primary.slice(0, 64) } : {};
    const token = identity.type === 2 ? identity.secondary.toString('utf8').trim() : primary;
    let reason: string | undefined;
    let who: Principal | undefined;
    try {
      who = await this.services.identify(token, address);
      if (!who) reason = 'this server does not take user identities';
      // Account names are case-insensitive (docs/accounts.md): 'ADMIN' with admin's token is admin (until 6 Dec
      // 2026 refused).
      else if (identity.type === 2 && who.name.toLowerCase() !== primary.toLowerCase())
        reason = `the passcode is not a token of user '${primary}'`;
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
    }
    if (reason || !who) {
      await this.services.ledger.append({
        principal: this.principal!,
        action: 'dicom-associate',
        outcome: 'denied',
        policy: 'builtin:user-identity',
        detail: { reason: `user identity (type ${identity.type}): ${reason}`, ...claimed },
      });
      return 'refused';
    }
    this.principal = { ...who, source: address, channel: 'dimse' };
    // D.3.3.7.2: the server response is empty for a user name and passcode; a JWT is answered the same way.
    return {
      type: identity.type,
      response: identity.positiveResponseRequested ? Buffer.alloc(0) : undefined,
    };
  }

  /**
   * SOP Class Extended Negotiation (PS3.7 D.3.3.5) of the Patient and Study Root C-FIND classes: Custos matches a
   * query whatever unique keys of the levels above it holds (a QIDO-RS query), so relational-queries (PS3.4
   * C.5.1.1, the first byte) are taken when asked for, on an accepted context of the class. The other options
   * (combined date-time matching, fuzzy person name matching, timezone adjustment, empty and multiple value
   * matching, enhanced multi-frame conversion) are answered 0, not performed. A class whose negotiation asked for
   * nothing Custos does, and every other class (relational-retrieve of C-MOVE and C-GET is not supported: a retrieve
   * names the unique keys of each level), gets no sub-item in the A-ASSOCIATE-AC, which says the same (D.3.3.5).
   * Until 7 Dec 2026 every such sub-item went unanswered, though relational queries were answered all the same.
   * They still are without the negotiation (dcmtk's findscu and Orthanc never ask for it): PS3.4 C.4.1.2.1 asks the
   * requestor of a hierarchical query for the keys above its level and does not bid the SCP refuse one without them.
   */
  private relationalQueriesAnswer(rq: AssociateRq, accepted: AcceptedContext[]): ExtendedNegotiation[] {
    const answers: ExtendedNegotiation[] = [];
    for (const e of rq.user.extended ?? []) {
      if (e.sopClassUid !== Sop.PatientRootFind && e.sopClassUid !== Sop.StudyRootFind) continue;
      if (e.info[0] !== 1 || answers.some((a) => a.sopClassUid === e.sopClassUid)) continue;
      const onContext = rq.contexts.some(
        (c) =>
          c.abstractSyntax === e.sopClassUid &&
          accepted.some((a) => a.id === c.id && a.result === ContextResult.Acceptance),
      );
      if (!onContext) continue;
      const info = Buffer.alloc(e.info.length);
      info[0] = 1;
      answers.push({ sopClassUid: e.sopClassUid, info });
    }
    return answers;
  }

  /** An association refused before the registry admitted anyone: recorded under the calling AE title it gave. */
  private async denied(rq: AssociateRq, address: string, policy: string, reason: string) {
    await this.services.ledger.append({
      principal: {
        kind: 'ae',
        id: asUserId(`ae:${rq.callingAe}`),
        name: rq.callingAe,
        role: 'none',
        source: address,
        channel: 'dimse',
      },
      action: 'dicom-associate',
      outcome: 'denied',
      policy,
      detail: { reason },
    });
  }

  private async associate(rq: AssociateRq) {
    const address = this.socket.remoteAddress ?? 'unknown';
    this.callingAe = rq.callingAe;
    // Each refusal is recorded like the registry's (until 6 Dec 2026 these three left no trace in the ledger).
    // Until 5 Dec 2026 such a request was aborted (A-ABORT) where PS3.8 §9.3.2 asks for this rejection.
    if (!rq.protocolVersion1) {
      await this.denied(rq, address, 'builtin:dicom-ul', 'protocol version 1 is not offered (PS3.8 §9.3.2)');
      const { result, source, reason } = ProtocolVersionNotSupported;
      return this.reject(reason, result, source);
    }
    if (rq.applicationContext !== APPLICATION_CONTEXT) {
      await this.denied(
        rq,
        address,
        'builtin:dicom-ul',
        `application context '${rq.applicationContext}' is not the DICOM one (${APPLICATION_CONTEXT})`,
      );
      return this.reject(RejectReason.ApplicationContextNotSupported);
    }
    // PS3.8 §9.3.2: a request proposes one or more presentation contexts; one with none could do nothing, and was
    // accepted until 5 Dec 2026. Rejected permanently, no reason given (as dcmtk's acceptor does).
    if (rq.contexts.length === 0) {
      await this.denied(rq, address, 'builtin:dicom-ul', 'no presentation context proposed');
      return this.reject(RejectReason.NoReason);
    }
    // PS3.8 §9.3.3.3 (Table D.1-1): a PDV item is 6 bytes before its data, so a maximum PDU length of 1 to 6
    // leaves no room for any data; nothing could be answered (0 is no limit).
    if (!usablePeerMaxPdu(rq.user.maxPduLength)) {
      await this.denied(
        rq,
        address,
        'builtin:dicom-ul',
        `maximum PDU length ${rq.user.maxPduLength} leaves no room for data (0, or more than 6)`,
      );
      return this.reject(RejectReason.NoReason);
    }
    if (rq.calledAe !== this.opts.aeTitle) {
      await this.denied(
        rq,
        address,
        'builtin:ae-registry',
        `called AE title '${rq.calledAe}' is not '${this.opts.aeTitle}'`,
      );
      return this.reject(RejectReason.CalledAeNotRecognized);
    }
    // Before the registry and the ledger are asked anything: the limits are there to protect them too.
    const slot = this.limits?.take(rq.callingAe);
    if (slot && 'refused' in slot) {
      await this.denied(rq, address, 'builtin:dicom-limits', slot.refused);
      const { result, source, reason } = PresentationLimitExceeded;
      return this.reject(reason, result, source);
    }
    if (slot) this.releaseSlot = slot.release;
    const tlsSocket = this.socket as TLSSocket;
    const tls = tlsSocket.encrypted === true;
    const cert = tls ? tlsSocket.getPeerCertificate() : undefined;
    const certSha256 = cert?.fingerprint256 ? cert.fingerprint256.replace(/:/g, '').toLowerCase() : undefined;
    const admission = await this.services.registry.admit({
      callingAe: rq.callingAe,
      address,
      tls,
      ...(certSha256 ? { certSha256 } : {}),
      ...(cert?.valid_from && cert.valid_to
        ? { certValidity: { notBefore: new Date(cert.valid_from), notAfter: new Date(cert.valid_to) } }
        : {}),
    });
    if (!admission.admitted) return this.reject(RejectReason.CallingAeNotRecognized);
    this.principal = admission.principal;
    const identified = await this.userIdentity(rq, address);
    if (identified === 'refused') return this.reject(RejectReason.NoReason);

    const accepted: AcceptedContext[] = [];
    const proposedRoles = new Map(rq.user.roles.map((r) => [r.sopClassUid, r]));
    const roles: RoleSelection[] = [];
    for (const c of rq.contexts) {
      const choice = chooseSyntax(
        c.abstractSyntax,
        c.transferSyntaxes,
        proposedRoles.get(c.abstractSyntax)?.scp === true,
      );
      accepted.push({ id: c.id, result: choice.result, transferSyntax: choice.ts ?? c.transferSyntaxes[0]! });
      if (choice.result === ContextResult.Acceptance) {
        this.contexts.set(c.id, { id: c.id, abstractSyntax: c.abstractSyntax, transferSyntax: choice.ts! });
        const role = proposedRoles.get(c.abstractSyntax);
        if (
          role &&
          isStorageSopClass(c.abstractSyntax) &&
          !roles.some((r) => r.sopClassUid === c.abstractSyntax)
        ) {
          // PS3.7 D.3.3.4: accept the roles as proposed; an SCP role for the requestor enables C-GET to it.
          roles.push({ sopClassUid: role.sopClassUid, scu: role.scu, scp: role.scp });
          if (role.scp) this.peerScpRoles.add(role.sopClassUid);
        }
      }
    }
    const extended = this.relationalQueriesAnswer(rq, accepted);
    this.conn = new DimseConnection(
      this.socket,
      { command: (ctx, cmd) => this.command(ctx, cmd) },
      rq.user.maxPduLength,
      // A peer that reads none of our answers (C-FIND matches, C-GET's C-STOREs) for as long as an idle one.
      this.opts.idleMs,
    );
    this.state = 'established';
    await this.services.ledger.append({
      principal: this.principal,
      action: 'dicom-associate',
      outcome: 'success',
      policy: 'builtin:ae-registry',
      detail: {
        tls,
        accepted: accepted.filter((a) => a.result === 0).length,
        proposed: rq.contexts.length,
        ...(identified?.unverifiedUser !== undefined
          ? { userIdentity: 1, unverifiedUser: identified.unverifiedUser }
          : identified
            ? { ae: rq.callingAe, userIdentity: identified.type }
            : {}),
      },
    });
    await this.conn.writeRaw(
      encodeAssociateAc(rq, accepted, this.opts.maxPduLength, roles, identified?.response, extended),
    );
    this.arm(this.opts.idleMs, 'DIMSE idle timeout');
  }

  private command(contextId: number, cmd: Command): DataSink | undefined {
    const ctx = this.contexts.get(contextId)!;
    if (cmd.commandField === Cmd.CCancelRq) {
      const id = cmd.messageIdBeingRespondedTo;
      if (id !== undefined && this.cancellable.has(id)) this.cancelled.add(id);
      return undefined;
    }
    // PS3.7 §9.3: Message ID is Type 1 in every request, and the Affected SOP Class UID in the C- ones. A request
    // without them cannot be answered or routed: dcmtk's DIMSE layer fails to parse such a command and its SCPs
    // abort the association; so does Custos (until 6 Dec 2026 such a C-STORE was stored).
    if (!(cmd.commandField & 0x8000)) {
      const name = REQUEST_NAMES.get(cmd.commandField) ?? 'request';
      if (cmd.messageId === undefined) throw new PduError(`a ${name} without a Message ID (0000,0110)`);
      if (cmd.commandField !== Cmd.NActionRq && !cmd.affectedSopClassUid)
        throw new PduError(`a ${name} without an Affected SOP Class UID (0000,0002)`);
    }
    const run = (work: () => Promise<void>) => {
      void this.track(work()).catch((err: unknown) => {
        if (this.open) this.onError(err);
      });
    };
    /** Answer with a failure once the request's data set (if it declares one) has been read and dropped. */
    const refuse = (status: number, comment: string): DataSink | undefined => {
      const answer = () =>
        run(() => this.respond(contextId, cmd, cmd.commandField | 0x8000, status, comment));
      if (cmd.commandDataSetType === NO_DATASET) {
        answer();
        return undefined;
      }
      return { kind: 'buffer', limit: QUERY_DATA_SET_LIMIT, done: answer, tooLarge: answer };
    };
    // A request must be the service of its presentation context's SOP class and name that class (PS3.7 §9.1.1:
    // the Affected SOP Class UID; PS3.8 §7.1.1.13: the context is negotiated for one abstract syntax). Until 6 Dec
    // 2026 a C-MOVE on a C-FIND context, a Patient Root request on a Study Root context or a C-ECHO on a storage
    // context was carried out. A C-STORE of another storage class keeps its 0xA900 (DimseServices.store).
    const service = serviceOf(ctx.abstractSyntax);
    if (REQUEST_NAMES.has(cmd.commandField) && cmd.commandField !== service)
      return refuse(
        DicomStatus.SopClassNotSupported,
        `a ${REQUEST_NAMES.get(cmd.commandField)!} on a context for ${ctx.abstractSyntax}`,
      );
    if (
      cmd.commandField !== Cmd.CStoreRq &&
      cmd.commandField !== Cmd.NActionRq &&
      REQUEST_NAMES.has(cmd.commandField) &&
      cmd.affectedSopClassUid !== ctx.abstractSyntax
    )
      return refuse(
        DicomStatus.SopClassNotSupported,
        `SOP class ${cmd.affectedSopClassUid ?? ''} is not the context's`,
      );
    // PS3.7 §9.3.5.1: a C-ECHO-RQ has no data set. One that declares one was answered success until 6 Dec 2026,
    // and the association then aborted when its data set came.
    if (cmd.commandField === Cmd.CEchoRq && cmd.commandDataSetType !== NO_DATASET)
      return refuse(0x0212, 'a C-ECHO-RQ has no data set (Command Data Set Type must be 0101)');
    const needsData = DATA_SET_REQUIRED.get(cmd.commandField);
    if (needsData && cmd.commandDataSetType === NO_DATASET) {
      // Until 5 Dec 2026 such a request waited for a data set that was never coming, and was never answered.
      run(() =>
        this.respond(
          contextId,
          cmd,
          cmd.commandField | 0x8000,
          needsData.status,
          `the ${needsData.name} has no data set (Command Data Set Type 0101), which it must carry`,
        ),
      );
      return undefined;
    }
    switch (cmd.commandField) {
      case Cmd.CEchoRq:
        run(() => this.respond(contextId, cmd, Cmd.CEchoRsp, 0));
        return undefined;
      case Cmd.CStoreRq: {
        const sink = this.services.store(this, ctx, cmd);
        return sink;
      }
      case Cmd.CFindRq:
      case Cmd.CMoveRq:
      case Cmd.CGetRq:
      case Cmd.NActionRq: {
        const { name, limit, status } = OVER_LIMIT.get(cmd.commandField)!;
        const id = cmd.messageId!;
        // Cancellable from its command on (a C-CANCEL follows the request's data set) until its final response.
        const cancellable = cmd.commandField !== Cmd.NActionRq;
        if (cancellable) this.cancellable.add(id);
        const ended = () => {
          if (!cancellable) return;
          this.cancellable.delete(id);
          this.cancelled.delete(id);
        };
        return {
          kind: 'buffer',
          limit,
          done: (data) => run(() => this.services.dispatch(this, ctx, cmd, data).finally(ended)),
          tooLarge: (bytes) =>
            run(() =>
              this.respond(
                contextId,
                cmd,
                cmd.commandField | 0x8000,
                status,
                // An Error Comment holds 64 characters.
                `data set of ${bytes} bytes, over the ${name} limit of ${limit / 1024 / 1024} MiB`,
              ).finally(ended),
            ),
        };
      }
      default:
        run(() => this.respond(contextId, cmd, cmd.commandField | 0x8000, 0x0211, 'unrecognised operation'));
        return cmd.commandDataSetType !== NO_DATASET
          ? { kind: 'buffer', limit: 1024 * 1024, done: () => undefined }
          : undefined;
    }
  }

  /** A response without a data set. */
  respond(
    contextId: number,
    rq: Command,
    field: number,
    status: number,
    errorComment?: string,
    extra: Partial<Command> = {},
  ): Promise<void> {
    const ctx = this.contexts.get(contextId);
    const sopClass = rq.affectedSopClassUid ?? rq.requestedSopClassUid ?? ctx?.abstractSyntax;
    return this.conn!.send(contextId, {
      ...(sopClass ? { affectedSopClassUid: sopClass } : {}),
      commandField: field,
      messageIdBeingRespondedTo: rq.messageId ?? 0,
      commandDataSetType: NO_DATASET,
      status,
      // A command set is in the default repertoire; the comment often quotes a value from the data set.
      ...(errorComment ? { errorComment: asciiText(errorComment).slice(0, 64) } : {}),
      ...(rq.affectedSopInstanceUid ? { affectedSopInstanceUid: rq.affectedSopInstanceUid } : {}),
      ...extra,
    });
  }
}

/**
 * The transfer syntax of one presentation context: the first proposed that Custos takes. Where the requestor takes
 * the SCP role for a storage class (`peerStores`: C-GET sends it the objects on this context), the one syntax
 * must carry every object Custos may send, whatever it is stored in: Explicit, else Implicit VR Little Endian when
 * proposed (compressed objects are decompressed to it). Until 5 Dec 2026 getscu +xs (JPEG Lossless first) got
 * that syntax accepted, and every object not stored in it failed (0xA702).
 */
function chooseSyntax(
  abstractSyntax: string,
  proposed: string[],
  peerStores = false,
): { result: number; ts?: string } {
  let allowed: ReadonlySet<string>;
  if (isStorageSopClass(abstractSyntax)) allowed = STORAGE_SYNTAXES;
  else if (
    abstractSyntax === Sop.Verification ||
    abstractSyntax === Sop.StorageCommitmentPush ||
    QUERY_RETRIEVE.has(abstractSyntax)
  )
    allowed = new Set<string>(PLAIN_SYNTAXES);
  else return { result: ContextResult.AbstractSyntaxNotSupported };
  const sendable = peerStores && isStorageSopClass(abstractSyntax);
  const ts =
    (sendable
      ? [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian].find((t) =>
          proposed.includes(t),
        )
      : undefined) ?? proposed.find((t) => allowed.has(t));
  return ts
    ? { result: ContextResult.Acceptance, ts }
    : { result: ContextResult.TransferSyntaxesNotSupported };
}
