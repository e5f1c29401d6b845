import type { Kysely, Selectable } from 'kysely';
import { CustosError } from '../domain/errors.js';
import { asBlobId, asUserId } from '../domain/ids.js';
import type { Principal } from '../domain/principal.js';
import type { DicomJsonObject } from '../domain/dicom-levels.js';
import type { BulkMap } from '../domain/frames.js';
import { toIndexRecord } from '../domain/index-record.js';
import {
  decide,
  type ClassifiedDefect,
  type ValidationLevel,
} from '../domain/validation/validation-policy.js';
import { attributeLabel } from '../domain/validation/validate-header.js';
import {
  applyToDataset,
  applyToJson,
  assertCorrectable,
  headerEnd,
  parseCorrections,
  type HeaderCorrections,
} from '../dicom/header-rewrite.js';
import { parsePart10 } from '../dicom/part10-parser.js';
import type { Dataset } from '../dicom/dataset.js';
import { lookupTag } from '../dicom/dictionary.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { Clock } from '../ports/clock.js';
import type { DatabaseSchema, IndexDb, QuarantineTable as QuarantineColumns } from '../ports/database.js';
import type { AccessGate } from './access-gate.js';
import type { CorrectionOverlay } from './correction-overlay.js';
import type { IngestContext, IngestService } from './ingest-service.js';
import { readStoredToEnd } from './stored-object-check.js';
import type { StudyKeyService } from './study-keys.js';
import { quarantineOrder, type QuarantineSort } from './quarantine-sort.js';

type QuarantineTable = Selectable<QuarantineColumns>;

export interface QuarantineDeps {
  index: IndexDb;
  blobs: BlobStore;
  studyKeys: StudyKeyService;
  gate: AccessGate;
  ledger: AuditLedger;
  clock: Clock;
  ingest: IngestService;
  overlay: CorrectionOverlay;
}

export type QuarantineStatus = 'quarantined' | 'released' | 'rejected';

/** A quarantined object whose stored bytes fail their checks: not released (docs/fixity.md). */
const corruptEntry = (row: { id: string; sop_instance_uid: string }) =>
  new CustosError({
    code: 'object.corrupt',
    message: `quarantine entry ${row.id} (instance ${row.sop_instance_uid}) is not released: its stored bytes are damaged or missing; restore them from backup (docs/fixity.md)`,
    httpStatus: 500,
    detail: { quarantineId: row.id },
  });

export interface QuarantineSummary {
  id: string;
  status: QuarantineStatus;
  sopInstanceUid: string;
  sopClassUid: string;
  studyUid: string;
  seriesUid: string;
  patientId: string;
  level: string;
  channel: string;
  sender: string;
  size: number;
  createdAt: string;
  updatedAt: string;
  reasons: string[];
  reason: string | null;
}

export interface QuarantineDetail extends QuarantineSummary {
  defects: ClassifiedDefect[];
  corrections: HeaderCorrections;
  /** The header as received (DICOM JSON). */
  header: DicomJsonObject;
  /** The header with the corrections applied, as it would be archived. */
  corrected: DicomJsonObject;
}

const notFound = (id: string) =>
  new CustosError({ code: 'quarantine.not-found', message: `no quarantine entry ${id}`, httpStatus: 404 });

// The quarantine queue is the data steward's (policy 'data-steward-quarantine'): every step is 'correct-header'
// on the archive, since a held object is not yet a study of the archive.
const RESOURCE = { type: 'archive' } as const;

/**
 * The data steward's quarantine workflow (docs/validation.md): list, inspect, correct, release into the
 * archive, reject. Every action passes the access gate and is recorded in the ledger; corrections keep the
 * original bytes and become an overlay served by retrieve.
 */
export class QuarantineService {
  constructor(private readonly deps: QuarantineDeps) {}

  /**
   * The decision this service's calls take, alone: a route takes it before it reads the request's body or
   * parameters, so that a caller who may not work the quarantine is refused (403, recorded) whatever it sent,
   * rather than told what is wrong with its request (400, unrecorded: until 6 Dec 2026).
   */
  async authorize(principal: Principal): Promise<void> {
    await this.deps.gate.require(principal, 'correct-header', RESOURCE);
  }

