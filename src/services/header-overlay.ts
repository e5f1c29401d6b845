import { CustosError } from '../domain/errors.js';
import type { DicomJsonObject } from '../domain/dicom-levels.js';
import type { Dataset, Element } from '../dicom/dataset.js';
import { parsePart10 } from '../dicom/part10-parser.js';
import { writePart10, type WriteElement } from '../dicom/part10-writer.js';
import { transferSyntaxEncoding } from '../dicom/transfer-syntax.js';

/**
 * Served headers follow the archive's knowledge (IHE Patient Information Reconciliation; issue 6 quarantine
 * corrections): what a retrieve serves may differ from the stored object in a few top-level attributes. The
 * stored bytes never change. A correction set is computed here, applied to DICOM JSON here, and written into a
 * Part 10 header here; nowhere else.
 */
export interface HeaderCorrection {
  /** Tag as 8 upper-case hex digits (DICOM JSON key). */
  tag: string;
  vr: string;
  /** New value; '' leaves the attribute present and empty. */
  value: string;
}

/** The patient module values the patient index holds for a study's patient. */
export interface PatientIndexValues {
  patientId: string;
  issuer: string;
  name: string;
  birthDate: string;
  sex: string;
}

const jsonText = (json: DicomJsonObject, tag: string): string => {
  const v = json[tag]?.Value?.[0];
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return String((v as { Alphabetic?: string }).Alphabetic ?? '');
  return String(v);
};

/** The corrections that make a header agree with the patient index (only attributes that differ). */
export function patientCorrections(
  metadata: DicomJsonObject,
  patient: PatientIndexValues,
): HeaderCorrection[] {
  const wanted: HeaderCorrection[] = [
    { tag: '00100010', vr: 'PN', value: patient.name },
    { tag: '00100020', vr: 'LO', value: patient.patientId },
    { tag: '00100030', vr: 'DA', value: patient.birthDate },
    { tag: '00100040', vr: 'CS', value: patient.sex },
  ];
  // An index row without an issuer says nothing about IssuerOfPatientID; one with an issuer is the authority.
  if (patient.issuer !== '') wanted.push({ tag: '00100021', vr: 'LO', value: patient.issuer });
  return wanted.filter((c) => jsonText(metadata, c.tag) !== c.value);
}

/** DICOM JSON with the corrections applied (a new object; the input is not changed). */
export function applyToJson(
  json: DicomJsonObject,
  corrections: readonly HeaderCorrection[],
): DicomJsonObject {
  if (corrections.length === 0) return json;
  const out: DicomJsonObject = { ...json };
  for (const c of corrections) {
    if (c.value === '') out[c.tag] = { vr: c.vr };
    else if (c.vr === 'PN') out[c.tag] = { vr: 'PN', Value: [{ Alphabetic: c.value }] };
    else out[c.tag] = { vr: c.vr, Value: [c.value] };
  }
  return out;
}

/** Why a deflated object with corrections is not served as bytes. */
export const cannotCorrectDeflated = (sopInstanceUid: string) =>
  new CustosError({
    code: 'overlay.deflated',
    message: `instance ${sopInstanceUid} is stored in the deflated transfer syntax and its header has corrections (the patient index changed since it was stored); Custos does not re-deflate objects to serve corrected headers: retrieve its metadata instead`,
    httpStatus: 406,
  });

/** What a header rewrite needs to know about the stored object. */
export interface StoredObject {
  sopInstanceUid: string;
  transferSyntaxUid: string;
  size: number;
  bulk: {
    datasetStart: number;
    deflated: boolean;
    pixel?: { offset: number; encapsulated: boolean };
  };
}

/** Reads a byte range [start, end) of the stored object, decrypted and authenticated. */
export type RangeReader = (start: number, end: number) => AsyncIterable<Buffer>;

/**
 * The object as served with corrections: the stored preamble and file meta information unchanged, the dataset
 * up to the pixel data parsed and written again with the corrections, then the stored pixel data and whatever
 * follows it streamed unchanged (same transfer syntax, no pixel byte touched).
 */
export async function rewriteHeader(
  obj: StoredObject,
  corrections: readonly HeaderCorrection[],
  read: RangeReader,
): Promise<{ size: number; body: AsyncIterable<Buffer> }> {
  const encoding = transferSyntaxEncoding(obj.transferSyntaxUid);
  if (obj.bulk.deflated || !encoding || encoding.deflated) {
    throw cannotCorrectDeflated(obj.sopInstanceUid);
  }
  const px = obj.bulk.pixel;
  // The pixel data element's header precedes its value: 12 bytes in explicit VR (OB/OW), 8 in implicit VR.
  const headerEnd = px ? px.offset - (encoding.explicit ? 12 : 8) : obj.size;
  const head = await collect(read(0, headerEnd));
  const parsed = await parsePart10(head, {
    maxInlineValueBytes: headerEnd + 1,
    maxHeaderBytes: headerEnd + 1,
  });
  const corrected = new Map(parsed.dataset);
  for (const c of corrections) {
    const tag = parseInt(c.tag, 16);
    corrected.set(tag, { vr: c.vr, kind: 'text', values: c.value === '' ? [] : [c.value] });
  }
  const elements = toWriteElements(corrected, obj.sopInstanceUid);
  // Write a full object and keep only its dataset: the stored file meta information is served as it was.
  const written = writePart10(elements, { transferSyntaxUid: obj.transferSyntaxUid });
  const metaLength = written.readUInt32LE(140);
  const dataset = written.subarray(144 + metaLength);
  const preambleAndMeta = head.subarray(0, parsed.datasetStart);
  const size = preambleAndMeta.length + dataset.length + (obj.size - headerEnd);
  async function* body(): AsyncGenerator<Buffer> {
    yield preambleAndMeta;
    yield dataset;
    if (headerEnd < obj.size) yield* read(headerEnd, obj.size);
  }
  return { size, body: body() };
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of source) parts.push(b);
  return Buffer.concat(parts);
}

function toWriteElements(ds: Dataset, sop: string): WriteElement[] {
  const out: WriteElement[] = [];
  for (const [tag, el] of ds) {
    // File meta is kept from the stored bytes; group lengths (retired) would be wrong after a change.
    if (tag >>> 16 === 0x0002 || (tag & 0xffff) === 0) continue;
    out.push({ tag, vr: el.vr, value: valueOf(el, tag, sop) });
  }
  return out;
}

function valueOf(el: Element, tag: number, sop: string): WriteElement['value'] {
  switch (el.kind) {
    case 'text':
      return el.values;
    case 'numbers':
    case 'tags':
      return el.values;
    case 'bigints':
      return el.values;
    case 'bytes':
      return el.data;
    case 'sequence':
      return el.items.map((item) => toWriteElements(item, sop));
    default:
      throw new CustosError({
        code: 'overlay.unsupported',
        message: `instance ${sop}: element ${tag.toString(16).padStart(8, '0')} before the pixel data is not held in the header, so a corrected header cannot be written`,
        httpStatus: 500,
      });
  }
}
