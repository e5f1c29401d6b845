import type { Kysely } from 'kysely';
import { asBlobId } from '../domain/ids.js';
import type { BulkMap } from '../domain/frames.js';
import { headerEnd, rewriteHeader, type HeaderCorrections } from '../dicom/header-rewrite.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { DatabaseSchema, IndexDb } from '../ports/database.js';
import type { StudyKeyService } from './study-keys.js';

/** What the overlay needs of a stored instance. */
export interface OverlayTarget {
  studyUid: string;
  sopInstanceUid: string;
  blobId: string;
  sha256: string;
  size: number;
  transferSyntaxUid: string;
  bulk: BulkMap;
}

/** The corrected header of one instance, ready to be sent before the stored bytes from `replaces` on. */
export interface CorrectedHeader {
  bytes: Buffer;
  /** Stored bytes [0, replaces) are replaced by `bytes`. */
  replaces: number;
  /** Size of the object as served. */
  size: number;
  /** Size of the object as stored (the index's). */
  storedSize: number;
}

/**
 * The header-correction overlay: corrections a data steward made to a quarantined object are kept beside the
 * untouched stored bytes, and applied when the object is served (WADO-RS/URI bytes; metadata and QIDO are
 * indexed from the corrected header at release). The byte rewriting itself is the pure src/dicom/header-rewrite.
 */
export class CorrectionOverlay {
  constructor(
    private readonly index: IndexDb,
    private readonly blobs: BlobStore,
    private readonly studyKeys: StudyKeyService,
  ) {}

  /** Corrections of the instances of one study that have any. */
  async forStudy(studyUid: string): Promise<Map<string, HeaderCorrections>> {
    const rows = await this.index.db
      .selectFrom('header_corrections')
      .select(['sop_instance_uid', 'corrections_json'])
      .where('study_uid', '=', studyUid)
      .execute();
    return new Map(
      rows.map((r) => [r.sop_instance_uid, JSON.parse(r.corrections_json) as HeaderCorrections]),
    );
  }

  /** Record corrections for an archived instance, in the caller's transaction. */
  async save(
    trx: Kysely<DatabaseSchema>,
    target: { studyUid: string; sopInstanceUid: string; quarantineId: string | null },
    corrections: HeaderCorrections,
    now: string,
  ): Promise<void> {
    await trx
      .insertInto('header_corrections')
      .values({
        sop_instance_uid: target.sopInstanceUid,
        study_uid: target.studyUid,
        corrections_json: JSON.stringify(corrections),
        quarantine_id: target.quarantineId,
        created_at: now,
      })
      .execute();
  }

  /** Read the stored header (decrypting only the chunks it spans) and rewrite it with the corrections. */
  async correctedHeader(target: OverlayTarget, corrections: HeaderCorrections): Promise<CorrectedHeader> {
    const end = headerEnd(target.bulk, target.transferSyntaxUid, target.size);
    const key = await this.studyKeys.keyForRead(target.studyUid);
    const chunks: Buffer[] = [];
    const range = { start: 0, end: end.offset };
    for await (const c of this.blobs.read(asBlobId(target.blobId), key, range, { size: target.size }))
      chunks.push(c);
    const bytes = await rewriteHeader(Buffer.concat(chunks), corrections);
    return {
      bytes,
      replaces: end.offset,
      size: target.size - end.offset + bytes.length,
      storedSize: target.size,
    };
  }

  /** The object as served: the corrected header, then the stored bytes after it (verified against the stored SHA-256). */
  async *serve(target: OverlayTarget, header: CorrectedHeader): AsyncGenerator<Buffer> {
    yield header.bytes;
    const key = await this.studyKeys.keyForRead(target.studyUid);
    let pos = 0;
    // The whole object is read so its SHA-256 is still verified; the replaced header bytes are skipped.
    const expected = { size: header.storedSize, sha256: target.sha256 };
    for await (const chunk of this.blobs.read(asBlobId(target.blobId), key, undefined, expected)) {
      const end = pos + chunk.length;
      if (end > header.replaces) yield pos >= header.replaces ? chunk : chunk.subarray(header.replaces - pos);
      pos = end;
    }
  }
}
