import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Principal } from '../domain/principal.js';
import { normalisePersonName } from '../domain/index-record.js';
import { Hl7Error, Hl7ErrorCode, type Hl7Location } from '../domain/hl7/hl7-message.js';
import {
  ORDER_STATUSES_ENDED,
  type Demographics,
  type FeedCommand,
  type OrderCommand,
  type PatientIdentity,
} from '../domain/hl7/feed-commands.js';
import { followMerges, MERGE_EVENTS, type MergeChain } from '../domain/merge-chain.js';
import {
  alertLoopOnce,
  alertLoopOnceAlone,
  describeLoop,
  mergedIntoIn,
  takeSettledLoops,
  type MergeLoop,
  type SettledLoop,
} from './merge-loops.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { Clock } from '../ports/clock.js';
import type { CareRelationshipsTable, DatabaseSchema, IndexDb } from '../ports/database.js';

type Trx = Transaction<DatabaseSchema>;

/** Which field of the message an identifier came from, to name it when it is refused. */
interface IdentifierField {
  name: string;
  location: Hl7Location;
}
const PID_3: IdentifierField = { name: 'PID-3', location: { segment: 'PID', sequence: 1, field: 3 } };
const MRG_1: IdentifierField = { name: 'MRG-1', location: { segment: 'MRG', sequence: 1, field: 1 } };

/** Which message a command came from, for the records. */
export interface FeedMessageInfo {
  /** 'APP^FACILITY' of the sender (MSH-3^MSH-4). */
  sender: string;
  controlId: string;
  messageType: string;
  /**
   * SHA-256 (hex) of the message's content (its MSH-9 and the segments after MSH): with the sender and control id,
   * what tells a resend from another message. Without it no resend is recognised.
   */
  digest?: string;
  /** Set by apply() when the control id was used before by another message (other content) of this sender. */
  controlIdReused?: { messageType: string; appliedAt: string };
}

export interface FeedOutcome {
  /** One line per effect, for logs and tests. */
  summary: string;
  /** The message was a resend of one applied before (same sender, control id and content), not applied again. */
  duplicateOf?: { appliedAt: string };
}

/** The policy id recorded for feed changes: the sender passed the configured allow-list (hl7.senders). */
export const FEED_POLICY = 'config:hl7.senders';
const MAX_AUDITED_STUDIES = 1000;
/** How often the applied messages older than the resend window are pruned, at most. */
const PRUNE_EVERY_MS = 3_600_000;
/** The care relationships an order gives: its ordering and its referring physicians. */
const ROLES = ['ordering', 'referring'] as const;
type Role = (typeof ROLES)[number];

/**
 * The authoritative patient index and order list, fed by HL7 ADT and order messages. Each message's effect and
 * its audit record commit in one transaction, so the ledger never shows a change that did not happen (or the
 * other way round).
 *
 * Identity rule: a patient is (PatientID, issuer). A DICOM object without IssuerOfPatientID files its study
 * under issuer ''; an HL7 identifier with an assigning authority also applies to those rows, since a DICOM
 * modality rarely knows the authority its worklist's PatientID came from. An HL7 identifier without an
 * assigning authority names the one patient known under its ID (whatever its issuer); if patients of several
 * issuers share the ID, the message is refused with 205.
 */
