import { toDicomAuditXml, type DicomAuditOptions } from '../domain/audit-dicom.js';
import { toFhirAuditEvent, type FhirAuditOptions } from '../domain/audit-fhir.js';
import type { AuditRecord } from '../domain/audit-record.js';
import { CustosError } from '../domain/errors.js';

export type AuditExportFormat = 'dicom' | 'fhir';
export const AUDIT_EXPORT_FORMATS: readonly AuditExportFormat[] = ['dicom', 'fhir'];

/**
 * Audit records in a standard format, one line each: `dicom` is one PS3.15 A.5 AuditMessage (XML, with its
 * declaration) a line, `fhir` is FHIR R4 AuditEvent NDJSON (the FHIR bulk data format). Each yielded string is
 * one line including its '\n'. Lazy: records are converted as the consumer pulls, so an export of millions of
 * records holds one at a time.
 */
export async function* exportRecords(
  records: AsyncIterable<AuditRecord>,
  format: AuditExportFormat,
  opts: DicomAuditOptions & FhirAuditOptions = {},
): AsyncIterable<string> {
  if (!AUDIT_EXPORT_FORMATS.includes(format))
    throw new CustosError({
      code: 'audit.bad-format',
      message: `format: must be one of ${AUDIT_EXPORT_FORMATS.join(', ')}, got '${String(format)}'`,
      httpStatus: 400,
      detail: { parameter: 'format' },
    });
  for await (const r of records) {
    // Both serialisations escape line breaks inside values, so a line is always exactly one record.
    yield format === 'dicom'
      ? `${toDicomAuditXml(r, opts)}\n`
      : `${JSON.stringify(toFhirAuditEvent(r, opts))}\n`;
  }
}
