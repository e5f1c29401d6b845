import { randomUUID } from 'node:crypto';
import { isNativeTransferSyntax, isReferencedPixelTransferSyntax } from '../dicom/transfer-syntax.js';
import { sql, type Kysely } from 'kysely';
import { CustosError, DicomStatus } from '../domain/errors.js';
import { asBlobId, asUserId, isValidUid } from '../domain/ids.js';
import { isRetryLater } from '../domain/retry-later.js';
import type { Principal } from '../domain/principal.js';
import { toIndexRecord, type InstanceIndexRecord } from '../domain/index-record.js';
import type { DicomJsonObject } from '../domain/dicom-levels.js';
import { Part10Parser, type ParsedPart10 } from '../dicom/part10-parser.js';
import { Tags } from '../dicom/tags.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { BlobStore, BlobWriter, StoredBlob } from '../ports/blob-store.js';
import type { Clock } from '../ports/clock.js';
import type { DatabaseSchema, IndexDb, SqlDialectName } from '../ports/database.js';
import type { AccessGate } from './access-gate.js';
import { describeBulk, type BulkMap } from './bulk-map.js';
import { getString, type Dataset } from '../dicom/dataset.js';
import { attributeLabel, validateHeader, type Defect } from '../domain/validation/validate-header.js';
import {
  decide,
  levelFor,
  type ClassifiedDefect,
  type ValidationDecision,
  type ValidationLevel,
} from '../domain/validation/validation-policy.js';
import { followMerges, MERGE_EVENTS, type MergeChain } from '../domain/merge-chain.js';
import { alertLoopOnceAlone, describeLoop } from './merge-loops.js';
import type { OrderLookup } from '../ports/order-lookup.js';
import type { StorageSpace } from '../ports/storage-space.js';
import type { StudyKeyService } from './study-keys.js';
import { PreparedQuery } from './prepared-query.js';
import { TransactionBatcher } from './transaction-batcher.js';
import { InstanceTurns, type Turn } from './instance-turns.js';

export interface IngestOutcome {
  /** 'quarantined': kept encrypted in quarantine for the data steward, not in the archive (docs/validation.md). */
  status: 'stored' | 'duplicate' | 'quarantined';
  sopInstanceUid: string;
  sopClassUid: string;
  studyUid: string;
  seriesUid: string;
  size: number;
  /** Parser warnings and validation defects that did not stop the object. */
  warnings: string[];
  /** Validation defects with what each one caused. */
  defects: ClassifiedDefect[];
  /** Set when status is 'quarantined'. */
  quarantineId?: string;
}

/** Whether an object went to (or already was in) the quarantine rather than the archive. */
export const heldInQuarantine = (o: IngestOutcome) =>
  o.status === 'quarantined' || o.quarantineId !== undefined;

/**
 * The warning every interface reports for an object that was kept, or undefined for plain success: B007 (the data
 * set does not match its SOP class) when validation found defects, whether the object was archived with warnings
 * or held in quarantine for the data steward; B000 (coercion of data elements) for the parser's other warnings.
 * `finding` is the first reason, for an interface with room for one (a DIMSE Error Comment).
 */
export function keptWarning(v: {
  quarantined: boolean;
  defects: readonly ClassifiedDefect[];
  warnings: readonly string[];
}): { status: number; finding: string } | undefined {
  if (v.quarantined) {
    const reason = v.defects.find((d) => d.disposition === 'quarantine')?.message;
    return {
      status: DicomStatus.DataSetMismatchWarning,
      finding: `quarantined${reason ? `: ${reason}` : ''}`,
    };
  }
  const warned = v.defects.find((d) => d.disposition === 'warn');
  if (warned) return { status: DicomStatus.DataSetMismatchWarning, finding: warned.message };
  if (v.warnings.length) return { status: DicomStatus.Warning, finding: v.warnings[0]! };
  return undefined;
}

export interface ValidationSettings {
  default: ValidationLevel;
  byAe: Record<string, ValidationLevel>;
  byChannel: Partial<Record<string, ValidationLevel>>;
}

export interface IngestContext {
  /** Which interface delivered the object, for the audit record. */
  channel: 'stow-rs' | 'import' | 'c-store';
  /** STOW-RS to /studies/{uid}: the instance must belong to that study (PS3.18 §10.5.1). */
  expectedStudyUid?: string;
  /** DICOM calling AE title (C-STORE), which selects `validation.byAe`. */
  callingAeTitle?: string;
  /**
   * The transfer syntax the transport's framing names for the object (a STOW-RS part's `transfer-syntax`
   * parameter). The object's own File Meta Information Transfer Syntax UID (0002,0010) has precedence (PS3.18
   * §8.7.9): one that disagrees is read as its file meta says, with a warning that names both.
   */
  declaredTransferSyntax?: string;
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
  onValidated?: (ids: {
    sopInstanceUid: string;
    sopClassUid: string;
    studyUid: string;
    /** What validation decided: accepted, with warnings, or to quarantine (a rejection throws instead). */
    validation: ValidationDecision;
  }) => void;
}

export interface IngestDeps {
  index: IndexDb;
  blobs: BlobStore;
  studyKeys: StudyKeyService;
  gate: AccessGate;
  ledger: AuditLedger;
  clock: Clock;
  limits: { maxInstanceBytes: number; maxHeaderBytes: number };
  validation: ValidationSettings;
  orders: OrderLookup;
  /** The free-space reserve: below it every object is refused before any of it is read (absent: no reserve). */
  space?: StorageSpace;
  /** The group commit that index writes join (shared with the study keys; default: one of its own). */
  writes?: TransactionBatcher;
  /** Identifier of a new quarantine entry (default: a random UUID). */
  newId?: () => string;
  /**
   * false only in bench/validation-cost.ts (through OpenAppOptions, never from configuration): skip the header
   * checks of src/domain/validation to measure what they cost. The archive-placement checks (a study under a
   * second patient, unknown accession numbers, the patient index) still run.
   */
  validateHeaders?: boolean;
}

/** What the index needs of an instance's header, whether it came from the parser or from quarantine. */
export interface HeaderForIndex {
  json: DicomJsonObject;
  bulk: BulkMap;
  transferSyntaxUid: string;
  warnings: string[];
}

