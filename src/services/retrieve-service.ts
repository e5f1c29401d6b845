import { createInflateRaw } from 'node:zlib';
import { isNativeTransferSyntax } from '../dicom/transfer-syntax.js';
import { CustosError } from '../domain/errors.js';
import { asBlobId, asUserId } from '../domain/ids.js';
import type { Principal } from '../domain/principal.js';
import type { DicomJsonObject } from '../domain/dicom-levels.js';
import { frameRanges, type BulkMap, type ByteRange } from '../domain/frames.js';
import { GIF_TRAILER, gifDelays, type RenderedMediaType } from '../domain/image-encoding.js';
import { frameDurations } from '../domain/frame-timing.js';
import { voiFunctionOf, type Viewport, type VoiFunction } from '../domain/render.js';
import type {
  DecodedFrame,
  FrameDecoder,
  FrameGeometry,
  RenderedFrame,
  RenderOutput,
} from '../ports/frame-decoder.js';
import type { Action } from '../ports/policy.js';
import type { AuditLedger } from '../ports/audit-ledger.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { IndexDb } from '../ports/database.js';
import type { AccessGate } from './access-gate.js';
import { prefetch, type Prefetched } from './prefetch.js';
import { readStoredToEnd } from './stored-object-check.js';
import { STUDY_FACT_COLUMNS, type StudyFacts } from './study-facts.js';
import type { StudyKeyService } from './study-keys.js';
import { mergeCorrections, rewriteHeaderAs } from '../dicom/header-rewrite.js';
import { explicitPart10 } from '../dicom/implicit-vr.js';
import { bigEndianWordSize, inflatedPart10, littleEndianFromBigEndian } from '../dicom/little-endian.js';
import { Tags, TransferSyntax } from '../dicom/tags.js';
import {
  applyToJson,
  asHeaderCorrections,
  cannotCorrectDeflated,
  patientCorrections,
  type HeaderCorrection,
} from './header-overlay.js';
import type { CorrectedHeader, CorrectionOverlay } from './correction-overlay.js';

export interface RetrieveScope {
  studyUid: string;
  seriesUid?: string;
  sopInstanceUid?: string;
  /**
   * The patient the study must belong to, where the request names one above the study (a Patient Root C-MOVE or
   * C-GET below the PATIENT level, PS3.4 C.4.2.2.1): a study of another patient matches nothing.
   */
  patientId?: string;
}

export interface InstanceRef {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  transferSyntaxUid: string;
  blobId: string;
  /** The size as served (the stored size, or what the corrected header makes of it). */
  size: number;
  /** The size of the stored object, as the index records it. */
  storedSize: number;
  sha256: string;
  /** The header as served: stored metadata with the corrections applied. */
  metadata: DicomJsonObject;
  bulk: BulkMap;
  /** Where the served header differs from the stored one (the patient index changed since it was stored). */
  corrections: HeaderCorrection[];
  /** True when the served bytes need a rewritten header (steward corrections and/or patient-index ones). */
  rewritten: boolean;
  /**
   * The header served in place of the stored one (view-pixels only): a data steward's quarantine corrections
   * and the patient index's, merged by mergeCorrections (patient index wins for the patient attributes).
   */
  corrected?: CorrectedHeader;
  /**
   * Set (to why) when the instance failed its fixity check and will not be served: only opened with
   * `damagedAsFailed`, where it is one failed sub-operation of a C-MOVE or C-GET rather than the whole retrieve's
   * refusal.
   */
  damaged?: string;
}

export interface RetrieveDeps {
  index: IndexDb;
  blobs: BlobStore;
  studyKeys: StudyKeyService;
  gate: AccessGate;
  ledger: AuditLedger;
  facts: StudyFacts;
  overlay: CorrectionOverlay;
  /** Decodes compressed frames (RLE, JPEG, JPEG-LS, JPEG 2000): rendering, decoded frames, decompressed objects. */
  decoder: FrameDecoder;
  /** The operator's log (OpenAppOptions.notice): told of damage a read found. */
  notice?: (line: string) => void;
}

/** How a frame is rendered (renderImage): the window and its function, the quality, viewport and media type. */
export interface RenderOptions {
  windowCenter?: number;
  windowWidth?: number;
  voiFunction?: VoiFunction;
  quality?: number;
  viewport?: Viewport;
  format?: RenderedMediaType;
}

const MAX_AUDITED_UIDS = 10_000;
/** Why an instance the fixity job (or an earlier read) found damaged is refused. */
const NOT_SERVED = 'failed the fixity check and will not be served; restore from backup (docs/fixity.md)';
/** The largest frame rendered (rows × columns), as jpeg-js bounds the images it decodes. */
const MAX_RENDERED_PIXELS = 100_000_000;
const EXPLICIT_VR_LITTLE_ENDIAN = TransferSyntax.ExplicitVRLittleEndian;
/** JPEG Baseline and Extended: always lossy (PS3.5 §8.2.1). */
const LOSSY_JPEG = new Set(['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51']);

/**
 * Retrieval (WADO-RS, WADO-URI; later C-MOVE/C-GET): resolve the instances in scope, ask the decision point
 * for the study, make the access record durable, and only then hand out byte streams, which decrypt chunk by
 * chunk and verify the stored SHA-256.
 */
const READ_AHEAD_BYTES = 8 * 1024 * 1024;
/**
 * The most of a big endian object held at once to convert it to little endian: its header (every element before
 * the pixel data), or the whole object when it has no native pixel data (a big endian report or waveform).
 */
const MAX_CONVERTED_HEADER_BYTES = 64 * 1024 * 1024;

