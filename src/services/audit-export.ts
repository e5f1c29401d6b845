import { toDicomAuditXml, type DicomAuditOptions } from '../domain/audit-dicom.js';
import { toFhirAuditEvent, type FhirAuditOptions } from '../domain/audit-fhir.js';
import type { AuditRecord } from '../domain/audit-record.js';
import { CustosError } from '../domain/errors.js';

export type AuditExportFormat = 'dicom' | 'fhir' | 'csv';
export const AUDIT_EXPORT_FORMATS: readonly AuditExportFormat[] = ['dicom', 'fhir', 'csv'];

/** Columns of the CSV export (a spreadsheet view of the ledger for the console; JSONL is the complete record). */
export const AUDIT_CSV_COLUMNS = [
  'seq',
  'ts',
  'actor',
  'role',
  'kind',
  'action',
  'outcome',
  'policy',
  'patientId',
  'studyUid',
  'source',
  'channel',
  'purpose',
  'breakGlassReason',
] as const;

/** One RFC 4180 field; a leading = + - @ is quoted with an apostrophe so no spreadsheet runs it as a formula. */
function csvField(v: unknown): string {
  let text = v === undefined || v === null ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvLine(r: AuditRecord): string {
  const values: Record<(typeof AUDIT_CSV_COLUMNS)[number], unknown> = {
    seq: r.seq,
    ts: r.ts,
    actor: r.actor.name,
    role: r.actor.role,
    kind: r.actor.kind,
    action: r.action,
    outcome: r.outcome,
    policy: r.policy,
    patientId: r.patientId,
    studyUid: r.studyUid,
    source: r.source,
    channel: r.channel,
    purpose: r.purpose,
    breakGlassReason: r.breakGlassReason,
  };
  return `${AUDIT_CSV_COLUMNS.map((c) => csvField(values[c])).join(',')}\r\n`;
}

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
  if (format === 'csv') {
    // The header follows the first record, so that a refusal (decided when the first record is pulled) still
    // reaches the caller before anything is written.
    let header = `${AUDIT_CSV_COLUMNS.join(',')}\r\n`;
    for await (const r of records) {
      yield `${header}${csvLine(r)}`;
      header = '';
    }
    if (header) yield header;
    return;
  }
  for await (const r of records) {
    // Both serialisations escape line breaks inside values, so a line is always exactly one record.
    yield format === 'dicom'
      ? `${toDicomAuditXml(r, opts)}\n`
      : `${JSON.stringify(toFhirAuditEvent(r, opts))}\n`;
  }
}
