import { CustosError } from '../../domain/errors.js';
import { parseAccept } from '../http/content-type.js';

const notAcceptable = (what: string, offered: string) =>
  new CustosError({
    code: 'http.not-acceptable',
    message: `cannot produce any media type in Accept '${offered}' for ${what}`,
    httpStatus: 406,
  });

/** QIDO-RS and metadata responses: DICOM JSON (PS3.18 §8.7.3.2). */
export function acceptJson(
  accept: string | undefined,
  what: string,
): 'application/dicom+json' | 'application/json' {
  const entries = parseAccept(accept);
  if (entries.length === 0) return 'application/dicom+json';
  for (const e of entries) {
    if (e.q === 0) continue;
    if (e.type === 'application/dicom+json' || e.type === '*/*' || e.type === 'application/*')
      return 'application/dicom+json';
    if (e.type === 'application/json') return 'application/json';
    if (e.type === 'multipart/related' && (e.params.type ?? '').toLowerCase() === 'application/dicom+xml')
      continue;
  }
  throw notAcceptable(what, accept ?? '');
}

/**
 * WADO-RS instance retrieval (PS3.18 §8.7.3.5): multipart/related with application/dicom parts. Custos serves
 * objects as stored (no transcoding), so a specific transfer syntax is acceptable only when it is the stored one.
 * Returns the transfer syntaxes the client accepts ('*' for any).
 */
export function acceptDicom(accept: string | undefined): Set<string> {
  const entries = parseAccept(accept);
  if (entries.length === 0) return new Set(['*']);
  const ok = new Set<string>();
  for (const e of entries) {
    if (e.q === 0) continue;
    const partType = (e.params.type ?? 'application/dicom').toLowerCase();
    const isDicom =
      e.type === '*/*' ||
      (e.type === 'multipart/related' && partType === 'application/dicom') ||
      e.type === 'application/dicom' ||
      (e.type === 'multipart/*' && partType === 'application/dicom');
    if (!isDicom) continue;
    ok.add(e.params['transfer-syntax'] ?? '*');
  }
  if (ok.size === 0) throw notAcceptable('DICOM instances', accept ?? '');
  return ok;
}

export function acceptsTransferSyntax(accepted: Set<string>, ts: string): boolean {
  // PS3.18 §8.7.3.5.2 names Explicit VR Little Endian the default; a client that names none is served what is
  // stored, since Custos does not transcode.
  return accepted.has('*') || accepted.has(ts);
}

const FRAME_MEDIA: Record<string, string> = {
  '1.2.840.10008.1.2.4.50': 'image/jpeg',
  '1.2.840.10008.1.2.4.51': 'image/jpeg',
  '1.2.840.10008.1.2.4.57': 'image/jpeg',
  '1.2.840.10008.1.2.4.70': 'image/jpeg',
  '1.2.840.10008.1.2.4.80': 'image/jls',
  '1.2.840.10008.1.2.4.81': 'image/jls',
  '1.2.840.10008.1.2.4.90': 'image/jp2',
  '1.2.840.10008.1.2.4.91': 'image/jp2',
  '1.2.840.10008.1.2.4.201': 'image/jphc',
  '1.2.840.10008.1.2.4.202': 'image/jphc',
  '1.2.840.10008.1.2.4.203': 'image/jphc',
  '1.2.840.10008.1.2.5': 'image/x-dicom-rle',
  '1.2.840.10008.1.2.4.100': 'video/mpeg2',
  '1.2.840.10008.1.2.4.102': 'video/mp4',
  '1.2.840.10008.1.2.4.103': 'video/mp4',
};

const NATIVE = new Set([
  '1.2.840.10008.1.2',
  '1.2.840.10008.1.2.1',
  '1.2.840.10008.1.2.1.99',
  '1.2.840.10008.1.2.2',
]);

/**
 * Frames and bulk data (PS3.18 §8.7.3.3): native pixel data goes out as application/octet-stream, encapsulated
 * frames in their own media type; each part names the transfer syntax.
 */
export function framePartType(storedTs: string, accept: string | undefined): string {
  const native = NATIVE.has(storedTs);
  const media = native ? 'application/octet-stream' : (FRAME_MEDIA[storedTs] ?? 'application/octet-stream');
  // Native frames are little endian explicit-VR bytes except for the (retired) big endian syntax.
  const ts = native ? (storedTs === '1.2.840.10008.1.2.2' ? storedTs : '1.2.840.10008.1.2.1') : storedTs;
  const entries = parseAccept(accept);
  if (entries.length === 0) return `${media}; transfer-syntax=${ts}`;
  for (const e of entries) {
    if (e.q === 0) continue;
    const inner =
      e.type === 'multipart/related' ? (e.params.type ?? 'application/octet-stream').toLowerCase() : e.type;
    const wantTs = e.params['transfer-syntax'];
    const typeOk =
      inner === '*/*' ||
      inner === media ||
      inner === 'application/octet-stream' ||
      (inner.endsWith('/*') && media.startsWith(inner.slice(0, -1)));
    if (typeOk && (wantTs === undefined || wantTs === '*' || wantTs === ts))
      return `${inner === 'application/octet-stream' ? 'application/octet-stream' : media}; transfer-syntax=${ts}`;
  }
  throw notAcceptable(`frames stored as ${storedTs} (no transcoding)`, accept ?? '');
}
