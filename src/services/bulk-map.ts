import type { DicomJsonObject } from '../domain/dicom-levels.js';
import type { BulkMap } from '../domain/frames.js';
import { datasetToJson } from '../dicom/dicom-json.js';
import type { ParsedPart10 } from '../dicom/part10-parser.js';
import { Tags, tagToHex } from '../dicom/tags.js';

export type { BulkMap };

/**
 * The stored header of an instance: its DICOM JSON with `bulk:<tagpath>` placeholders for every value that
 * is not inline, and where each of those values sits in the stored object (for WADO-RS bulk data and frames).
 */
export function describeBulk(parsed: ParsedPart10): { json: DicomJsonObject; bulk: BulkMap } {
  const bulk: BulkMap = { datasetStart: parsed.datasetStart, deflated: parsed.deflated, elements: {} };
  // Words of a big endian object (retired, but still met) would be served in its byte order while the part says
  // little endian; the parser holds them swapped already, so they stay inline.
  const bigEndian = parsed.transferSyntaxUid === '1.2.840.10008.1.2.2';
  const json = datasetToJson(parsed.dataset, {
    // Called for values too large to go inline (datasetToJson's inlineBinaryMax): those the parser left in the
    // file, and binary ones it read (up to its maxInlineValueBytes), which are served from the file alike. A
    // Siemens CSA header (OB, ~100 KB in every MR image) would otherwise travel as base64 in every metadata answer.
    bulkDataUri: (path, el) => {
      // Tags in hex, item indexes in decimal: 7FE00010, 00540016.1.00181072. Without the index, two items'
      // values of one tag had one key, and the first item's URI served the last item's bytes.
      const key = path.map((step, i) => (i % 2 ? String(step) : tagToHex(step))).join('.');
      if (el.kind === 'bulk') bulk.elements[key] = { offset: el.offset, length: el.length };
      else if (
        el.kind === 'bytes' &&
        el.offset !== undefined &&
        (!bigEndian || el.vr === 'OB' || el.vr === 'UN')
      )
        bulk.elements[key] = { offset: el.offset, length: el.data.length };
      else if (el.kind !== 'encapsulated') return undefined;
      return `bulk:${key}`;
    },
  }) as DicomJsonObject;
  const px = parsed.pixelData;
  if (px) {
    bulk.pixel = {
      tagPath: tagToHex(px.tag),
      offset: px.offset,
      length: px.length,
      encapsulated: px.encapsulated,
      ...(px.fragments ? { fragments: px.fragments } : {}),
      ...(px.basicOffsetTable ? { basicOffsetTable: px.basicOffsetTable } : {}),
      // An empty Basic Offset Table gives way to the Extended Offset Table, where there is one.
      ...(px.encapsulated && !px.basicOffsetTable?.length ? extendedOffsets(parsed) : {}),
    };
    // Small native pixel data stays inline in the parser's dataset; it is still served as bulk data.
    const key = tagToHex(px.tag);
    if (!px.encapsulated) bulk.elements[key] = { offset: px.offset, length: px.length };
    json[key] = { vr: px.vr, BulkDataURI: `bulk:${key}` };
  }
  return { json, bulk };
}

/**
 * The Extended Offset Table (7FE0,0001), where the Basic Offset Table is empty (PS3.5 A.4, PS3.3 C.7.6.3): 64-bit
 * offsets of each frame's first fragment, counted as the Basic Offset Table's are, so frames are found the same
 * way (until 5 Dec 2026 it was ignored, and frames of several fragments were a 501). Read where the parser kept
 * its value (up to its inline limit, 256 KiB: 32,768 frames).
 */
function extendedOffsets(parsed: ParsedPart10): { basicOffsetTable?: number[] } {
  const el = parsed.dataset.get(Tags.ExtendedOffsetTable);
  let offsets: number[] | undefined;
  if (el?.kind === 'bytes' && el.data.length % 8 === 0) {
    offsets = [];
    for (let i = 0; i < el.data.length; i += 8) offsets.push(Number(el.data.readBigUInt64LE(i)));
  } else if (el?.kind === 'bigints') offsets = el.values.map(Number);
  return offsets?.length && offsets.every(Number.isSafeInteger) ? { basicOffsetTable: offsets } : {};
}
