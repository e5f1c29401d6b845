import type { Kysely } from 'kysely';
import { CustosError, DicomStatus } from '../domain/errors.js';
import { isValidUid } from '../domain/ids.js';
import type { Principal } from '../domain/principal.js';
import { toIndexRecord, type InstanceIndexRecord } from '../domain/index-record.js';
import type { DicomJsonObject } from '../domain/dicom-levels.js';
import { Part10Parser, type ParsedPart10 } from '../dicom/part10-parser.js';
import { Tags } from '../dicom/tags.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { BlobStore, BlobWriter, StoredBlob } from '../ports/blob-store.js';
import type { Clock } from '../ports/clock.js';
import type { DatabaseSchema, IndexDb } from '../ports/database.js';
import type { AccessGate } from './access-gate.js';
import { describeBulk, type BulkMap } from './bulk-map.js';
import type { StudyKeyService } from './study-keys.js';

export interface IngestOutcome {
  status: 'stored' | 'duplicate';
  sopInstanceUid: string;
  sopClassUid: string;
  studyUid: string;
  seriesUid: string;
  size: number;
  warnings: string[];
}

export interface IngestContext {
  /** Which interface delivered the object, for the audit record. */
  channel: 'stow-rs' | 'import' | 'c-store';
  /** STOW-RS to /studies/{uid}: the instance must belong to that study (PS3.18 §10.5.1). */
  expectedStudyUid?: string;
  /**
   * Called once every byte of the source has been read, before the object is committed: lets a transport
   * receive the next object while this one is made durable and indexed.
   */
  onReceived?: () => void;
  /**
   * Called once the whole object is received, parsed and its identifiers validated, just before it is made
   * durable and indexed: a transport that acknowledges at this point (DIMSE with `dicom.storeAck` 'received')
   * lets the sender go on while the commit runs; a later failure is still recorded in the ledger.
   */
  onValidated?: (ids: { sopInstanceUid: string; sopClassUid: string; studyUid: string }) => void;
}

export interface IngestDeps {
  index: IndexDb;
  blobs: BlobStore;
  studyKeys: StudyKeyService;
  gate: AccessGate;
  ledger: AuditLedger;
  clock: Clock;
  limits: { maxInstanceBytes: number; maxHeaderBytes: number };
}

/** Failure that still knows which SOP instance it concerned (for STOW FailedSOPSequence). */
export class IngestFailure extends CustosError {
  constructor(
    base: CustosError,
    readonly sopClassUid?: string,
    readonly sopInstanceUid?: string,
  ) {
    super({
      code: base.code,
      message: base.message,
      httpStatus: base.httpStatus,
      ...(base.dicomStatus !== undefined ? { dicomStatus: base.dicomStatus } : {}),
      ...(base.detail ? { detail: base.detail } : {}),
      cause: base,
    });
  }
}

const invalid = (attribute: string, message: string) =>
  new CustosError({
    code: 'ingest.invalid-attribute',
    message,
    httpStatus: 400,
    dicomStatus: DicomStatus.DataSetDoesNotMatchSopClass,
    detail: { attribute },
  });

/**
 * The one ingest pipeline (STOW-RS, C-STORE and import all call it): stream-parse the header while encrypting
 * the bytes to the blob store, validate identifiers, then index the instance and record the store in the same
 * transaction. Nothing is visible until that transaction commits; a failure removes the blob.
 */
export class IngestService {
  constructor(private readonly deps: IngestDeps) {}

