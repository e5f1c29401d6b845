/**
 * The Native DICOM Model (PS3.19 §A.1) of a DICOM JSON object (PS3.18 F.2): the `application/dicom+xml` form of
 * QIDO-RS results and WADO-RS metadata. Pure: JSON in, XML text out.
 */
import type { DicomJsonObject } from '../domain/dicom-levels.js';
import { lookupTag } from './dictionary.js';
import { isPrivateCreatorTag, isPrivateDataTag, isPrivateTag } from './tags.js';

type JsonValue = DicomJsonObject[string];

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Text for XML 1.0, which has no way to write C0 controls other than TAB, LF and CR: they become U+FFFD. */
function escapeXml(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0xfffe || c === 0xffff) out += '\ufffd';
    else out += ENTITIES[ch] ?? ch;
  }
  return out;
}

const PN_PARTS = ['FamilyName', 'GivenName', 'MiddleName', 'NamePrefix', 'NameSuffix'] as const;
const PN_GROUPS = ['Alphabetic', 'Ideographic', 'Phonetic'] as const;

function personName(value: unknown, n: number): string {
  const groups = (value ?? {}) as Partial<Record<(typeof PN_GROUPS)[number], string>>;
  let out = `<PersonName number="${n}">`;
  for (const g of PN_GROUPS) {
    const text = groups[g];
    if (text === undefined || text === '') continue;
    const parts = text.split('^');
    out += `<${g}>`;
    PN_PARTS.forEach((p, i) => {
      if (parts[i]) out += `<${p}>${escapeXml(parts[i]!)}</${p}>`;
    });
    out += `</${g}>`;
  }
  return `${out}</PersonName>`;
}

/** The value of the Private Creator element of this data set that reserves the block of a private data element. */
function privateCreatorOf(tag: number, obj: DicomJsonObject): string | undefined {
  if (!isPrivateDataTag(tag)) return undefined;
  const creatorTag = (((tag >>> 16) << 16) | ((tag >>> 8) & 0xff)) >>> 0;
  const value = obj[creatorTag.toString(16).toUpperCase().padStart(8, '0')]?.Value?.[0];
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

function attribute(tag: string, el: JsonValue, obj: DicomJsonObject): string {
  const n = Number.parseInt(tag, 16) >>> 0;
  const creator = privateCreatorOf(n, obj);
  // PS3.19 Table A.1.5-2 (and PS3.18 Table F.3.1-1): a private data element is gggg00ee with the privateCreator
  // of its block; the block number is not sent. The keyword is only for elements the PS3.6 dictionary knows.
  const head =
    creator === undefined
      ? `tag="${tag}"`
      : `tag="${tag.slice(0, 4)}00${tag.slice(6)}" privateCreator="${escapeXml(creator)}"`;
  const keyword = isPrivateTag(n) ? undefined : lookupTag(n)?.keyword;
  let out = `<DicomAttribute ${head} vr="${el.vr}"${keyword ? ` keyword="${keyword}"` : ''}>`;
  const values = (el.Value ?? []) as unknown[];
  if (el.vr === 'SQ') {
    values.forEach((item, i) => {
      out += `<Item number="${i + 1}">${attributes(item as DicomJsonObject)}</Item>`;
    });
  } else if (el.vr === 'PN') {
    values.forEach((v, i) => (out += personName(v, i + 1)));
  } else if (el.BulkDataURI !== undefined) {
    out += `<BulkData uri="${escapeXml(el.BulkDataURI)}"/>`;
  } else if (el.InlineBinary !== undefined) {
    out += `<InlineBinary>${el.InlineBinary}</InlineBinary>`;
  } else {
    values.forEach((v, i) => {
      // An empty value of a multi-valued attribute is a Value element without text (PS3.19 §A.1.5).
      out +=
        v === null || v === undefined
          ? `<Value number="${i + 1}"/>`
          : `<Value number="${i + 1}">${escapeXml(String(v))}</Value>`;
    });
  }
  return `${out}</DicomAttribute>`;
}

function attributes(obj: DicomJsonObject): string {
  let out = '';
  for (const tag of Object.keys(obj).sort()) {
    const n = Number.parseInt(tag, 16) >>> 0;
    // Group lengths are never written (PS3.19 A.1.1); a Private Creator element is written as the privateCreator
    // attribute of the elements of its block, as dcm4che does, so that its tag cannot be confused with theirs.
    if ((n & 0xffff) === 0 || isPrivateCreatorTag(n)) continue;
    out += attribute(tag, obj[tag]!, obj);
  }
  return out;
}

/** One data set as a Native DICOM Model document. */
export function nativeDicomXml(obj: DicomJsonObject): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<NativeDicomModel xml:space="preserve">${attributes(obj)}</NativeDicomModel>\n`;
}
