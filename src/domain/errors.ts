/**
 * Errors are values with a code (CONVENTIONS.md). A transport maps a CustosError once:
 * HTTP transports to application/problem+json with `httpStatus`, DICOM transports to
 * `dicomStatus` (PS3.7 Annex C status codes, also used as STOW-RS FailureReason).
 */
export interface CustosErrorInit {
  /** Stable machine-readable code, e.g. 'dicom.truncated', 'auth.missing-token'. */
  code: string;
  /** What is wrong, in words a user can act on. */
  message: string;
  httpStatus?: number;
  /** PS3.7 C.x / PS3.18 FailureReason value. */
  dicomStatus?: number;
  /** Extra, non-sensitive fields for problem+json (never PHI). */
  detail?: Record<string, unknown>;
  cause?: unknown;
}

export class CustosError extends Error {
  readonly code: string;
  readonly httpStatus: number;
  readonly dicomStatus: number | undefined;
  readonly detail: Record<string, unknown> | undefined;

  constructor(init: CustosErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'CustosError';
    this.code = init.code;
    this.httpStatus = init.httpStatus ?? 500;
    this.dicomStatus = init.dicomStatus;
    this.detail = init.detail;
  }
}

/** PS3.7 Annex C and PS3.18 FailureReason values used across transports. */
export const DicomStatus = {
  Success: 0x0000,
  Warning: 0xb000,
  /** B007: stored, but the data set does not match the SOP class (PS3.4 Table B.2-1, PS3.18 Table 10.5.3-3). */
  DataSetMismatchWarning: 0xb007,
  ProcessingFailure: 0x0110,
  DuplicateSopInstance: 0x0111,
  NoSuchSopClass: 0x0118,
  SopClassNotSupported: 0x0122,
  OutOfResources: 0xa700,
  DataSetDoesNotMatchSopClass: 0xa900,
  CannotUnderstand: 0xc000,
  TransferSyntaxNotSupported: 0xc122,
  NotAuthorized: 0x0124,
} as const;

/**
 * Whether a DIMSE status is a warning (PS3.7 Annex C, Table C-1): Bxxx, and 0001, 0107 and 0116 (Requested
 * optional attributes not supported, Attribute list error, Attribute value out of range), which the peer answers
 * having done what was asked. 0100–01FF otherwise are failures.
 */
export const isWarningStatus = (status: number): boolean =>
  (status & 0xf000) === 0xb000 || status === 0x0001 || status === 0x0107 || status === 0x0116;

export const isCustosError = (e: unknown): e is CustosError => e instanceof CustosError;