  async ingest(
    principal: Principal,
    source: AsyncIterable<Buffer>,
    ctx: IngestContext,
  ): Promise<IngestOutcome> {
    const decision = await this.deps.gate.require(principal, 'store', { type: 'archive' });
    let writer: BlobWriter | undefined;
    let stored: StoredBlob | undefined;
    let parsed: ParsedPart10 | undefined;
    try {
      const parser = new Part10Parser({ maxHeaderBytes: this.deps.limits.maxHeaderBytes });
      // Bytes are held back only until the Study Instance UID is known, because the blob is encrypted under
      // that study's data key; the parser sees that UID long before pixel data in a well-formed object.
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let total = 0;
      for await (const chunk of source) {
        total += chunk.length;
        if (total > this.deps.limits.maxInstanceBytes) {
          throw new CustosError({
            code: 'ingest.too-large',
            message: `the object exceeds the ${this.deps.limits.maxInstanceBytes}-byte limit for one instance`,
            httpStatus: 413,
            dicomStatus: DicomStatus.OutOfResources,
          });
        }
        await parser.write(chunk);
        if (writer) {
          await writer.write(chunk);
          continue;
        }
        pending.push(chunk);
        pendingBytes += chunk.length;
        const studyUid = parser.peekString(Tags.StudyInstanceUID);
        if (studyUid !== undefined || parser.passed(Tags.StudyInstanceUID)) {
          writer = await this.openWriter(studyUid, ctx);
          for (const p of pending) await writer.write(p);
          pending = [];
        } else if (pendingBytes > this.deps.limits.maxHeaderBytes) {
          throw invalid(
            'StudyInstanceUID',
            `no Study Instance UID (0020,000D) within the first ${this.deps.limits.maxHeaderBytes} bytes`,
          );
        }
      }
      ctx.onReceived?.();
      parsed = await parser.end();
      if (!writer) {
        writer = await this.openWriter(parser.peekString(Tags.StudyInstanceUID), ctx);
        for (const p of pending) await writer.write(p);
      }
      const json = this.headerJson(parsed);
      const record = toIndexRecord(json);
      this.validate(record, ctx);
      ctx.onValidated?.({
        sopInstanceUid: record.instance.sopInstanceUid,
        sopClassUid: record.instance.sopClassUid,
        studyUid: record.study.studyUid,
      });
      stored = await writer.commit();
      const outcome = await this.index(principal, decision.policy, record, json, parsed, stored, ctx);
      if (outcome.status === 'duplicate') await this.deps.blobs.delete(stored.blobId);
      return outcome;
    } catch (err) {
      if (writer && !stored) await writer.abort();
      else if (stored) await this.deps.blobs.delete(stored.blobId);
      const base =
        err instanceof CustosError
          ? err
          : new CustosError({
              code: 'ingest.failed',
              message: `the object could not be stored: ${(err as Error).message}`,
              dicomStatus: DicomStatus.ProcessingFailure,
              cause: err,
            });
      const sopClassUid = parsed ? (this.safeString(parsed, Tags.SOPClassUID) ?? undefined) : undefined;
      const sopInstanceUid = parsed ? (this.safeString(parsed, Tags.SOPInstanceUID) ?? undefined) : undefined;
      await this.deps.ledger.append({
        principal,
        action: 'store',
        outcome: 'failure',
        policy: decision.policy,
        objects: { sopInstanceUid: sopInstanceUid ?? null, channel: ctx.channel },
        detail: { code: base.code, reason: base.message },
      });
      throw new IngestFailure(base, sopClassUid, sopInstanceUid);
    }
  }

  private safeString(parsed: ParsedPart10, tag: number): string | undefined {
    const json = this.headerJson(parsed);
    const key = tag.toString(16).toUpperCase().padStart(8, '0');
    const v = json[key]?.Value?.[0];
    return typeof v === 'string' ? v : undefined;
  }

  private async openWriter(studyUid: string | undefined, ctx: IngestContext): Promise<BlobWriter> {
    if (!studyUid) throw invalid('StudyInstanceUID', 'the object has no Study Instance UID (0020,000D)');
    if (!isValidUid(studyUid))
      throw invalid('StudyInstanceUID', `Study Instance UID '${studyUid}' is not a valid UID`);
    if (ctx.expectedStudyUid && ctx.expectedStudyUid !== studyUid) {
      throw invalid(
        'StudyInstanceUID',
        `the object belongs to study ${studyUid}, not to ${ctx.expectedStudyUid} named in the request URL`,
      );
    }
    const key = await this.deps.studyKeys.keyForStore(studyUid);
    return this.deps.blobs.create(key);
  }

  private readonly jsonCache = new WeakMap<ParsedPart10, DicomJsonObject>();
  private headerJson(parsed: ParsedPart10): DicomJsonObject {
    let json = this.jsonCache.get(parsed);
    if (!json) {
      json = describeBulk(parsed).json;
      this.jsonCache.set(parsed, json);
    }
    return json;
  }

