/**
 * The requestor side: an outgoing association Custos opens to a registered AE, for C-MOVE sub-operations and
 * for Storage Commitment reports sent after the requester's association has closed.
 */
import { pipeline, Readable } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import { CustosError } from '../../domain/errors.js';
import { BCP195_CIPHERS } from '../server/tls-context.js';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { toExplicitVrLittleEndian, toImplicitVrLittleEndian } from '../../dicom/implicit-vr.js';
import { TransferSyntax } from '../../dicom/tags.js';
import type { InstanceRef } from '../../services/retrieve-service.js';
import { readStart } from '../../services/prefetch.js';
import { Cmd, type Command } from './command.js';
import { DimseConnection, usablePeerMaxPdu } from './connection.js';
import {
  ContextResult,
  decodePdu,
  encodeAbort,
  encodeAssociateRq,
  encodeReleaseRp,
  encodeReleaseRq,
  PduError,
  PduFramer,
  type RoleSelection,
} from './pdu.js';

/** One instance to send, in the forms it can go out in. */
export interface OutgoingObject {
  /** Its data set as stored (the bytes after the file meta information). */
  stored: AsyncIterable<Buffer>;
  /**
   * Its data set decompressed to Explicit VR Little Endian, for an object stored compressed in a syntax Custos
   * decodes (RetrieveService.decompressed): resolves once the first frame is decoded.
   */
  decompressed?: () => Promise<AsyncIterable<Buffer>>;
  /**
   * Its data set in Explicit VR Little Endian, for an object stored in Explicit VR Big Endian (the one conversion
   * WADO-RS serves it by, RetrieveService.explicitLittleEndian).
   */
  littleEndian?: () => AsyncIterable<Buffer>;
}

export interface StoreTarget {
  /** Send one instance; resolves with the peer's C-STORE status. */
  store(
    ref: InstanceRef,
    data: OutgoingObject,
    moveOriginator?: { ae: string; messageId: number },
  ): Promise<number>;
  /** Whether `ref` would go decompressed (sendsDecompressed), so that it can be prepared ahead. */
  sendsDecompressed(ref: InstanceRef): boolean;
  release(): Promise<void>;
}

/**
 * DICOM TLS (PS3.15 Annex B) for an outgoing association: Custos presents its own certificate, and the peer's
 * certificate must be the one registered for its AE (SHA-256 of the DER, as for incoming associations); with a CA
 * configured the chain must verify against it too. The host name is not checked: the pin is stronger, and
 * modalities are commonly addressed by IP without a matching subjectAltName.
 */
export interface ScuTls {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer | undefined;
  /**
   * The CA's certificate revocation list(s) (dicom.tls.crl; only with `ca`): a peer whose certificate it revokes is
   * not called, as a client presenting it is refused.
   */
  crl?: Buffer | undefined;
  /** SHA-256 of the peer certificate's DER, lower-case hex without colons. */
  pinSha256: string;
  /** The time the pinned certificate must be valid at (its notBefore and notAfter), when the call is made. */
  now: Date;
}

export interface ScuOptions {
  host: string;
  port: number;
  calledAe: string;
  callingAe: string;
  contexts: { abstractSyntax: string; transferSyntaxes: string[] }[];
  roles?: RoleSelection[];
  timeoutMs: number;
  /** How long a C-STORE waits for its response once sent (DEFAULT_RESPONSE_TIMEOUT_MS if not given). */
  responseTimeoutMs?: number;
  /** Call the peer over TLS (its AE entry has a registered certificate). */
  tls?: ScuTls | undefined;
  /** Requests the peer sends us on this association (e.g. an N-EVENT-REPORT of storage commitment). */
  onRequest?: (contextId: number, cmd: Command, data: Buffer | undefined) => void;
}

export interface ScuAssociation extends StoreTarget {
  /** Accepted context id and transfer syntax for an abstract syntax (and transfer syntax, if given). */
  context(
    abstractSyntax: string,
    transferSyntax?: string,
  ): { id: number; transferSyntax: string } | undefined;
  request(contextId: number, cmd: Command, data?: Buffer): Promise<{ cmd: Command; data?: Buffer }>;
  conn: DimseConnection;
}

