/**
 * The Native DICOM Model (PS3.19 §A.1) read back into the DICOM JSON model (PS3.18 F.2), for STOW-RS metadata sent
 * as `application/dicom+xml`: one pipeline from there on (jsonToWriteElements). Pure: text in, JSON out.
 *
 * The XML reader takes what the model needs: elements, attributes, text, character and the five predefined entity
 * references, CDATA, comments and processing instructions. A DOCTYPE is refused (no DTD, no entities of the
 * sender's to expand).
 */
import { CustosError, DicomStatus } from '../domain/errors.js';
import { MAX_JSON_DEPTH, type DicomJsonDataset, type DicomJsonElement } from './dicom-json.js';
import { isPrivateTag } from './tags.js';

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const badXml = (message: string) =>
  new CustosError({
    code: 'dicom.bad-xml',
    message: `the metadata is not a Native DICOM Model document (PS3.19 A.1): ${message}`,
    httpStatus: 400,
    dicomStatus: DicomStatus.CannotUnderstand,
  });

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
/** Element nesting read at most: each sequence level is two elements (DicomAttribute, Item). */
const MAX_ELEMENT_DEPTH = 2 * MAX_JSON_DEPTH + 8;

function decode(raw: string, at: number): string {
  return raw.replace(/&([^;&<]*);?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) throw badXml(`an '&' not ending in ';' near offset ${at}`);
    if (ref in PREDEFINED) return PREDEFINED[ref]!;
    const code = /^#x[0-9A-Fa-f]+$/.test(ref)
      ? Number.parseInt(ref.slice(2), 16)
      : /^#[0-9]+$/.test(ref)
        ? Number(ref.slice(1))
        : undefined;
    if (code === undefined || code > 0x10ffff)
      throw badXml(`unknown entity '&${ref.slice(0, 20)};' near offset ${at}`);
    return String.fromCodePoint(code);
  });
}

function parseXml(text: string): XmlElement {
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const skipMisc = () => {
    for (;;) {
      while (/\s/.test(text[pos] ?? '')) pos++;
      if (text.startsWith('<?', pos)) {
        const end = text.indexOf('?>', pos);
        if (end < 0) throw badXml('a processing instruction does not end');
        pos = end + 2;
      } else if (text.startsWith('<!--', pos)) {
        const end = text.indexOf('-->', pos);
        if (end < 0) throw badXml('a comment does not end');
        pos = end + 3;
      } else if (text.startsWith('<!DOCTYPE', pos)) {
        throw badXml('a DOCTYPE is not accepted');
      } else return;
    }
  };
  const name = (): string => {
    NAME.lastIndex = pos;
    const m = NAME.exec(text);
    if (!m) throw badXml(`expected a name at offset ${pos}`);
    pos += m[0].length;
    return m[0];
  };
  const element = (depth: number): XmlElement => {
    if (depth > MAX_ELEMENT_DEPTH)
      throw badXml(`elements are nested deeper than ${MAX_ELEMENT_DEPTH} levels`);
    if (text[pos] !== '<') throw badXml(`expected an element at offset ${pos}`);
    pos++;
    const el: XmlElement = { name: name(), attrs: {}, children: [], text: '' };
    for (;;) {
      const before = pos;
      while (/\s/.test(text[pos] ?? '')) pos++;
      if (text.startsWith('/>', pos)) {
        pos += 2;
        return el;
      }
      if (text[pos] === '>') {
        pos++;
        break;
      }
      if (pos === before) throw badXml(`expected an attribute or '>' at offset ${pos}`);
      const attr = name();
      while (/\s/.test(text[pos] ?? '')) pos++;
      if (text[pos] !== '=') throw badXml(`attribute '${attr}' has no value at offset ${pos}`);
      pos++;
      while (/\s/.test(text[pos] ?? '')) pos++;
      const quote = text[pos];
      if (quote !== '"' && quote !== "'") throw badXml(`attribute '${attr}' is not quoted at offset ${pos}`);
      const end = text.indexOf(quote, pos + 1);
      if (end < 0) throw badXml(`attribute '${attr}' does not end`);
      if (attr in el.attrs) throw badXml(`attribute '${attr}' is given twice at offset ${pos}`);
      el.attrs[attr] = decode(text.slice(pos + 1, end), pos);
      pos = end + 1;
    }
    for (;;) {
      const lt = text.indexOf('<', pos);
      if (lt < 0) throw badXml(`element '${el.name}' does not end`);
      el.text += decode(text.slice(pos, lt), pos);
      pos = lt;
      if (text.startsWith('</', pos)) {
        pos += 2;
        const closing = name();
        if (closing !== el.name) throw badXml(`'</${closing}>' closes '<${el.name}>' at offset ${pos}`);
        while (/\s/.test(text[pos] ?? '')) pos++;
        if (text[pos] !== '>') throw badXml(`expected '>' at offset ${pos}`);
        pos++;
        return el;
      }
      if (text.startsWith('<![CDATA[', pos)) {
        const end = text.indexOf(']]>', pos);
        if (end < 0) throw badXml('a CDATA section does not end');
        el.text += text.slice(pos + 9, end);
        pos = end + 3;
      } else if (text.startsWith('<!--', pos) || text.startsWith('<?', pos)) {
        const close = text.startsWith('<!--', pos) ? '-->' : '?>';
        const end = text.indexOf(close, pos);
        if (end < 0) throw badXml('a comment or processing instruction does not end');
        pos = end + close.length;
      } else el.children.push(element(depth + 1));
    }
  };
  skipMisc();
  const root = element(0);
  skipMisc();
  if (pos < text.length) throw badXml(`text after the document element at offset ${pos}`);
  return root;
}