/** Failure that still knows which SOP instance it concerned (for STOW FailedSOPSequence). */
export class IngestFailure extends CustosError {
  constructor(
    base: CustosError,
    readonly sopClassUid?: string,
    readonly sopInstanceUid?: string,
    /** Said after the base's message (e.g. that the failure went unrecorded). */
    note?: string,
  ) {
    super({
      code: base.code,
      message: note ? `${base.message} (${note})` : base.message,
      httpStatus: base.httpStatus,
      ...(base.dicomStatus !== undefined ? { dicomStatus: base.dicomStatus } : {}),
      ...(base.detail ? { detail: base.detail } : {}),
      cause: base,
    });
  }
}

/** Media Storage Directory Storage (PS3.10 §7.2, PS3.3 Annex F): a DICOMDIR file. */
export const MEDIA_STORAGE_DIRECTORY = '1.2.840.10008.1.3.10';

/** A DICOMDIR is the index of a medium (a patient CD), not an object: `custos import` skips it. */
const mediaDirectory = () =>
  new CustosError({
    code: 'ingest.media-directory',
    message:
      'a DICOMDIR (Media Storage Directory, 1.2.840.10008.1.3.10) indexes the files of a medium; it is not an object to archive',
    httpStatus: 400,
    dicomStatus: DicomStatus.SopClassNotSupported,
  });

const invalid = (attribute: string, message: string) =>
  new CustosError({
    code: 'ingest.invalid-attribute',
    message,
    httpStatus: 400,
    dicomStatus: DicomStatus.DataSetDoesNotMatchSopClass,
    detail: { attribute },
  });

/** A rejection names every defect that rejected the object; the first one's attribute is the headline. */
function rejection(defects: ClassifiedDefect[]): CustosError {
  const rejecting = defects.filter((d) => d.disposition === 'reject');
  const first = rejecting[0]!;
  return new CustosError({
    code: 'ingest.validation-failed',
    message: `rejected: ${rejecting
      .slice(0, 5)
      .map((d) => d.message)
      .join('; ')}${rejecting.length > 5 ? `; and ${rejecting.length - 5} more` : ''}`,
    httpStatus: 400,
    // PS3.18 Table 10.5.3-2 / PS3.4 C.4.2.1.4: A900 "Data Set does not match SOP Class".
    dicomStatus: DicomStatus.DataSetDoesNotMatchSopClass,
    detail: {
      attribute: first.attribute ?? null,
      defects: rejecting.map((d) => ({ kind: d.kind, attribute: d.attribute ?? null, message: d.message })),
    },
  });
}

/**
 * The one ingest pipeline (STOW-RS, C-STORE and import all call it): stream-parse the header while encrypting
 * the bytes to the blob store, validate identifiers, then index the instance and record the store in the same
 * transaction. Nothing is visible until that transaction commits; a failure removes the blob.
 */
export class IngestService {
  /** Index transactions of concurrent ingests commit together (group commit). */
  private readonly writes: TransactionBatcher;
  /** Objects naming the same SOP Instance UID are checked and committed one after the other. */
  private readonly turns = new InstanceTurns();

  constructor(private readonly deps: IngestDeps) {
    this.writes = deps.writes ?? new TransactionBatcher(deps.index.db);
  }

  /**
   * Whether the caller may store into the archive: throws access.denied (recorded) when not. Storage
   * Commitment asks it before it says what is stored, since only a sender of objects may ask that.
   */
  async requireStore(principal: Principal): Promise<void> {
    await this.deps.gate.require(principal, 'store', { type: 'archive' });
  }

