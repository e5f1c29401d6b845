/**
 * Storage Commitment Push Model SCP (PS3.4 Annex J): N-ACTION asks Custos to commit to instances; Custos
 * answers at once, checks each instance (indexed, active, stored bytes matching their SHA-256), then reports
 * with N-EVENT-REPORT on the same association if it is still open, otherwise on a new one to the requester's
 * registered address (with the SCP role, PS3.4 J.3.3).
 */
import { createHash } from 'node:crypto';
import { CustosError, DicomStatus, isWarningStatus } from '../../domain/errors.js';
import { isValidUid } from '../../domain/ids.js';
import type { Dataset } from '../../dicom/dataset.js';
import type { WriteElement } from '../../dicom/part10-writer.js';
import { Cmd, type Command } from './command.js';
import { encodeDataset } from './dimse-dataset.js';
import type { DimseServices } from './dimse-services.js';
import type { NegotiatedContext, ScpAssociation } from './scp-association.js';
import { encodeAbort } from './pdu.js';
import { DEFAULT_RESPONSE_TIMEOUT_MS, openScuAssociation } from './scu-association.js';
import { isStorageSopClass, PLAIN_SYNTAXES, Sop } from './sop-classes.js';
import type { TransactionClaim } from '../../services/commitment-transactions.js';

const TRANSACTION_UID = 0x00081195;
const REFERENCED_SOP_SEQUENCE = 0x00081199;
const FAILED_SOP_SEQUENCE = 0x00081198;
const REFERENCED_SOP_CLASS_UID = 0x00081150;
const REFERENCED_SOP_INSTANCE_UID = 0x00081155;
const FAILURE_REASON = 0x00081197;
/** Failure Reasons (PS3.3 C.14.1.1). */
const NO_SUCH_OBJECT_INSTANCE = 0x0112;
const CLASS_INSTANCE_CONFLICT = 0x0119;
const REFERENCED_SOP_CLASS_NOT_SUPPORTED = 0x0122;
const DUPLICATE_TRANSACTION_UID = 0x0131;
/** PS3.7 Annex C: an attribute the request needs is absent (0120), or present without a value (0121). */
const MISSING_ATTRIBUTE = 0x0120;
const MISSING_ATTRIBUTE_VALUE = 0x0121;
/** PS3.7 10.1.4.1.10: an N-ACTION argument out of range or otherwise inappropriate. */
const INVALID_ARGUMENT_VALUE = 0x0115;

interface Ref {
  sopClassUid: string;
  sopInstanceUid: string;
}

const text = (ds: Dataset, tag: number) => {
  const el = ds.get(tag);
  return el?.kind === 'text' ? (el.values[0] ?? '').trim() : '';
};

export class StorageCommitment {
  constructor(private readonly s: DimseServices) {}

