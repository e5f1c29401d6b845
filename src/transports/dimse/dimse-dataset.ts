/**
 * Data sets on the wire (identifiers, event information, C-STORE data): a DIMSE data set is a bare data set in
 * the presentation context's transfer syntax. Around it Custos builds the Part 10 file meta information so the
 * one parser and the one writer of src/dicom serve DIMSE as they serve files and STOW-RS.
 */
import type { DicomJsonObject } from '../../domain/dicom-levels.js';
import { parsePart10, type Dataset } from '../../dicom/part10-parser.js';
import { writeDataset, type WriteElement } from '../../dicom/part10-writer.js';
import { Tags } from '../../dicom/tags.js';

const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1483.2';

function explicitLe(group: number, element: number, vr: string, value: Buffer): Buffer {
  const long = vr === 'OB';
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(group, 0);
  h.writeUInt16LE(element, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(value.length, 8);
  else h.writeUInt16LE(value.length, 6);
  return Buffer.concat([h, value]);
}

const uidValue = (s: string) => {
  const b = Buffer.from(s, 'latin1');
  return b.length % 2 ? Buffer.concat([b, Buffer.from([0])]) : b;
};

/** Preamble, "DICM" and the file meta information group (PS3.10 §7.1) for a received data set. */
export function fileMetaHeader(
  sopClassUid: string,
  sopInstanceUid: string,
  transferSyntaxUid: string,
  sourceAe = '',
): Buffer {
  const body = Buffer.concat([
    explicitLe(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    explicitLe(0x0002, 0x0002, 'UI', uidValue(sopClassUid)),
    explicitLe(0x0002, 0x0003, 'UI', uidValue(sopInstanceUid)),
    explicitLe(0x0002, 0x0010, 'UI', uidValue(transferSyntaxUid)),
    explicitLe(0x0002, 0x0012, 'UI', uidValue(IMPLEMENTATION_CLASS_UID)),
    ...(sourceAe
      ? [
          explicitLe(
            0x0002,
            0x0016,
            'AE',
            Buffer.from(sourceAe.length % 2 ? `${sourceAe} ` : sourceAe, 'latin1'),
          ),
        ]
      : []),
  ]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(body.length);
  return Buffer.concat([
    Buffer.alloc(128),
    Buffer.from('DICM', 'latin1'),
    explicitLe(0x0002, 0x0000, 'UL', len),
    body,
  ]);
}

/** Parse a small data set (identifier, action information) received in `transferSyntaxUid`. */
export async function parseDataset(bytes: Buffer, transferSyntaxUid: string): Promise<Dataset> {
  const parsed = await parsePart10(
    Buffer.concat([fileMetaHeader('1.2.3', '1.2.3', transferSyntaxUid), bytes]),
    {
      maxHeaderBytes: 4 * 1024 * 1024,
    },
  );
  return parsed.dataset;
}

/**
 * Encode elements as a bare data set in `transferSyntaxUid` (implicit or explicit VR little endian); with
 * `singleByteSets`, text is written in any single-byte Specific Character Set the elements name (a C-FIND answer in
 * the query's set).
 */
export function encodeDataset(
  elements: WriteElement[],
  transferSyntaxUid: string,
  opts: { singleByteSets?: boolean } = {},
): Buffer {
  return writeDataset(elements, transferSyntaxUid, opts);
}

/** DICOM JSON (as the query service returns it) back to elements for the DIMSE wire. */
export function jsonToElements(json: DicomJsonObject): WriteElement[] {
  const out: WriteElement[] = [];
  for (const [hex, el] of Object.entries(json)) {
    const tag = Number.parseInt(hex, 16) >>> 0;
    if (el.BulkDataURI !== undefined || el.InlineBinary !== undefined) continue;
    const values = el.Value ?? [];
    if (el.vr === 'SQ') {
      out.push({ tag, vr: 'SQ', value: values.map((item) => jsonToElements(item as DicomJsonObject)) });
    } else if (el.vr === 'PN') {
      out.push({
        tag,
        vr: 'PN',
        value: values.map((v) => {
          const pn = v as { Alphabetic?: string; Ideographic?: string; Phonetic?: string } | string | null;
          // An empty value of a multi-valued name is null in DICOM JSON (PS3.18 F.2.5): until 6 Dec 2026 it failed
          // the whole C-FIND with 0xC000.
          if (pn === null) return '';
          if (typeof pn === 'string') return pn;
          const groups = [pn.Alphabetic ?? '', pn.Ideographic ?? '', pn.Phonetic ?? ''];
          while (groups.length > 1 && groups[groups.length - 1] === '') groups.pop();
          return groups.join('=');
        }),
      });
    } else if (['US', 'UL', 'SS', 'SL', 'FL', 'FD'].includes(el.vr)) {
      out.push({ tag, vr: el.vr, value: values.map(Number) });
    } else if (el.vr === 'AT') {
      out.push({ tag, vr: 'AT', value: values.map((v) => Number.parseInt(String(v), 16)) });
    } else {
      out.push({ tag, vr: el.vr, value: values.map((v) => (v === null ? '' : String(v))) });
    }
  }
  return out.sort((a, b) => a.tag - b.tag);
}

export const SPECIFIC_CHARACTER_SET_UTF8: WriteElement = {
  tag: Tags.SpecificCharacterSet,
  vr: 'CS',
  value: 'ISO_IR 192',
};
