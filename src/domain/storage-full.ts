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

/** The code of every "the storage refuses writes" failure: a read-only or failing volume. */
export const STORAGE_UNWRITABLE = 'storage.unwritable';

/**
 * A volume the archive writes to refuses writes: it is mounted read-only (ext4's `errors=remount-ro`, the default
 * on Debian, does that by itself after an I/O error; or an operator's mistake), or its device fails (EIO). Nothing
 * that has to be written can be done: no object stored, and with the SQLite index on that volume no audit record
 * written, so nothing served either. As with a full disk, DICOM's A700 (the modality keeps its copy and retries
 * later) and HTTP 503 with Retry-After; unlike it, an operator must repair the volume.
 */
export function storageUnwritable(where: string, cause?: unknown): CustosError {
  return new CustosError({
    code: STORAGE_UNWRITABLE,
    message: `the archive cannot write to its storage (${where}): nothing can be stored or recorded until an operator repairs it`,
    httpStatus: 503,
    dicomStatus: DicomStatus.OutOfResources,
    detail: { retryAfterSeconds: 60 },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** errno values of a file that could not be opened because the process (EMFILE) or the system (ENFILE) has none left. */
export const isNoDescriptorErrno = (code: unknown): boolean => code === 'EMFILE' || code === 'ENFILE';

/** The code of a request refused because the server has run out of file descriptors. */
export const OUT_OF_DESCRIPTORS = 'server.out-of-descriptors';

/**
 * The server could not open a file: the process has used up its file descriptor limit (EMFILE; `ulimit -n`,
 * systemd's LimitNOFILE) or the system its table (ENFILE). A passing condition, not a volume's: DICOM's A700 and
 * HTTP 503 with Retry-After, so that the sender tries again; the message names the limit, not a path. Until 6 Dec
 * 2026 a store was failed with 0x0110 and a Warning quoting the temporary file's path.
 */
export function outOfDescriptors(cause?: unknown): CustosError {
  const code = (cause as { code?: unknown } | undefined)?.code;
  return new CustosError({
    code: OUT_OF_DESCRIPTORS,
    message:
      code === 'ENFILE'
        ? 'the server could not open a file: the system has no file descriptors left (ENFILE); try again later'
        : "the server could not open a file: it has used up its file descriptor limit (EMFILE; raise `ulimit -n` or systemd's LimitNOFILE); try again later",
    httpStatus: 503,
    dicomStatus: DicomStatus.OutOfResources,
    detail: { retryAfterSeconds: 5 },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * A file-system error of a write to `where` ("the blob volume", "the index's volume") as the archive reports it:
 * storage.full for no room, storage.unwritable for a read-only (EROFS) or failing (EIO) volume,
 * server.out-of-descriptors for no file descriptor left; anything else as it came.
 */
export function storageWriteError(where: string, e: unknown): unknown {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (isNoRoomErrno(code)) return storageFull(where, e);
  if (isNoDescriptorErrno(code)) return outOfDescriptors(e);
  if (code === 'EROFS') return storageUnwritable(`${where} is read-only`, e);
  if (code === 'EIO') return storageUnwritable(`${where} failed a write: input/output error`, e);
  return e;
}