  async ingest(
    principal: Principal,
    source: AsyncIterable<Buffer>,
    ctx: IngestContext,
  ): Promise<IngestOutcome> {
    const decision = await this.deps.gate.require(principal, 'store', { type: 'archive' });
    let writer: BlobWriter | undefined;
    /** Set once commit() was called: the blob's durability, which settles either way. */
    let committing: Promise<StoredBlob> | undefined;
    let stored: StoredBlob | undefined;
    let parsed: ParsedPart10 | undefined;
    let parser: Part10Parser | undefined;
    let turn: Turn | undefined;
    try {
      await this.deps.space?.ensureRoom();
      parser = new Part10Parser({ maxHeaderBytes: this.deps.limits.maxHeaderBytes });
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
        // The turn is taken as soon as the UID is read, so parts of one request are decided in the order sent.
        turn ??= this.takeTurn(parser.peekString(Tags.SOPInstanceUID));
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
        const studyUid = parser.peekString(Tags.StudyInstanceUID);
        if (!studyUid && getString(parsed.fileMeta, Tags.MediaStorageSOPClassUID) === MEDIA_STORAGE_DIRECTORY)
          throw mediaDirectory();
        writer = await this.openWriter(studyUid, ctx);
        for (const p of pending) await writer.write(p);
      }
      const json = this.headerJson(parsed);
      const record = toIndexRecord(json);
      this.validate(record, parsed, ctx);
      turn ??= this.takeTurn(record.instance.sopInstanceUid);
      // The blob is finished and made durable (hashing, encryption and writes on the blob thread, then its
      // fdatasync, rename and directory fsync) while the header is checked against the index and the index rows
      // are written: those need only its id, size and digest, known once it is sealed. The index transaction
      // commits only after the blob is durable (index()), so the index never refers to a blob a crash could
      // lose; an object the checks reject has its blob removed again.
      let onSealed!: (blob: StoredBlob) => void;
      const sealed = new Promise<StoredBlob>((resolve) => (onSealed = resolve));
      committing = writer.commit(onSealed);
      committing.catch(() => undefined); // awaited below, or in the catch
      const level = levelFor(this.deps.validation, {
        ...(ctx.callingAeTitle !== undefined
          ? { aeTitle: ctx.callingAeTitle }
          : principal.kind === 'ae'
            ? { aeTitle: principal.name }
            : {}),
        channel: ctx.channel,
      });
      // Until 7 Dec 2026 two objects with the same SOP Instance UID and different contents in one request raced
      // here: both could be quarantined, or one archived and the other quarantined, as the backend's timing fell.
      await turn?.ready;
      const verdict = decide(level, await this.check(parsed.dataset, record, principal));
      if (verdict.outcome === 'rejected') throw rejection(verdict.defects);
      ctx.onValidated?.({
        sopInstanceUid: record.instance.sopInstanceUid,
        sopClassUid: record.instance.sopClassUid,
        studyUid: record.study.studyUid,
        validation: verdict,
      });
      const blob = await Promise.race([sealed, committing]);
      const header: HeaderForIndex = {
        json,
        bulk: this.described(parsed).bulk,
        transferSyntaxUid: parsed.transferSyntaxUid,
        warnings: [
          ...parsed.warnings,
          ...declaredTransferSyntaxWarning(ctx.declaredTransferSyntax, parsed.transferSyntaxUid),
          ...verdict.defects.filter((d) => d.disposition === 'warn').map((d) => d.message),
        ],
      };
      // An object under a UID held in quarantine with other contents is a conflict, as against an archived one
      // (until 7 Dec 2026 it was archived beside the held entry).
      if (verdict.outcome !== 'quarantined') {
        const base = outcomeBase(record, header, blob, verdict.defects);
        const held = await this.heldCopy(blob, header, base, committing);
        if (held && !held.same) throw heldConflict(base.sopInstanceUid, held.id);
      }
      const outcome =
        verdict.outcome === 'quarantined'
          ? await this.quarantine(
              principal,
              decision.policy,
              record,
              header,
              await committing,
              ctx,
              level,
              verdict.defects,
            )
          : await this.index(principal, decision.policy, record, header, blob, ctx, verdict.defects, {
              durable: committing,
              besideHeld: true,
            });
      stored = await committing;
      if (outcome.status === 'duplicate') await this.deps.blobs.delete(stored.blobId);
      return outcome;
    } catch (err) {
      // A blob that became durable is removed again; one that did not was discarded by its writer.
      if (committing) stored = await committing.catch(() => undefined);
      else if (writer) await writer.abort();
      if (stored) await this.deps.blobs.delete(stored.blobId);
      const base =
        err instanceof CustosError
          ? err
          : new CustosError({
              code: 'ingest.failed',
              message: `the object could not be stored: ${(err as Error).message}`,
              dicomStatus: DicomStatus.ProcessingFailure,
              cause: err,
            });
      // Also for an object refused before its end (a study other than the URL's, a blob that could not be opened):
      // the parser has usually read its SOP UIDs by then, and the failure names them (FailedSOPSequence, ledger).
      const uidOf = (tag: number) => {
        if (parsed) return this.safeString(parsed, tag);
        const v = parser?.peekString(tag);
        return v !== undefined && isValidUid(v) ? v : undefined;
      };
      const sopClassUid = uidOf(Tags.SOPClassUID);
      const sopInstanceUid = uidOf(Tags.SOPInstanceUID);
      const recorded = await this.deps.ledger
        .append({
          principal,
          action: 'store',
          outcome: 'failure',
          policy: decision.policy,
          objects: { sopInstanceUid: sopInstanceUid ?? null, channel: ctx.channel },
          detail: { code: base.code, reason: base.message },
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      // A full disk or an index database out of reach may keep the failure's own record out too: the sender still
      // learns why its object was refused (that is what it can act on), and the message says it went unrecorded.
      if (recorded !== undefined && !isRetryLater(recorded)) throw recorded;
      throw new IngestFailure(
        base,
        sopClassUid,
        sopInstanceUid,
        recorded === undefined
          ? undefined
          : `the audit ledger could not record this failure either: ${(recorded as Error).message}`,
      );
    } finally {
      turn?.done();
    }
  }

  private takeTurn(sopInstanceUid: string | undefined): Turn | undefined {
    return sopInstanceUid ? this.turns.take(sopInstanceUid) : undefined;
  }

  /**
   * Records a `store` failure for what a transport refused before it reached the pipeline: a part that is not an
   * object to store (not application/dicom, malformed headers, a content transfer encoding, a body cut in its
   * framing) or a whole request refused (wrong media type, too large). A principal that may not store at all gets
   * its denial recorded by the gate instead, and the refusal stands.
   */
  async recordRefused(
    principal: Principal,
    channel: IngestContext['channel'],
    refusal: { code: string; reason: string; part?: number },
  ): Promise<void> {
    let policy: string;
    try {
      policy = (await this.deps.gate.require(principal, 'store', { type: 'archive' })).policy;
    } catch (err) {
      if (err instanceof CustosError && err.code === 'access.denied') return;
      throw err;
    }
    await this.deps.ledger.append({
      principal,
      action: 'store',
      outcome: 'failure',
      policy,
      objects: {
        sopInstanceUid: null,
        channel,
        ...(refusal.part !== undefined ? { part: refusal.part } : {}),
      },
      detail: { code: refusal.code, reason: refusal.reason },
    });
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

  /** The header as DICOM JSON and its bulk data map, built once per parsed object. */
  private readonly describedCache = new WeakMap<ParsedPart10, { json: DicomJsonObject; bulk: BulkMap }>();
  private described(parsed: ParsedPart10): { json: DicomJsonObject; bulk: BulkMap } {
    let d = this.describedCache.get(parsed);
    if (!d) {
      d = describeBulk(parsed);
      this.describedCache.set(parsed, d);
    }
    return d;
  }
  private headerJson(parsed: ParsedPart10): DicomJsonObject {
    return this.described(parsed).json;
  }

  private validate(r: InstanceIndexRecord, parsed: ParsedPart10, ctx: IngestContext) {
    const fileMeta = parsed.fileMeta;
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
    // The file meta information names the object it heads (PS3.10 §7.1); over C-STORE it is made from the request,
    // whose Affected SOP Class and Instance UIDs must be the data set's (PS3.4 B.2.3; 0xA900, as dcmtk's storescp
    // answers). Stored as it came, a header that disagrees would be served to every reader.
    const meta: [string, string, number, string][] = [
      ['SOPClassUID', 'Class', Tags.MediaStorageSOPClassUID, r.instance.sopClassUid],
      ['SOPInstanceUID', 'Instance', Tags.MediaStorageSOPInstanceUID, r.instance.sopInstanceUid],
    ];
    for (const [name, kind, tag, value] of meta) {
      const named = getString(fileMeta, tag);
      if (named === undefined || named === value) continue;
      throw invalid(
        name,
        ctx.channel === 'c-store'
          ? // Read as an Error Comment (LO, 64 characters): what differs first, then the data set's UID.
            `SOP ${kind} UID differs: data set ${value}, C-STORE request (Affected SOP ${kind} UID) '${named}'`
          : `the file meta information's Media Storage SOP ${kind} UID '${named}' is not the data set's SOP ${kind} UID ${value} (PS3.10 section 7.1)`,
      );
    }
    if (ctx.expectedStudyUid && ctx.expectedStudyUid !== r.study.studyUid) {
      throw invalid(
        'StudyInstanceUID',
        `the object belongs to study ${r.study.studyUid}, not to ${ctx.expectedStudyUid}`,
      );
    }
    // Pixel data encoded as its transfer syntax says (PS3.5 §8.1.1, A.4): native pixel data labelled with a
    // compressed syntax (a C-STORE on a JPEG or RLE context carrying uncompressed data, say) was stored, then failed
    // every decoder, rendering and C-GET until 5 Dec 2026; and the reverse cannot be read as native pixels.
    const px = parsed.pixelData;
    const ts = parsed.transferSyntaxUid;
    if (px?.tag === Tags.PixelData && !isReferencedPixelTransferSyntax(ts)) {
      const native = isNativeTransferSyntax(ts);
      if (native === px.encapsulated)
        throw invalid(
          'PixelData',
          native
            ? `encapsulated (7FE0,0010) PixelData under ${ts}, whose pixel data is native (a value of defined length, PS3.5 section 8.1.1)`
            : `native (7FE0,0010) PixelData under ${ts}, which encapsulates pixel data (undefined length, fragments: PS3.5 A.4)`,
        );
    }
  }

  /**
   * The header's patient demographics against the patient index (fed by HL7 ADT): a name, birth date or sex the
   * index knows differently. Compared only where both sides have a value; names as PN, ignoring case and padding.
   */
  private async demographicsDefects(patientPk: number, r: InstanceIndexRecord): Promise<Defect[]> {
    const known = await Q.demographics.first(this.deps.index.db, this.deps.index.dialect, { pk: patientPk });
    if (!known) return [];
    const out: Defect[] = [];
    const differs = (index: string, header: string) => index !== '' && header !== '' && index !== header;
    const checks: [string, number, string, string][] = [
      ['00100010', Tags.PatientName, known.patient_name_norm, r.patient.nameNorm],
      ['00100030', Tags.PatientBirthDate, known.birth_date, r.patient.birthDate],
      ['00100040', Tags.PatientSex, known.sex, r.patient.sex],
    ];
    for (const [tag, t, index, header] of checks) {
      if (differs(index, header))
        out.push({
          kind: 'patient-index-mismatch',
          tag,
          attribute: attributeLabel(t),
          message: `${attributeLabel(t)} differs from the patient index for PatientID '${r.patient.patientId}'`,
        });
    }
    return out;
  }

  /**
   * Every defect of the header (required attributes, value syntax, VM) and of its place in the archive: a study
   * never under two patients, an AccessionNumber that matches a known order when orders are known.
   */
  async check(ds: Dataset, r: InstanceIndexRecord, principal?: Principal): Promise<Defect[]> {
    const defects = this.deps.validateHeaders === false ? [] : validateHeader(ds).defects;
    const filed = await Q.studyPatient.first(this.deps.index.db, this.deps.index.dialect, {
      studyUid: r.study.studyUid,
    });
    // The object's patient as the patient index resolves it (an identifier merged away by HL7 A40/A34 leads to
    // the surviving patient, an object without an issuer to the patient known under its ID), so late images of
    // a merged patient join their study instead of looking like a second patient.
    let loop: MergeChain | undefined;
    const own = r.patient.patientId
      ? await knownPatient(
          this.deps.index.db,
          this.deps.index.dialect,
          r.patient.patientId,
          r.patient.issuer,
          (chain) => (loop = chain),
        )
      : undefined;
    // A loop of merges on the object's way (rare): the data steward is told once per loop (merge-loops.ts).
    if (loop) await this.alertMergeLoop(loop, r, principal);
    if (own !== undefined) defects.push(...(await this.demographicsDefects(own, r)));
    if (filed && own !== filed.patient_pk) {
      defects.push({
        kind: 'study-patient-conflict',
        tag: '00100020',
        attribute: attributeLabel(Tags.PatientID),
        message: `${attributeLabel(Tags.PatientID)} does not match: study ${r.study.studyUid} is already filed under another patient`,
      });
    }
    if (r.study.accessionNumber) {
      const order = await this.deps.orders.checkAccession(r.study.accessionNumber);
      if (order === 'not-found') {
        defects.push({
          kind: 'unknown-accession',
          tag: '00080050',
          attribute: attributeLabel(Tags.AccessionNumber),
          message: `${attributeLabel(Tags.AccessionNumber)} '${r.study.accessionNumber}' matches no known order`,
        });
      }
    }
    return defects;
  }

  /**
   * Keep a defective object for the data steward: its blob stays (encrypted under the study key), the entry and
   * its audit and alert records commit together. Nothing about it is visible to query or retrieve.
   */
  private async quarantine(
    principal: Principal,
    policy: string,
    r: InstanceIndexRecord,
    header: HeaderForIndex,
    blob: StoredBlob,
    ctx: IngestContext,
    level: ValidationLevel,
    defects: ClassifiedDefect[],
    /** Decided a second time, after another writer came between the checks and the insert. */
    again = false,
  ): Promise<IngestOutcome> {
    const base = outcomeBase(r, header, blob, defects);
    const archived = await this.deps.index.db
      .selectFrom('instances')
      .select('sha256')
      .where('sop_instance_uid', '=', r.instance.sopInstanceUid)
      .executeTakeFirst();
    if (archived)
      return this.duplicateOrConflict(principal, policy, archived.sha256, blob, header, base, ctx);
    // A second, different object under a UID already held was kept as a second entry until 7 Dec 2026.
    const held = await this.heldCopy(blob, header, base);
    if (held?.same) return { status: 'duplicate', ...base, quarantineId: held.id };
    if (held) throw heldConflict(base.sopInstanceUid, held.id);
    const id = (this.deps.newId ?? randomUUID)();
    const now = this.deps.clock.now().toISOString();
    const reasons = defects.filter((d) => d.disposition === 'quarantine').map((d) => d.message);
    const sender = ctx.callingAeTitle ?? principal.name;
    let raced = false;
    await this.deps.index.db.transaction().execute(async (trx) => {
      // Another process may have archived or quarantined this UID since the checks above: decided again below.
      // The ledger's lock, which the records below take anyway, is taken before looking: on PostgreSQL every
      // ingest transaction of every process queues there, so the reads below see what another process committed
      // under it. Until 7 Dec 2026 they read first, and two processes quarantined two objects under one UID, or one
      // archived an object while the other quarantined a different one beside it (SQLite's transactions hold the
      // database's one write lock from their start).
      await this.deps.ledger.lockIn(trx);
      const uid = r.instance.sopInstanceUid;
      const since =
        (await trx
          .selectFrom('instances')
          .select('sha256')
          .where('sop_instance_uid', '=', uid)
          .executeTakeFirst()) ??
        (await trx
          .selectFrom('quarantine')
          .select('sha256')
          .where('sop_instance_uid', '=', uid)
          .where('status', '=', 'quarantined')
          .executeTakeFirst());
      if (since) {
        raced = true;
        return;
      }
      await trx
        .insertInto('quarantine')
        .values({
          id,
          sop_instance_uid: r.instance.sopInstanceUid,
          sop_class_uid: r.instance.sopClassUid,
          study_uid: r.study.studyUid,
          series_uid: r.series.seriesUid,
          patient_id: r.patient.patientId,
          transfer_syntax_uid: header.transferSyntaxUid,
          blob_id: blob.blobId,
          size: blob.size,
          sha256: blob.sha256,
          metadata_json: JSON.stringify(header.json),
          bulk_json: JSON.stringify(header.bulk),
          defects_json: JSON.stringify(defects),
          corrections_json: '{}',
          status: 'quarantined',
          level,
          channel: ctx.channel,
          sender,
          reason: null,
          created_at: now,
          updated_at: now,
        })
        .execute();
      const objects = {
        quarantineId: id,
        seriesUid: r.series.seriesUid,
        sopInstanceUid: r.instance.sopInstanceUid,
        sopClassUid: r.instance.sopClassUid,
        channel: ctx.channel,
        size: blob.size,
      };
      await this.deps.ledger.appendIn(trx, {
        principal,
        action: 'quarantine',
        outcome: 'success',
        policy,
        patientId: r.patient.patientId,
        studyUid: r.study.studyUid,
        objects,
        detail: { level, reasons, sender },
      });
      // The data steward's notification: an alert record the alerting issue routes to its notifiers.
      await this.deps.ledger.appendIn(trx, {
        principal,
        action: 'alert',
        outcome: 'success',
        policy,
        patientId: r.patient.patientId,
        studyUid: r.study.studyUid,
        objects,
        detail: { alert: 'quarantine', notify: 'data-steward', reasons },
      });
    });
    if (raced && !again)
      return this.quarantine(principal, policy, r, header, blob, ctx, level, defects, true);
    if (raced)
      throw new CustosError({
        code: 'ingest.conflict',
        message: `SOP instance ${r.instance.sopInstanceUid} was being stored by another writer at the same time; it was not stored`,
        httpStatus: 409,
        dicomStatus: DicomStatus.DuplicateSopInstance,
        detail: { sopInstanceUid: r.instance.sopInstanceUid },
      });
    return { status: 'quarantined', ...base, quarantineId: id };
  }

  /**
   * Tell the data steward of a loop of merges (A into B, B into A, made before cyclic merges were refused) that an
   * object's PatientID led into: an `alert` (merge-loop, as the HL7 feed raises, docs/hl7.md) naming the loop's
   * patients, the one the object is filed under and the object, once per loop whoever meets it first. Only an
   * object whose walk found a loop gets here; until 7 Dec 2026 ingest filed such objects and told no one.
   */
  private async alertMergeLoop(chain: MergeChain, r: InstanceIndexRecord, principal?: Principal) {
    const db = this.deps.index.db;
    const loop = await describeLoop(db, chain);
    await alertLoopOnceAlone(
      db,
      this.deps.ledger,
      loop,
      {
        principal: principal ?? INGEST_PRINCIPAL,
        action: 'alert',
        outcome: 'failure',
        policy: 'n/a',
        patientId: loop.survivor.patientId,
        studyUid: r.study.studyUid,
        objects: { sopInstanceUids: [r.instance.sopInstanceUid] },
        detail: {
          alert: 'merge-loop',
          notify: 'data-steward',
          found: 'ingest',
          patientId: r.patient.patientId,
          issuer: r.patient.issuer,
          loop: loop.patients,
          filedUnder: loop.survivor,
        },
      },
      this.deps.clock.now().toISOString(),
    );
  }

  /**
   * File an instance in the index (patient, study, series, instance) and record the store, in one transaction.
   * Used at ingest and when the data steward releases an object from quarantine (`extra` then marks the
   * quarantine entry and stores the header corrections in the same transaction).
   */
  async index(
    principal: Principal,
    policy: string,
    r: InstanceIndexRecord,
    header: HeaderForIndex,
    blob: StoredBlob,
    ctx: IngestContext,
    defects: ClassifiedDefect[],
    extra?: {
      inTransaction?: (trx: Kysely<DatabaseSchema>) => Promise<void>;
      audit?: Record<string, unknown>;
      /**
       * The blob's commit, when it is still being made durable: the transaction writes its rows meanwhile and
       * commits only once this resolved (a failure rolls the rows back). The wait holds the index's write
       * transaction open for what remains of the blob's syncs, about a millisecond.
       */
      durable?: Promise<unknown>;
      /**
       * A new object (not a release): one under a UID that another process put in quarantine since ingest() looked
       * is a duplicate or a conflict, as one found there before.
       */
      besideHeld?: boolean;
    },
  ): Promise<IngestOutcome> {
    const { json, bulk } = header;
    const base = outcomeBase(r, header, blob, defects);
    const now = this.deps.clock.now().toISOString();
    let filed: { existingSha256?: string; held?: true };
    try {
      filed = await this.writes.run(async (trx) => {
        const dialect = this.deps.index.dialect;
        // Another process may have quarantined this UID since ingest() looked (its transaction and this one take
        // turns at the ledger's lock, which the batch took first: PostgreSQL's advisory lock, SQLite's one write
        // lock): looked for again in the same statement, so no round trip is added (one more index probe, on the
        // quarantine). The ingest turns (instance-turns.ts) hold the UID only within one process. Until 7 Dec 2026
        // SQLite kept the plain look, and with `serve --workers` an object was archived beside a different one
        // another process had just quarantined.
        const existing = extra?.besideHeld
          ? await Q.instanceOrHeld.first(trx, dialect, { sopInstanceUid: r.instance.sopInstanceUid })
          : await Q.instanceSha.first(trx, dialect, { sopInstanceUid: r.instance.sopInstanceUid });
        if (existing && 'held' in existing && existing.held) return { held: true };
        if (existing) return { existingSha256: existing.sha256 };
        const patientPk = await upsertPatient(trx, dialect, r, now);
        const newStudy = await Q.insertStudy.first(trx, dialect, {
          studyUid: r.study.studyUid,
          patientPk,
          date: r.study.date,
          time: r.study.time,
          accessionNumber: r.study.accessionNumber,
          referringPhysician: r.study.referringPhysician,
          referringPhysicianNorm: r.study.referringPhysicianNorm,
          description: r.study.description,
          studyId: r.study.studyId,
          attrsJson: JSON.stringify(r.study.attrs),
          referringPhysicianIds: r.study.referringPhysicianIds.join('\\'),
          department: r.study.department || null,
          now,
        });
        if (!newStudy) {
          const owner = await Q.studyPatient.first(trx, dialect, { studyUid: r.study.studyUid });
          if (!owner) throw new Error(`study ${r.study.studyUid} was neither inserted nor found`);
          if (owner.patient_pk !== patientPk) {
            // A Study Instance UID never spans two patients (issue 6 makes this a quarantine case).
            throw invalid(
              'PatientID',
              `study ${r.study.studyUid} is already filed under another patient; PatientID '${r.patient.patientId}' does not match`,
            );
          }
        }
        const newSeries = await Q.insertSeries.first(trx, dialect, {
          ...r.series,
          studyUid: r.study.studyUid,
          attrsJson: JSON.stringify(r.series.attrs),
          now,
        });
        if (!newSeries) {
          const s = await Q.seriesStudy.first(trx, dialect, { seriesUid: r.series.seriesUid });
          if (!s) throw new Error(`series ${r.series.seriesUid} was neither inserted nor found`);
          if (s.study_uid !== r.study.studyUid) {
            throw invalid(
              'SeriesInstanceUID',
              `series ${r.series.seriesUid} already belongs to another study`,
            );
          }
        }
        await Q.insertInstance.execute(trx, dialect, {
          sopInstanceUid: r.instance.sopInstanceUid,
          seriesUid: r.series.seriesUid,
          studyUid: r.study.studyUid,
          sopClassUid: r.instance.sopClassUid,
          instanceNumber: r.instance.instanceNumber,
          transferSyntaxUid: header.transferSyntaxUid,
          blobId: blob.blobId,
          size: blob.size,
          sha256: blob.sha256,
          rows: r.instance.rows,
          columns: r.instance.columns,
          numberOfFrames: r.instance.numberOfFrames,
          metadataJson: JSON.stringify(json),
          bulkJson: JSON.stringify(bulk),
          now,
        });
        await Q.countInSeries.execute(trx, dialect, { seriesUid: r.series.seriesUid });
        await Q.countInStudy.execute(trx, dialect, {
          newSeries: newSeries ? 1 : 0,
          size: blob.size,
          now,
          studyUid: r.study.studyUid,
        });
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
          ...(defects.length || extra?.audit
            ? {
                detail: {
                  ...(defects.length ? { validation: defects.map((d) => d.message) } : {}),
                  ...extra?.audit,
                },
              }
            : {}),
        });
        if (extra?.inTransaction) await extra.inTransaction(trx);
        if (extra?.durable) await extra.durable;
        return {};
      });
    } catch (err) {
      // A concurrent writer stored the same SOP instance between our check and our insert.
      const again = await this.deps.index.db
        .selectFrom('instances')
        .select(['sha256', 'blob_id'])
        .where('sop_instance_uid', '=', r.instance.sopInstanceUid)
        .executeTakeFirst();
      if (again && again.blob_id !== blob.blobId)
        return this.duplicateOrConflict(
          principal,
          policy,
          again.sha256,
          blob,
          header,
          base,
          ctx,
          extra?.durable,
        );
      throw err;
    }
    if (filed.held) {
      // Until 7 Dec 2026 this object was archived beside the entry another process had just quarantined.
      const held = await this.heldCopy(blob, header, base, extra?.durable);
      if (held?.same) return { status: 'duplicate', ...base, quarantineId: held.id };
      if (held) throw heldConflict(base.sopInstanceUid, held.id);
      // The entry was released or rejected meanwhile: decided again, against what is there now.
      return this.index(principal, policy, r, header, blob, ctx, defects, extra);
    }
    if (filed.existingSha256 !== undefined)
      return this.duplicateOrConflict(
        principal,
        policy,
        filed.existingSha256,
        blob,
        header,
        base,
        ctx,
        extra?.durable,
      );
    return { status: 'stored', ...base };
  }

