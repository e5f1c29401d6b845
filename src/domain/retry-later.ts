import { CustosError, DicomStatus } from './errors.js';
import { STORAGE_FULL, STORAGE_UNWRITABLE } from './storage-full.js';

/** The code of a failure to reach the index database (PostgreSQL down, restarting or out of reach). */
export const INDEX_UNAVAILABLE = 'index.unavailable';

/**
 * The index database cannot be reached: nothing can be recorded, so nothing is served or stored until it is back.
 * HTTP 503 with Retry-After; DICOM A700 (Refused: Out of Resources), which a modality retries later. The server
 * keeps running and reconnects by itself.
 */
export function indexUnavailable(cause: unknown): CustosError {
  // The driver's own words (its host and port among them) stay in `cause`, for the log: this message reaches
  // clients, unauthenticated ones too, since checking a token needs the database.
  return new CustosError({
    code: INDEX_UNAVAILABLE,
    message: 'the index database cannot be reached; try again shortly',
    httpStatus: 503,
    dicomStatus: DicomStatus.OutOfResources,
    detail: { retryAfterSeconds: 5 },
    cause,
  });
}

const RETRY_LATER = new Set([STORAGE_FULL, STORAGE_UNWRITABLE, INDEX_UNAVAILABLE]);

/** Whether `err` (or an error it was caused by) is a condition that passes once an operator acts: try again later. */
export function isRetryLater(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++)
    if (e instanceof CustosError && RETRY_LATER.has(e.code)) return true;
  return false;
}