  private validate(r: InstanceIndexRecord, ctx: IngestContext) {
    const uids: [string, string, string][] = [
      ['SOPInstanceUID', '(0008,0018)', r.instance.sopInstanceUid],
      ['SOPClassUID', '(0008,0016)', r.instance.sopClassUid],
      ['StudyInstanceUID', '(0020,000D)', r.study.studyUid],
      ['SeriesInstanceUID', '(0020,000E)', r.series.seriesUid],
    ];
    for (const [name, tag, value] of uids) {
      if (!value) throw invalid(name, `the object has no ${name} ${tag}`);
      if (!isValidUid(value)) throw invalid(name, `${name} ${tag} '${value}' is not a valid UID`);
    }
    if (ctx.expectedStudyUid && ctx.expectedStudyUid !== r.study.studyUid) {
      throw invalid(
        'StudyInstanceUID',
        `the object belongs to study ${r.study.studyUid}, not to ${ctx.expectedStudyUid}`,
      );
    }
  }

  private async index(
    principal: Principal,
    policy: string,
    r: InstanceIndexRecord,
    json: DicomJsonObject,
    parsed: ParsedPart10,
    blob: StoredBlob,
    ctx: IngestContext,
  ): Promise<IngestOutcome> {
    const base = {
      sopInstanceUid: r.instance.sopInstanceUid,
      sopClassUid: r.instance.sopClassUid,
      studyUid: r.study.studyUid,
      seriesUid: r.series.seriesUid,
      size: blob.size,
      warnings: parsed.warnings,
    };
    const existing = await this.deps.index.db
      .selectFrom('instances')
      .select(['sha256', 'study_uid'])
      .where('sop_instance_uid', '=', r.instance.sopInstanceUid)
      .executeTakeFirst();
    if (existing) return this.duplicateOrConflict(principal, policy, existing.sha256, blob, base, ctx);

    const bulk: BulkMap = describeBulk(parsed).bulk;
    const now = this.deps.clock.now().toISOString();
    try {
      await this.deps.index.db.transaction().execute(async (trx) => {
        const patientPk = await upsertPatient(trx, r, now);
        const newStudy = await trx
          .insertInto('studies')
          .values({
            study_uid: r.study.studyUid,
            patient_pk: patientPk,
            study_date: r.study.date,
            study_time: r.study.time,
            accession_number: r.study.accessionNumber,
            referring_physician_name: r.study.referringPhysician,
            referring_physician_norm: r.study.referringPhysicianNorm,
            study_description: r.study.description,
            study_id: r.study.studyId,
            modalities: '',
            attrs_json: JSON.stringify(r.study.attrs),
            num_series: 0,
            num_instances: 0,
            total_bytes: 0,
            owner: null,
            department: null,
            classification: 'normal',
            retention_until: null,
            status: 'active',
            created_at: now,
            updated_at: now,
          })
          .onConflict((oc) => oc.column('study_uid').doNothing())
          .returning('study_uid')
          .executeTakeFirst();
        if (!newStudy) {
          const owner = await trx
            .selectFrom('studies')
            .select('patient_pk')
            .where('study_uid', '=', r.study.studyUid)
            .executeTakeFirstOrThrow();
          if (owner.patient_pk !== patientPk) {
            // A Study Instance UID never spans two patients (issue 6 makes this a quarantine case).
            throw invalid(
              'PatientID',
              `study ${r.study.studyUid} is already filed under another patient; PatientID '${r.patient.patientId}' does not match`,
            );
          }
        }
        const newSeries = await trx
          .insertInto('series')
          .values({
            series_uid: r.series.seriesUid,
            study_uid: r.study.studyUid,
            modality: r.series.modality,
            series_number: r.series.seriesNumber,
            series_description: r.series.description,
            body_part: r.series.bodyPart,
            pps_start_date: r.series.ppsStartDate,
            pps_start_time: r.series.ppsStartTime,
            attrs_json: JSON.stringify(r.series.attrs),
            num_instances: 0,
            created_at: now,
          })
          .onConflict((oc) => oc.column('series_uid').doNothing())
          .returning('series_uid')
          .executeTakeFirst();
        if (!newSeries) {
          const s = await trx
            .selectFrom('series')
            .select('study_uid')
            .where('series_uid', '=', r.series.seriesUid)
            .executeTakeFirstOrThrow();
          if (s.study_uid !== r.study.studyUid) {
            throw invalid(
              'SeriesInstanceUID',
              `series ${r.series.seriesUid} already belongs to another study`,
            );
          }
        }
        await trx
          .insertInto('instances')
          .values({
            sop_instance_uid: r.instance.sopInstanceUid,
            series_uid: r.series.seriesUid,
            study_uid: r.study.studyUid,
            sop_class_uid: r.instance.sopClassUid,
            instance_number: r.instance.instanceNumber,
            transfer_syntax_uid: parsed.transferSyntaxUid,
            blob_id: blob.blobId,
            size: blob.size,
            sha256: blob.sha256,
            rows: r.instance.rows,
            columns: r.instance.columns,
            number_of_frames: r.instance.numberOfFrames,
            metadata_json: JSON.stringify(json),
            bulk_json: JSON.stringify(bulk),
            status: 'active',
            created_at: now,
          })
          .execute();
        await trx
          .updateTable('series')
          .set((eb) => ({ num_instances: eb('num_instances', '+', 1) }))
          .where('series_uid', '=', r.series.seriesUid)
          .execute();
        await trx
          .updateTable('studies')
          .set((eb) => ({
            num_instances: eb('num_instances', '+', 1),
            num_series: eb('num_series', '+', newSeries ? 1 : 0),
            total_bytes: eb('total_bytes', '+', blob.size),
            updated_at: now,
          }))
          .where('study_uid', '=', r.study.studyUid)
          .execute();
        if (newSeries) {
          // Read after the update above holds the study row, so a concurrent new series is seen committed.
          const mods = await trx
            .selectFrom('series')
            .select('modality')
            .distinct()
            .where('study_uid', '=', r.study.studyUid)
            .execute();
          const modalities = mods
            .map((m) => m.modality)
            .filter(Boolean)
            .sort()
            .join('\\');
          await trx
            .updateTable('studies')
            .set({ modalities })
            .where('study_uid', '=', r.study.studyUid)
            .execute();
        }
        await this.deps.ledger.appendIn(trx, {
          principal,
          action: 'store',
          outcome: 'success',
          policy,
          patientId: r.patient.patientId,
          studyUid: r.study.studyUid,
          objects: {
            seriesUid: r.series.seriesUid,
            sopInstanceUid: r.instance.sopInstanceUid,
            sopClassUid: r.instance.sopClassUid,
            channel: ctx.channel,
            size: blob.size,
          },
        });
      });
    } catch (err) {
      // A concurrent writer stored the same SOP instance between our check and our insert.
      const again = await this.deps.index.db
        .selectFrom('instances')
        .select(['sha256', 'blob_id'])
        .where('sop_instance_uid', '=', r.instance.sopInstanceUid)
        .executeTakeFirst();
      if (again && again.blob_id !== blob.blobId)
        return this.duplicateOrConflict(principal, policy, again.sha256, blob, base, ctx);
      throw err;
    }
    return { status: 'stored', ...base };
  }