export class PatientFeedService {
  /** When the applied messages older than the resend window were last pruned (ms since the epoch). */
  private prunedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly deps: {
      index: IndexDb;
      ledger: AuditLedger;
      clock: Clock;
      /** How long an applied message is remembered for its resend (hl7.resendWindowDays). */
      resendWindowDays: number;
    },
  ) {}

  async apply(principal: Principal, cmd: FeedCommand, info: FeedMessageInfo): Promise<FeedOutcome> {
    // Merge loops the message's transaction met (refuseCycle), alerted with its effect or, when it is refused,
    // after its rollback: an operator learns of a loop whatever became of the message. Each loop once, whoever
    // meets it first (merge-loops.ts); until 7 Dec 2026 every message that met it alerted it again.
    const loops: MergeLoop[] = [];
    try {
      return await this.deps.index.db.transaction().execute(async (trx) => {
        loops.length = 0;
        // The ledger's write lock, taken before any row is read, orders the feed's transactions (each appends a
        // record) on PostgreSQL as SQLite's IMMEDIATE transactions are: two A40s racing (A into B, B into A) would
        // each find no merge of the other and together make a loop; a second A08 creating the same patient would
        // otherwise wait on the first's row lock while holding what it needs.
        await this.deps.ledger.lockIn(trx);
        // An original-mode sender that lost an ACK sends the message again (v2.5.1 §2.9.2): a resend of one applied
        // (same sender, MSH-10 and content) is acknowledged as the first was and not applied twice; until 7 Dec 2026
        // it was applied again (an order's history, a merge's records doubled). A control id used before for other
        // content is another message: it is applied, and its records say the id was reused.
        // A sender resends within minutes or hours: a message is remembered for hl7.resendWindowDays, and those
        // older are pruned at most once an hour; until 7 Dec 2026 hl7_applied_messages grew with every message.
        const nowMs = this.deps.clock.now().getTime();
        const windowStart = new Date(nowMs - this.deps.resendWindowDays * 86_400_000).toISOString();
        const before = info.digest ? await appliedBefore(trx, info, windowStart) : undefined;
        if (before && before.digest === info.digest) {
          await this.deps.ledger.appendIn(
            trx,
            duplicateRecord(principal, info, cmd.event, before.applied_at),
          );
          return {
            summary: `duplicate of message ${info.controlId} applied at ${before.applied_at}`,
            duplicateOf: { appliedAt: before.applied_at },
          };
        }
        if (before)
          info = {
            ...info,
            controlIdReused: { messageType: before.message_type, appliedAt: before.applied_at },
          };
        const outcome = await this.applyIn(trx, principal, cmd, info, loops);
        if (info.digest)
          await trx
            .insertInto('hl7_applied_messages')
            .values({
              sender: info.sender,
              control_id: info.controlId,
              message_type: info.messageType,
              digest: info.digest,
              applied_at: this.now(),
            })
            .onConflict((oc) =>
              oc.columns(['sender', 'control_id']).doUpdateSet((eb) => ({
                message_type: eb.ref('excluded.message_type'),
                digest: eb.ref('excluded.digest'),
                applied_at: eb.ref('excluded.applied_at'),
              })),
            )
            .execute();
        if (nowMs - this.prunedAt >= PRUNE_EVERY_MS) {
          await pruneAppliedMessages(trx, windowStart).execute();
          this.prunedAt = nowMs;
        }
        for (const loop of loops)
          await alertLoopOnce(
            trx,
            this.deps.ledger,
            loop,
            loopAlert(principal, info, cmd.event, loop, true),
            this.now(),
          );
        // A merge may move a patient out of a reported loop: the steward hears that it is settled, and the loop,
        // should it form again, is reported again (until 7 Dec 2026 it stayed reported for good and was not).
        if (cmd.kind === 'patient-merge')
          for (const settled of await takeSettledLoops(trx))
            await this.deps.ledger.appendIn(trx, loopSettledRecord(principal, info, cmd.event, settled));
        return outcome;
      });
    } catch (err) {
      for (const loop of loops)
        await alertLoopOnceAlone(
          this.deps.index.db,
          this.deps.ledger,
          loop,
          loopAlert(principal, info, cmd.event, loop, false),
          this.now(),
        );
      throw err;
    }
  }

  private applyIn(
    trx: Trx,
    principal: Principal,
    cmd: FeedCommand,
    info: FeedMessageInfo,
    loops: MergeLoop[],
  ) {
    switch (cmd.kind) {
      case 'patient-update':
        return this.update(trx, principal, cmd.event, cmd.patients, info, loops);
      case 'patient-merge':
        return this.merge(trx, principal, cmd.event, cmd.merges, info, loops);
      case 'identifier-change':
        return this.changeIdentifier(trx, principal, cmd.event, cmd.changes, info, loops);
      case 'order':
        return this.orders(trx, principal, cmd.event, cmd.orders, info, loops);
    }
  }

  /** Record a message that was refused or failed, so every message's fate is in the ledger. */
  async recordRefusal(
    principal: Principal,
    action: string,
    outcome: 'denied' | 'failure',
    info: FeedMessageInfo,
    reason: string,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    await this.deps.ledger.append({
      principal,
      action,
      outcome,
      policy: FEED_POLICY,
      channel: 'hl7',
      detail: { ...messageDetail(info), reason, ...extra },
    });
  }

  private now(): string {
    return this.deps.clock.now().toISOString();
  }

  /**
   * Rows of the patient index that this identifier names (see the identity rule above). An identifier without
   * an assigning authority names the one patient known under its ID, whatever that patient's issuer; when
   * patients of several issuers share the ID it names none of them for sure, and is refused (205) rather than
   * applied to one of them or made into yet another patient.
   */
  private async rowsFor(trx: Trx, id: PatientIdentity, where: IdentifierField) {
    const rows = await trx
      .selectFrom('patients')
      .select(['pk', 'patient_id', 'issuer', 'patient_name', 'birth_date', 'sex'])
      .where('patient_id', '=', id.patientId)
      .$if(id.issuer !== '', (qb) =>
        qb.where((eb) => eb.or([eb('issuer', '=', id.issuer), eb('issuer', '=', '')])),
      )
      .orderBy('pk')
      .execute();
    if (id.issuer === '') {
      const issuers = [...new Set(rows.map((r) => r.issuer).filter((i) => i !== ''))].sort();
      if (issuers.length > 1)
        throw new Hl7Error({
          code: Hl7ErrorCode.DuplicateKeyIdentifier,
          message: `${where.name} ${id.patientId} has no assigning authority (CX-4) and ${issuers.length} patients share that ID (issuers ${issuers.join(', ')}): send the assigning authority`,
          location: where.location,
        });
    }
    return rows;
  }

  /**
   * Set demographics on every row the identifier names, creating the patient when none does. Returns the pk and
   * issuer of the patient it resolved to, which for an identifier without assigning authority is the known
   * patient's issuer, not the message's ''.
   */
  private async upsertDemographics(
    trx: Trx,
    p: Demographics,
    overwrite = true,
  ): Promise<{ pk: number; issuer: string; before?: Record<string, string> }> {
    const rows = await this.rowsFor(trx, p, PID_3);
    if (rows.length === 0) {
      const inserted = await trx
        .insertInto('patients')
        .values({
          patient_id: p.patientId,
          issuer: p.issuer,
          patient_name: p.name ?? '',
          patient_name_norm: normalisePersonName(p.name ?? ''),
          birth_date: p.birthDate ?? '',
          sex: p.sex ?? '',
          created_at: this.now(),
        })
        // Another connection may create the same patient meanwhile: then update the row it made.
        .onConflict((oc) => oc.columns(['patient_id', 'issuer']).doNothing())
        .returning('pk')
        .executeTakeFirst();
      if (inserted) return { pk: inserted.pk, issuer: p.issuer };
      return this.upsertDemographics(trx, p, overwrite);
    }
    const exact = rows.find((r) => r.issuer === p.issuer) ?? rows[0]!;
    const changes = demographicColumns(p);
    if (overwrite && Object.keys(changes).length > 0) {
      await trx
        .updateTable('patients')
        .set(changes)
        .where(
          'pk',
          'in',
          rows.map((r) => r.pk),
        )
        .execute();
    }
    return {
      pk: exact.pk,
      issuer: exact.issuer,
      before: { patient_name: exact.patient_name, birth_date: exact.birth_date, sex: exact.sex },
    };
  }

  private async update(
    trx: Trx,
    principal: Principal,
    event: string,
    patients: Demographics[],
    info: FeedMessageInfo,
    loops: MergeLoop[],
  ) {
    const lines: string[] = [];
    for (const p of patients) {
      await this.refuseMergedAway(trx, p, loops);
      const { issuer, before } = await this.upsertDemographics(trx, p);
      await this.deps.ledger.appendIn(trx, {
        principal,
        action: 'hl7-patient-update',
        outcome: 'success',
        policy: FEED_POLICY,
        channel: 'hl7',
        patientId: p.patientId,
        detail: {
          ...messageDetail(info),
          event,
          issuer,
          ...sentIssuer(p, issuer),
          created: before === undefined,
          ...(before ? { before } : {}),
          after: demographicColumns(p),
        },
      });
      lines.push(`${before ? 'updated' : 'created'} patient ${p.patientId}`);
    }
    return { summary: lines.join('; ') };
  }

  /**
   * Demographics (A01, A04, A05, A08, A28, A31) for a patient merged away (A into B) are refused (204), nothing of the
   * message applied, naming the merge and the patient A's objects are filed under. After a merge A's identifier is
   * inactive (IHE PAM, ITI-30): a message still naming it is most likely a late one, sent before the merge, and its
   * demographics are older than those the merge kept, so applying them to B (as images and orders follow the merge)
   * could undo a correction the merge made; applying them to A's row changed a row no study is filed under. The
   * sender resends under B's identifier. Until 7 Dec 2026 they were applied to A's empty row and acknowledged AA.
   */
  private async refuseMergedAway(trx: Trx, p: Demographics, loops: MergeLoop[]): Promise<void> {
    for (const row of await this.rowsFor(trx, p, PID_3)) {
      const merge = await trx
        .selectFrom('patient_merges')
        .select(['event', 'merged_at', 'surviving_patient_pk'])
        .where('prior_patient_pk', '=', row.pk)
        .where('event', 'in', MERGE_EVENTS)
        .orderBy('pk', 'desc')
        .executeTakeFirst();
      if (!merge) continue;
      const filedPk = (await this.walk(trx, row.pk, loops)).survivor;
      const named = await trx
        .selectFrom('patients')
        .select(['pk', 'patient_id as patientId', 'issuer'])
        .where('pk', 'in', [merge.surviving_patient_pk, filedPk])
        .execute();
      const patient = (pk: number) => {
        const { patientId, issuer } = named.find((n) => n.pk === pk)!;
        return { patientId, issuer };
      };
      const words = ({ patientId, issuer }: { patientId: string; issuer: string }) =>
        issuer ? `${patientId} (assigning authority ${issuer})` : patientId;
      const into = patient(merge.surviving_patient_pk);
      const filed = patient(filedPk);
      throw new Hl7Error(
        {
          code: Hl7ErrorCode.UnknownKeyIdentifier,
          message: `PID-3 ${words({ patientId: row.patient_id, issuer: row.issuer })} was merged into ${words(into)} (${merge.event} of ${merge.merged_at}) and is no longer active: send its demographics under ${words(filed)}, where its objects are filed; nothing was applied`,
          location: PID_3.location,
        },
        {
          mergedAway: { patientId: row.patient_id, issuer: row.issuer, mergedAt: merge.merged_at },
          mergedInto: into,
          filedUnder: filed,
        },
      );
    }
  }

  /** Move every study, order and care relationship of `fromPks` to `toPk`; returns the moved study UIDs. */
  private async moveStudies(trx: Trx, fromPks: number[], toPk: number): Promise<string[]> {
    if (fromPks.length === 0) return [];
    const studies = await trx
      .selectFrom('studies')
      .select('study_uid')
      .where('patient_pk', 'in', fromPks)
      .orderBy('study_uid')
      .execute();
    await trx
      .updateTable('studies')
      .set({ patient_pk: toPk, updated_at: this.now() })
      .where('patient_pk', 'in', fromPks)
      .execute();
    await trx.updateTable('orders').set({ patient_pk: toPk }).where('patient_pk', 'in', fromPks).execute();
    // Relationships already held with the surviving patient stay once; the merged duplicates go with their pk.
    const rels = await trx
      .selectFrom('care_relationships')
      .selectAll()
      .where('patient_pk', 'in', fromPks)
      .execute();
    await copyRelationships(trx, rels, toPk);
    if (rels.length) await trx.deleteFrom('care_relationships').where('patient_pk', 'in', fromPks).execute();
    return studies.map((s) => s.study_uid);
  }

  /**
   * The order a message's ORC `sequence` is about: the one of its placer number, else the one of its filler number
   * (v2.5.1 §4.5.1.2-3: either identifies the order; a status update or cancel from the filler may carry its own
   * number alone). Until 7 Dec 2026 only the key the order was created under was looked up, so an update carrying
   * the filler number alone created a second order and left the first as it was (a cancel cancelled nothing). Numbers
   * that name two different orders, or a filler number whose order has another placer number, are refused (205).
   */
  private async findOrder(trx: Trx, o: OrderCommand, sequence: number) {
    const by = (column: 'placer_order_number' | 'filler_order_number', number: string) =>
      number === ''
        ? undefined
        : trx
            .selectFrom('orders')
            .select(['pk', 'status', 'patient_pk', 'placer_order_number', 'filler_order_number'])
            .where(column, '=', number)
            .orderBy('pk')
            .executeTakeFirst();
    const byPlacer = await by('placer_order_number', o.placerOrderNumber);
    const byFiller = await by('filler_order_number', o.fillerOrderNumber);
    const conflict =
      byFiller &&
      ((byPlacer && byPlacer.pk !== byFiller.pk) ||
        (!byPlacer && o.placerOrderNumber !== '' && byFiller.placer_order_number !== ''));
    if (conflict)
      throw new Hl7Error({
        code: Hl7ErrorCode.DuplicateKeyIdentifier,
        message: `ORC-3 filler order number ${o.fillerOrderNumber} names the order of placer order number ${byFiller.placer_order_number}, not ${o.placerOrderNumber} (ORC-2)${byPlacer ? `, which names another order` : ''}: nothing of the message was applied`,
        location: { segment: 'ORC', sequence, field: 3 },
      });
    return byPlacer ?? byFiller;
  }

  /** The care relationships order `orderPk` gave, moved to patient `toPk` (the order's patient now). */
  private async moveOrderRelationships(trx: Trx, orderPk: number, toPk: number) {
    const rels = await trx
      .selectFrom('care_relationships')
      .selectAll()
      .where('order_pk', '=', orderPk)
      .where('patient_pk', '!=', toPk)
      .execute();
    await copyRelationships(trx, rels, toPk);
    if (rels.length)
      await trx
        .deleteFrom('care_relationships')
        .where('order_pk', '=', orderPk)
        .where('patient_pk', '!=', toPk)
        .execute();
  }

  /**
   * The care relationships order `orderPk` gives, made to match the order as it now stands: one per physician the
   * order names (ordering, referring; every repetition of ORC-12, else OBR-16, and of PV1-8: until 7 Dec 2026 only
   * the first got one) while the order is live, none once it is cancelled. A physician sent as "" is no longer the
   * order's, nor is one another physician replaced (until 6 Dec 2026 a replaced physician kept access); a field
   * left empty keeps the physicians known. A cancelled or discontinued order (ORC-1 CA/OC/CR/DC/OD/DR, or ORC-5 CA
   * or DC) gives none: until 7 Dec 2026 its physicians kept access to the patient's studies through it.
   * Relationships of the patient's other orders are rows of their own and stay. A later message that reinstates the
   * order with the field left empty gives again the physician its columns name (the first of the field). Returns
   * the relationships ended, for the record.
   */
  private async syncOrderRelationships(
    trx: Trx,
    orderPk: number,
    patientPk: number,
    now: string,
    given: Record<Role, OrderCommand['orderingPhysician']>,
  ) {
    const order = await trx
      .selectFrom('orders')
      .select([
        'status',
        'ordering_physician_id',
        'ordering_physician_name',
        'referring_physician_id',
        'referring_physician_name',
      ])
      .where('pk', '=', orderPk)
      .executeTakeFirstOrThrow();
    const held = await trx
      .selectFrom('care_relationships')
      .select(['pk', 'patient_pk', 'physician_id', 'physician_name', 'relationship'])
      .where('order_pk', '=', orderPk)
      .execute();
    const physicians = (role: Role): { id: string; name: string }[] => {
      const who = given[role];
      if (who !== undefined) return who ?? [];
      const kept = held.filter((h) => h.relationship === role);
      if (kept.length) return kept.map((h) => ({ id: h.physician_id, name: h.physician_name }));
      const id = order[`${role}_physician_id`];
      const name = order[`${role}_physician_name`];
      return id !== '' || name !== '' ? [{ id, name }] : [];
    };
    const wanted: { relationship: Role; id: string; name: string }[] = [];
    if (!ORDER_STATUSES_ENDED.has(order.status))
      for (const relationship of ROLES)
        for (const p of physicians(relationship))
          if (!wanted.some((w) => w.relationship === relationship && w.id === p.id && w.name === p.name))
            wanted.push({ relationship, ...p });
    const same = (h: (typeof held)[number], w: (typeof wanted)[number]) =>
      h.patient_pk === patientPk &&
      h.relationship === w.relationship &&
      h.physician_id === w.id &&
      h.physician_name === w.name;
    const ended = held.filter((h) => !wanted.some((w) => same(h, w)));
    if (ended.length)
      await trx
        .deleteFrom('care_relationships')
        .where(
          'pk',
          'in',
          ended.map((h) => h.pk),
        )
        .execute();
    for (const w of wanted.filter((w) => !held.some((h) => same(h, w))))
      await trx
        .insertInto('care_relationships')
        .values({
          patient_pk: patientPk,
          physician_id: w.id,
          physician_name: w.name,
          relationship: w.relationship,
          order_pk: orderPk,
          created_at: now,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
    return ended.map((h) => ({
      relationship: h.relationship,
      physicianId: h.physician_id || h.physician_name,
    }));
  }

  private async recordMerge(
    trx: Trx,
    event: string,
    prior: PatientIdentity,
    priorPk: number | null,
    survivorPk: number,
    studiesMoved: number,
    info: FeedMessageInfo,
  ) {
    await trx
      .insertInto('patient_merges')
      .values({
        event,
        prior_patient_id: prior.patientId,
        prior_issuer: prior.issuer,
        prior_patient_pk: priorPk,
        surviving_patient_pk: survivorPk,
        studies_moved: studiesMoved,
        sender: info.sender,
        message_control_id: info.controlId,
        merged_at: this.now(),
      })
      .execute();
  }

  /**
   * A40/A34 merge: the surviving patient (PID) takes the studies, orders and care relationships of the prior
   * patient MRG-1 names. MRG-1 is the prior patient's identifier list (v2.5.1 §3.4.9.1): every identifier in it,
   * and every index row each names (one identifier may name a row of its issuer and one DICOM made without an
   * issuer), is that one patient, so each such row is merged, and each gets its own patient_merges row, which is
   * what ingest follows to file a late image under the survivor. Until 6 Dec 2026 only the first row of the MR (else
   * first) identifier was recorded, and other repetitions were ignored: their images stayed with the prior patient.
   * The merged rows stay (empty) so that their history reads back. One ledger record per PID/MRG pair names every
   * prior row merged (`priors`).
   */
  private async merge(
    trx: Trx,
    principal: Principal,
    event: string,
    merges: { surviving: Demographics; merged: PatientIdentity[] }[],
    info: FeedMessageInfo,
    loops: MergeLoop[],
  ) {
    const lines: string[] = [];
    for (const { surviving, merged: identifiers } of merges) {
      const merged = identifiers[0]!;
      if (identifiers.some((m) => m.patientId === surviving.patientId && m.issuer === surviving.issuer))
        throw new Hl7Error({
          code: Hl7ErrorCode.DuplicateKeyIdentifier,
          message: `MRG-1 names the surviving patient ${surviving.patientId} itself: a patient cannot be merged into itself`,
          location: { segment: 'MRG', sequence: 1, field: 1 },
        });
      const { pk: survivorPk, issuer: survivorIssuer } = await this.upsertDemographics(trx, surviving);
      // Each prior row once, with the identifier that named it first.
      const priors: {
        identifier: PatientIdentity;
        row: { pk: number; patient_id: string; issuer: string };
      }[] = [];
      const unknown: PatientIdentity[] = [];
      for (const identifier of identifiers) {
        const rows = (await this.rowsFor(trx, identifier, MRG_1)).filter((r) => r.pk !== survivorPk);
        const exact = rows.find((r) => r.issuer === identifier.issuer);
        // The row of the identifier's own issuer first, as the record's `merged` has named it.
        for (const row of exact ? [exact, ...rows.filter((r) => r !== exact)] : rows)
          if (!priors.some((p) => p.row.pk === row.pk)) priors.push({ identifier, row });
        if (rows.length === 0) unknown.push(identifier);
      }
      // Where the surviving patient's objects are filed: itself, or the patient it was merged into since.
      const filedPk = await this.refuseCycle(
        trx,
        survivorPk,
        priors.map((p) => p.row),
        surviving,
        merged,
        loops,
      );
      const moved: string[] = [];
      const recorded: Record<string, unknown>[] = [];
      for (const { identifier, row } of priors) {
        const studies = await this.moveStudies(trx, [row.pk], filedPk);
        moved.push(...studies);
        await this.recordMerge(trx, event, identifier, row.pk, survivorPk, studies.length, info);
        recorded.push({
          patientId: row.patient_id,
          issuer: row.issuer,
          ...sentIssuer(identifier, row.issuer),
          studies: studies.length,
        });
      }
      // An identifier the index does not know is recorded too: the sender's merge history stays complete.
      for (const identifier of unknown)
        await this.recordMerge(trx, event, identifier, null, survivorPk, 0, info);
      const mergedIssuer = priors.find((p) => p.identifier === merged)?.row.issuer ?? merged.issuer;
      moved.sort();
      await this.deps.ledger.appendIn(trx, {
        principal,
        action: 'hl7-patient-merge',
        outcome: 'success',
        policy: FEED_POLICY,
        channel: 'hl7',
        patientId: surviving.patientId,
        objects: { studies: moved.slice(0, MAX_AUDITED_STUDIES), count: moved.length },
        detail: {
          ...messageDetail(info),
          event,
          surviving: {
            patientId: surviving.patientId,
            issuer: survivorIssuer,
            ...sentIssuer(surviving, survivorIssuer),
          },
          merged: {
            patientId: merged.patientId,
            issuer: mergedIssuer,
            ...sentIssuer(merged, mergedIssuer),
          },
          ...(await this.filedUnder(trx, survivorPk, filedPk)),
          mergedKnown: priors.length > 0,
          priors: recorded,
          ...(unknown.length ? { unknownPriors: unknown } : {}),
        },
      });
      lines.push(
        `merged ${identifiers.map((m) => m.patientId).join(', ')} into ${surviving.patientId} (${priors.length} patient${priors.length === 1 ? '' : 's'}, ${moved.length} studies moved)`,
      );
    }
    return { summary: lines.join('; ') };
  }

  /**
   * A merge whose surviving patient was itself merged, directly or along a chain, into the patient now merged
   * into it (A into B, then B into A) would make the merge history a cycle: objects arriving later for either
   * identifier would be filed by wherever the walk along it stopped. It is refused (205). The walk is the one
   * ingest follows (followMerges), so a loop already in the index ends it rather than repeating; such a loop is
   * added to `loops`, which apply() reports (loopAlert). Returns where the walk ends: a surviving patient merged
   * into another since (A into B, then C into A) has its objects filed there, and so do those this merge moves
   * (until 7 Dec 2026 they were moved to A, a patient merged away, and served under its identifier, not B's).
   */
  private async refuseCycle(
    trx: Trx,
    survivorPk: number,
    mergedRows: { pk: number }[],
    surviving: PatientIdentity,
    merged: PatientIdentity,
    loops: MergeLoop[],
  ) {
    const mergedPks = new Set(mergedRows.map((r) => r.pk));
    const chain = await this.walk(trx, survivorPk, loops);
    if (chain.path.some((pk) => mergedPks.has(pk)))
      throw new Hl7Error({
        code: Hl7ErrorCode.DuplicateKeyIdentifier,
        message: `patient ${surviving.patientId} was merged into ${merged.patientId} before: merging ${merged.patientId} back into it would make the merges a cycle, so nothing was applied`,
        location: { segment: 'MRG', sequence: 1, field: 1 },
      });
    return chain.survivor;
  }

  /**
   * The walk along the merges from patient `pk`, the one ingest follows to file an object (followMerges); a loop it
   * meets is added to `loops`, which apply() reports (loopAlert).
   */
  private async walk(trx: Trx, pk: number, loops: MergeLoop[]): Promise<MergeChain> {
    const chain = await followMerges(pk, mergedIntoIn(trx));
    if (chain.loop) {
      const loop = await describeLoop(trx, chain);
      if (!loops.some((l) => l.key === loop.key)) loops.push(loop);
    }
    return chain;
  }

  /** For a record: the patient objects are filed under (`filedUnder`) when it is not the one the message named. */
  private async filedUnder(trx: Trx, namedPk: number, filedPk: number) {
    if (namedPk === filedPk) return {};
    const row = await trx
      .selectFrom('patients')
      .select(['patient_id as patientId', 'issuer'])
      .where('pk', '=', filedPk)
      .executeTakeFirstOrThrow();
    return { filedUnder: row };
  }

  /**
   * A47: the patient known as `from` is known as `to` from now on. `to` must not already name a patient. A rename
   * leaves the merges where they lead, so it settles no loop; but a loop its patient's merges lead into is met as a
   * merge meets one (refuseCycle), and reported once, applied or refused, naming the patients as the message left
   * them (until 7 Dec 2026 an identifier change said nothing of a loop).
   */
  private async changeIdentifier(
    trx: Trx,
    principal: Principal,
    event: string,
    changes: { to: Demographics; from: PatientIdentity }[],
    info: FeedMessageInfo,
    loops: MergeLoop[],
  ) {
    const lines: string[] = [];
    for (const { to, from } of changes) {
      const fromRows = await this.rowsFor(trx, from, MRG_1);
      if (fromRows.length === 0)
        throw new Hl7Error({
          code: Hl7ErrorCode.UnknownKeyIdentifier,
          message: `MRG-1 names patient ${from.patientId}${from.issuer ? ` (${from.issuer})` : ''}, which is not in the patient index`,
          location: { segment: 'MRG', sequence: 1, field: 1 },
        });
      // Before any refusal below, so that a refused message reports the loop too.
      const met: MergeChain[] = [];
      for (const row of fromRows) {
        const chain = await this.walk(trx, row.pk, loops);
        if (chain.loop) met.push(chain);
      }
      const taken = (await this.rowsFor(trx, to, PID_3)).filter((r) => !fromRows.some((f) => f.pk === r.pk));
      if (taken.length > 0)
        throw new Hl7Error({
          code: Hl7ErrorCode.DuplicateKeyIdentifier,
          message: `PID-3 ${to.patientId} already names another patient: use A40 to merge two patients`,
          location: { segment: 'PID', sequence: 1, field: 3 },
        });
      const [keep, ...rest] = fromRows;
      const moved = await this.moveStudies(
        trx,
        rest.map((r) => r.pk),
        keep!.pk,
      );
      await trx
        .updateTable('patients')
        .set({ patient_id: to.patientId, issuer: to.issuer, ...demographicColumns(to) })
        .where('pk', '=', keep!.pk)
        .execute();
      // Applied: the alert names the loop's patients as they are known now.
      for (const chain of met) {
        const loop = await describeLoop(trx, chain);
        const at = loops.findIndex((l) => l.key === loop.key);
        if (at >= 0) loops[at] = loop;
      }
      const studies = await trx
        .selectFrom('studies')
        .select('study_uid')
        .where('patient_pk', '=', keep!.pk)
        .execute();
      await this.recordMerge(trx, event, from, keep!.pk, keep!.pk, moved.length, info);
      await this.deps.ledger.appendIn(trx, {
        principal,
        action: 'hl7-patient-identifier-change',
        outcome: 'success',
        policy: FEED_POLICY,
        channel: 'hl7',
        patientId: to.patientId,
        objects: {
          studies: studies.map((s) => s.study_uid).slice(0, MAX_AUDITED_STUDIES),
          count: studies.length,
        },
        detail: {
          ...messageDetail(info),
          event,
          from: { patientId: from.patientId, issuer: from.issuer },
          to: { patientId: to.patientId, issuer: to.issuer },
        },
      });
      lines.push(`patient ${from.patientId} is now ${to.patientId}`);
    }
    return { summary: lines.join('; ') };
  }

  private async orders(
    trx: Trx,
    principal: Principal,
    event: string,
    orders: OrderCommand[],
    info: FeedMessageInfo,
    loops: MergeLoop[],
  ) {
    const lines: string[] = [];
    for (const [n, o] of orders.entries()) {
      // An order names its patient; the ADT feed, not the order system, is the authority for demographics.
      const { pk: namedPk } = await this.upsertDemographics(trx, o.patient, false);
      // A patient merged away (A into B) has its objects filed under B, and so has its order: the care relationships
      // it gives are to the patient whose studies its physicians are to see (until 7 Dec 2026 they went to A).
      const patientPk = (await this.walk(trx, namedPk, loops)).survivor;
      const orderKey = o.placerOrderNumber || o.fillerOrderNumber;
      const now = this.now();
      // '' is a field the message left empty, null one it sent as "" (OrderCommand).
      const physician = (p: OrderCommand['orderingPhysician'], part: 'id' | 'name') =>
        p === null ? null : (p?.[0]?.[part] ?? '');
      const existing = await this.findOrder(trx, o, n + 1);
      // A message that leaves ORC-5 empty keeps the status known; a new order is scheduled (feed-commands.ts).
      const status = o.status || existing?.status || 'scheduled';
      const fields = {
        placer_order_number: o.placerOrderNumber,
        filler_order_number: o.fillerOrderNumber,
        accession_number: o.accessionNumber,
        patient_pk: patientPk,
        ordering_physician_id: physician(o.orderingPhysician, 'id'),
        ordering_physician_name: physician(o.orderingPhysician, 'name'),
        referring_physician_id: physician(o.referringPhysician, 'id'),
        referring_physician_name: physician(o.referringPhysician, 'name'),
        department: o.department,
        procedure_code: o.procedureCode,
        procedure_text: o.procedureText,
        study_instance_uid: o.studyInstanceUid,
        modality: o.modality,
        order_control: o.orderControl,
        status,
        sender: info.sender,
        message_control_id: info.controlId,
        updated_at: now,
      };
      let orderPk: number;
      if (existing) {
        // A later message may leave fields empty that an earlier one filled: keep what is known; a field sent
        // as "" is deleted.
        const changes = Object.fromEntries(
          Object.entries(fields)
            .filter(([, v]) => v !== '')
            .map(([k, v]) => [k, v ?? '']),
        );
        await trx.updateTable('orders').set(changes).where('pk', '=', existing.pk).execute();
        orderPk = existing.pk;
        // An update naming another patient moves the order to it, and the care relationships the order gave go
        // with it: its physicians' access through the order follows the patient the sender now names (until 7 Dec
        // 2026 they kept access to the previous patient's studies as well).
        if (existing.patient_pk !== patientPk) await this.moveOrderRelationships(trx, orderPk, patientPk);
      } else {
        const inserted = await trx
          .insertInto('orders')
          .values({
            ...(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v ?? ''])) as {
              [K in keyof typeof fields]: Exclude<(typeof fields)[K], null>;
            }),
            order_key: orderKey,
            received_at: now,
          })
          .returning('pk')
          .executeTakeFirstOrThrow();
        orderPk = inserted.pk;
      }
      const relationshipsEnded = await this.syncOrderRelationships(trx, orderPk, patientPk, now, {
        ordering: o.orderingPhysician,
        referring: o.referringPhysician,
      });
      const previousPatient =
        existing && existing.patient_pk !== patientPk
          ? await trx
              .selectFrom('patients')
              .select(['patient_id as patientId', 'issuer'])
              .where('pk', '=', existing.patient_pk)
              .executeTakeFirst()
          : undefined;
      await this.deps.ledger.appendIn(trx, {
        principal,
        action: 'hl7-order',
        outcome: 'success',
        policy: FEED_POLICY,
        channel: 'hl7',
        patientId: o.patient.patientId,
        ...(o.studyInstanceUid ? { studyUid: o.studyInstanceUid } : {}),
        detail: {
          ...messageDetail(info),
          event,
          order: orderKey,
          orderControl: o.orderControl,
          accessionNumber: o.accessionNumber,
          status,
          ...(existing ? { previousStatus: existing.status } : { created: true }),
          ...(previousPatient ? { previousPatient } : {}),
          ...(relationshipsEnded.length ? { relationshipsEnded } : {}),
          ...(await this.filedUnder(trx, namedPk, patientPk)),
          procedure: o.procedureCode,
          department: o.department,
          orderingPhysician: named(o.orderingPhysician?.[0]),
          referringPhysician: named(o.referringPhysician?.[0]),
          ...((o.orderingPhysician?.length ?? 0) > 1
            ? { orderingPhysicians: o.orderingPhysician!.map(named) }
            : {}),
          ...((o.referringPhysician?.length ?? 0) > 1
            ? { referringPhysicians: o.referringPhysician!.map(named) }
            : {}),
        },
      });
      lines.push(`${existing ? 'updated' : 'created'} order ${orderKey} (${status})`);
    }
    return { summary: lines.join('; ') };
  }
}