  async list(
    principal: Principal,
    opts: { status?: QuarantineStatus; limit: number; offset: number; sort?: QuarantineSort },
  ): Promise<{ entries: QuarantineSummary[]; total: number }> {
    const decision = await this.deps.gate.require(principal, 'correct-header', RESOURCE);
    let q = this.deps.index.db.selectFrom('quarantine');
    if (opts.status) q = q.where('status', '=', opts.status);
    const rows = await q
      .selectAll()
      .$call((qb) =>
        quarantineOrder(this.deps.index, opts.sort ?? { key: 'Received', desc: true }).reduce(
          (o, term) => o.orderBy(term),
          qb,
        ),
      )
      .limit(opts.limit)
      .offset(opts.offset)
      .execute();
    const total = Number(
      (await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n,
    );
    await this.deps.ledger.append({
      principal,
      action: 'administer',
      outcome: 'success',
      policy: decision.policy,
      objects: { what: 'quarantine-list', count: rows.length, quarantineIds: rows.map((r) => r.id) },
    });
    return { entries: rows.map(summary), total };
  }

  async show(principal: Principal, id: string): Promise<QuarantineDetail> {
    const decision = await this.deps.gate.require(principal, 'correct-header', RESOURCE);
    const row = await this.row(id);
    await this.deps.ledger.append({
      principal,
      action: 'view-metadata',
      outcome: 'success',
      policy: decision.policy,
      patientId: row.patient_id,
      studyUid: row.study_uid,
      objects: { what: 'quarantine-entry', quarantineId: id, sopInstanceUids: [row.sop_instance_uid] },
    });
    return detail(row);
  }

  /** Record corrections (merged over earlier ones); old and new values go to the ledger. */
  async correct(principal: Principal, id: string, input: Record<string, unknown>): Promise<QuarantineDetail> {
    const decision = await this.deps.gate.require(principal, 'correct-header', RESOURCE);
    const changes = parseCorrections(input);
    if (Object.keys(changes).length === 0)
      throw new CustosError({
        code: 'correction.invalid',
        message: 'no corrections given: send {"(gggg,eeee)": "new value", …}',
        httpStatus: 400,
      });
    const now = this.deps.clock.now().toISOString();
    await this.deps.index.db.transaction().execute(async (trx) => {
      // The ledger's lock before the entry is read (see reject()).
      await this.deps.ledger.lockIn(trx);
      const row = await this.row(id, trx);
      if (row.status !== 'quarantined') throw notPending(row);
      const bulk = JSON.parse(row.bulk_json) as BulkMap;
      assertCorrectable(changes, headerEnd(bulk, row.transfer_syntax_uid, Number(row.size)));
      const header = JSON.parse(row.metadata_json) as DicomJsonObject;
      const before = applyToJson(header, JSON.parse(row.corrections_json) as HeaderCorrections);
      const merged = { ...(JSON.parse(row.corrections_json) as HeaderCorrections), ...changes };
      const after = applyToJson(header, changes);
      await trx
        .updateTable('quarantine')
        .set({ corrections_json: JSON.stringify(merged), updated_at: now })
        .where('id', '=', id)
        .execute();
      await this.deps.ledger.appendIn(trx, {
        principal,
        action: 'correct-header',
        outcome: 'success',
        policy: decision.policy,
        patientId: row.patient_id,
        studyUid: row.study_uid,
        objects: { quarantineId: id, sopInstanceUids: [row.sop_instance_uid] },
        detail: {
          changes: Object.keys(changes).map((hex) => ({
            tag: hex,
            attribute: attributeLabel(Number.parseInt(hex, 16) >>> 0),
            old: before[hex]?.Value ?? null,
            new: after[hex]?.Value ?? null,
          })),
        },
      });
    });
    return detail(await this.row(id));
  }

  /**
   * Re-validate the stored header with the corrections at the level it was received under; if nothing would
   * still quarantine or reject it, index it like any instance (status active), keep the corrections as the
   * overlay, and mark the entry released, all in one transaction.
   */
  async release(principal: Principal, id: string): Promise<QuarantineDetail & { warnings: string[] }> {
    const decision = await this.deps.gate.require(principal, 'correct-header', RESOURCE);
    const row = await this.row(id);
    if (row.status !== 'quarantined') throw notPending(row);
    // The whole object is read through the blob store's checks first (every chunk's tag and the SHA-256), as a
    // fixity pass reads it: until 7 Dec 2026 a release read only the header's chunks, and an object damaged in
    // its pixel data, even one the fixity job had marked corrupt, was released into the archive.
    if (row.fixity_status === 'corrupt') throw corruptEntry(row);
    try {
      await readStoredToEnd(this.deps, row);
    } catch (err) {
      if (!(err instanceof CustosError && err.code.startsWith('blob.'))) throw err;
      await this.markCorrupt(row, err.message);
      throw corruptEntry(row);
    }
    const corrections = JSON.parse(row.corrections_json) as HeaderCorrections;
    const key = await this.deps.studyKeys.keyForRead(row.study_uid);
    const bulk = JSON.parse(row.bulk_json) as BulkMap;
    // Only the header is re-validated: read up to the first bulk value (the whole object when deflated).
    const parsed = await parsePart10(
      bulk.deflated
        ? this.deps.blobs.read(asBlobId(row.blob_id), key, undefined, {
            size: Number(row.size),
            sha256: row.sha256,
          })
        : this.deps.blobs.read(
            asBlobId(row.blob_id),
            key,
            { start: 0, end: headerEnd(bulk, row.transfer_syntax_uid, Number(row.size)).offset },
            { size: Number(row.size) },
          ),
    );
    const stored = JSON.parse(row.metadata_json) as DicomJsonObject;
    const corrected = applyToJson(stored, corrections);
    const record = toIndexRecord(corrected);
    const verdict = decide(
      row.level as ValidationLevel,
      await this.deps.ingest.check(
        applyToDataset(withBulkValues(parsed.dataset, bulk, stored), corrections),
        record,
        principal,
      ),
    );
    if (verdict.outcome === 'rejected' || verdict.outcome === 'quarantined') {
      const remaining = verdict.defects.filter((d) => d.disposition !== 'warn');
      throw new CustosError({
        code: 'quarantine.still-invalid',
        message: `not released: ${remaining.map((d) => d.message).join('; ')}`,
        httpStatus: 409,
        detail: {
          attribute: remaining[0]?.attribute ?? null,
          defects: remaining.map((d) => ({
            kind: d.kind,
            attribute: d.attribute ?? null,
            message: d.message,
          })),
        },
      });
    }
    const now = this.deps.clock.now().toISOString();
    const warnings = verdict.defects.map((d) => d.message);
    const ctx: IngestContext = { channel: row.channel as IngestContext['channel'] };
    const outcome = await this.deps.ingest.index(
      principal,
      decision.policy,
      record,
      {
        json: corrected,
        bulk,
        transferSyntaxUid: row.transfer_syntax_uid,
        warnings,
      },
      { blobId: asBlobId(row.blob_id), size: Number(row.size), sha256: row.sha256 },
      ctx,
      verdict.defects,
      {
        audit: { releasedFrom: id, corrected: Object.keys(corrections) },
        inTransaction: async (trx) => {
          const updated = await trx
            .updateTable('quarantine')
            .set({ status: 'released', updated_at: now })
            .where('id', '=', id)
            .where('status', '=', 'quarantined')
            .executeTakeFirst();
          if (Number(updated.numUpdatedRows) !== 1) throw notPending({ ...row, status: 'changed' });
          if (Object.keys(corrections).length)
            await this.deps.overlay.save(
              trx,
              { studyUid: row.study_uid, sopInstanceUid: record.instance.sopInstanceUid, quarantineId: id },
              corrections,
              now,
            );
          await this.deps.ledger.appendIn(trx, {
            principal,
            action: 'release',
            outcome: 'success',
            policy: decision.policy,
            patientId: record.patient.patientId,
            studyUid: row.study_uid,
            objects: { quarantineId: id, sopInstanceUids: [record.instance.sopInstanceUid] },
            detail: { corrections: Object.keys(corrections).length, warnings },
          });
        },
      },
    );
    if (outcome.status !== 'stored')
      throw new CustosError({
        code: 'quarantine.already-archived',
        message: `SOP instance ${row.sop_instance_uid} is already in the archive`,
        httpStatus: 409,
      });
    return { ...detail(await this.row(id)), warnings };
  }

  /** Refuse the object for good: the bytes stay, encrypted, marked rejected with the steward's reason. */
  async reject(principal: Principal, id: string, reason: string): Promise<QuarantineDetail> {
    const decision = await this.deps.gate.require(principal, 'correct-header', RESOURCE);
    if (!reason.trim())
      throw new CustosError({
        code: 'quarantine.reason-required',
        message: 'give the reason for rejecting the object',
        httpStatus: 400,
      });
    const now = this.deps.clock.now().toISOString();
    await this.deps.index.db.transaction().execute(async (trx) => {
      // The ledger's lock, which the record below takes anyway, before the entry is read: a release (whose
      // transaction takes it first) and this then take turns. Until 7 Dec 2026 on PostgreSQL a reject read and
      // locked the entry, then waited for the lock a release held while that waited for the entry: PostgreSQL ended
      // the reject as a deadlock's victim (an internal error for the steward); or, reading before the release
      // committed, it marked an entry already released into the archive rejected. SQLite's transactions hold
      // the database's one write lock from their start.
      await this.deps.ledger.lockIn(trx);
      const row = await this.row(id, trx);
      if (row.status !== 'quarantined') throw notPending(row);
      await trx
        .updateTable('quarantine')
        .set({ status: 'rejected', reason, updated_at: now })
        .where('id', '=', id)
        .execute();
      await this.deps.ledger.appendIn(trx, {
        principal,
        action: 'reject',
        outcome: 'success',
        policy: decision.policy,
        patientId: row.patient_id,
        studyUid: row.study_uid,
        objects: { quarantineId: id, sopInstanceUids: [row.sop_instance_uid] },
        detail: { reason },
      });
    });
    return detail(await this.row(id));
  }

  /** A release that found the stored bytes damaged: the entry marked corrupt and alerted, as a fixity pass does. */
  private async markCorrupt(row: QuarantineTable, reason: string): Promise<void> {
    const at = this.deps.clock.now().toISOString();
    await this.deps.index.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('quarantine')
        .set({ fixity_status: 'corrupt', fixity_checked_at: at })
        .where('id', '=', row.id)
        .execute();
      await this.deps.ledger.appendIn(trx, {
        principal: {
          kind: 'system',
          id: asUserId('system'),
          name: 'system:fixity',
          role: 'system',
          source: 'release',
        },
        action: 'alert',
        outcome: 'failure',
        policy: 'n/a',
        studyUid: row.study_uid,
        objects: { sopInstanceUids: [row.sop_instance_uid], blobId: row.blob_id, quarantineId: row.id },
        detail: { alert: 'object-integrity', found: 'release', where: 'quarantine', reason },
      });
    });
  }

  private async row(id: string, trx?: Kysely<DatabaseSchema>): Promise<QuarantineTable> {
    const row = await (trx ?? this.deps.index.db)
      .selectFrom('quarantine')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw notFound(id);
    return row;
  }
}