/** The refusal of instances the fixity job (or an earlier read) found damaged: `object.corrupt`, 500 / 0xA701. */
export function damagedError(sopInstanceUids: readonly string[]): CustosError {
  const n = sopInstanceUids.length;
  return new CustosError({
    code: 'object.corrupt',
    message: `${n === 1 ? 'instance' : 'instances'} ${sopInstanceUids.slice(0, 5).join(', ')}${n > 5 ? ', …' : ''} ${NOT_SERVED}`,
    httpStatus: 500,
    dicomStatus: 0xa701,
    detail: { corrupt: n },
  });
}

export class RetrieveService {
  constructor(private readonly deps: RetrieveDeps) {}

  /** Resolve, authorise and audit. Resolves only once the access record is durable. */
  async open(
    principal: Principal,
    scope: RetrieveScope,
    action: Action,
    what: string,
    detail: Record<string, unknown> = {},
    opts: {
      /** Read the first object ahead (all of it, or as decided for it) while the access record is written. */
      readAhead?: boolean | ((ref: InstanceRef) => boolean);
      /**
       * Open one instance that stands for the scope (a thumbnail): of the first series (by Series Number, then
       * UID) holding a natively encoded instance with pixel data, or failing that a decodable one, its middle one
       * of those by instance number. Only it is recorded.
       */
      representative?: boolean;
      /**
       * Hand out instances marked corrupt with `damaged` set instead of refusing the whole scope (C-MOVE, C-GET:
       * each object is a sub-operation of its own, and the others still go; PS3.4 C.4.2.3.1).
       */
      damagedAsFailed?: boolean;
    } = {},
  ): Promise<InstanceRef[]> {
    const study = await this.deps.index.db
      .selectFrom('studies as st')
      .innerJoin('patients as p', 'p.pk', 'st.patient_pk')
      .select([...STUDY_FACT_COLUMNS, 'st.status', 'p.issuer', 'p.patient_name', 'p.birth_date', 'p.sex'])
      .where('st.study_uid', '=', scope.studyUid)
      .executeTakeFirst();
    if (!study || study.status !== 'active') {
      // Only a principal allowed every study (a restricted one included) learns that it is not there; anyone
      // else gets the refusal a forbidden study gets, so a refusal says nothing about whether the study exists.
      await this.deps.gate.requireUnknownStudy(principal, action, scope.studyUid);
      throw notFound(scope);
    }
    const decision = await this.deps.gate.require(principal, action, await this.deps.facts.resource(study));
    // After the decision, so that a study the caller may not read is refused whoever its patient is: matching nothing
    // for another patient's only would tell the two apart.
    if (scope.patientId !== undefined && study.patient_id !== scope.patientId) throw notFound(scope);
    let q = this.deps.index.db
      .selectFrom('instances')
      .select([
        'study_uid',
        'series_uid',
        'sop_instance_uid',
        'sop_class_uid',
        'transfer_syntax_uid',
        'blob_id',
        'size',
        'sha256',
        'metadata_json',
        'bulk_json',
        'fixity_status',
      ])
      .where('study_uid', '=', scope.studyUid)
      .where('status', '=', 'active');
    if (scope.seriesUid) q = q.where('series_uid', '=', scope.seriesUid);
    if (scope.sopInstanceUid) q = q.where('sop_instance_uid', '=', scope.sopInstanceUid);
    let rows = await q.orderBy('series_uid').orderBy('instance_number').orderBy('sop_instance_uid').execute();
    if (rows.length === 0) throw notFound(scope);
    if (opts.representative) {
      // Among the instances with pixel data (until 6 Dec 2026 an Encapsulated PDF, SR, key object, presentation
      // state or waveform could be chosen, and the thumbnail was a 404): natively encoded ones first (nothing to
      // decode), then those in a transfer syntax Custos decodes.
      const images = rows.filter((r) => (JSON.parse(r.bulk_json) as BulkMap).pixel !== undefined);
      if (!images.length)
        throw new CustosError({
          code: 'wado.frame-not-found',
          message: `none of the ${rows.length} instances here has pixel data`,
          httpStatus: 404,
        });
      const native = images.filter((r) => isNativeTransferSyntax(r.transfer_syntax_uid));
      const renderable = native.length
        ? native
        : images.filter((r) => this.deps.decoder.decodes(r.transfer_syntax_uid));
      // The series a viewer lists first: the lowest Series Number (series without one last), then by UID.
      const numbers = new Map(
        (
          await this.deps.index.db
            .selectFrom('series')
            .select(['series_uid', 'series_number'])
            .where('study_uid', '=', scope.studyUid)
            .execute()
        ).map((r) => [r.series_uid, r.series_number ?? Number.MAX_SAFE_INTEGER]),
      );
      const first = [...new Set(renderable.map((r) => r.series_uid))].sort(
        (a, b) => numbers.get(a)! - numbers.get(b)! || (a < b ? -1 : a > b ? 1 : 0),
      )[0];
      const series = renderable.filter((r) => r.series_uid === first);
      if (!series.length)
        throw new CustosError({
          code: 'render.unsupported',
          message: `none of the ${images.length} instances with pixel data here is natively encoded or in a transfer syntax Custos decodes (${[...new Set(images.map((r) => r.transfer_syntax_uid))].join(', ')})`,
          httpStatus: 406,
        });
      rows = [series[Math.floor((series.length - 1) / 2)]!];
    }
    const corrupt = action === 'view-pixels' ? rows.filter((r) => r.fixity_status === 'corrupt') : [];
    // Fail loudly rather than serve bytes known to be bad: the fixity job found these objects damaged.
    if (corrupt.length && !opts.damagedAsFailed) throw damagedError(corrupt.map((r) => r.sop_instance_uid));
    const patient = {
      patientId: study.patient_id,
      issuer: study.issuer,
      name: study.patient_name,
      birthDate: study.birth_date,
      sex: study.sex,
    };
    const refs: InstanceRef[] = rows.map((r) => {
      const stored = JSON.parse(r.metadata_json) as DicomJsonObject;
      const corrections = patientCorrections(stored, patient);
      return {
        studyUid: r.study_uid,
        seriesUid: r.series_uid,
        sopInstanceUid: r.sop_instance_uid,
        sopClassUid: r.sop_class_uid,
        transferSyntaxUid: r.transfer_syntax_uid,
        blobId: r.blob_id,
        size: Number(r.size),
        storedSize: Number(r.size),
        sha256: r.sha256,
        metadata: applyToJson(stored, corrections),
        bulk: JSON.parse(r.bulk_json) as BulkMap,
        corrections,
        rewritten: corrections.length > 0,
        ...(corrupt.includes(r)
          ? {
              damaged: `instance ${r.sop_instance_uid} ${NOT_SERVED}`,
            }
          : {}),
      };
    });
    if (action === 'view-pixels') {
      // One header rewrite for every byte-serving path (WADO-RS, WADO-URI, C-GET, C-MOVE): a data steward's
      // quarantine corrections first, then the patient index's on top (mergeCorrections). The stored bytes stay
      // as received; the size as served follows from the rewritten header. Deflated objects are not rewritten
      // (assertServable and read() refuse them).
      const steward = await this.deps.overlay.forStudy(scope.studyUid);
      for (const ref of refs) {
        // Not read: it is not served.
        if (ref.damaged) continue;
        const merged = mergeCorrections(
          steward.get(ref.sopInstanceUid),
          asHeaderCorrections(ref.corrections),
        );
        if (Object.keys(merged).length === 0) continue;
        ref.rewritten = true;
        if (ref.bulk.deflated) continue;
        ref.corrected = await this.deps.overlay.correctedHeader(ref, merged);
        ref.size = ref.corrected.size;
      }
    }
    // While the access record is being made durable, read and decrypt the first object into memory: the wait
    // for the commit overlaps with disk and cipher work, and no byte leaves before open() returns.
    const ahead = typeof opts.readAhead === 'function' ? opts.readAhead(refs[0]!) : opts.readAhead;
    if (ahead) this.readAhead.set(refs[0]!, prefetch(this.read(refs[0]!), READ_AHEAD_BYTES));
    await this.deps.ledger.append({
      principal,
      action,
      outcome: 'success',
      policy: decision.policy,
      patientId: study.patient_id,
      studyUid: study.study_uid,
      ...(decision.breakGlass
        ? { breakGlassReason: decision.breakGlass.reason, detail: { breakGlass: decision.breakGlass.ids } }
        : {}),
      objects: {
        what,
        count: rows.length,
        series: [...new Set(rows.map((r) => r.series_uid))],
        sopInstanceUids: rows.slice(0, MAX_AUDITED_UIDS).map((r) => r.sop_instance_uid),
        ...detail,
      },
    });
    return refs;
  }

