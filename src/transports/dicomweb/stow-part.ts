import { CustosError, DicomStatus } from '../../domain/errors.js';
import { parseMediaType } from '../http/content-type.js';
import type { MultipartPart } from '../http/multipart-reader.js';

/** Why a STOW-RS part is refused: its FailureReason, the Warning's text, and the code for the ledger. */
export interface PartHeadRefusal {
  reason: number;
  text: string;
  code: string;
}

/**
 * A STOW-RS part's media type and parameters (`fallback` when it names none), or why it is refused before its bytes
 * are read, FailureReason 0xC000 (cannot understand): headers the multipart reader could not read, a Content-Type
 * that does not parse, or a Content-Transfer-Encoding other than binary. Both forms of STOW-RS (Part 10 objects,
 * metadata and bulk data) read their parts' heads here.
 */
export function partHead(
  part: MultipartPart,
  partNo: number,
  fallback: string,
): { type: string; params: Record<string, string> } | { refused: PartHeadRefusal } {
  if (part.error)
    return {
      refused: { reason: DicomStatus.CannotUnderstand, text: part.error.message, code: part.error.code },
    };
  let head = { type: fallback, params: {} as Record<string, string> };
  if (part.contentType !== undefined) {
    try {
      head = parseMediaType(part.contentType);
    } catch (e) {
      if (!(e instanceof CustosError)) throw e;
      // Until 6 Dec 2026 this ended the request: the parts after it were neither stored nor reported.
      return {
        refused: {
          reason: DicomStatus.CannotUnderstand,
          text: `part ${partNo}: Content-Type ${e.message}`,
          code: e.code,
        },
      };
    }
  }
  // DICOMweb sends parts in binary. A base64 or quoted-printable part is named as such, not read as DICOM and
  // failed for its first bytes ("expected 'DICM' … found 'AAAA'", until 6 Dec 2026).
  const transfer = part.headers['content-transfer-encoding']?.toLowerCase();
  if (transfer !== undefined && !['binary', '8bit', '7bit'].includes(transfer))
    return {
      refused: {
        reason: DicomStatus.CannotUnderstand,
        code: 'stow.unsupported-transfer-encoding',
        text: `part ${partNo} has Content-Transfer-Encoding ${transfer.slice(0, 40)}, which is not supported: send the object in binary`,
      },
    };
  return head;
}
