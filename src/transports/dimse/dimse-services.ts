/**
 * The DIMSE services Custos provides as SCP. Each one calls the same service as its DICOMweb twin (ingest,
 * query, retrieve), so authorisation, narrowing and auditing are the same whatever the transport.
 */
import { asciiText } from '../../domain/ascii-text.js';
import { CustosError, DicomStatus, isWarningStatus } from '../../domain/errors.js';
import type { Dataset } from '../../dicom/dataset.js';
import { TransferSyntax } from '../../dicom/tags.js';
import type { Principal } from '../../domain/principal.js';
import type { AuditLedger } from '../../ports/audit-ledger.js';
import type { Clock } from '../../ports/clock.js';
import type { AeEntry, AeRegistry } from '../../services/ae-registry.js';
import type { CommitmentTransactions } from '../../services/commitment-transactions.js';
import { heldInQuarantine, keptWarning, type IngestService } from '../../services/ingest-service.js';
import type { QueryService } from '../../services/query-service.js';
import type { InstanceRef, RetrieveService } from '../../services/retrieve-service.js';
import { Cmd, type Command } from './command.js';
import { DataQueue, type DataSink } from './connection.js';
import { encodeDataset, fileMetaHeader, parseDataset } from './dimse-dataset.js';
import { cFind } from './c-find.js';
import { resolveRetrieve } from './c-retrieve.js';
import { StorageCommitment } from './storage-commitment.js';
import { storageAssociations } from './storage-contexts.js';
import {
  cStore,
  DEFAULT_RESPONSE_TIMEOUT_MS,
  notSendable,
  openScuAssociation,
  peerStoppedAnswering,
  sendable,
  sendsDecompressed,
  type ScuOptions,
  type StoreTarget,
} from './scu-association.js';
import type { NegotiatedContext, ScpAssociation } from './scp-association.js';

export interface DimseServiceDeps {
  ingest: IngestService;
  query: QueryService;
  retrieve: RetrieveService;
  registry: AeRegistry;
  ledger: AuditLedger;
  /** The Transaction UIDs of storage commitment requests, so one used again for another request is told. */
  commitments: CommitmentTransactions;
  aeTitle: string;
  /** The time a destination's registered certificate must be valid at when it is called. */
  clock: Clock;
  /** Timeout for outgoing associations (C-MOVE destinations, commitment reports). */
  connectTimeoutMs: number;
  /** How long a C-STORE sub-operation waits for its response before the association is aborted (default 60 s). */
  responseTimeoutMs?: number;
  /**
   * When C-STORE answers success: 'committed' (default) once the object is durable and indexed; 'received' once
   * it is received, parsed and validated, with the commit finishing in the background (PS3.4 B.4.1: Storage
   * Commitment is the protocol's assurance of safekeeping, and Custos's commitment waits for such commits).
   */
  storeAck: 'committed' | 'received';
  /**
   * Custos's DICOM TLS certificate, key and CA, presented when it calls an AE registered with a certificate
   * (C-MOVE destinations, storage commitment reports), and the CA's CRL (dicom.tls.crl), which the called AE's
   * certificate is checked against as a client's is. Without it such AEs cannot be called.
   */
  tlsClient?: { cert: Buffer; key: Buffer; ca?: Buffer | undefined; crl?: Buffer | undefined } | undefined;
  /**
   * Authenticates the token an association's User Identity carries (PS3.7 D.3.3.7) as a DICOMweb bearer token
   * is (an API token or an OIDC JWT); without it, user identities are not taken.
   */
  authenticate?: (token: string, source: string) => Promise<Principal>;
}