  /**
   * An access open() recorded as a success, which then failed before anything was sent: a second record, with
   * outcome `failure` and what went wrong, so that the ledger does not show as served what never was.
   */
  async recordUnserved(
    principal: Principal,
    scope: RetrieveScope,
    refs: InstanceRef[],
    action: Action,
    what: string,
    err: unknown,
  ): Promise<void> {
    const e = err instanceof CustosError ? err : undefined;
    await this.deps.ledger.append({
      principal,
      action,
      outcome: 'failure',
      policy: 'n/a',
      studyUid: scope.studyUid,
      objects: {
        what,
        count: refs.length,
        sopInstanceUids: refs.slice(0, MAX_AUDITED_UIDS).map((r) => r.sopInstanceUid),
      },
      detail: {
        unserved: e?.code ?? 'internal',
        httpStatus: e?.httpStatus ?? 500,
        reason: (e?.message ?? 'internal error').slice(0, 500),
      },
    });
  }

  /** Objects opened with readAhead: the read already under way, consumed once by stream(). */
  private readonly readAhead = new WeakMap<InstanceRef, AsyncIterable<Buffer>>();
  /**
   * Storage commitment (issue 3): is the instance indexed and active, and do its stored bytes still match the
   * SHA-256 recorded at ingest? Reads the whole object; the blob store checks every chunk and the digest.
   */
  async verifyStored(sopInstanceUid: string): Promise<{ sopClassUid: string; intact: boolean } | undefined> {
    const row = await this.deps.index.db
      .selectFrom('instances')
      .select(['study_uid', 'sop_class_uid', 'blob_id', 'size', 'sha256', 'status'])
      .where('sop_instance_uid', '=', sopInstanceUid)
      .executeTakeFirst();
    if (!row || row.status !== 'active') return undefined;
    try {
      await readStoredToEnd(this.deps, row);
      return { sopClassUid: row.sop_class_uid, intact: true };
    } catch {
      return { sopClassUid: row.sop_class_uid, intact: false };
    }
  }

  /** The stored object, decrypted and verified. */
  stream(ref: InstanceRef): AsyncGenerator<Buffer> {
    const started = this.readAhead.get(ref);
    if (started) {
      this.readAhead.delete(ref);
      return this.alerting(ref, started);
    }
    return this.alerting(ref, this.read(ref));
  }

