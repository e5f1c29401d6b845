/** Branded identifiers: a StudyUid cannot be passed where a SopInstanceUid is expected. */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type StudyUid = Brand<string, 'StudyUid'>;
export type SeriesUid = Brand<string, 'SeriesUid'>;
export type SopInstanceUid = Brand<string, 'SopInstanceUid'>;
export type PatientId = Brand<string, 'PatientId'>;
export type BlobId = Brand<string, 'BlobId'>;
export type UserId = Brand<string, 'UserId'>;

/** PS3.5 §9.1: UID is 1..64 chars of digits and dots, no leading zero in a component (except "0"). */
const UID_RE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;
export const isValidUid = (s: string): boolean => s.length > 0 && s.length <= 64 && UID_RE.test(s);

export const asStudyUid = (s: string) => s as StudyUid;
export const asSeriesUid = (s: string) => s as SeriesUid;
export const asSopInstanceUid = (s: string) => s as SopInstanceUid;
export const asPatientId = (s: string) => s as PatientId;
export const asBlobId = (s: string) => s as BlobId;
export const asUserId = (s: string) => s as UserId;