/** A physician as a record names them: by ID, else by name. */
const named = (p: { id: string; name: string } | undefined) => p?.id || p?.name || '';

/** The patient columns a message sets: fields it sent (possibly as "" to clear them), never those it left out. */
function demographicColumns(p: Demographics) {
  return {
    ...(p.name !== undefined ? { patient_name: p.name, patient_name_norm: normalisePersonName(p.name) } : {}),
    ...(p.birthDate !== undefined ? { birth_date: p.birthDate } : {}),
    ...(p.sex !== undefined ? { sex: p.sex } : {}),
  };
}

/** The assigning authority the message sent, when the patient it resolved to is filed under another one. */
function sentIssuer(sent: PatientIdentity, resolvedIssuer: string) {
  return sent.issuer !== resolvedIssuer ? { sentIssuer: sent.issuer } : {};
}

/**
 * The data steward's notification of a merge loop (an `alert` record, as quarantine and fixity raise): the loop's
 * patients, where their objects are filed, and the message whose transaction met it (a merge, or an identifier
 * change of one of its patients). The feed cannot undo a loop; the steward decides which patient is right and the
 * sender's next merge settles it (an A47 renames a patient and leaves the merges as they were).
 */
function loopAlert(
  principal: Principal,
  info: FeedMessageInfo,
  event: string,
  loop: MergeLoop,
  applied: boolean,
) {
  return {
    principal,
    action: 'alert',
    outcome: 'failure' as const,
    policy: FEED_POLICY,
    channel: 'hl7',
    patientId: loop.survivor.patientId,
    detail: {
      alert: 'merge-loop',
      notify: 'data-steward',
      ...messageDetail(info),
      event,
      applied,
      loop: loop.patients,
      filedUnder: loop.survivor,
    },
  };
}