/** The header read up to the first bulk value, with the bulk values after it known by where they are stored. */
function withBulkValues(ds: Dataset, bulk: BulkMap, json: DicomJsonObject): Dataset {
  const out: Dataset = new Map(ds);
  const vrOf = (hex: string) => json[hex]?.vr ?? 'OB';
  for (const [path, el] of Object.entries(bulk.elements)) {
    if (path.includes('.')) continue;
    out.set(Number.parseInt(path, 16) >>> 0, {
      vr: vrOf(path),
      kind: 'bulk',
      offset: el.offset,
      length: el.length,
    });
  }
  const px = bulk.pixel;
  if (px)
    out.set(
      Number.parseInt(px.tagPath, 16) >>> 0,
      px.encapsulated
        ? {
            vr: vrOf(px.tagPath),
            kind: 'encapsulated',
            offset: px.offset,
            basicOffsetTable: px.basicOffsetTable ?? [],
            fragments: px.fragments ?? [],
          }
        : { vr: vrOf(px.tagPath), kind: 'bulk', offset: px.offset, length: px.length },
    );
  return out;
}

const notPending = (row: { id: string; status: string }) =>
  new CustosError({
    code: 'quarantine.not-pending',
    message: `quarantine entry ${row.id} is ${row.status}, not quarantined`,
    httpStatus: 409,
  });

