import { STORAGE_SOP_CLASSES } from '../../dicom/storage-sop-classes.js';
import { TransferSyntax } from '../../dicom/tags.js';
import { isValidUid } from '../../domain/ids.js';

export const Sop = {
  Verification: '1.2.840.10008.1.1',
  StorageCommitmentPush: '1.2.840.10008.1.20.1',
  /** PS3.4 J.3.5: the well-known SOP Instance of the Storage Commitment Push Model. */
  StorageCommitmentPushInstance: '1.2.840.10008.1.20.1.1',
  PatientRootFind: '1.2.840.10008.5.1.4.1.2.1.1',
  PatientRootMove: '1.2.840.10008.5.1.4.1.2.1.2',
  PatientRootGet: '1.2.840.10008.5.1.4.1.2.1.3',
  StudyRootFind: '1.2.840.10008.5.1.4.1.2.2.1',
  StudyRootMove: '1.2.840.10008.5.1.4.1.2.2.2',
  StudyRootGet: '1.2.840.10008.5.1.4.1.2.2.3',
} as const;

export const QUERY_RETRIEVE = new Set<string>([
  Sop.PatientRootFind,
  Sop.PatientRootMove,
  Sop.PatientRootGet,
  Sop.StudyRootFind,
  Sop.StudyRootMove,
  Sop.StudyRootGet,
]);

/**
 * A SOP class Custos stores: one of the standard's storage classes, or a vendor's private class (a UID outside the
 * standard's root 1.2.840.10008, such as Siemens CSA Non-Image 1.3.12.2.1107.5.9.1 that a Siemens MR sends with its
 * series). STOW-RS and import store such an object with an "unknown SOP class" warning; C-STORE goes through the
 * same ingest, so it takes the context too. Until 7 Dec 2026 the context was rejected, and such objects could reach
 * Custos by STOW-RS only.
 */
export const isStorageSopClass = (uid: string) =>
  STORAGE_SOP_CLASSES.has(uid) || (!uid.startsWith('1.2.840.10008.') && isValidUid(uid));

/** Transfer syntaxes for commands' data sets other than stored objects. */
export const PLAIN_SYNTAXES = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
] as const;

/** What C-STORE accepts, stored as received (issue 3): native, deflated and the common compressed syntaxes. */
export const STORAGE_SYNTAXES = new Set<string>([
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.DeflatedExplicitVRLittleEndian,
  TransferSyntax.JPEGBaseline,
  TransferSyntax.JPEGExtended,
  '1.2.840.10008.1.2.4.57', // JPEG lossless, non-hierarchical (process 14)
  TransferSyntax.JPEGLossless,
  TransferSyntax.JPEGLSLossless,
  TransferSyntax.JPEGLSNearLossless,
  TransferSyntax.JPEG2000Lossless,
  TransferSyntax.JPEG2000,
  TransferSyntax.HTJ2KLossless,
  '1.2.840.10008.1.2.4.202', // HTJ2K lossless RPCL
  TransferSyntax.HTJ2K,
  TransferSyntax.RLELossless,
]);