const failureStatus = (err: unknown, fallback: number = DicomStatus.ProcessingFailure): number =>
  err instanceof CustosError && err.dicomStatus !== undefined ? err.dicomStatus : fallback;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class DimseServices {
  readonly commitment: StorageCommitment;
  /** Commits still running after an early ('received') C-STORE answer, by SOP Instance UID. */
  private readonly committing = new Map<string, Promise<unknown>>();

  /** deps.tlsClient, or what replaced it (useTlsClient) when the certificate was renewed. */
  private tlsClient: DimseServiceDeps['tlsClient'];

  /** Calls out with this certificate from now on (a renewed dicom.tls certificate; associations open keep theirs). */
  useTlsClient(t: NonNullable<DimseServiceDeps['tlsClient']>): void {
    this.tlsClient = t;
  }

  constructor(readonly deps: DimseServiceDeps) {
    this.tlsClient = deps.tlsClient;
    this.commitment = new StorageCommitment(this);
  }

  /**
   * Where and how to call a registered AE: over TLS, pinned to its registered certificate, when it has one (an
   * AE that authenticates to Custos with a certificate is called the same way); otherwise plain TCP.
   */
  callOptions(
    dest: AeEntry,
  ): Pick<
    ScuOptions,
    'host' | 'port' | 'calledAe' | 'callingAe' | 'timeoutMs' | 'responseTimeoutMs' | 'tls'
  > {
    const base = {
      host: dest.host,
      port: dest.port,
      calledAe: dest.title,
      callingAe: this.deps.aeTitle,
      timeoutMs: this.deps.connectTimeoutMs,
      responseTimeoutMs: this.deps.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
    };
    if (!dest.certSha256) return base;
    const t = this.tlsClient;
    if (!t)
      throw new CustosError({
        code: 'dimse.no-tls-client',
        // Reaches the caller as an LO Error Comment: the reason first.
        message: `no dicom.tls certificate to call '${dest.title}' (registered with a TLS certificate)`,
        dicomStatus: DicomStatus.ProcessingFailure,
      });
    return {
      ...base,
      tls: {
        cert: t.cert,
        key: t.key,
        ca: t.ca,
        crl: t.crl,
        pinSha256: dest.certSha256,
        now: this.deps.clock.now(),
      },
    };
  }

  /** The principal a User Identity's token stands for; undefined when this server does not take them. */
  async identify(token: string, source: string): Promise<Principal | undefined> {
    return this.deps.authenticate?.(token, source);
  }

  get registry(): AeRegistry {
    return this.deps.registry;
  }

  get ledger(): AuditLedger {
    return this.deps.ledger;
  }

  /**
   * C-STORE (PS3.4 B.2): the data set streams into the one ingest pipeline behind a Part 10 file meta header
   * built from the command. A peer that goes away before the last fragment makes the source fail, so the ingest
   * aborts its blob and nothing is stored.
   */
  store(a: ScpAssociation, ctx: NegotiatedContext, cmd: Command): DataSink {
    const queue = new DataQueue();
    const sopClass = cmd.affectedSopClassUid ?? ctx.abstractSyntax;
    const sopInstance = cmd.affectedSopInstanceUid ?? '';
    const header = fileMetaHeader(sopClass, sopInstance, ctx.transferSyntax, a.callingAe);
    async function* source(): AsyncGenerator<Buffer> {
      yield header;
      yield* queue;
    }
    const work = async () => {
      let status: number = DicomStatus.Success;
      let comment: string | undefined;
      try {
        if (sopClass !== ctx.abstractSyntax) {
          queue.close();
          status = DicomStatus.DataSetDoesNotMatchSopClass;
          comment = `SOP class ${sopClass} is not the presentation context's ${ctx.abstractSyntax}`;
        } else if (!sopInstance) {
          // Type 1 (PS3.7 Table 9.1-1); until 6 Dec 2026 the comment said the UID 'differs' from the data set's.
          queue.close();
          status = DicomStatus.DataSetDoesNotMatchSopClass;
          comment = 'the Affected SOP Instance UID (0000,1000) is missing';
        } else {
          let validated: ((v: { uid: string; status: StoredStatus }) => void) | undefined;
          const early = new Promise<{ uid: string; status: StoredStatus }>(
            (resolve) => (validated = resolve),
          );
          const ingest = this.deps.ingest.ingest(a.principalFor('c-store'), source(), {
            channel: 'c-store',
            // The AE's validation level (validation.byAe) holds when a user identity is the principal too.
            callingAeTitle: a.callingAe,
            ...(this.deps.storeAck === 'received'
              ? {
                  onValidated: (ids) =>
                    validated!({
                      uid: ids.sopInstanceUid,
                      status: storedStatus({
                        quarantined: ids.validation.outcome === 'quarantined',
                        defects: ids.validation.defects,
                        warnings: [],
                      }),
                    }),
                }
              : {}),
          });
          const done = await Promise.race([
            ingest.then((o) => ({
              uid: o.sopInstanceUid,
              status: storedStatus({
                quarantined: heldInQuarantine(o),
                defects: o.defects,
                warnings: o.warnings,
              }),
            })),
            early,
          ]);
          const first = done.uid;
          ({ status, comment } = done.status);
          const settled = ingest.then(
            () => undefined,
            () => undefined,
          );
          if (this.deps.storeAck === 'received') {
            this.committing.set(first, settled);
            void settled.finally(() => {
              if (this.committing.get(first) === settled) this.committing.delete(first);
            });
          }
        }
      } catch (err) {
        queue.close();
        if (!a.open) return;
        status = failureStatus(err);
        comment = message(err);
      }
      if (!a.open) return;
      await a.respond(ctx.id, cmd, Cmd.CStoreRsp, status, comment);
    };
    void a.track(work()).catch(() => undefined);
    return { kind: 'stream', queue };
  }

  /** Commands with a small data set: C-FIND, C-MOVE, C-GET, N-ACTION. */
  async dispatch(a: ScpAssociation, ctx: NegotiatedContext, cmd: Command, data: Buffer): Promise<void> {
    let ds: Dataset;
    const rspField = cmd.commandField | 0x8000;
    try {
      ds = await parseDataset(data, ctx.transferSyntax);
    } catch (err) {
      await a.respond(
        ctx.id,
        cmd,
        rspField,
        DicomStatus.CannotUnderstand,
        `the data set cannot be parsed: ${message(err)}`,
      );
      return;
    }
    try {
      switch (cmd.commandField) {
        case Cmd.CFindRq:
          return await cFind(this, a, ctx, cmd, ds);
        case Cmd.CMoveRq:
        case Cmd.CGetRq:
          return await this.retrieveOp(a, ctx, cmd, ds);
        case Cmd.NActionRq:
          return await this.commitment.request(a, ctx, cmd, ds);
      }
    } catch (err) {
      if (!a.open) return;
      await a.respond(ctx.id, cmd, rspField, failureStatus(err, 0xc000), message(err));
    }
  }

  /** C-MOVE (PS3.4 C.4.2) and C-GET (C.4.3): sub-operations are C-STOREs, to the destination or to the caller. */
  private async retrieveOp(
    a: ScpAssociation,
    ctx: NegotiatedContext,
    cmd: Command,
    ds: Dataset,
  ): Promise<void> {
    const move = cmd.commandField === Cmd.CMoveRq;
    const rspField = move ? Cmd.CMoveRsp : Cmd.CGetRsp;
    let target: StoreTarget | undefined;
    const destinationTitle = move ? (cmd.moveDestination ?? '').trim() : undefined;
    const principal = a.principalFor(
      move ? 'c-move' : 'c-get',
      destinationTitle !== undefined ? { destination: destinationTitle } : {},
    );
    if (move) {
      const dest = destinationTitle ? await this.deps.registry.find(destinationTitle) : undefined;
      if (!dest) {
        // Recorded: a caller asking for objects to go to an AE nobody registered is worth an auditor's look.
        await this.deps.ledger.append({
          principal,
          action: 'view-pixels',
          outcome: 'failure',
          policy: 'builtin:ae-registry',
          detail: { destination: destinationTitle, reason: 'not a registered AE (0xA801)' },
        });
        await a.respond(
          ctx.id,
          cmd,
          rspField,
          0xa801,
          `move destination '${destinationTitle}' is not a registered AE`,
        );
        return;
      }
    }
    const { refs: matched, refusedStudies } = await resolveRetrieve(
      this,
      principal,
      ctx.abstractSyntax,
      ds,
      move ? 'c-move' : 'c-get',
      {
        ...(destinationTitle ? { destination: destinationTitle } : {}),
      },
    );
    // Instances the fixity job (or an earlier read) found damaged fail as sub-operations of their own, before any
    // is sent: the rest of the study still goes. Until 6 Dec 2026 one such instance refused the whole C-MOVE or
    // C-GET (0xA701) and nothing was sent.
    const damaged = matched.filter((r) => r.damaged);
    // A C-MOVE's objects in the order of the associations to the destination they go on: more than one when they
    // need more presentation contexts than one may propose (storageAssociations).
    const associations = move
      ? storageAssociations(
          matched.filter((r) => !r.damaged),
          (r) => this.deps.retrieve.decompresses(r),
        )
      : undefined;
    const refs = associations ? associations.flatMap((x) => x.refs) : matched.filter((r) => !r.damaged);
    /** The association (of `associations`) each of `refs` goes on. */
    const associationOf = associations?.flatMap((x, n) => x.refs.map(() => n));
    // A listed study refused (not readable, or not in the archive: alike) is one failed sub-operation, listed by
    // its Study Instance UID: no SOP instance of it can be named without telling that it exists. Until 7 Dec 2026
    // it refused the whole request (0x0124) and the other studies were not sent either.
    const failedUids: string[] = [...refusedStudies, ...damaged.map((r) => r.sopInstanceUid)];
    /** Failed without an attempt (refused studies, damaged instances). */
    const unattempted = failedUids.length;
    let completed = 0;
    let warning = 0;
    let remaining = refs.length;
    /** Sub-operations attempted that failed (failedUids also holds the refused and damaged ones, never attempted). */
    const attemptedFailed = () => failedUids.length - unattempted;
    /** Why the sub-operations stopped short, for the final response's Error Comment. */
    let stopped: string | undefined;
    /** Not sent because the requestor cancelled (C-CANCEL): neither failed nor sent, but unsent all the same. */
    const cancelledUids: string[] = [];
    /** Why the first sub-operation that failed on its own failed (stopped says it better when both are set). */
    let firstFailure: string | undefined = damaged[0]?.damaged;
    /** The Error Comment when refused studies are the only failures: the same for an unknown UID. */
    const refusal = refusedStudies.length
      ? `not authorised or unknown: study ${refusedStudies.join(', ')}`
      : undefined;
    try {
      const dest = move && refs.length ? (await this.deps.registry.find(destinationTitle!))! : undefined;
      // Registered but unreachable (refused, timed out, rejected, not the pinned certificate): every
      // sub-operation fails (PS3.4 C.4.2.3.1), as dcmtk's own Q/R SCP answers it; 0xA801 would tell the caller
      // the title is unknown, which it is not. The error names the AE, its address and what went wrong.
      /** The association to the destination under way (of `associations`). */
      let on = 0;
      const call = async (d: AeEntry) =>
        openScuAssociation({ ...this.callOptions(d), contexts: associations![on]!.contexts });
      let outgoing = dest ? await call(dest) : undefined;
      target =
        outgoing ??
        (move ? undefined : getTarget(a, this.deps.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS));
      /** The next object, decompressed ahead (its first frame decoding while this one is sent). */
      let ahead: { ref: InstanceRef; data: Promise<AsyncIterable<Buffer>> } | undefined;
      for (const [i, ref] of refs.entries()) {
        if (a.isCancelled(cmd.messageId ?? -1)) {
          cancelledUids.push(...refs.slice(i).map((r) => r.sopInstanceUid));
          break;
        }
        // The requestor aborted, closed or released its association: nobody is there to be answered (or, when
        // released, only the final response is still owed), so no further object leaves; the one in flight was
        // finished. Until 6 Dec 2026 a C-MOVE went on sending every object to its destination.
        if (a.leaving) {
          stopped = `${a.leaving}: ${completed + warning} of ${matched.length} sent`;
          for (const r of refs.slice(i)) failedUids.push(r.sopInstanceUid);
          remaining = 0;
          break;
        }
        // The objects of this association have gone: it is released, and the next one proposes the contexts of
        // the objects still to go.
        if (dest && associationOf![i] !== on) {
          await outgoing?.release().catch(() => undefined);
          on = associationOf![i]!;
          target = outgoing = await call(dest);
        }
        // An object that failed part way (a later frame that does not decode) ended the association to the
        // destination with an A-ABORT (cStore): the rest go on a new one.
        else if (dest && outgoing?.conn.socket.destroyed) {
          // Why the association ended comes first: until 6 Dec 2026 a destination gone mid-transfer was reported
          // by the error of calling it again (`connect ECONNREFUSED`) alone.
          const ended = outgoing.conn.endedBy ?? `the association to ${destinationTitle} ended`;
          target = outgoing = await call(dest).catch((err: unknown) => {
            throw new Error(`${ended}; calling again: ${message(err)}`);
          });
        }
        const prepared = ahead?.ref === ref ? ahead.data : undefined;
        const next = refs[i + 1];
        ahead =
          next &&
          associationOf?.[i + 1] === associationOf?.[i] &&
          this.deps.retrieve.decompresses(next) &&
          target!.sendsDecompressed(next)
            ? { ref: next, data: this.decompressedDataSet(next) }
            : undefined;
        // Not unhandled should the next object never be sent (cancelled, association gone).
        ahead?.data.catch(() => undefined);
        const status = await target!
          .store(
            ref,
            {
              stored: this.dataSetOf(ref),
              ...(this.deps.retrieve.decompresses(ref)
                ? { decompressed: () => prepared ?? this.decompressedDataSet(ref) }
                : {}),
              ...(ref.transferSyntaxUid === TransferSyntax.ExplicitVRBigEndian
                ? { littleEndian: () => this.littleEndianDataSet(ref) }
                : {}),
            },
            move ? { ae: a.callingAe, messageId: cmd.messageId ?? 0 } : undefined,
          )
          .catch((err: unknown) => {
            // A peer that stopped answering ends the sub-operations; any other failure is this object's alone.
            if (peerStoppedAnswering(err)) throw err;
            // The reason first: an Error Comment holds 64 characters.
            firstFailure ??= `${message(err)} (instance ${ref.sopInstanceUid})`;
            return 0xa702;
          });
        remaining--;
        if (status === 0) completed++;
        // A warning is a stored object, whatever its code: until 7 Dec 2026 only Bxxx was, and a peer answering
        // 0001, 0107 or 0116 (PS3.7 Table C-1) had its objects counted failed, listed in (0008,0058) and recorded
        // in the ledger as never sent.
        else if (isWarningStatus(status)) warning++;
        else {
          failedUids.push(ref.sopInstanceUid);
          firstFailure ??= `${move ? destinationTitle : 'the C-GET requestor'} answered the C-STORE of instance ${ref.sopInstanceUid} with 0x${status.toString(16).toUpperCase().padStart(4, '0')}`;
        }
        if (remaining > 0 && a.open)
          await a.respond(ctx.id, cmd, rspField, 0xff00, undefined, {
            remaining,
            completed,
            failed: failedUids.length,
            warning,
          });
      }
    } catch (err) {
      // The destination could not be called, or the association to it broke: what was not sent has failed.
      for (const r of refs.slice(completed + warning + attemptedFailed())) failedUids.push(r.sopInstanceUid);
      remaining = 0;
      stopped = message(err);
    } finally {
      if (move) await target?.release().catch(() => undefined);
    }
    // The retrieve was recorded as decided before the first byte left; what did not reach the destination is
    // recorded too, so that the ledger does not say objects went to an AE that never got them, and why (until 5
    // Dec 2026 only when the association itself failed; a failure of one object's own said nothing).
    // Objects a C-CANCEL left unsent are recorded as such too (until 7 Dec 2026 the record of the decision stood
    // alone, as if every matched object had gone); they are no failed sub-operations in the response (PS3.4
    // C.4.2.3.1: the Number of Remaining Sub-operations counts them).
    stopped ??= firstFailure;
    // Refused studies are recorded by their refusals (denied), not as objects that did not reach the destination.
    const unsent = [...failedUids.slice(refusedStudies.length), ...cancelledUids];
    if (unsent.length)
      await this.deps.ledger.append({
        principal,
        action: 'view-pixels',
        outcome: 'failure',
        policy: 'n/a',
        objects: { count: unsent.length, sopInstanceUids: unsent.slice(0, 10_000) },
        detail: {
          ...(destinationTitle ? { destination: destinationTitle } : {}),
          sent: completed + warning,
          unsent: unsent.length,
          ...(cancelledUids.length ? { cancelled: cancelledUids.length } : {}),
          ...(stopped
            ? { reason: stopped.slice(0, 500) }
            : cancelledUids.length
              ? {
                  reason: `cancelled by the requestor (C-CANCEL): ${completed + warning} of ${matched.length} sent`,
                }
              : {}),
        },
      });
    if (!a.open) return;
    const cancelled = a.isCancelled(cmd.messageId ?? -1);
    // PS3.4 C.4.2.3.1 / C.4.3.3.1: every sub-operation failed is a failure (Refused: Out of Resources, unable to
    // perform sub-operations), some failed or with warnings a warning.
    const status = cancelled
      ? 0xfe00
      : failedUids.length && completed + warning === 0
        ? 0xa702
        : failedUids.length || warning
          ? 0xb000
          : 0;
    const counts = { completed, failed: failedUids.length, warning, ...(cancelled ? { remaining } : {}) };
    if (failedUids.length) {
      const comment = stopped ?? refusal;
      // PS3.4 C.4.2.1.3.1: the final response lists the failed SOP instances.
      const ts = a.contexts.get(ctx.id)!.transferSyntax;
      const ident = encodeDataset([{ tag: 0x00080058, vr: 'UI', value: listableUids(failedUids, ts) }], ts);
      await a.conn!.send(
        ctx.id,
        {
          affectedSopClassUid: ctx.abstractSyntax,
          commandField: rspField,
          messageIdBeingRespondedTo: cmd.messageId ?? 0,
          commandDataSetType: 0x0000,
          status,
          // LO: the first 64 characters reach the caller, so the reason comes first.
          ...(comment ? { errorComment: asciiText(comment).slice(0, 64) } : {}),
          ...counts,
        },
        ident,
      );
      return;
    }
    await a.respond(ctx.id, cmd, rspField, status, undefined, counts);
  }

  /** The object's data set decompressed to Explicit VR Little Endian (RetrieveService.decompressed). */
  async decompressedDataSet(ref: InstanceRef): Promise<AsyncIterable<Buffer>> {
    const d = await this.deps.retrieve.decompressed(ref);
    return from(d.datasetStart, d.body);
  }

  /** A big endian object's data set in Explicit VR Little Endian (RetrieveService.explicitLittleEndian). */
  littleEndianDataSet(ref: InstanceRef): AsyncGenerator<Buffer> {
    const retrieve = this.deps.retrieve;
    return afterFileMeta(retrieve.explicitLittleEndian(ref, retrieve.served(ref).body));
  }

  /**
   * The stored object's data set: the bytes after its file meta information. Deflated ones stay deflated, padded to
   * an even length (PS3.5 A.5) when the sender had not: a peer takes an odd-length one for a broken message (dcmtk
   * aborts the association with `DIMSE: Odd Fragment Length`), and until 7 Dec 2026 such an object failed so.
   */
  dataSetOf(ref: InstanceRef): AsyncGenerator<Buffer> {
    const dataSet = from(ref.bulk.datasetStart, this.deps.retrieve.stream(ref));
    return ref.bulk.deflated ? evenLength(dataSet) : dataSet;
  }

  /** Wait until a C-STORE acknowledged early has been committed (or failed). */
  async settled(sopInstanceUid: string): Promise<void> {
    await this.committing.get(sopInstanceUid);
  }

  /** Wait for every background commit (server shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.committing.values()]);
  }
}

/** The bytes of `source`, and one 00H after them when they were an odd number. */
async function* evenLength(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let length = 0;
  for await (const chunk of source) {
    length += chunk.length;
    yield chunk;
  }
  if (length % 2 === 1) yield Buffer.alloc(1);
}

/** The bytes of `source` from `start` on. */
async function* from(start: number, source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pos = 0;
  for await (const chunk of source) {
    const end = pos + chunk.length;
    if (end > start) yield pos >= start ? chunk : chunk.subarray(start - pos);
    pos = end;
  }
}

/**
 * The data set of a Part 10 object written by Custos (fileMetaAs): the bytes after its file meta information,
 * whose File Meta Information Group Length (0002,0000) comes first.
 */
async function* afterFileMeta(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  while (head.length < 144) {
    const n = await it.next();
    if (n.done)
      throw new CustosError({
        code: 'dicom.cannot-convert',
        message: 'the converted object ends inside its file meta information',
        dicomStatus: 0xa702,
      });
    head = Buffer.concat([head, n.value]);
  }
  yield* from(
    144 + head.readUInt32LE(140),
    (async function* () {
      yield head;
      for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
    })(),
  );
}

/** C-GET: store back over the caller's own association, on a context it accepted with the SCP role. */
function getTarget(a: ScpAssociation, responseTimeoutMs: number): StoreTarget {
  const accepted = (ref: InstanceRef) => (ts: string) =>
    [...a.contexts.values()].find((c) => c.abstractSyntax === ref.sopClassUid && c.transferSyntax === ts)?.id;
  return {
    sendsDecompressed: (ref) => a.peerScpRoles.has(ref.sopClassUid) && sendsDecompressed(ref, accepted(ref)),
    async store(ref, data) {
      // Nothing is read: the instance cannot be sent in a form this association took.
      // A class the requestor has no context for at all (it proposed storage contexts for some classes only) is
      // said to be that: until 6 Dec 2026 it was reported as a missing SCP role, which sent the requestor's
      // operator to its role selection.
      if (![...a.contexts.values()].some((c) => c.abstractSyntax === ref.sopClassUid))
        throw new CustosError({
          code: 'dimse.no-storage-context',
          message: `no context for ${ref.sopClassUid}: the C-GET requestor has no presentation context accepted for this SOP class (it proposed none, or none Custos takes), so nothing of it can be sent back`,
          dicomStatus: 0xa702,
        });
      if (!a.peerScpRoles.has(ref.sopClassUid))
        throw new CustosError({
          code: 'dimse.no-scp-role',
          message: `no SCP role for ${ref.sopClassUid}: the C-GET requestor took none (SCP/SCU Role Selection, PS3.7 D.3.3.4), so nothing of it can be sent back`,
          dicomStatus: 0xa702,
        });
      const out = sendable(ref, data, accepted(ref));
      if (!out) throw notSendable(ref, 'the C-GET requestor');
      return cStore(a.conn!, out.contextId, ref, out.data, undefined, responseTimeoutMs);
    },
    release: async () => undefined,
  };
}

type StoredStatus = { status: number; comment?: string };

/** The C-STORE status of an object that was kept, as STOW-RS reports it; the Error Comment names the finding. */
function storedStatus(v: Parameters<typeof keptWarning>[0]): StoredStatus {
  const w = keptWarning(v);
  return w ? { status: w.status, comment: w.finding } : { status: DicomStatus.Success };
}

/**
 * The Failed SOP Instance UID List (0008,0058) a final C-MOVE/C-GET response can carry: all of them, except in an
 * explicit VR transfer syntax, where a UI value's length is a 16-bit field (PS3.5 §7.1.2) and the list stops at the
 * last UID that fits in 65,534 bytes; the counts still say how many failed. Until 6 Dec 2026 a longer list (some
 * 2,100 UIDs of 30 characters) could not be encoded and the whole response became 0xC000 without counts.
 */
export function listableUids(uids: readonly string[], transferSyntaxUid: string): string[] {
  if (transferSyntaxUid === '1.2.840.10008.1.2') return [...uids];
  const MAX = 0xfffe;
  let bytes = 0;
  let n = 0;
  for (; n < uids.length; n++) {
    const next = bytes + (n > 0 ? 1 : 0) + uids[n]!.length;
    // The value is padded to an even length.
    if (next + (next % 2) > MAX) break;
    bytes = next;
  }
  return uids.slice(0, n);
}