/**
 * The data steward's notice that a loop an alert reported is settled: a merge of this message moved one of its
 * patients out of it. Names the loop's patients and where their objects are filed now; an `alert` record as the
 * loop's was, with outcome `success`, so `custos audit search --action alert` shows both.
 */
function loopSettledRecord(principal: Principal, info: FeedMessageInfo, event: string, loop: SettledLoop) {
  return {
    principal,
    action: 'alert',
    outcome: 'success' as const,
    policy: FEED_POLICY,
    channel: 'hl7',
    patientId: loop.filedUnder.patientId,
    detail: {
      alert: 'merge-loop-settled',
      notify: 'data-steward',
      ...messageDetail(info),
      event,
      loop: loop.patients,
      filedUnder: loop.filedUnder,
    },
  };
}

function messageDetail(info: FeedMessageInfo) {
  return {
    sender: info.sender,
    controlId: info.controlId,
    messageType: info.messageType,
    ...(info.controlIdReused ? { controlIdReused: info.controlIdReused } : {}),
  };
}

/** The message this sender applied under this control id within the resend window, if any. */
function appliedBefore(trx: Trx, info: FeedMessageInfo, windowStart: string) {
  return trx
    .selectFrom('hl7_applied_messages')
    .select(['digest', 'message_type', 'applied_at'])
    .where('sender', '=', info.sender)
    .where('control_id', '=', info.controlId)
    .where('applied_at', '>=', windowStart)
    .executeTakeFirst();
}