const MAX_PDU = 1024 * 1024;

const failure = (message: string) => Object.assign(new Error(message), { code: 'dimse.scu-failed' });

/** Whether sendable() sends `ref` decompressed: stored compressed, and only an uncompressed form was accepted. */
export function sendsDecompressed(
  ref: InstanceRef,
  accepted: (transferSyntax: string) => number | undefined,
): boolean {
  const ts = ref.transferSyntaxUid;
  return (
    ts !== TransferSyntax.ExplicitVRLittleEndian &&
    ts !== TransferSyntax.ImplicitVRLittleEndian &&
    ts !== TransferSyntax.DeflatedExplicitVRLittleEndian &&
    ts !== TransferSyntax.ExplicitVRBigEndian &&
    accepted(ts) === undefined &&
    (accepted(TransferSyntax.ExplicitVRLittleEndian) !== undefined ||
      accepted(TransferSyntax.ImplicitVRLittleEndian) !== undefined)
  );
}

/**
 * How an instance goes out on the contexts accepted for it (`accepted(transferSyntax)` is a context id or
 * undefined): in its stored transfer syntax when that was accepted; otherwise an Explicit VR Little Endian one
 * converted to Implicit VR Little Endian and an Implicit VR one to Explicit VR (the same values, other element
 * headers); a big endian one in Explicit VR Little Endian (its byte order turned, its pixel words swapped), or
 * further to Implicit VR; a compressed one Custos decodes, decompressed to Explicit VR Little Endian, or to
 * Implicit VR Little Endian when only that was accepted. Undefined when none of these was accepted.
 */
export function sendable(
  ref: InstanceRef,
  data: OutgoingObject,
  accepted: (transferSyntax: string) => number | undefined,
): { contextId: number; data: AsyncIterable<Buffer> | Promise<AsyncIterable<Buffer>> } | undefined {
  const stored = accepted(ref.transferSyntaxUid);
  if (stored !== undefined) return { contextId: stored, data: data.stored };
  const explicit = accepted(TransferSyntax.ExplicitVRLittleEndian);
  const implicit = accepted(TransferSyntax.ImplicitVRLittleEndian);
  if (ref.transferSyntaxUid === TransferSyntax.ExplicitVRLittleEndian)
    return implicit === undefined
      ? undefined
      : { contextId: implicit, data: toImplicitVrLittleEndian(data.stored) };
  if (ref.transferSyntaxUid === TransferSyntax.ImplicitVRLittleEndian)
    return explicit === undefined
      ? undefined
      : { contextId: explicit, data: toExplicitVrLittleEndian(data.stored) };
  // Deflated Explicit VR Little Endian is Explicit VR Little Endian deflated (PS3.5 A.5): inflated, it goes as
  // that, or converted to Implicit VR. Until 5 Dec 2026 such an object reached no peer that did not take deflate
  // (0xA702), and no C-GET requestor at all.
  if (ref.transferSyntaxUid === TransferSyntax.DeflatedExplicitVRLittleEndian) {
    if (explicit !== undefined) return { contextId: explicit, data: inflated(data.stored) };
    if (implicit !== undefined)
      return { contextId: implicit, data: toImplicitVrLittleEndian(inflated(data.stored)) };
    return undefined;
  }
  // Explicit VR Big Endian (retired, PS3.5 A.3, still sent by old modalities): until 6 Dec 2026 such an object
  // reached no C-MOVE destination or C-GET requestor that took only little endian (0xA702), though WADO-RS
  // converted it.
  if (ref.transferSyntaxUid === TransferSyntax.ExplicitVRBigEndian) {
    if (!data.littleEndian) return undefined;
    if (explicit !== undefined) return { contextId: explicit, data: data.littleEndian() };
    if (implicit !== undefined)
      return { contextId: implicit, data: toImplicitVrLittleEndian(data.littleEndian()) };
    return undefined;
  }
  if (!data.decompressed) return undefined;
  if (explicit !== undefined) return { contextId: explicit, data: data.decompressed() };
  if (implicit !== undefined)
    return { contextId: implicit, data: data.decompressed().then((d) => toImplicitVrLittleEndian(d)) };
  return undefined;
}

