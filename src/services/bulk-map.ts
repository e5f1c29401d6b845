import type { DicomJsonObject } from '../domain/dicom-levels.js';
import type { BulkMap } from '../domain/frames.js';
import { datasetToJson } from '../dicom/dicom-json.js';
import type { ParsedPart10 } from '../dicom/part10-parser.js';
import { tagToHex } from '../dicom/tags.js';

export type { BulkMap };

/**
 * The stored header of an instance: its DICOM JSON with `bulk:<tagpath>` placeholders for every value that
 * is not inline, and where each of those values sits in the stored object (for WADO-RS bulk data and frames).
 */
export function describeBulk(parsed: ParsedPart10): { json: DicomJsonObject; bulk: BulkMap } {
  const bulk: BulkMap = { datasetStart: parsed.datasetStart, deflated: parsed.deflated, elements: {} };
  const json = datasetToJson(parsed.dataset, {
    bulkDataUri: (path, el) => {
      const key = path.map(tagToHex).join('.');
      if (el.kind === 'bulk') bulk.elements[key] = { offset: el.offset, length: el.length };
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
    };
    // Small native pixel data stays inline in the parser's dataset; it is still served as bulk data.
    const key = tagToHex(px.tag);
    if (!px.encapsulated) bulk.elements[key] = { offset: px.offset, length: px.length };
    json[key] = { vr: px.vr, BulkDataURI: `bulk:${key}` };
  }
  return { json, bulk };
}