  private async *read(ref: InstanceRef): AsyncGenerator<Buffer> {
    if (ref.corrected) {
      yield* this.deps.overlay.serve(ref, ref.corrected);
      return;
    }
    if (ref.rewritten) throw cannotCorrectDeflated(ref.sopInstanceUid);
    const key = await this.deps.studyKeys.keyForRead(ref.studyUid);
    yield* this.deps.blobs.read(asBlobId(ref.blobId), key, undefined, stored(ref));
  }

  /**
   * A stored object that fails its integrity check, or whose file is gone, is never served (the blob store throws
   * before yielding bad bytes); it is also a security event. As the fixity job does (docs/fixity.md), the
   * instance is marked corrupt and an alert recorded in one transaction, before the caller learns of the failure,
   * which is then `object.corrupt` (500, 0xA701): later requests are refused before a byte is sent. Until 6 Dec
   * 2026 a missing file raised no alert and reached the client as a connection cut (its blob.not-found was not
   * taken for damage), and a damaged one was not marked.
   */
  private async *alerting(ref: InstanceRef, source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    try {
      yield* source;
    } catch (err) {
      if (err instanceof CustosError && (err.code === 'blob.integrity' || err.code === 'blob.not-found')) {
        await this.deps.index.db.transaction().execute(async (trx) => {
          await trx
            .updateTable('instances')
            .set({ fixity_status: 'corrupt', fixity_checked_at: new Date().toISOString() })
            .where('sop_instance_uid', '=', ref.sopInstanceUid)
            .execute();
          await this.deps.ledger.appendIn(trx, {
            principal: {
              kind: 'system',
              id: asUserId('system'),
              name: 'system:integrity',
              role: 'system',
              source: 'retrieve',
            },
            action: 'alert',
            outcome: 'failure',
            policy: 'n/a',
            studyUid: ref.studyUid,
            objects: { sopInstanceUids: [ref.sopInstanceUid], blobId: ref.blobId },
            detail: { alert: 'object-integrity', reason: err.message },
          });
        });
        // One line for whoever reads the server's log rather than the ledger: the blob store's reason names the
        // blob and the chunk, nothing of the patient (the ledger's alert names the instance and study).
        this.deps.notice?.(
          `a read found a stored object damaged or missing (${err.message}): its instance is marked corrupt and an object-integrity alert recorded in the audit ledger; restore it from backup (docs/fixity.md)`,
        );
        throw new CustosError({
          code: 'object.corrupt',
          message: `instance ${ref.sopInstanceUid} failed its integrity check on reading (${err.message}) and will not be served; restore from backup (docs/fixity.md)`,
          httpStatus: 500,
          dicomStatus: 0xa701,
          cause: err,
        });
      }
      throw err;
    }
  }

  /**
   * The object as it is served: the stored bytes when its header needs no correction, otherwise the header
   * rewritten with the merged corrections (open()) and the rest of the stored object streamed unchanged.
   */
  served(ref: InstanceRef): { size: number; body: AsyncIterable<Buffer> } {
    return { size: ref.size, body: this.stream(ref) };
  }

  /**
   * The object as served (`body`: served()'s), in Explicit VR Little Endian, streamed: an implicit VR one with
   * each VR from the dictionary (explicitPart10), a deflated one inflated (inflatedPart10), a big endian one with
   * the byte order of its header turned, values as stored, and its pixel data swapped word by word
   * (littleEndianFromBigEndian; a header of more than MAX_CONVERTED_HEADER_BYTES, or the whole object when it has
   * no native pixel data at its top level, is refused). Every stored byte is still read, so the stored SHA-256 is verified as for the object as stored.
   */
  explicitLittleEndian(ref: InstanceRef, body: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
    if (ref.transferSyntaxUid === TransferSyntax.ImplicitVRLittleEndian) return explicitPart10(body);
    if (ref.bulk.deflated) return inflatedPart10(body);
    if (ref.transferSyntaxUid !== TransferSyntax.ExplicitVRBigEndian)
      throw new CustosError({
        code: 'dicom.cannot-convert',
        message: `instance ${ref.sopInstanceUid} is stored as ${ref.transferSyntaxUid}, which is not converted to Explicit VR Little Endian`,
      });
    const px = ref.bulk.pixel;
    const pixels =
      px && !px.encapsulated && !px.tagPath.includes('.')
        ? {
            // The pixel data element's header, where the corrected header (if any) moved it to.
            start: px.offset - 12 + (ref.corrected ? ref.corrected.bytes.length - ref.corrected.replaces : 0),
            tag: Number.parseInt(px.tagPath, 16) >>> 0,
            vr: ref.metadata[px.tagPath]?.vr ?? 'OW',
            length: px.length,
            word: bigEndianWordSize(ref.metadata[px.tagPath]?.vr, num(ref.metadata, '00280100') ?? 16),
          }
        : undefined;
    return littleEndianFromBigEndian(body, pixels, MAX_CONVERTED_HEADER_BYTES);
  }

  /** Refuse before any byte is sent when an object's corrected header cannot be served (deflated objects). */
  assertServable(refs: InstanceRef[]): void {
    const bad = refs.find((r) => r.rewritten && !r.corrected && r.bulk.deflated);
    if (bad) throw cannotCorrectDeflated(bad.sopInstanceUid);
  }