  async request(a: ScpAssociation, ctx: NegotiatedContext, cmd: Command, ds: Dataset): Promise<void> {
    const bad = (status: number, comment: string) => a.respond(ctx.id, cmd, Cmd.NActionRsp, status, comment);
    if (
      ctx.abstractSyntax !== Sop.StorageCommitmentPush ||
      cmd.requestedSopClassUid !== Sop.StorageCommitmentPush
    )
      return bad(DicomStatus.NoSuchSopClass, 'N-ACTION is supported for Storage Commitment Push Model only');
    if (cmd.requestedSopInstanceUid !== Sop.StorageCommitmentPushInstance)
      return bad(0x0117, `the Requested SOP Instance must be ${Sop.StorageCommitmentPushInstance}`);
    if (cmd.actionTypeId !== 1)
      return bad(0x0123, 'the only Action Type ID is 1 (request storage commitment)');
    const transactionUid = text(ds, TRANSACTION_UID);
    const seq = ds.get(REFERENCED_SOP_SEQUENCE);
    if (!ds.get(TRANSACTION_UID) || seq?.kind !== 'sequence')
      return bad(
        MISSING_ATTRIBUTE,
        'Transaction UID (0008,1195) and a non-empty Referenced SOP Sequence (0008,1199) are required',
      );
    // Present without a value: 0121 (0120 until 6 Dec 2026).
    if (!transactionUid) return bad(MISSING_ATTRIBUTE_VALUE, 'the Transaction UID (0008,1195) is empty');
    // The report carries it back and the ledger keys the commitment by it: a value that is no UID (PS3.5 §9.1) is
    // refused with Invalid Argument Value (PS3.7 10.1.4.1.10), before anything is checked. Until 7 Dec 2026 it was
    // accepted, reported back and recorded as given.
    if (!isValidUid(transactionUid))
      return bad(
        INVALID_ARGUMENT_VALUE,
        // LO: the reason first, in 64 characters.
        `Transaction UID (0008,1195) is not a valid UID: '${transactionUid}'`,
      );
    if (seq.items.length === 0)
      return bad(MISSING_ATTRIBUTE_VALUE, 'the Referenced SOP Sequence (0008,1199) has no item');
    // Both UIDs of an item are Type 1 (PS3.3 Table 10-11), and a Failed SOP Sequence item must carry them too: an
    // item without one cannot be answered in the report (until 6 Dec 2026 it was, with empty UIDs, as 0x0119).
    const incomplete = seq.items.findIndex(
      (item) => !text(item, REFERENCED_SOP_CLASS_UID) || !text(item, REFERENCED_SOP_INSTANCE_UID),
    );
    if (incomplete >= 0)
      return bad(
        MISSING_ATTRIBUTE_VALUE,
        `Referenced SOP item ${incomplete + 1}: no SOP Class or Instance UID`,
      );
    // Whether an object is stored, and as what class, is told only to a caller that may store (the modality that
    // sent them): until 5 Dec 2026 any registered AE could ask it of any SOP Instance UID, outside the policy.
    try {
      await this.s.deps.ingest.requireStore(a.principalFor('n-action'));
    } catch (err) {
      if (err instanceof CustosError && err.code === 'access.denied')
        return bad(DicomStatus.NotAuthorized, err.message);
      throw err;
    }
    const refs: Ref[] = seq.items.map((item) => ({
      sopClassUid: text(item, REFERENCED_SOP_CLASS_UID),
      sopInstanceUid: text(item, REFERENCED_SOP_INSTANCE_UID),
    }));
    // A Transaction UID names one request for good (PS3.4 J.3.3): used again for another one (another caller or
    // other references), every reference is reported failed with 0131H, nothing checked; the same caller asking
    // for the same references again is answered again, as its report may have been lost. Until 7 Dec 2026 any
    // reuse was committed as a new request.
    const claim = await this.s.deps.commitments.claim(
      transactionUid,
      a.callingAe,
      requestDigest(refs),
      refs.length,
    );
    await a.conn!.send(ctx.id, {
      affectedSopClassUid: Sop.StorageCommitmentPush,
      commandField: Cmd.NActionRsp,
      messageIdBeingRespondedTo: cmd.messageId ?? 0,
      commandDataSetType: 0x0101,
      status: 0,
      affectedSopInstanceUid: Sop.StorageCommitmentPushInstance,
      actionTypeId: 1,
    });
    // After the response: an A-RELEASE-RQ that comes meanwhile is answered without waiting for the report, which
    // then goes on a new association.
    a.background(this.report(a, ctx, transactionUid, refs, claim));
  }

