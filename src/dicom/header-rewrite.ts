import { CustosError } from '../domain/errors.js';
import type { BulkMap } from '../domain/frames.js';
import { TEXT_VRS, type Dataset, type Element } from './dataset.js';
import { datasetToJson, type DicomJsonDataset } from './dicom-json.js';
import { lookupTag, tagForKeyword } from './dictionary.js';
import { parsePart10 } from './part10-parser.js';
import { inUtf8, writePart10, type WriteElement } from './part10-writer.js';
import { Tags, parseTagHex, tagToHex } from './tags.js';
import { transferSyntaxEncoding } from './transfer-syntax.js';

/**
 * Header corrections as an overlay over stored bytes (issue 6: the original bytes are kept, retrieve serves the
 * corrected header). Pure: corrections are applied to a parsed dataset, to its DICOM JSON, or to the header
 * bytes of a stored object; the bytes after the header (pixel data, other bulk values) are never touched.
 *
 * A correction replaces the whole value of one top-level text attribute: { 'GGGGEEEE': values }.
 */
export type HeaderCorrections = Record<string, string[]>;

const bad = (message: string, attribute?: string) =>
  new CustosError({
    code: 'correction.invalid',
    message,
    httpStatus: 400,
    ...(attribute ? { detail: { attribute } } : {}),
  });

/** Attributes a correction may not change: they bind the stored bytes to their encryption key and encoding. */
const NOT_CORRECTABLE = new Set<number>([Tags.StudyInstanceUID, Tags.SpecificCharacterSet]);

/**
 * Parse `{ tag: value }` from a user (tag as '(0010,0020)', '00100020' or a keyword; value a string or an array
 * of strings) into corrections keyed by 'GGGGEEEE'. Refuses tags that are not top-level text attributes.
 */
export function parseCorrections(input: Record<string, unknown>): HeaderCorrections {
  const out: HeaderCorrections = {};
  for (const [key, raw] of Object.entries(input)) {
    const tag = parseTagHex(key) ?? tagForKeyword(key);
    if (tag === undefined) throw bad(`${key}: not a tag or attribute keyword`, key);
    const entry = lookupTag(tag);
    if (!entry || (tag >>> 16) % 2 === 1) throw bad(`${key}: not a standard attribute`, key);
    if (tag >>> 16 === 0x0002 || NOT_CORRECTABLE.has(tag))
      throw bad(`${key}: ${entry.keyword} cannot be corrected (it binds the stored object)`, key);
    if (!TEXT_VRS.has(entry.vr))
      throw bad(`${key}: ${entry.keyword} has VR ${entry.vr}; only text attributes can be corrected`, key);
    const values = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw : undefined;
    if (!values || !values.every((v): v is string => typeof v === 'string'))
      throw bad(`${key}: the new value must be a string or an array of strings`, key);
    if (values.some((v) => v.includes('\\')))
      throw bad(`${key}: give several values as an array, not joined by backslashes`, key);
    out[tagToHex(tag)] = values;
  }
  return out;
}

function correctedElement(vr: string, values: string[]): Element {
  return { vr, kind: 'text', values: values.length ? values : [''] };
}

/** The dataset with the corrections applied (a new map; the input is not changed). */
export function applyToDataset(ds: Dataset, corrections: HeaderCorrections): Dataset {
  const out: Dataset = new Map(ds);
  for (const [hex, values] of Object.entries(corrections)) {
    const tag = Number.parseInt(hex, 16) >>> 0;
    out.set(tag, correctedElement(ds.get(tag)?.vr ?? lookupTag(tag)?.vr ?? 'UN', values));
  }
  return out;
}

/** The DICOM JSON header with the corrections applied, encoded as PS3.18 Annex F encodes them. */
export function applyToJson(json: DicomJsonDataset, corrections: HeaderCorrections): DicomJsonDataset {
  const out: DicomJsonDataset = { ...json };
  for (const [hex, values] of Object.entries(corrections)) {
    const tag = Number.parseInt(hex, 16) >>> 0;
    const vr = json[hex]?.vr ?? lookupTag(tag)?.vr ?? 'UN';
    const one: Dataset = new Map([[tag, correctedElement(vr, values)]]);
    Object.assign(out, datasetToJson(one));
  }
  return out;
}

/**
 * Where the header of a stored object ends: the start of its first top-level bulk value (pixel data or another
 * large binary value), or `size` when it has none. Only for objects that are not deflated (offsets are then
 * positions in the stored bytes).
 */
export function headerEnd(
  bulk: BulkMap,
  transferSyntaxUid: string,
  size: number,
): { offset: number; tag: number | undefined } {
  if (bulk.deflated) throw bad('header corrections are not supported for deflated objects');
  const explicit = transferSyntaxEncoding(transferSyntaxUid)?.explicit ?? true;
  // Bulk values have long VRs: 12-byte element header in explicit VR, 8 in implicit (PS3.5 §7.1).
  const headerLength = explicit ? 12 : 8;
  let best: { offset: number; tag: number | undefined } = { offset: size, tag: undefined };
  const consider = (path: string, valueOffset: number, encapsulated: boolean) => {
    if (path.includes('.')) return;
    const start = valueOffset - (encapsulated ? 12 : headerLength);
    if (start < best.offset) best = { offset: start, tag: Number.parseInt(path, 16) >>> 0 };
  };
  for (const [path, el] of Object.entries(bulk.elements)) consider(path, el.offset, false);
  if (bulk.pixel) consider(bulk.pixel.tagPath, bulk.pixel.offset, bulk.pixel.encapsulated);
  return best;
}