  /**
   * Each object as served (`served`), in order, with the next ones read and decrypted ahead while the current
   * one is sent: up to READ_AHEAD_BYTES of objects beyond the current one (at least the next), each held to
   * READ_AHEAD_BYTES. Objects read ahead but never sent (the client went away) are closed.
   */
  async *servedInOrder(
    refs: InstanceRef[],
  ): AsyncGenerator<{ ref: InstanceRef; size: number; body: AsyncIterable<Buffer> }> {
    const ahead: { ref: InstanceRef; size: number; body: Prefetched }[] = [];
    let next = 0;
    const fill = () => {
      let bytes = ahead.reduce((sum, a) => sum + a.size, 0);
      while (next < refs.length && (ahead.length < 2 || bytes + refs[next]!.size <= READ_AHEAD_BYTES)) {
        const ref = refs[next++]!;
        const { size, body } = this.served(ref);
        ahead.push({ ref, size, body: prefetch(body, READ_AHEAD_BYTES) });
        bytes += size;
      }
    };
    try {
      for (;;) {
        fill();
        const item = ahead.shift();
        if (!item) return;
        yield item;
      }
    } finally {
      await Promise.all(ahead.map((a) => a.body.close()));
    }
  }

  /** Bytes of the given ranges of the object, in order (inflating first for deflated objects). */
  ranges(ref: InstanceRef, ranges: ByteRange[]): AsyncGenerator<Buffer> {
    return this.alerting(ref, this.readRanges(ref, ranges));
  }

  private async *readRanges(ref: InstanceRef, ranges: ByteRange[]): AsyncGenerator<Buffer> {
    const key = await this.deps.studyKeys.keyForRead(ref.studyUid);
    if (!ref.bulk.deflated) {
      for (const r of ranges) {
        if (r.length === 0) continue;
        // The index's size and, in objects written since 6 Dec 2026, the blob id the tags bind: another object's file
        // in this one's place is refused before a byte of it is served (until then only whole reads found it).
        const range = { start: r.offset, end: r.offset + r.length };
        yield* this.deps.blobs.read(asBlobId(ref.blobId), key, range, { size: ref.storedSize });
      }
      return;
    }
    yield* inflatedRanges(
      this.deps.blobs.read(asBlobId(ref.blobId), key, undefined, stored(ref)),
      ref.bulk.datasetStart,
      ranges,
    );
  }

  frames(ref: InstanceRef, frameNumbers: number[]): ByteRange[][] {
    const m = ref.metadata;
    const num = (tag: string, fallback: number) => {
      const v = m[tag]?.Value?.[0];
      return typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : fallback;
    };
    return frameRanges(
      ref.bulk,
      {
        rows: num('00280010', 0),
        columns: num('00280011', 0),
        samplesPerPixel: num('00280002', 1),
        bitsAllocated: num('00280100', 16),
        numberOfFrames: num('00280008', 1),
      },
      frameNumbers,
    );
  }

  /** Whether compressed frames in this transfer syntax can be decoded (rendering, decoded frames). */
  decodes(transferSyntaxUid: string): boolean {
    return this.deps.decoder.decodes(transferSyntaxUid);
  }

  /**
   * One compressed frame decoded to the native pixel data its header describes: WADO-RS frames asked for in
   * Explicit VR Little Endian. Where decoding changes what the header says the pixels are (a JPEG's YBR_FULL_422
   * or a JPEG 2000's YBR_ICT become RGB) the bytes would contradict the metadata a client reads with them: 406.
   */
  async decodedFrame(ref: InstanceRef, frame: number): Promise<Buffer> {
    const g = geometryOf(ref.metadata);
    const decoded = await this.decodeStored(ref, frame, g);
    if (decoded.photometric !== g.photometric || decoded.bitsAllocated !== g.bitsAllocated)
      throw new CustosError({
        code: 'http.not-acceptable',
        message: `decoded, this frame is ${decoded.photometric} of ${decoded.bitsAllocated}-bit samples where its header says ${g.photometric} of ${g.bitsAllocated}: ask for transfer-syntax=${ref.transferSyntaxUid} or *`,
        httpStatus: 406,
      });
    return decoded.pixels;
  }

  /**
   * Whether the object can be served decompressed (decompressed()): stored in a compressed transfer syntax Custos
   * decodes, with encapsulated pixel data at the top level.
   */
  decompresses(ref: InstanceRef): boolean {
    const px = ref.bulk.pixel;
    return (
      !isNativeTransferSyntax(ref.transferSyntaxUid) &&
      this.deps.decoder.decodes(ref.transferSyntaxUid) &&
      !ref.bulk.deflated &&
      px !== undefined &&
      px.encapsulated &&
      px.tagPath === '7FE00010'
    );
  }