const PN_GROUPS = ['Alphabetic', 'Ideographic', 'Phonetic'] as const;
const PN_PARTS = ['FamilyName', 'GivenName', 'MiddleName', 'NamePrefix', 'NameSuffix'];

/** Children of one kind in the order of their `number` attribute (PS3.19 A.1.5: 1, 2, …). */
function numbered(el: XmlElement, kind: string, where: string): XmlElement[] {
  const list = el.children.filter((c) => c.name === kind);
  const keyed = list.map((c) => ({ c, n: Number(c.attrs.number ?? NaN) }));
  if (keyed.some((k) => !Number.isInteger(k.n) || k.n < 1))
    throw badXml(`${where}: every ${kind} needs a number attribute from 1`);
  return keyed.sort((a, b) => a.n - b.n).map((k) => k.c);
}

function personName(pn: XmlElement): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const group of PN_GROUPS) {
    const g = pn.children.find((c) => c.name === group);
    if (!g) continue;
    const parts = PN_PARTS.map((p) => g.children.find((c) => c.name === p)?.text ?? '');
    while (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
    out[group] = parts.join('^');
  }
  return Object.keys(out).length ? out : null;
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

/**
 * The tag a private data element read with a privateCreator takes in this data set (PS3.19 Table A.1.5-2: sent as
 * gggg00ee, the block left to the recipient; some writers send the whole tag, gggg[xx]ee). The block is the one
 * this data set's Private Creator elements already give that creator, else the one the tag names if free, else the
 * first free one, whose Private Creator element is then added (PS3.5 §7.8.1).
 */
function placePrivate(out: DicomJsonDataset, tag: number, creator: string, here: string): string {
  const group = tag >>> 16;
  const creatorAt = (block: number) => {
    const v = out[hex8(((group << 16) | block) >>> 0)]?.Value?.[0];
    return typeof v === 'string' ? v.trim() : undefined;
  };
  const wanted = (tag >>> 8) & 0xff;
  let block: number | undefined;
  for (let b = 0x10; b <= 0xff && block === undefined; b++) if (creatorAt(b) === creator) block = b;
  if (block === undefined && wanted >= 0x10 && creatorAt(wanted) === undefined) block = wanted;
  for (let b = 0x10; b <= 0xff && block === undefined; b++) if (creatorAt(b) === undefined) block = b;
  if (block === undefined) throw badXml(`${here}: no free private block in group ${hex8(group).slice(4)}`);
  const creatorTag = hex8(((group << 16) | block) >>> 0);
  out[creatorTag] ??= { vr: 'LO', Value: [creator] };
  return hex8(((group << 16) | (block << 8) | (tag & 0xff)) >>> 0);
}

function attributes(el: XmlElement, where: string): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  const privates: { tag: string; creator: string; json: DicomJsonElement; here: string }[] = [];
  for (const attr of el.children) {
    if (attr.name !== 'DicomAttribute') continue;
    const tag = attr.attrs.tag ?? '';
    const here = `${where}DicomAttribute tag="${tag.slice(0, 20)}"`;
    if (!/^[0-9A-Fa-f]{8}$/.test(tag)) throw badXml(`${here}: the tag must be eight hexadecimal digits`);
    const vr = attr.attrs.vr;
    if (!vr) throw badXml(`${here}: no vr attribute`);
    const json: DicomJsonElement = { vr };
    const bulk = attr.children.find((c) => c.name === 'BulkData');
    const inline = attr.children.find((c) => c.name === 'InlineBinary');
    if (bulk) {
      if (bulk.attrs.uri === undefined)
        throw badXml(`${here}: BulkData needs a uri attribute (a uuid is not supported)`);
      json.BulkDataURI = bulk.attrs.uri;
    } else if (inline) {
      json.InlineBinary = inline.text.replace(/\s+/g, '');
    } else if (vr === 'SQ') {
      const items = numbered(attr, 'Item', here);
      if (items.length) json.Value = items.map((item, i) => attributes(item, `${here} Item ${i + 1}: `));
    } else if (vr === 'PN') {
      const names = numbered(attr, 'PersonName', here);
      if (names.length) json.Value = names.map(personName);
    } else {
      const values = numbered(attr, 'Value', here);
      if (values.length) json.Value = values.map((v) => (v.text === '' ? null : v.text));
    }
    const creator = attr.attrs.privateCreator?.trim();
    // A privateCreator on a standard element is not allowed (PS3.19 Table A.1.5-2) and says nothing: ignored.
    if (creator && isPrivateTag(Number.parseInt(tag, 16) >>> 0)) privates.push({ tag, creator, json, here });
    else out[tag.toUpperCase()] = json;
  }
  // After the elements without privateCreator, so that the Private Creator elements sent are found wherever they
  // stand in the document.
  for (const p of privates)
    out[placePrivate(out, Number.parseInt(p.tag, 16) >>> 0, p.creator, p.here)] = p.json;
  return out;
}

/** One `application/dicom+xml` metadata part (a NativeDicomModel document) as a DICOM JSON data set. */
export function readNativeDicomXml(text: string): DicomJsonDataset {
  const root = parseXml(text);
  if (root.name !== 'NativeDicomModel')
    throw badXml(`the document element is '${root.name.slice(0, 40)}', not NativeDicomModel`);
  return attributes(root, '');
}