/** Corrections must sit before the first bulk value, inside the part of the object that is rewritten. */
export function assertCorrectable(corrections: HeaderCorrections, end: { tag: number | undefined }): void {
  for (const hex of Object.keys(corrections)) {
    const tag = Number.parseInt(hex, 16) >>> 0;
    if (end.tag !== undefined && tag >= end.tag)
      throw bad(`${hex}: attributes after ${tagToHex(end.tag)} (bulk data) cannot be corrected`, hex);
  }
}

function toWriteElements(ds: Dataset): WriteElement[] {
  const out: WriteElement[] = [];
  for (const [tag, el] of ds) {
    if ((tag & 0xffff) === 0) continue; // group lengths would be stale
    switch (el.kind) {
      case 'text':
        out.push({ tag, vr: el.vr, value: el.values });
        break;
      case 'numbers':
      case 'tags':
        out.push({ tag, vr: el.vr, value: el.values });
        break;
      case 'bigints':
        out.push({ tag, vr: el.vr, value: el.values });
        break;
      case 'bytes':
        out.push({ tag, vr: el.vr, value: el.data });
        break;
      case 'sequence':
        out.push({ tag, vr: 'SQ', value: el.items.map(toWriteElements) });
        break;
      default:
        throw bad(`${tagToHex(tag)}: a bulk value inside the header cannot be rewritten`);
    }
  }
  return out;
}

/** Parse the header bytes of a stored object (everything before its first bulk value) with every value inline. */
async function parsePrefix(prefix: Buffer) {
  return parsePart10(prefix, {
    maxInlineValueBytes: prefix.length + 1,
    maxHeaderBytes: prefix.length * 2 + 1024,
  });
}

/**
 * Write a rewritten header. When its text (decoded, corrections included) does not fit its character set as this
 * writer encodes it (only UTF-8, Latin-1 and ASCII are written, charset.ts), it is written in UTF-8 instead, every
 * text value re-encoded, rather than not at all: a Japanese name (ISO 2022 IR 87), a GB18030 one, or a correction
 * in another script made the object unretrievable. So are the items that name their own character set (until
 * 6 Dec 2026 they kept it, and an item in ISO_IR 144 with Cyrillic text still failed the object).
 */
function writeHeader(ds: Dataset, transferSyntaxUid: string): Buffer {
  const elements = toWriteElements(ds);
  try {
    return writePart10(elements, { transferSyntaxUid });
  } catch (err) {
    if (!(err instanceof CustosError) || err.code !== 'dicom.not-encodable') throw err;
    return writePart10(inUtf8(elements), { transferSyntaxUid });
  }
}

/**
 * Rewrite the header of a stored object: `prefix` is its bytes up to `headerEnd` (preamble, file meta and every
 * element before the first bulk value). Returns the new prefix in the same transfer syntax; the caller sends it
 * followed by the stored bytes from `headerEnd` on, unchanged.
 */
export async function rewriteHeader(prefix: Buffer, corrections: HeaderCorrections): Promise<Buffer> {
  const parsed = await parsePrefix(prefix);
  const written = writeHeader(applyToDataset(parsed.dataset, corrections), parsed.transferSyntaxUid);
  // Serve the stored preamble and file meta information byte for byte: only the dataset is rewritten, so the
  // stored dataset offset (DIMSE sends the bytes after it) still holds for the served object.
  const writtenDatasetStart = 144 + written.readUInt32LE(140);
  return Buffer.concat([prefix.subarray(0, parsed.datasetStart), written.subarray(writtenDatasetStart)]);
}

/**
 * The header of a stored object for another transfer syntax (an object decompressed to Explicit VR Little
 * Endian): `prefix` is its bytes up to the element the caller writes itself (pixel data); `edit` changes the
 * parsed data set (what decoding changed: photometric interpretation, planar configuration, lossy compression).
 * Returns a whole new preamble, file meta information (naming `transferSyntaxUid` and Custos as the
 * implementation that wrote it) and data set, and where the data set starts.
 */
export async function rewriteHeaderAs(
  prefix: Buffer,
  transferSyntaxUid: string,
  edit: (ds: Dataset) => void,
): Promise<{ bytes: Buffer; datasetStart: number }> {
  const parsed = await parsePrefix(prefix);
  edit(parsed.dataset);
  const bytes = writeHeader(parsed.dataset, transferSyntaxUid);
  return { bytes, datasetStart: 144 + bytes.readUInt32LE(140) };
}

/**
 * One set of corrections from the two sources that change a served header, in a defined order: first what a
 * data steward corrected when releasing the object from quarantine, then what the patient index (HL7 ADT
 * merges, identifier and demographic updates) says now. The patient index wins for the attributes it holds
 * (PatientName, PatientID, IssuerOfPatientID, PatientBirthDate, PatientSex): it is the later and
 * authoritative reconciliation of who the patient is; the steward's corrections stand for every other attribute.
 */
export function mergeCorrections(
  steward: HeaderCorrections | undefined,
  patientIndex: HeaderCorrections,
): HeaderCorrections {
  return { ...(steward ?? {}), ...patientIndex };
}