  /**
   * The object decompressed to Explicit VR Little Endian, for a client or a C-MOVE destination that does not
   * take its compressed transfer syntax: the header as served (corrections included), rewritten where decoding
   * changed what it says (PS3.5 §8.2: a JPEG's YBR_FULL_422 and a JPEG 2000's YBR_ICT or YBR_RCT become RGB,
   * samples interleaved; a lossy JPEG's Lossy Image Compression becomes "01"), a new file meta information
   * naming the new transfer syntax, then the native pixel data frame by frame, each decoded while the one before
   * is sent. Elements after the pixel data (trailing padding, digital signatures, which the new bytes would no
   * longer match) are left out. The first frame is decoded before this resolves, so an object Custos cannot
   * decode fails before anything is sent; a later frame that fails ends the stream with the error.
   */
  async decompressed(
    ref: InstanceRef,
  ): Promise<{ size: number; datasetStart: number; body: AsyncIterable<Buffer> }> {
    if (!this.decompresses(ref))
      throw new CustosError({
        code: 'http.not-acceptable',
        message: `instance ${ref.sopInstanceUid} is stored as ${ref.transferSyntaxUid}, which Custos does not decompress`,
        httpStatus: 406,
      });
    const g = geometryOf(ref.metadata);
    const frames = num(ref.metadata, '00280008') ?? 1;
    const px = ref.bulk.pixel!;
    const first = await this.decodeStored(ref, 1, g);
    const frameBytes = g.rows * g.columns * g.samplesPerPixel * (first.bitsAllocated / 8);
    const check = (d: DecodedFrame, n: number) => {
      if (
        d.bitsAllocated !== g.bitsAllocated ||
        d.pixels.length !== frameBytes ||
        d.photometric !== first.photometric
      )
        throw new CustosError({
          code: 'render.decode-failed',
          message: `frame ${n} of instance ${ref.sopInstanceUid} decodes to ${d.pixels.length} bytes of ${d.bitsAllocated}-bit ${d.photometric} where its header says ${g.rows} × ${g.columns} × ${g.samplesPerPixel} ${g.bitsAllocated}-bit samples`,
          httpStatus: 422,
        });
    };
    check(first, 1);
    // The header as served: the stored bytes up to the pixel data element, or the corrected header followed by
    // the stored bytes between it and the pixel data.
    const pixelStart = px.offset - 12;
    const from = ref.corrected ? ref.corrected.replaces : 0;
    const chunks: Buffer[] = ref.corrected ? [ref.corrected.bytes] : [];
    // Through ranges(), as the frames are read: damage found here is object.corrupt, marked and alerted (until 6
    // Dec 2026 it reached the client as blob.integrity naming the blob, and every request read it again).
    if (pixelStart > from)
      for await (const c of this.ranges(ref, [{ offset: from, length: pixelStart - from }])) chunks.push(c);
    const lossyJpeg = LOSSY_JPEG.has(ref.transferSyntaxUid);
    const header = await rewriteHeaderAs(Buffer.concat(chunks), EXPLICIT_VR_LITTLE_ENDIAN, (ds) => {
      ds.set(Tags.PhotometricInterpretation, { vr: 'CS', kind: 'text', values: [first.photometric] });
      if (g.samplesPerPixel > 1) ds.set(Tags.PlanarConfiguration, { vr: 'US', kind: 'numbers', values: [0] });
      else ds.delete(Tags.PlanarConfiguration);
      if (lossyJpeg) {
        ds.set(Tags.LossyImageCompression, { vr: 'CS', kind: 'text', values: ['01'] });
        if (!ds.has(Tags.LossyImageCompressionMethod))
          ds.set(Tags.LossyImageCompressionMethod, { vr: 'CS', kind: 'text', values: ['ISO_10918_1'] });
      }
      // An icon whose pixel data is encapsulated too would still be compressed: left out (it is optional).
      const icon = ds.get(Tags.IconImageSequence);
      if (icon?.kind === 'sequence' && icon.items.some((i) => i.get(Tags.PixelData)?.kind !== 'bytes'))
        ds.delete(Tags.IconImageSequence);
    });
    const length = frames * frameBytes;
    const padded = length + (length % 2);
    const element = Buffer.alloc(12);
    element.writeUInt16LE(0x7fe0, 0);
    element.writeUInt16LE(0x0010, 2);
    element.write(first.bitsAllocated > 8 ? 'OW' : 'OB', 4, 'latin1');
    element.writeUInt32LE(padded, 8);
    const decode = (n: number) => {
      const p = this.decodeStored(ref, n, g).then((d) => (check(d, n), d.pixels));
      // A frame decoded ahead whose stream is abandoned must not surface as an unhandled rejection.
      p.catch(() => undefined);
      return p;
    };
    // Frames are asked for ahead, one for each decode thread, while the one before is sent.
    const ahead = Math.max(1, this.deps.decoder.parallelism ?? 1);
    async function* body(): AsyncGenerator<Buffer> {
      yield header.bytes;
      yield element;
      const queue: Promise<Buffer>[] = [];
      let asked = 1;
      const fill = () => {
        while (asked < frames && queue.length < ahead) queue.push(decode(++asked));
      };
      try {
        fill();
        yield first.pixels;
        while (queue.length > 0) {
          const pixels = await queue.shift()!;
          fill();
          yield pixels;
        }
      } finally {
        await Promise.allSettled(queue);
      }
      if (padded !== length) yield Buffer.alloc(1);
    }
    return { size: header.bytes.length + 12 + padded, datasetStart: header.datasetStart, body: body() };
  }

  /** Why a frame of this instance is not decoded (a transfer syntax Custos does not decode, too large), if so. */
  private decodeRefusal(ref: InstanceRef, g: FrameGeometry): CustosError | undefined {
    if (!isNativeTransferSyntax(ref.transferSyntaxUid) && !this.deps.decoder.decodes(ref.transferSyntaxUid))
      return new CustosError({
        code: 'render.unsupported',
        message: `the instance is stored in ${ref.transferSyntaxUid}, which Custos does not decode: request application/dicom`,
        httpStatus: 406,
      });
    // Decoding and rendering hold several copies of the image (decoded, scaled, RGBA): a header claiming more than
    // a large mammogram or a tomosynthesis frame is refused before anything is read, decoded or allocated for it.
    if (g.rows * g.columns > MAX_RENDERED_PIXELS)
      return new CustosError({
        code: 'render.unsupported',
        message: `a frame of ${g.columns} × ${g.rows} pixels is larger than the ${MAX_RENDERED_PIXELS / 1e6} megapixels Custos decodes and renders: request application/dicom`,
        httpStatus: 406,
      });
    return undefined;
  }

  /**
   * Why renderImage would refuse this instance before reading it (no pixel data: a structured report, an
   * Encapsulated PDF, a presentation state; a transfer syntax Custos does not decode; a frame too large), or
   * undefined when it is rendered. A rendered study or series leaves such instances out.
   */
  renderRefusal(ref: InstanceRef): CustosError | undefined {
    if (!ref.bulk.pixel)
      return new CustosError({
        code: 'wado.frame-not-found',
        message: 'the instance has no pixel data',
        httpStatus: 404,
      });
    return this.decodeRefusal(ref, geometryOf(ref.metadata));
  }