/**
 * Why an instance cannot go over an association (a sub-operation failing with 0xA702): no accepted presentation
 * context carries its SOP class in its stored transfer syntax or a form Custos converts it to. The reason reaches
 * the C-MOVE or C-GET caller's Error Comment and the ledger.
 */
export function notSendable(ref: InstanceRef, peer: string): CustosError {
  return new CustosError({
    code: 'dimse.not-sendable',
    // An Error Comment holds 64 characters: the SOP class within them.
    message: `no context ${peer} accepted takes ${ref.sopClassUid} in ${ref.transferSyntaxUid} or a syntax Custos converts it to`,
    dicomStatus: 0xa702,
  });
}

/** A deflated data set's bytes inflated (raw deflate, PS3.5 A.5), as they arrive. */
async function* inflated(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const out = pipeline(Readable.from(source), createInflateRaw(), () => undefined);
  for await (const chunk of out) yield chunk as Buffer;
}

/** How long a sent C-STORE waits for its response before the association is aborted. */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 60_000;

/**
 * One C-STORE sub-operation on an established connection (C-MOVE to a destination, C-GET back to the caller):
 * sends the instance and resolves with the peer's status.
 */
/** How much of an object is read and verified before its C-STORE-RQ goes (most single images are smaller). */
const VERIFIED_BEFORE_SEND = 8 * 1024 * 1024;