  /**
   * Whether an object whose bytes differ from the stored one's is the same object all the same: the same data set
   * in the same transfer syntax, under another file meta header. A C-STORE's header is written by Custos and
   * names the sending AE (Source AE Title), so the same object sent by a second AE, a router's retry or a later
   * STOW-RS of the sender's file differs there alone; until 5 Dec 2026 each was refused as a conflict (0x0111,
   * 409). Read only when the digests differ, which is rare; both blobs are compared from their data sets on.
   */
  private async sameDataSet(
    blob: StoredBlob,
    header: HeaderForIndex,
    base: Omit<IngestOutcome, 'status'>,
    /** The new blob's commit, when it may still be under way: its bytes are read once it is durable. */
    durable?: Promise<unknown>,
    /** The copy to compare with: a quarantine entry; the archived instance when absent. */
    copy?: StoredCopy,
  ): Promise<boolean> {
    const row =
      copy ??
      (await this.deps.index.db
        .selectFrom('instances')
        .select(['blob_id', 'sha256', 'study_uid', 'transfer_syntax_uid', 'bulk_json', 'size'])
        .where('sop_instance_uid', '=', base.sopInstanceUid)
        .executeTakeFirst());
    if (!row || row.study_uid !== base.studyUid || row.transfer_syntax_uid !== header.transferSyntaxUid)
      return false;
    const storedStart = (JSON.parse(row.bulk_json) as BulkMap).datasetStart;
    const newStart = header.bulk.datasetStart;
    if (row.size - storedStart !== blob.size - newStart) return false;
    const key = await this.deps.studyKeys.keyForStore(base.studyUid);
    await durable;
    return sameBytes(
      this.deps.blobs.read(
        asBlobId(row.blob_id),
        key,
        { start: storedStart, end: row.size },
        { size: row.size },
      ),
      this.deps.blobs.read(blob.blobId, key, { start: newStart, end: blob.size }, { size: blob.size }),
    );
  }