  /** The frame read from the store and, when compressed, decoded on the decode thread. */
  private async decodeStored(ref: InstanceRef, frame: number, g: FrameGeometry): Promise<DecodedFrame> {
    const stored = await this.storedFrame(ref, frame, g);
    if (!isNativeTransferSyntax(ref.transferSyntaxUid))
      return this.deps.decoder.decode(ref.transferSyntaxUid, stored, g);
    return { ...g, pixels: stored };
  }

  /** The frame's bytes as stored (its fragments concatenated when compressed), once decodeRefusal lets it be. */
  private async storedFrame(ref: InstanceRef, frame: number, g: FrameGeometry): Promise<Buffer> {
    const refusal = this.decodeRefusal(ref, g);
    if (refusal) throw refusal;
    const [ranges] = this.frames(ref, [frame]);
    const chunks: Buffer[] = [];
    for await (const b of this.ranges(ref, ranges!)) chunks.push(b);
    return Buffer.concat(chunks);
  }

  /**
   * One frame rendered for consumer display (WADO-URI, WADO-RS rendered, thumbnails) as JPEG (the default), PNG
   * or GIF. A compressed frame is decoded first (RLE, 8-bit JPEG, lossless JPEG, JPEG-LS, JPEG 2000). The VOI LUT
   * function is the request's, else the header's VOI LUT Function (0028,1056) when its own window is used, else
   * LINEAR. All but reading the frame runs on a decode thread (render-frame.ts); until 7 Dec 2026 the rendering
   * and encoding held the event loop.
   */
  async renderImage(ref: InstanceRef, frame: number, opts: RenderOptions = {}): Promise<Buffer> {
    const format = opts.format ?? 'image/jpeg';
    const output: RenderOutput =
      format === 'image/jpeg' ? { type: format, quality: opts.quality ?? 90 } : { type: format };
    return (await this.renderFrame(ref, frame, opts, output)).bytes;
  }

  /** The number of frames of the instance: Number of Frames (0028,0008), 1 when absent. */
  frameCount(ref: InstanceRef): number {
    return Math.max(1, num(ref.metadata, '00280008') ?? 1);
  }

  /**
   * Every frame of a multi-frame instance rendered as renderImage renders one, as an animated GIF (PS3.18 Table
   * 8.7.4-1: image/gif is the rendered media type of a multi-frame image) that loops, each frame shown for as long
   * as the header's Frame Time Vector, Frame Time or frame rate says (frame-timing.ts). The frames are read here
   * and decoded, rendered and encoded as GIF images on a decode thread one at a time, the next while the one
   * before is sent, so an object of any number of frames holds two frames at most; the first is rendered before
   * this resolves, so that an instance that cannot be rendered is a status, not a cut connection. A later frame
   * that fails ends the stream with the error.
   */
  async animatedGif(
    ref: InstanceRef,
    opts: Omit<RenderOptions, 'format' | 'quality'> = {},
  ): Promise<AsyncIterable<Buffer>> {
    const m = ref.metadata;
    const frames = this.frameCount(ref);
    const delays = gifDelays(
      frameDurations(frames, {
        frameTimeVector: nums(m, '00181065'),
        frameTime: num(m, '00181063'),
        recommendedFrameRate: num(m, '00082144'),
        cineRate: num(m, '00180040'),
      }),
    );
    // The first image carries the GIF's header, whose colour table the others are written against.
    const first = await this.renderFrame(ref, 1, opts, { type: 'gif-image', delay: delays[0]! });
    const grey = first.grey!;
    const render = (n: number) => {
      const p = this.renderFrame(ref, n, opts, { type: 'gif-image', delay: delays[n - 1]!, grey });
      p.catch(() => undefined); // awaited in turn; not unhandled if the client has gone
      return p;
    };
    async function* body(): AsyncGenerator<Buffer> {
      let next = frames > 1 ? render(2) : undefined;
      yield first.bytes;
      for (let n = 2; n <= frames; n++) {
        const image = await next!;
        next = n < frames ? render(n + 1) : undefined;
        yield image.bytes;
      }
      yield GIF_TRAILER;
    }
    return body();
  }

  /**
   * One frame read from the store, then decoded (when compressed), rendered to RGBA (render.ts), fitted to the
   * viewport when one is given and encoded as `output` on a decode thread.
   */
  private async renderFrame(
    ref: InstanceRef,
    frame: number,
    opts: RenderOptions,
    output: RenderOutput,
  ): Promise<RenderedFrame> {
    const m = ref.metadata;
    const g = geometryOf(m);
    const stored = await this.storedFrame(ref, frame, g);
    const native = isNativeTransferSyntax(ref.transferSyntaxUid);
    const center = opts.windowCenter ?? num(m, '00281050');
    const width = opts.windowWidth ?? num(m, '00281051');
    return this.deps.decoder.render({
      stored,
      transferSyntaxUid: ref.transferSyntaxUid,
      native,
      geometry: g,
      params: {
        // A decoder hands back samples interleaved.
        planarConfiguration: native ? (num(m, '00280006') ?? 0) : 0,
        bigEndian: ref.transferSyntaxUid === '1.2.840.10008.1.2.2',
        rescaleSlope: num(m, '00281053') ?? 1,
        rescaleIntercept: num(m, '00281052') ?? 0,
        ...(center !== undefined ? { windowCenter: center } : {}),
        ...(width !== undefined ? { windowWidth: width } : {}),
        voiFunction: opts.voiFunction ?? (opts.windowWidth === undefined ? headerVoiFunction(m) : 'LINEAR'),
      },
      ...(opts.viewport ? { viewport: opts.viewport } : {}),
      output,
    });
  }