  private async duplicateOrConflict(
    principal: Principal,
    policy: string,
    existingSha: string,
    blob: StoredBlob,
    base: Omit<IngestOutcome, 'status'>,
    ctx: IngestContext,
  ): Promise<IngestOutcome> {
    if (existingSha === blob.sha256) {
      await this.deps.ledger.append({
        principal,
        action: 'store',
        outcome: 'success',
        policy,
        studyUid: base.studyUid,
        objects: { sopInstanceUid: base.sopInstanceUid, channel: ctx.channel, duplicate: true },
      });
      return { status: 'duplicate', ...base };
    }
    throw new CustosError({
      code: 'ingest.conflict',
      message: `SOP instance ${base.sopInstanceUid} is already stored with different content; it was not overwritten`,
      httpStatus: 409,
      dicomStatus: DicomStatus.DuplicateSopInstance,
      detail: { sopInstanceUid: base.sopInstanceUid },
    });
  }
}

async function upsertPatient(
  trx: Kysely<DatabaseSchema>,
  r: InstanceIndexRecord,
  now: string,
): Promise<number> {
  const found = await trx
    .selectFrom('patients')
    .select('pk')
    .where('patient_id', '=', r.patient.patientId)
    .where('issuer', '=', r.patient.issuer)
    .executeTakeFirst();
  if (found) return found.pk;
  await trx
    .insertInto('patients')
    .values({
      patient_id: r.patient.patientId,
      issuer: r.patient.issuer,
      patient_name: r.patient.name,
      patient_name_norm: r.patient.nameNorm,
      birth_date: r.patient.birthDate,
      sex: r.patient.sex,
      created_at: now,
    })
    .onConflict((oc) => oc.columns(['patient_id', 'issuer']).doNothing())
    .execute();
  const row = await trx
    .selectFrom('patients')
    .select('pk')
    .where('patient_id', '=', r.patient.patientId)
    .where('issuer', '=', r.patient.issuer)
    .executeTakeFirstOrThrow();
  return row.pk;
}