export async function cStore(
  conn: DimseConnection,
  contextId: number,
  ref: InstanceRef,
  data: AsyncIterable<Buffer> | Promise<AsyncIterable<Buffer>>,
  moveOriginator?: { ae: string; messageId: number },
  responseTimeoutMs = DEFAULT_RESPONSE_TIMEOUT_MS,
): Promise<number> {
  // A decompressed object is ready (its first frame decoded) before its command goes, and the first
  // VERIFIED_BEFORE_SEND bytes of any object are read (decrypted, each chunk's tag checked; all of an object no
  // longer than that, its SHA-256 too): damage found there fails this sub-operation alone and costs the
  // association nothing. Until 6 Dec 2026 the command went first, so a damaged object ended a C-GET's association
  // with an A-ABORT.
  const body = await readStart(await data, VERIFIED_BEFORE_SEND);
  const messageId = conn.messageId();
  const response = conn.awaitResponse(messageId);
  const sent = conn.send(
    contextId,
    {
      affectedSopClassUid: ref.sopClassUid,
      commandField: Cmd.CStoreRq,
      messageId,
      priority: 0,
      commandDataSetType: 0x0000,
      affectedSopInstanceUid: ref.sopInstanceUid,
      ...(moveOriginator
        ? { moveOriginatorAe: moveOriginator.ae, moveOriginatorMessageId: moveOriginator.messageId }
        : {}),
    },
    body,
  );
  try {
    await sent;
  } catch (err) {
    // The data set failed part way (a frame that does not decode, a stored object failing its check): the
    // message cannot be finished or taken back, so the association ends with an A-ABORT (PS3.8 §7.3) rather than
    // carrying on with a peer waiting for the rest of it.
    const socket = conn.socket;
    conn.failPending(err as Error);
    if (!socket.destroyed)
      await new Promise<void>((resolve) => socket.write(encodeAbort(0, 0), () => resolve()));
    socket.destroy();
    throw err;
  }
  // A peer that takes the object and never answers would hold the C-MOVE or C-GET (and its C-CANCEL) for ever:
  // after the timeout the association is aborted, and this and every later sub-operation on it fail (0xA702).
  // It rejects with `dimse.no-response`, which the caller takes as the end of its sub-operations: calling the
  // peer again would find it as busy.
  let timer: NodeJS.Timeout | undefined;
  let gaveUp: Error | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const socket = conn.socket;
      // The A-ABORT goes, and the socket is closed: nothing more is to be sent or waited for on it.
      if (!socket.destroyed) socket.end(encodeAbort(0, 0), () => socket.destroy());
      const err = Object.assign(new Error(`no C-STORE response within ${responseTimeoutMs} ms`), {
        code: 'dimse.no-response',
      });
      gaveUp = err;
      conn.failPending(err);
      reject(err);
    }, responseTimeoutMs);
  });
  try {
    const answer = await Promise.race([response, timedOut]);
    // The association ended before the peer answered (failPending): that is why this one failed, not a status of
    // the peer's (until 6 Dec 2026 reported as the peer answering 0xA702).
    if (answer.cmd.commandField === 0xffff)
      throw gaveUp ?? failure(conn.endedBy ?? 'the association ended before the C-STORE response');
    return answer.cmd.status ?? 0xa702;
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a sub-operation failed because the peer stopped answering (cStore's timeout). */
export const peerStoppedAnswering = (err: unknown) =>
  (err as { code?: string })?.code === 'dimse.no-response';

/**
 * The peer's certificate must be the registered one and valid now. Without a CA the pin alone authenticates the
 * peer and OpenSSL's own verdict (which includes the validity period) is not enforced: until 6 Dec 2026 a
 * destination presenting its registered certificate after it had expired, or before it became valid, was sent to.
 */
function pinMismatch(cert: PeerCertificate, tls: ScuTls): Error | undefined {
  if (!cert?.raw) return failure('no TLS certificate presented');
  const got = createHash('sha256').update(cert.raw).digest('hex');
  if (got !== tls.pinSha256) return failure(`TLS certificate is not the one registered (SHA-256 ${got})`);
  const notBefore = new Date(cert.valid_from);
  const notAfter = new Date(cert.valid_to);
  const period = `valid from ${notBefore.toISOString()} to ${notAfter.toISOString()}`;
  // The reason first: it reaches the C-MOVE requestor as a 64-character Error Comment.
  if (tls.now > notAfter)
    return failure(`TLS certificate (the registered one) has expired: ${period}, not now`);
  if (tls.now < notBefore)
    return failure(`TLS certificate (the registered one) is not yet valid: ${period}, not now`);
  return undefined;
}

export async function openScuAssociation(opts: ScuOptions): Promise<ScuAssociation> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const tls = opts.tls;
    const s = tls
      ? tlsConnect({
          host: opts.host,
          port: opts.port,
          cert: tls.cert,
          key: tls.key,
          minVersion: 'TLSv1.2',
          ciphers: BCP195_CIPHERS,
          ...(tls.ca ? { ca: tls.ca } : {}),
          // Until 6 Dec 2026 the CRL was applied to incoming client certificates only: a destination whose
          // registered certificate had been revoked was still sent to.
          ...(tls.ca && tls.crl ? { crl: tls.crl } : {}),
          // Without a CA the pin alone authenticates the peer (checked on secureConnect).
          rejectUnauthorized: !!tls.ca,
          checkServerIdentity: (_host: string, cert: PeerCertificate) => pinMismatch(cert, tls),
        })
      : connect({ host: opts.host, port: opts.port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(failure(`no connection to ${opts.host}:${opts.port} within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    s.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      const wrong = tls && pinMismatch((s as ReturnType<typeof tlsConnect>).getPeerCertificate(), tls);
      if (wrong) {
        s.destroy();
        reject(wrong);
        return;
      }
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      const code = (err as { code?: string }).code;
      // The reason first: it reaches the C-MOVE requestor as a 64-character Error Comment.
      if (code === 'CERT_REVOKED')
        reject(
          failure(
            `TLS certificate is revoked (dicom.tls.crl): ${opts.calledAe} at ${opts.host}:${opts.port} is not called`,
          ),
        );
      else
        reject(
          code === 'dimse.scu-failed'
            ? err
            : failure(`${opts.calledAe} at ${opts.host}:${opts.port}: ${socketReason(err)}`),
        );
    });
  });
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  const proposed = opts.contexts.map((c, i) => ({ id: i * 2 + 1, ...c }));
  const accepted = new Map<number, { abstractSyntax: string; transferSyntax: string }>();
  const framer = new PduFramer(MAX_PDU);
  let conn: DimseConnection | undefined;
  let releaseDone: (() => void) | undefined;
  /** Custos sent its A-RELEASE-RQ (Sta7); 'collided' once the peer's crossed it and was answered (Sta11). */
  let releasing: 'requested' | 'collided' | undefined;

  const established = new Promise<void>((resolve, reject) => {
    // Named with its address, as a refused or unreachable one is (until 6 Dec 2026 the title alone).
    const timer = setTimeout(
      () =>
        reject(
          failure(
            `${opts.calledAe} at ${opts.host}:${opts.port}: no association answer in ${opts.timeoutMs} ms`,
          ),
        ),
      opts.timeoutMs,
    );
    void (async () => {
      try {
        for await (const chunk of socket as AsyncIterable<Buffer>) {
          framer.push(chunk);
          for (let next = framer.next(); next; next = framer.next()) {
            const pdu = decodePdu(next.type, next.body);
            if (pdu.type === 'associate-ac') {
              clearTimeout(timer);
              // Nothing could be sent within such a maximum (connection.ts): refused, not sent larger PDUs.
              if (!usablePeerMaxPdu(pdu.user.maxPduLength)) {
                socket.write(encodeAbort(0, 0));
                reject(
                  failure(
                    `${opts.calledAe} accepted with a maximum PDU length of ${pdu.user.maxPduLength}, which leaves no room for data`,
                  ),
                );
                socket.destroy();
                return;
              }
              for (const c of pdu.contexts) {
                const p = proposed.find((x) => x.id === c.id);
                if (p && c.result === ContextResult.Acceptance)
                  accepted.set(c.id, { abstractSyntax: p.abstractSyntax, transferSyntax: c.transferSyntax });
              }
              conn = new DimseConnection(
                socket,
                {
                  command: (ctxId, cmd) => {
                    const handle = opts.onRequest;
                    if (cmd.commandDataSetType === 0x0101) {
                      handle?.(ctxId, cmd, undefined);
                      return undefined;
                    }
                    return {
                      kind: 'buffer',
                      limit: 4 * 1024 * 1024,
                      done: (data) => handle?.(ctxId, cmd, data),
                    };
                  },
                },
                pdu.user.maxPduLength,
                opts.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
              );
              resolve();
            } else if (pdu.type === 'associate-rj') {
              clearTimeout(timer);
              reject(
                failure(
                  `${opts.calledAe} rejected the association (result ${pdu.result}, reason ${pdu.reason})`,
                ),
              );
              socket.destroy();
              return;
            } else if (pdu.type === 'p-data' && conn) {
              const room = conn.receive(pdu.pdvs, (id) => accepted.has(id));
              if (room) await room;
            } else if (pdu.type === 'release-rp') {
              releaseDone?.();
              socket.end();
              return;
            } else if (pdu.type === 'abort') {
              conn?.failPending(failure(`${opts.calledAe} aborted the association`));
              reject(failure(`${opts.calledAe} aborted the association`));
              socket.destroy();
              return;
            } else if (pdu.type === 'release-rq') {
              // Before the A-ASSOCIATE-AC it is out of place (PS3.8 §9.2, Sta5): aborted below.
              if (!conn) throw new PduError('an A-RELEASE-RQ before the association was accepted');
              if (releasing === 'collided') throw new PduError('a second A-RELEASE-RQ');
              if (releasing === 'requested') {
                // A release collision (PS3.8 §7.2, §9.2: AR-8, AR-9): the requestor answers the acceptor's
                // A-RELEASE-RQ at once (Sta9 to Sta11) and closes the connection only once the acceptor's
                // A-RELEASE-RP has come (AR-3, above), the acceptor sending that only after this one (Sta10, Sta12).
                // Until 7 Dec 2026 the connection was closed right after this A-RELEASE-RP, which the acceptor,
                // still to send its own, took for an A-P-ABORT (AA-4).
                releasing = 'collided';
                conn.failPending(failure(`${opts.calledAe} released the association`));
                await conn.writeRaw(encodeReleaseRp());
                continue;
              }
              // PS3.8 §9.2, AR-2 and AR-4: the peer released the association, which is answered with an
              // A-RELEASE-RP (until 6 Dec 2026 the connection was dropped, and the peer saw no answer); what was
              // still waiting for a response fails with that reason.
              conn.failPending(failure(`${opts.calledAe} released the association`));
              await new Promise<void>((resolve) => socket.write(encodeReleaseRp(), () => resolve()));
              socket.end();
              releaseDone?.();
              return;
            }
          }
        }
        conn?.failPending(failure(`${opts.calledAe} closed the connection`));
        reject(failure(`${opts.calledAe} closed the connection`));
      } catch (err) {
        if (err instanceof PduError) socket.write(encodeAbort(0, err.reason));
        // Named: the reason reaches a C-MOVE's Error Comment (`DEST: a response with an unknown Message ID (7)`).
        conn?.failPending(failure(`${opts.calledAe}: ${(err as Error).message}`));
        // Before the association is up, named with its address as a refused connection is: until 6 Dec 2026 a peer
        // that reset the connection here was `read ECONNRESET` alone. (Once it is up, the promise has settled.)
        reject(
          (err as { code?: string }).code === 'dimse.scu-failed'
            ? (err as Error)
            : failure(`${opts.calledAe} at ${opts.host}:${opts.port}: ${socketReason(err as Error)}`),
        );
        socket.destroy();
      } finally {
        conn?.failPending(failure('the association closed'));
        releaseDone?.();
      }
    })();
  });
  socket.write(encodeAssociateRq(opts.calledAe, opts.callingAe, proposed, MAX_PDU, opts.roles ?? []));
  try {
    await established;
  } catch (err) {
    socket.destroy();
    throw err;
  }
  const c = conn!;
  const context = (abstractSyntax: string, transferSyntax?: string) => {
    for (const [id, a] of accepted)
      if (a.abstractSyntax === abstractSyntax && (!transferSyntax || a.transferSyntax === transferSyntax))
        return { id, transferSyntax: a.transferSyntax };
    return undefined;
  };
  const request = async (contextId: number, cmd: Command, data?: Buffer) => {
    const response = c.awaitResponse(cmd.messageId!);
    await c.send(contextId, cmd, data);
    return response;
  };
  return {
    conn: c,
    context,
    request,
    sendsDecompressed: (ref) => sendsDecompressed(ref, (ts) => context(ref.sopClassUid, ts)?.id),
    async store(ref, data, moveOriginator) {
      const out = sendable(ref, data, (ts) => context(ref.sopClassUid, ts)?.id);
      if (!out) throw notSendable(ref, opts.calledAe);
      return cStore(c, out.contextId, ref, out.data, moveOriginator, opts.responseTimeoutMs);
    },
    async release() {
      if (socket.destroyed || socket.writableEnded) return;
      const done = new Promise<void>((r) => (releaseDone = r));
      releasing = 'requested';
      await c.writeRaw(encodeReleaseRq());
      const timer = setTimeout(() => socket.destroy(), opts.timeoutMs);
      await done;
      clearTimeout(timer);
      socket.destroy();
    },
  };
}

/**
 * Node's message for a failed socket call ends with the address (`connect ECONNREFUSED 10.0.0.7:104`), which the
 * message it goes into names already: the syscall and the code say the rest. Until 7 Dec 2026 the address came
 * twice, and the 64-character C-MOVE Error Comment cut the second one short (`…:11913: connect ECONNREFUSED
 * 127.0.0.1:1191`), naming a port nobody had called.
 */
function socketReason(err: Error): string {
  const { syscall, code } = err as NodeJS.ErrnoException;
  return syscall && code ? `${syscall} ${code}` : err.message;
}