  bulkRange(ref: InstanceRef, tagPath: string): ByteRange {
    const path = tagPath.toUpperCase();
    const el =
      ref.bulk.elements[path] ??
      (ref.bulk.pixel?.tagPath === path && !ref.bulk.pixel.encapsulated ? ref.bulk.pixel : undefined);
    if (!el)
      throw new CustosError({
        code: 'wado.bulkdata-not-found',
        message: `no bulk data at ${tagPath} in this instance`,
        httpStatus: 404,
      });
    return { offset: el.offset, length: el.length };
  }
}

/** The header's VOI LUT Function (PS3.3 C.11.2.1.3), LINEAR when absent or not one Custos applies. */
function headerVoiFunction(m: DicomJsonObject): VoiFunction {
  return voiFunctionOf(String(m['00281056']?.Value?.[0] ?? '')) ?? 'LINEAR';
}

/** What the index records of an instance's stored object, for the blob store to check it against. */
const stored = (ref: InstanceRef) => ({ size: ref.storedSize, sha256: ref.sha256 });

/**
 * Nothing in scope. A series or instance is named with the study (and series) the path put it in: it may well be
 * in the archive, under another study. Until 7 Dec 2026 it was "not in the archive", which sent whoever asked
 * looking for a missing object. The words are the same whether it is elsewhere or nowhere, so they tell nothing of
 * a study the caller may not see.
 */
const notFound = (scope: RetrieveScope) =>
  new CustosError({
    code: 'wado.not-found',
    message: scope.sopInstanceUid
      ? `instance ${scope.sopInstanceUid} is not in ${scope.seriesUid ? `series ${scope.seriesUid} of ` : ''}study ${scope.studyUid}`
      : scope.seriesUid
        ? `series ${scope.seriesUid} is not in study ${scope.studyUid}`
        : `study ${scope.studyUid} is not in the archive`,
    httpStatus: 404,
  });

/**
 * Inflate a deflated-transfer-syntax object's dataset and yield the requested ranges of the inflated bytes, their
 * offsets counted as the parser counts them: datasetStart + position in the inflated bytes.
 */
async function* inflatedRanges(
  stored: AsyncIterable<Buffer>,
  datasetStart: number,
  ranges: ByteRange[],
): AsyncGenerator<Buffer> {
  const inflate = createInflateRaw();
  const feed = (async () => {
    let pos = 0;
    try {
      for await (const chunk of stored) {
        const start = Math.max(0, datasetStart - pos);
        pos += chunk.length;
        if (start >= chunk.length) continue;
        if (!inflate.write(start ? chunk.subarray(start) : chunk))
          await new Promise((r) => inflate.once('drain', r));
      }
      inflate.end();
    } catch (err) {
      inflate.destroy(err as Error);
    }
  })();
  const sorted = ranges.filter((r) => r.length > 0);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]!.offset < sorted[i - 1]!.offset + sorted[i - 1]!.length)
      throw new Error('inflatedRanges: ranges must be in order and not overlap');
  let idx = 0;
  // The parser's offsets in a deflated object count the inflated bytes from datasetStart (ParsedPart10). From 0,
  // as until 4 Dec 2026, every frame and bulk value came back empty (or shifted) with a 200.
  let pos = datasetStart;
  for await (const chunk of inflate as AsyncIterable<Buffer>) {
    const chunkEnd = pos + chunk.length;
    while (idx < sorted.length) {
      const r = sorted[idx]!;
      const from = Math.max(r.offset, pos);
      const to = Math.min(r.offset + r.length, chunkEnd);
      if (from < to) yield chunk.subarray(from - pos, to - pos);
      if (r.offset + r.length <= chunkEnd) idx++;
      else break;
    }
    pos = chunkEnd;
    if (idx >= sorted.length) break;
  }
  inflate.destroy();
  await feed.catch(() => undefined);
  // Never a short answer that looks whole: the response stops with an error instead.
  if (idx < sorted.length)
    throw new CustosError({
      code: 'retrieve.past-end',
      message: `the inflated object ends at byte ${pos}, before the requested bytes ${sorted[idx]!.offset}..${sorted[idx]!.offset + sorted[idx]!.length}`,
    });
}

/** A number of the stored header (DICOM JSON), undefined when absent or not a number. */
function num(m: DicomJsonObject, tag: string): number | undefined {
  const v = m[tag]?.Value?.[0];
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** Every number of a multi-valued header attribute (DICOM JSON), undefined when absent or one is not a number. */
function nums(m: DicomJsonObject, tag: string): number[] | undefined {
  const values = m[tag]?.Value;
  if (!values?.length) return undefined;
  const out = values.map((v) => (typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN));
  return out.every((n) => Number.isFinite(n)) ? out : undefined;
}

/** The Image Pixel module's description of a frame (PS3.3 C.7.6.3), with the defaults of a 16-bit grey image. */
function geometryOf(m: DicomJsonObject): FrameGeometry {
  const bitsAllocated = num(m, '00280100') ?? 16;
  return {
    rows: num(m, '00280010') ?? 0,
    columns: num(m, '00280011') ?? 0,
    samplesPerPixel: num(m, '00280002') ?? 1,
    bitsAllocated,
    bitsStored: num(m, '00280101') ?? bitsAllocated,
    pixelRepresentation: num(m, '00280103') ?? 0,
    photometric: String(m['00280004']?.Value?.[0] ?? 'MONOCHROME2'),
  };
}