  private async report(
    a: ScpAssociation,
    ctx: NegotiatedContext,
    transactionUid: string,
    refs: Ref[],
    claim: TransactionClaim,
  ) {
    const committed: Ref[] = [];
    const failed: (Ref & { reason: number })[] = [];
    if (claim.kind === 'duplicate')
      for (const r of refs) failed.push({ ...r, reason: DUPLICATE_TRANSACTION_UID });
    else
      for (const r of refs) {
        // Custos commits to storage SOP classes only (e.g. not Verification): 0122, not a class/instance conflict.
        if (!isStorageSopClass(r.sopClassUid)) {
          failed.push({ ...r, reason: REFERENCED_SOP_CLASS_NOT_SUPPORTED });
          continue;
        }
        await this.s.settled(r.sopInstanceUid);
        const found = await this.s.deps.retrieve.verifyStored(r.sopInstanceUid);
        if (!found) failed.push({ ...r, reason: NO_SUCH_OBJECT_INSTANCE });
        else if (found.sopClassUid !== r.sopClassUid) failed.push({ ...r, reason: CLASS_INSTANCE_CONFLICT });
        else if (!found.intact) failed.push({ ...r, reason: DicomStatus.ProcessingFailure });
        else committed.push(r);
      }
    const item = (r: Ref): WriteElement[] => [
      { tag: REFERENCED_SOP_CLASS_UID, vr: 'UI', value: r.sopClassUid },
      { tag: REFERENCED_SOP_INSTANCE_UID, vr: 'UI', value: r.sopInstanceUid },
    ];
    const elements: WriteElement[] = [
      { tag: TRANSACTION_UID, vr: 'UI', value: transactionUid },
      ...(failed.length
        ? [
            {
              tag: FAILED_SOP_SEQUENCE,
              vr: 'SQ',
              value: failed.map((r) => [...item(r), { tag: FAILURE_REASON, vr: 'US', value: r.reason }]),
            },
          ]
        : []),
      ...(committed.length ? [{ tag: REFERENCED_SOP_SEQUENCE, vr: 'SQ', value: committed.map(item) }] : []),
    ];
    const eventTypeId = failed.length ? 2 : 1;
    const timeoutMs = this.s.deps.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS;
    /** The warning status the requestor answered the report with, if it did. */
    let warned: string | undefined;
    const send = async (conn: ScpAssociation['conn'], contextId: number, ts: string) => {
      const messageId = conn!.messageId();
      const response = conn!.awaitResponse(messageId);
      await conn!.send(
        contextId,
        {
          affectedSopClassUid: Sop.StorageCommitmentPush,
          commandField: Cmd.NEventReportRq,
          messageId,
          commandDataSetType: 0x0000,
          affectedSopInstanceUid: Sop.StorageCommitmentPushInstance,
          eventTypeId,
        },
        encodeDataset(elements, ts),
      );
      // A requestor that never answers its report would hold the association for good (until 6 Dec 2026): after
      // the response timeout the association is aborted, and the report counts as not delivered.
      let timer: NodeJS.Timeout | undefined;
      const answered = await Promise.race([
        response.then((r) => r.cmd),
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs))),
      ]).finally(() => clearTimeout(timer));
      if (!answered) {
        const socket = conn!.socket;
        if (!socket.destroyed) socket.end(encodeAbort(0, 0), () => socket.destroy());
        throw new Error(`no N-EVENT-REPORT response within ${timeoutMs} ms`);
      }
      if (answered.commandField === 0xffff)
        throw new Error('the association ended before the N-EVENT-REPORT response');
      const status = answered.status ?? 0;
      const hex = `0x${status.toString(16).toUpperCase().padStart(4, '0')}`;
      // A warning (PS3.7 Table C-1: Bxxx, 0001, 0107, 0116) is a report the requestor took: until 7 Dec 2026 any
      // status but 0000 counted the report as not delivered and the record as a failure.
      if (status !== 0 && !isWarningStatus(status))
        throw new Error(`the requestor answered the report ${hex}`);
      if (status !== 0) warned = hex;
    };
    let undelivered: string | undefined;
    try {
      let sent = false;
      if (a.open && !a.leaving)
        try {
          await send(a.conn, ctx.id, ctx.transferSyntax);
          sent = true;
        } catch (err) {
          // The requestor released the association (its A-RELEASE-RQ crossed the report) without answering the
          // report there: it waits for it on an association of ours, as when it released before the report
          // (PS3.4 J.3.3.1). Until 7 Dec 2026 such a report was recorded as not delivered and never sent again.
          if (!a.releasedByRequestor) throw err;
        }
      if (!sent) {
        const peer = await this.s.deps.registry.find(a.callingAe);
        if (!peer) throw new Error(`${a.callingAe} is no longer registered`);
        const scu = await openScuAssociation({
          ...this.s.callOptions(peer),
          contexts: [{ abstractSyntax: Sop.StorageCommitmentPush, transferSyntaxes: [...PLAIN_SYNTAXES] }],
          roles: [{ sopClassUid: Sop.StorageCommitmentPush, scu: false, scp: true }],
        });
        try {
          const c = scu.context(Sop.StorageCommitmentPush);
          if (!c) throw new Error(`${a.callingAe} accepted no Storage Commitment context with the SCU role`);
          await send(scu.conn, c.id, c.transferSyntax);
        } finally {
          await scu.release().catch(() => undefined);
        }
      }
    } catch (err) {
      undelivered = err instanceof Error ? err.message : String(err);
    }
    // Recorded once the report went, or could not: until 6 Dec 2026 the record came first and said success even
    // when the requestor was never told (no listener at its registered address, no answer).
    await this.s.deps.ledger.append({
      principal: a.principalFor('n-action'),
      action: 'storage-commit',
      outcome: failed.length || undelivered ? 'failure' : 'success',
      policy: 'builtin:ae-registry',
      objects: {
        transactionUid,
        committed: committed.map((r) => r.sopInstanceUid).slice(0, 10_000),
        failed: failed.map((r) => ({ sopInstanceUid: r.sopInstanceUid, reason: r.reason })).slice(0, 10_000),
      },
      detail: {
        ...(undelivered
          ? { report: 'not delivered', reason: undelivered }
          : { report: 'delivered', ...(warned ? { status: warned } : {}) }),
        ...(claim.kind === 'duplicate'
          ? {
              transaction: 'duplicate',
              firstRequestedAt: claim.firstRequestedAt,
              firstCallingAe: claim.firstCallingAe,
            }
          : claim.kind === 'retry'
            ? { transaction: 'retry', firstRequestedAt: claim.firstRequestedAt }
            : {}),
      },
    });
  }
}

/** The request's references, order aside: what tells a retry of a request from another request under its UID. */
function requestDigest(refs: Ref[]): string {
  const hash = createHash('sha256');
  for (const line of refs.map((r) => `${r.sopClassUid}\\${r.sopInstanceUid}\n`).sort()) hash.update(line);
  return hash.digest('hex');
}