function summary(row: QuarantineTable): QuarantineSummary {
  const defects = JSON.parse(row.defects_json) as ClassifiedDefect[];
  return {
    id: row.id,
    status: row.status as QuarantineStatus,
    sopInstanceUid: row.sop_instance_uid,
    sopClassUid: row.sop_class_uid,
    studyUid: row.study_uid,
    seriesUid: row.series_uid,
    patientId: row.patient_id,
    level: row.level,
    channel: row.channel,
    sender: row.sender,
    size: Number(row.size),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    reasons: defects.filter((d) => d.disposition === 'quarantine').map((d) => d.message),
    reason: row.reason,
  };
}

function detail(row: QuarantineTable): QuarantineDetail {
  const header = JSON.parse(row.metadata_json) as DicomJsonObject;
  const corrections = JSON.parse(row.corrections_json) as HeaderCorrections;
  return {
    ...summary(row),
    defects: JSON.parse(row.defects_json) as ClassifiedDefect[],
    corrections,
    header,
    corrected: applyToJson(header, corrections),
  };
}

/** '(0010,0020) PatientID' for a 'GGGGEEEE' key, for CLI output. */
export function correctionLabel(hex: string): string {
  const tag = Number.parseInt(hex, 16) >>> 0;
  return lookupTag(tag) ? attributeLabel(tag) : hex;
}