/**
 * Deletes the applied messages older than the resend window. It runs in a feed message's transaction, under the
 * ledger's write lock, so it reads them by the index on applied_at (migration 0023): until 7 Dec 2026 it scanned the
 * whole table, a week of the feed's messages, while every ledger write waited.
 */
export function pruneAppliedMessages(db: Kysely<DatabaseSchema>, windowStart: string) {
  return db.deleteFrom('hl7_applied_messages').where('applied_at', '<', windowStart);
}

/** The record of a resend: acknowledged as the message it repeats was, and not applied again. */
function duplicateRecord(principal: Principal, info: FeedMessageInfo, event: string, appliedAt: string) {
  return {
    principal,
    action: 'hl7-message',
    outcome: 'success' as const,
    policy: FEED_POLICY,
    channel: 'hl7',
    detail: {
      ...messageDetail(info),
      event,
      duplicate: true,
      appliedAt,
      reason: `a resend of message ${info.controlId}, applied at ${appliedAt}: acknowledged again and not applied twice`,
    },
  };
}

/** Each of `rels` given to patient `toPk` as well; one it already holds (same physician, kind and order) stays once. */
async function copyRelationships(trx: Trx, rels: Selectable<CareRelationshipsTable>[], toPk: number) {
  for (const r of rels)
    await trx
      .insertInto('care_relationships')
      .values({
        patient_pk: toPk,
        physician_id: r.physician_id,
        physician_name: r.physician_name,
        relationship: r.relationship,
        order_pk: r.order_pk,
        created_at: r.created_at,
      })
      .onConflict((oc) => oc.doNothing())
      .execute();
}