  /**
   * The quarantine entry still waiting for the data steward (status quarantined) under this object's SOP Instance
   * UID, and whether it holds the same object (same bytes, or the same data set under another file meta header).
   * An entry with the same object comes first.
   */
  private async heldCopy(
    blob: StoredBlob,
    header: HeaderForIndex,
    base: Omit<IngestOutcome, 'status'>,
    durable?: Promise<unknown>,
  ): Promise<{ id: string; same: boolean } | undefined> {
    const held = await this.deps.index.db
      .selectFrom('quarantine')
      .select(['id', 'blob_id', 'sha256', 'study_uid', 'transfer_syntax_uid', 'bulk_json', 'size'])
      .where('sop_instance_uid', '=', base.sopInstanceUid)
      .where('status', '=', 'quarantined')
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    for (const h of held)
      if (h.sha256 === blob.sha256 || (await this.sameDataSet(blob, header, base, durable, h)))
        return { id: h.id, same: true };
    return held[0] && { id: held[0].id, same: false };
  }

  private async duplicateOrConflict(
    principal: Principal,
    policy: string,
    existingSha: string,
    blob: StoredBlob,
    header: HeaderForIndex,
    base: Omit<IngestOutcome, 'status'>,
    ctx: IngestContext,
    durable?: Promise<unknown>,
  ): Promise<IngestOutcome> {
    if (existingSha === blob.sha256 || (await this.sameDataSet(blob, header, base, durable))) {
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

/** A stored copy of an object, in the archive or in quarantine, as sameDataSet compares it. */
type StoredCopy = Pick<
  DatabaseSchema['instances'],
  'blob_id' | 'sha256' | 'study_uid' | 'transfer_syntax_uid' | 'bulk_json' | 'size'
>;

/**
 * An object whose SOP Instance UID is held in quarantine with other contents: refused as a conflict (0x0111, as
 * against an archived instance), so that the data steward never finds two different objects under one UID.
 */
const heldConflict = (sopInstanceUid: string, quarantineId: string) =>
  new CustosError({
    code: 'ingest.conflict',
    message: `SOP instance ${sopInstanceUid} is already held in quarantine (${quarantineId}) with different content; it was not stored`,
    httpStatus: 409,
    dicomStatus: DicomStatus.DuplicateSopInstance,
    detail: { sopInstanceUid, quarantineId },
  });

/**
 * PS3.18 §8.7.9: where a part's media type and its File Meta Information disagree on the transfer syntax, the
 * latter has precedence. Until 7 Dec 2026 the disagreement went unsaid; the sender now hears of it (a label that
 * does not match its bytes is often a sign of a transcoding gone wrong on its side).
 */
function declaredTransferSyntaxWarning(declared: string | undefined, fileMeta: string): string[] {
  if (declared === undefined || declared === fileMeta) return [];
  return [
    `the part's Content-Type names transfer-syntax=${declared.slice(0, 64)}, but its File Meta Information Transfer Syntax UID (0002,0010) is ${fileMeta}: read and stored as ${fileMeta}, which has precedence (PS3.18 section 8.7.9)`,
  ];
}

/** Whether two async byte streams hold the same bytes. */
async function sameBytes(a: AsyncIterable<Buffer>, b: AsyncIterable<Buffer>): Promise<boolean> {
  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  let ba: Buffer = Buffer.alloc(0);
  let bb: Buffer = Buffer.alloc(0);
  let doneA = false;
  let doneB = false;
  for (;;) {
    if (ba.length === 0 && !doneA) {
      const n = await ia.next();
      if (n.done) doneA = true;
      else ba = n.value;
    }
    if (bb.length === 0 && !doneB) {
      const n = await ib.next();
      if (n.done) doneB = true;
      else bb = n.value;
    }
    if (ba.length === 0 && bb.length === 0) {
      if (doneA && doneB) return true;
      continue;
    }
    if (ba.length === 0 || bb.length === 0) {
      if ((ba.length === 0 && doneA) || (bb.length === 0 && doneB)) {
        await ia.return?.();
        await ib.return?.();
        return false;
      }
      continue;
    }
    const n = Math.min(ba.length, bb.length);
    if (!ba.subarray(0, n).equals(bb.subarray(0, n))) {
      await ia.return?.();
      await ib.return?.();
      return false;
    }
    ba = ba.subarray(n);
    bb = bb.subarray(n);
  }
}

/**
 * The patient the index already knows for an object's PatientID (patient-feed.ts, docs/hl7.md): an object
 * without IssuerOfPatientID belongs to the patient known under that ID whatever its assigning authority (an HL7
 * A01 usually comes before the images), and an identifier merged away by A40/A34 leads to the surviving patient,
 * so late images of a merged patient join their study.
 */
async function knownPatient(
  trx: Kysely<DatabaseSchema>,
  dialect: SqlDialectName,
  patientId: string,
  issuer: string,
  onLoop?: (chain: MergeChain) => void,
): Promise<number | undefined> {
  const rows =
    issuer !== ''
      ? await Q.patientsByIdAndIssuer.rows(trx, dialect, { patientId, issuer })
      : await Q.patientsById.rows(trx, dialect, { patientId });
  const pk = (rows.find((p) => p.issuer === issuer) ?? rows[0])?.pk;
  if (pk === undefined) return undefined;
  const chain = await followMerges(pk, async (from) => {
    const merged = await Q.mergedInto.first(trx, dialect, { pk: from });
    return merged && { survivor: merged.surviving_patient_pk, order: merged.pk };
  });
  if (chain.loop) onLoop?.(chain);
  return chain.survivor;
}

/** Who raises what ingest's check finds when its caller names no principal. */
const INGEST_PRINCIPAL: Principal = {
  kind: 'system',
  id: asUserId('system'),
  name: 'system:ingest',
  role: 'system',
  source: 'ingest',
};

function outcomeBase(
  r: InstanceIndexRecord,
  header: HeaderForIndex,
  blob: StoredBlob,
  defects: ClassifiedDefect[],
): Omit<IngestOutcome, 'status'> {
  return {
    sopInstanceUid: r.instance.sopInstanceUid,
    sopClassUid: r.instance.sopClassUid,
    studyUid: r.study.studyUid,
    seriesUid: r.series.seriesUid,
    size: blob.size,
    warnings: header.warnings,
    defects,
  };
}

async function upsertPatient(
  trx: Kysely<DatabaseSchema>,
  dialect: SqlDialectName,
  r: InstanceIndexRecord,
  now: string,
): Promise<number> {
  const known = await knownPatient(trx, dialect, r.patient.patientId, r.patient.issuer);
  if (known !== undefined) return known;
  const { patientId, issuer } = r.patient;
  await Q.insertPatient.execute(trx, dialect, { ...r.patient, now });
  const row = await Q.patientsByIdAndIssuer.first(trx, dialect, { patientId, issuer });
  if (!row) throw new Error(`patient ${patientId} was neither inserted nor found`);
  return row.pk;
}

/**
 * The statements every stored object runs, each built and compiled once per dialect (prepared-query.ts). `p.x`
 * stands in for the argument `x` of each run; the types say what a run passes.
 */
const Q = {
  instanceSha: new PreparedQuery((db, p: { sopInstanceUid: string }) =>
    db.selectFrom('instances').select('sha256').where('sop_instance_uid', '=', p.sopInstanceUid),
  ),
  /** The archived instance (held 0) or else a quarantine entry still held under the UID (held 1), in one statement. */
  instanceOrHeld: new PreparedQuery((db, p: { sopInstanceUid: string }) =>
    db
      .selectFrom('instances')
      .select(['sha256', sql<number>`0`.as('held')])
      .where('sop_instance_uid', '=', p.sopInstanceUid)
      .unionAll(
        db
          .selectFrom('quarantine')
          .select(['sha256', sql<number>`1`.as('held')])
          .where('sop_instance_uid', '=', p.sopInstanceUid)
          .where('status', '=', 'quarantined'),
      )
      .orderBy('held')
      .limit(1),
  ),
  studyPatient: new PreparedQuery((db, p: { studyUid: string }) =>
    db.selectFrom('studies').select('patient_pk').where('study_uid', '=', p.studyUid),
  ),
  seriesStudy: new PreparedQuery((db, p: { seriesUid: string }) =>
    db.selectFrom('series').select('study_uid').where('series_uid', '=', p.seriesUid),
  ),
  demographics: new PreparedQuery((db, p: { pk: number }) =>
    db.selectFrom('patients').select(['patient_name_norm', 'birth_date', 'sex']).where('pk', '=', p.pk),
  ),
  patientsById: new PreparedQuery((db, p: { patientId: string }) =>
    db.selectFrom('patients').select(['pk', 'issuer']).where('patient_id', '=', p.patientId).orderBy('pk'),
  ),
  patientsByIdAndIssuer: new PreparedQuery((db, p: { patientId: string; issuer: string }) =>
    db
      .selectFrom('patients')
      .select(['pk', 'issuer'])
      .where('patient_id', '=', p.patientId)
      .where('issuer', '=', p.issuer)
      .orderBy('pk'),
  ),
  mergedInto: new PreparedQuery((db, p: { pk: number }) =>
    db
      .selectFrom('patient_merges')
      .select(['pk', 'surviving_patient_pk'])
      .where('prior_patient_pk', '=', p.pk)
      .where('event', 'in', MERGE_EVENTS)
      .orderBy('pk', 'desc')
      .limit(1),
  ),
  insertPatient: new PreparedQuery((db, p: InstanceIndexRecord['patient'] & { now: string }) =>
    db
      .insertInto('patients')
      .values({
        patient_id: p.patientId,
        issuer: p.issuer,
        patient_name: p.name,
        patient_name_norm: p.nameNorm,
        birth_date: p.birthDate,
        sex: p.sex,
        created_at: p.now,
      })
      .onConflict((oc) => oc.columns(['patient_id', 'issuer']).doNothing()),
  ),
  insertStudy: new PreparedQuery(
    (
      db,
      p: {
        studyUid: string;
        patientPk: number;
        date: string;
        time: string;
        accessionNumber: string;
        referringPhysician: string;
        referringPhysicianNorm: string;
        description: string;
        studyId: string;
        attrsJson: string;
        referringPhysicianIds: string;
        department: string | null;
        now: string;
      },
    ) =>
      db
        .insertInto('studies')
        .values({
          study_uid: p.studyUid,
          patient_pk: p.patientPk,
          study_date: p.date,
          study_time: p.time,
          accession_number: p.accessionNumber,
          referring_physician_name: p.referringPhysician,
          referring_physician_norm: p.referringPhysicianNorm,
          study_description: p.description,
          study_id: p.studyId,
          modalities: '',
          attrs_json: p.attrsJson,
          num_series: 0,
          num_instances: 0,
          total_bytes: 0,
          referring_physician_ids: p.referringPhysicianIds,
          owner: null,
          department: p.department,
          classification: 'normal',
          retention_until: null,
          status: 'active',
          created_at: p.now,
          updated_at: p.now,
        })
        .onConflict((oc) => oc.column('study_uid').doNothing())
        .returning('study_uid'),
  ),
  insertSeries: new PreparedQuery(
    (
      db,
      p: Omit<InstanceIndexRecord['series'], 'attrs'> & { studyUid: string; attrsJson: string; now: string },
    ) =>
      db
        .insertInto('series')
        .values({
          series_uid: p.seriesUid,
          study_uid: p.studyUid,
          modality: p.modality,
          series_number: p.seriesNumber,
          series_description: p.description,
          body_part: p.bodyPart,
          pps_start_date: p.ppsStartDate,
          pps_start_time: p.ppsStartTime,
          attrs_json: p.attrsJson,
          num_instances: 0,
          created_at: p.now,
        })
        .onConflict((oc) => oc.column('series_uid').doNothing())
        .returning('series_uid'),
  ),
  insertInstance: new PreparedQuery(
    (
      db,
      p: {
        sopInstanceUid: string;
        seriesUid: string;
        studyUid: string;
        sopClassUid: string;
        instanceNumber: number | null;
        transferSyntaxUid: string;
        blobId: string;
        size: number;
        sha256: string;
        rows: number | null;
        columns: number | null;
        numberOfFrames: number | null;
        metadataJson: string;
        bulkJson: string;
        now: string;
      },
    ) =>
      db.insertInto('instances').values({
        sop_instance_uid: p.sopInstanceUid,
        series_uid: p.seriesUid,
        study_uid: p.studyUid,
        sop_class_uid: p.sopClassUid,
        instance_number: p.instanceNumber,
        transfer_syntax_uid: p.transferSyntaxUid,
        blob_id: p.blobId,
        size: p.size,
        sha256: p.sha256,
        rows: p.rows,
        columns: p.columns,
        number_of_frames: p.numberOfFrames,
        metadata_json: p.metadataJson,
        bulk_json: p.bulkJson,
        status: 'active',
        created_at: p.now,
      }),
  ),
  countInSeries: new PreparedQuery((db, p: { seriesUid: string }) =>
    db
      .updateTable('series')
      .set((eb) => ({ num_instances: eb('num_instances', '+', 1) }))
      .where('series_uid', '=', p.seriesUid),
  ),
  countInStudy: new PreparedQuery(
    (db, p: { newSeries: number; size: number; now: string; studyUid: string }) =>
      db
        .updateTable('studies')
        .set((eb) => ({
          num_instances: eb('num_instances', '+', 1),
          num_series: eb('num_series', '+', p.newSeries),
          total_bytes: eb('total_bytes', '+', p.size),
          updated_at: p.now,
        }))
        .where('study_uid', '=', p.studyUid),
  ),
};
