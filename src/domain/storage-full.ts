import { CustosError, DicomStatus } from './errors.js';

/** The code of every "no room left to store this" failure, whichever volume or database reported it. */
export const STORAGE_FULL = 'storage.full';

/**
 * A volume the archive writes to has no room: the blob volume (ENOSPC, or EDQUOT for a quota), the SQLite
 * index's, PostgreSQL's (disk_full), or the free space fell below the configured reserve. DICOM's "Refused: Out of
 * Resources" (A700, PS3.4 Table B.2-1), which a modality takes as "try again later"; HTTP 507 Insufficient Storage
 * (RFC 4918 §11.5), also for a read whose audit record could not be written, since nothing is served without it.
 */
export function storageFull(where: string, cause?: unknown): CustosError {
  return new CustosError({
    code: STORAGE_FULL,
    message: `the archive's storage is full (${where}): nothing more can be stored until space is freed`,
    httpStatus: 507,
    dicomStatus: DicomStatus.OutOfResources,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** errno values of a write that found no room: the volume is full, or the writer's quota is used up. */
export const isNoRoomErrno = (code: unknown): boolean => code === 'ENOSPC' || code === 'EDQUOT';
