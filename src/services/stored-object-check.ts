import { asBlobId } from '../domain/ids.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { StudyKeyService } from './study-keys.js';

/**
 * Read a stored object to its end through the blob store's checks (every chunk's tag, then the SHA-256 recorded
 * at ingest). Resolves when the object is intact; throws the blob store's error when it is not. The one check
 * behind fixity passes and storage commitment.
 */
export async function readStoredToEnd(
  deps: { blobs: BlobStore; studyKeys: StudyKeyService },
  row: { study_uid: string; blob_id: string; size: number; sha256: string },
): Promise<void> {
  const key = await deps.studyKeys.keyForRead(row.study_uid);
  const expected = { size: Number(row.size), sha256: row.sha256 };
  for await (const chunk of deps.blobs.read(asBlobId(row.blob_id), key, undefined, expected)) void chunk;
}
