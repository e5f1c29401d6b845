import type { IncomingMessage } from 'node:http';
import { CustosError } from '../../domain/errors.js';
import { RENDERED_MEDIA_TYPES, type RenderedMediaType } from '../../domain/image-encoding.js';
import { isNativeTransferSyntax } from '../../dicom/transfer-syntax.js';
import { acceptWeight, parseAccept, type AcceptEntry } from '../http/content-type.js';
import type { Handler } from '../server/router.js';

const notAcceptable = (what: string, offered: string) =>
  new CustosError({
    code: 'http.not-acceptable',
    message: `cannot produce any media type in Accept '${offered}' for ${what}`,
    httpStatus: 406,
  });

/** QIDO-RS and metadata responses: DICOM JSON (PS3.18 §8.7.3.2). */
/** The multipart form of DICOM XML (PS3.18 §8.7.3.3): one application/dicom+xml part per data set. */
export const DICOM_XML_MULTIPART = 'multipart/related; type="application/dicom+xml"';

/**
 * QIDO-RS results and WADO-RS metadata: DICOM JSON (the default), plain JSON, or DICOM XML as multipart/related
 * parts (PS3.18 §8.7.3.3 lists both models), in the order of the client's preference.
 */
export function acceptJson(
  accept: string | undefined,
  what: string,
): 'application/dicom+json' | 'application/json' | typeof DICOM_XML_MULTIPART {
  const entries = parseAccept(accept);
  if (entries.length === 0) return 'application/dicom+json';
  const chosen = mostWanted<'application/dicom+json' | 'application/json' | typeof DICOM_XML_MULTIPART>(
    entries,
    [
      { value: 'application/dicom+json', type: 'application/dicom+json' },
      { value: 'application/json', type: 'application/json' },
      { value: DICOM_XML_MULTIPART, type: 'multipart/related', params: { type: 'application/dicom+xml' } },
    ],
  );
  if (chosen === undefined) throw notAcceptable(what, accept ?? '');
  return chosen;
}

/** One acceptable form of WADO-RS instances: multipart/related, or a single application/dicom part. */
export interface DicomForm {
  single: boolean;
  /** The transfer syntax asked for, '*' for any, undefined when the media type names none (servedSyntax). */
  transferSyntax: string | undefined;
  q: number;
}

/**
 * WADO-RS instance retrieval (PS3.18 §8.7.3.5, §10.4.4): multipart/related with application/dicom parts, or, for
 * one instance, application/dicom alone (a single part media type). Which transfer syntax each object goes out
 * in is servedSyntax's. Returns the acceptable forms, most wanted first (by q, then by their order in the header).
 */
export function acceptDicom(accept: string | undefined): DicomForm[] {
  const entries = parseAccept(accept);
  if (entries.length === 0) return [{ single: false, transferSyntax: undefined, q: 1 }];
  const forms: DicomForm[] = [];
  for (const e of entries) {
    if (e.q === 0) continue;
    const partType = (e.params.type ?? 'application/dicom').toLowerCase();
    let multipart =
      e.type === '*/*' ||
      ((e.type === 'multipart/related' || e.type === 'multipart/*') && partType === 'application/dicom');
    if (!multipart && e.type !== 'application/dicom' && e.type !== 'application/*') continue;
    // RFC 9110 §12.5.1: a wildcard does not bring back a form a more specific range refuses with q=0; `*/*` then
    // stands for the single part form (until 6 Dec 2026 `multipart/related; type="application/dicom";q=0, */*`
    // got multipart).
    if (e.type.endsWith('/*')) {
      // A range that refuses one transfer syntax only (`transfer-syntax=…;q=0`) does not refuse the form.
      const any = { 'transfer-syntax': '*' };
      if (multipart && refused(entries, 'multipart/related', { type: 'application/dicom', ...any })) {
        if (e.type !== '*/*') continue;
        multipart = false;
      }
      if (!multipart && refused(entries, 'application/dicom', any)) continue;
    }
    forms.push({ single: !multipart, transferSyntax: e.params['transfer-syntax'], q: e.q });
  }
  if (forms.length === 0) throw notAcceptable('DICOM instances', accept ?? '');
  // Array.prototype.sort is stable: equal q keep the header's order.
  return forms.sort((a, b) => b.q - a.q);
}

const IMPLICIT_VR = '1.2.840.10008.1.2';
const EXPLICIT_VR = '1.2.840.10008.1.2.1';
const DEFLATED = '1.2.840.10008.1.2.1.99';
const BIG_ENDIAN = '1.2.840.10008.1.2.2';

/**
 * Compressed transfer syntaxes whose pixel data is the original's (PS3.5 §8.2): JPEG Lossless (Process 14 and its
 * first-order prediction), JPEG-LS Lossless, JPEG 2000 Lossless Only, RLE Lossless and HTJ2K Lossless (and its RPCL
 * variant). JPEG Baseline and Extended, JPEG-LS near-lossless, JPEG 2000 and HTJ2K (which may be lossy) are not.
 */
const LOSSLESS = new Set([
  '1.2.840.10008.1.2.4.57',
  '1.2.840.10008.1.2.4.70',
  '1.2.840.10008.1.2.4.80',
  '1.2.840.10008.1.2.4.90',
  '1.2.840.10008.1.2.5',
  '1.2.840.10008.1.2.4.201',
  '1.2.840.10008.1.2.4.202',
]);

/**
 * The transfer syntax an object stored in `ts` goes out in for this form (undefined: none the form takes).
 * - The syntax asked for by name, when it is the stored one.
 * - Implicit VR Little Endian and Explicit VR Big Endian, which "shall not be used with Web Services" (PS3.18
 *   §8.7.3), go in Explicit VR Little Endian (every origin server converts to it, §8.7.3.4 Note 2) for `*`, for
 *   Explicit VR Little Endian, and for no parameter. A deflated object likewise, except for `*` (it is one of
 *   the web's syntaxes: as stored). Until 6 Dec 2026 big endian and deflated objects went only as stored.
 * - A compressed object Custos can decompress (`decompressible`) goes decompressed in Explicit VR Little Endian
 *   when asked for that by name, and when no transfer syntax is named and its compression is lossless: Explicit
 *   VR Little Endian is the default unless only lossy compressed pixel data is at hand (PS3.18 §8.7.3.4, WADO-URI
 *   §9.4.2.4; until 6 Dec 2026 no parameter meant as stored). A lossy one, or one Custos does not decode, goes
 *   as stored then; `*` always does.
 */
export function servedSyntax(form: DicomForm, ts: string, decompressible = false): string | undefined {
  const want = form.transferSyntax;
  if (want === ts) return ts;
  if (ts === IMPLICIT_VR || ts === BIG_ENDIAN || ts === DEFLATED) {
    if (want === undefined || want === EXPLICIT_VR || (want === '*' && ts !== DEFLATED)) return EXPLICIT_VR;
    return want === '*' ? ts : undefined;
  }
  if (want === '*') return ts;
  if (ts === EXPLICIT_VR || isNativeTransferSyntax(ts)) return want === undefined ? ts : undefined;
  if (want === EXPLICIT_VR) return decompressible ? EXPLICIT_VR : undefined;
  if (want === undefined) return decompressible && LOSSLESS.has(ts) ? EXPLICIT_VR : ts;
  return undefined;
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
  // PS3.18 Table 8.7.3-5: JPEG 2000 Part 2 is image/jpx, the type STOW-RS takes it in (stow-metadata.ts); until 7 Dec
  // 2026 its frames went out labelled application/octet-stream, and image/jpx was a 406.
  '1.2.840.10008.1.2.4.92': 'image/jpx',
  '1.2.840.10008.1.2.4.93': 'image/jpx',
  '1.2.840.10008.1.2.4.201': 'image/jphc',
  '1.2.840.10008.1.2.4.202': 'image/jphc',
  '1.2.840.10008.1.2.4.203': 'image/jphc',
  // PS3.18 §8.7.3.3 and the IANA registry: image/dicom-rle; until 6 Dec 2026 labelled image/x-dicom-rle, the name of
  // older editions, which dicomweb-client 0.11 still asks for (MEDIA_ALIASES).
  '1.2.840.10008.1.2.5': 'image/dicom-rle',
  '1.2.840.10008.1.2.4.100': 'video/mpeg2',
  '1.2.840.10008.1.2.4.101': 'video/mpeg2',
  '1.2.840.10008.1.2.4.102': 'video/mp4',
  '1.2.840.10008.1.2.4.103': 'video/mp4',
  '1.2.840.10008.1.2.4.104': 'video/mp4',
  '1.2.840.10008.1.2.4.105': 'video/mp4',
  '1.2.840.10008.1.2.4.106': 'video/mp4',
};

/**
 * Older names of a frame media type, accepted as the current one: PS3.18 §8.7.3.3 Note 8 names the experimental
 * image/x-dicom-rle and image/x-jls that older implementations ask for (dicomweb-client 0.11 offers image/x-jls
 * for JPEG-LS frames; until 7 Dec 2026 it was a 406).
 */
const MEDIA_ALIASES: Record<string, string> = {
  'image/x-dicom-rle': 'image/dicom-rle',
  'image/x-jls': 'image/jls',
};

/** How frames or bulk data go out: the media type of the part (or of the body), and whether in one part alone. */
export interface FrameForm {
  type: string;
  /**
   * The client asked for the media type itself, not `multipart/related` (PS3.18 §8.7.3.3 single part bulk data
   * media types): the body is the value alone, which only one frame or value can be.
   */
  single: boolean;
  /**
   * The frames are to be decoded to Explicit VR Little Endian pixel data (the client asked for that transfer
   * syntax; the stored one is compressed in a syntax Custos decodes).
   */
  decode?: boolean;
  /**
   * Where decoding was not asked for by name but is application/octet-stream's default transfer syntax: the form
   * to serve the frames as stored in when decoding them would change what the header says (a lossy colour JPEG)
   * or cannot be done, labelled with the stored syntax, as they went out until 5 Dec 2026.
   */
  asStored?: FrameForm;
}

/**
 * Frames and bulk data (PS3.18 §8.7.3.3): native pixel data goes out as application/octet-stream, encapsulated
 * frames in their own media type; each part names the transfer syntax. A wildcard or no Accept gets
 * multipart/related, the default; a bare media type asks for the single part form. With `decodable`, compressed
 * frames asked for as application/octet-stream in Explicit VR Little Endian, by name or as the media type's
 * default, are decoded to it (`decode`).
 */
export function frameForm(storedTs: string, accept: string | undefined, decodable = false): FrameForm {
  const native = isNativeTransferSyntax(storedTs);
  const media = native ? 'application/octet-stream' : (FRAME_MEDIA[storedTs] ?? 'application/octet-stream');
  // Native frames are little endian explicit-VR bytes except for the (retired) big endian syntax.
  const ts = native ? (storedTs === '1.2.840.10008.1.2.2' ? storedTs : '1.2.840.10008.1.2.1') : storedTs;
  const entries = parseAccept(accept);
  if (entries.length === 0) return { type: `${media}; transfer-syntax=${ts}`, single: false };
  for (const e of entries) {
    if (e.q === 0) continue;
    const multipart = e.type === 'multipart/related' || e.type === 'multipart/*';
    // RFC 9110 §12.5.1: `*/*` does not bring back the multipart form a more specific range refuses with q=0; it
    // then stands for the value alone (until 6 Dec 2026 it got multipart).
    if (e.type === '*/*') {
      const any = { 'transfer-syntax': '*' };
      const parts = [media, 'application/octet-stream'].map((type) => ({ type, ...any }));
      if (parts.every((p) => refused(entries, 'multipart/related', p))) {
        if (refused(entries, media, any)) continue;
        return { type: `${media}; transfer-syntax=${ts}`, single: true };
      }
    }
    const named = multipart ? (e.params.type ?? 'application/octet-stream').toLowerCase() : e.type;
    const inner = MEDIA_ALIASES[named] ?? named;
    const wantTs = e.params['transfer-syntax'];
    const typeOk =
      inner === '*/*' ||
      inner === media ||
      inner === 'application/octet-stream' ||
      (inner.endsWith('/*') && media.startsWith(inner.slice(0, -1)));
    const single = !multipart && inner !== '*/*';
    const asStored = {
      type: `${inner === 'application/octet-stream' ? 'application/octet-stream' : media}; transfer-syntax=${ts}`,
      single,
    };
    // application/octet-stream's default transfer syntax is Explicit VR Little Endian (PS3.18 Table 8.7.3-2), as
    // dicomweb-client's retrieveInstanceFrames() and Orthanc have it: compressed frames asked for so without a
    // transfer-syntax are decoded where Custos can (until 5 Dec 2026 they went out compressed), else as stored.
    if (!native && decodable && inner === 'application/octet-stream' && wantTs === undefined)
      return {
        type: `application/octet-stream; transfer-syntax=${EXPLICIT_VR}`,
        single,
        decode: true,
        asStored,
      };
    if (typeOk && (wantTs === undefined || wantTs === '*' || wantTs === ts)) return asStored;
    if (
      !native &&
      decodable &&
      (inner === 'application/octet-stream' || inner === '*/*') &&
      wantTs === EXPLICIT_VR
    )
      return {
        type: `application/octet-stream; transfer-syntax=${EXPLICIT_VR}`,
        single: !multipart && inner !== '*/*',
        decode: true,
      };
  }
  throw notAcceptable(
    `frames stored as ${storedTs} (${decodable ? `decoded to ${EXPLICIT_VR} only` : 'no transcoding'})`,
    accept ?? '',
  );
}

/**
 * Rendered images and thumbnails (PS3.18 §8.7.4): image/jpeg (the default, also for `image/*` and any type),
 * image/png or image/gif, in the order of the client's preference; each one single part. Anything else, a
 * multipart/related form among them, is a 406 naming what is offered.
 */
export function renderedMediaType(accept: string | undefined, what: string): RenderedMediaType {
  const entries = parseAccept(accept);
  if (entries.length === 0) return 'image/jpeg';
  const chosen = mostWanted(
    entries,
    RENDERED_MEDIA_TYPES.map((type) => ({ value: type, type })),
  );
  if (chosen !== undefined) return chosen;
  throw new CustosError({
    code: 'http.not-acceptable',
    message: `${what} are image/jpeg, image/png or image/gif, each as a single part; Accept was '${(accept ?? '').slice(0, 200)}'`,
    httpStatus: 406,
  });
}

/**
 * A multi-frame instance rendered whole (PS3.18 §10.4.1.1.3): a Multi-frame Image of Table 8.7.2-1, whose rendered
 * media type in Table 8.7.4-1 is image/gif, every frame in one animated image. image/jpeg and image/png are the
 * Single Frame Image's: a client that accepts only those is told to ask for one frame (406). No Accept, a wildcard
 * or an Accept that names image/gif at any q above 0 gets the GIF.
 */
export function multiFrameRenderedMediaType(accept: string | undefined, frames: number): 'image/gif' {
  const entries = parseAccept(accept);
  if (entries.length === 0) return 'image/gif';
  const chosen = mostWanted(entries, [{ value: 'image/gif' as const, type: 'image/gif' }]);
  if (chosen !== undefined) return chosen;
  throw new CustosError({
    code: 'http.not-acceptable',
    message: `the instance has ${frames} frames: a multi-frame image is rendered as image/gif, every frame in one animated image (PS3.18 Table 8.7.4-1); image/jpeg and image/png show one frame, at …/frames/{n}/rendered; Accept was '${(accept ?? '').slice(0, 200)}'`,
    httpStatus: 406,
  });
}

/**
 * A rendered study or series (PS3.18 §10.4.1.1.3): one rendered image a part, in `multipart/related` with
 * `type="image/jpeg"` (the default, also for a wildcard or a multipart/related that names no type),
 * `"image/png"` or `"image/gif"`, whichever the client prefers. Accept may name the multipart form or the parts'
 * type alone (`image/png`); anything else is a 406 naming what is served.
 */
export function renderedPartsMediaType(accept: string | undefined): RenderedMediaType {
  const entries = parseAccept(accept);
  if (entries.length === 0) return 'image/jpeg';
  const chosen = mostWanted(
    entries,
    RENDERED_MEDIA_TYPES.flatMap((type) => [
      { value: type, type: 'multipart/related', params: { type } },
      { value: type, type },
    ]),
  );
  if (chosen !== undefined) return chosen;
  throw new CustosError({
    code: 'http.not-acceptable',
    message: `a rendered study or series is multipart/related with image/jpeg, image/png or image/gif parts; Accept was '${(accept ?? '').slice(0, 200)}'`,
    httpStatus: 406,
  });
}

/**
 * The STOW-RS response's model (PS3.18 §10.5.3): DICOM XML when the client prefers `application/dicom+xml` to the
 * JSON types, DICOM JSON otherwise (also when Accept names neither: the answer reports what was stored).
 */
export function stowResponseXml(accept: string | undefined): boolean {
  const entries = parseAccept(accept);
  return (
    mostWanted(entries, [
      { value: false, type: 'application/dicom+json' },
      { value: false, type: 'application/json' },
      { value: true, type: 'application/dicom+xml' },
    ]) ?? false
  );
}

/** The Accept header field of a request whose `accept` query parameter took its place (acceptQueryParameter). */
const headerBehindQuery = new WeakMap<IncomingMessage, string>();

/**
 * PS3.18 §8.7.8.1: the Selected Media Type is the most wanted one the target supports in the accept query
 * parameter; only where it names none does the Accept header field count. `pick` chooses from an Accept value (and
 * throws `http.not-acceptable` when nothing in it can be served): it is given the query parameter's list, which
 * stands in `req.headers.accept`, and, when that is refused, the header the request came with. Until 7 Dec 2026
 * the header was never read once the parameter was given: `?accept=image/jpeg` on a multi-frame instance's
 * rendered resource, from a browser whose Accept takes `image/*`, was a 406 rather than the animated GIF.
 */
export function negotiated<T>(req: IncomingMessage, pick: (accept: string | undefined) => T): T {
  try {
    return pick(req.headers.accept);
  } catch (err) {
    const header = headerBehindQuery.get(req);
    if (header === undefined || !(err instanceof CustosError) || err.code !== 'http.not-acceptable')
      throw err;
    try {
      return pick(header);
    } catch {
      throw err;
    }
  }
}

/**
 * PS3.18 §8.3.3.1: a DICOMweb request may name the media types it accepts in the `accept` query parameter (a
 * link a browser follows cannot set the header). Where given it stands for the Accept header field, which counts
 * only where the parameter names nothing the resource can be served as (§8.7.8.1; see negotiated), and it is no
 * query key of QIDO-RS.
 */
export function acceptQueryParameter(handler: Handler): Handler {
  return (ctx) => {
    const values = ctx.query.getAll('accept');
    if (values.length > 0) {
      if (ctx.req.headers.accept) headerBehindQuery.set(ctx.req, ctx.req.headers.accept);
      ctx.req.headers.accept = values.map(plusRestored).join(', ');
      ctx.query.delete('accept');
    }
    checkCharsetParameter(ctx.query.getAll('charset'));
    // One syntax (PS3.18 §8.7.3.7), as WADO-URI's transferSyntax: of two, the first counted until 7 Dec 2026
    // (`transfer-syntax=1.2.840.10008.1.2.4.50&transfer-syntax=*` was a 406, the other order the stored bytes).
    if (ctx.query.getAll('transfer-syntax').length > 1)
      throw new CustosError({
        code: 'wado.bad-parameter',
        message: 'transfer-syntax is given more than once; give it once',
        httpStatus: 400,
        detail: { parameter: 'transfer-syntax' },
      });
    const ts = ctx.query.get('transfer-syntax');
    if (ts !== null) {
      ctx.query.delete('transfer-syntax');
      if (!/^(\*|[0-2](\.(0|[1-9]\d*))+)$/.test(ts) || ts.length > 64)
        throw new CustosError({
          code: 'wado.bad-parameter',
          message: `transfer-syntax must be a transfer syntax UID or *, got '${ts.slice(0, 80)}'`,
          httpStatus: 400,
          detail: { parameter: 'transfer-syntax' },
        });
      if (ctx.req.headers.accept) ctx.req.headers.accept = withTransferSyntax(ctx.req.headers.accept, ts);
      const header = headerBehindQuery.get(ctx.req);
      if (header !== undefined) headerBehindQuery.set(ctx.req, withTransferSyntax(header, ts));
    }
    return handler(ctx);
  };
}

/**
 * UTF-8 by the names PS3.18 §8.8 gives it (the IANA name and the DICOM Defined Term, quoted, with its space), and
 * `*`, any character set, as in Accept-Charset (RFC 9110 §12.5.2).
 */
const UTF8_CHARSETS = new Set(['utf-8', 'iso_ir 192', '*']);

/**
 * PS3.18 §8.3.3.2: the charset query parameter lists the character sets the client takes, with weights as in
 * Accept-Charset; a value that is not a supported character set is a 400. Custos writes every text answer (DICOM
 * JSON and XML, problem details) in UTF-8 and converts no stored object, so a list must take UTF-8. Until 7 Dec 2026
 * the parameter was not read: `charset=ISO-8859-1` got UTF-8 as if it had been asked for.
 */
function checkCharsetParameter(values: string[]): void {
  if (values.length === 0) return;
  const entries = values
    .join(',')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const takesUtf8 = entries.some((entry) => {
    const [name = '', ...params] = entry.split(';').map((p) => p.trim());
    const q = params.find((p) => /^q\s*=/i.test(p));
    const weight = q === undefined ? 1 : Number(q.replace(/^q\s*=\s*/i, ''));
    return UTF8_CHARSETS.has(name.replace(/^"(.*)"$/, '$1').toLowerCase()) && weight > 0;
  });
  if (!takesUtf8)
    throw new CustosError({
      code: 'dicomweb.bad-parameter',
      message: `charset '${values.join(',').slice(0, 80)}' names no character set Custos answers in: it writes UTF-8 only (charset=utf-8, or leave the parameter out)`,
      httpStatus: 400,
      detail: { parameter: 'charset' },
    });
}

/**
 * PS3.18 §8.7.3.7: the transfer-syntax query parameter (§8.7.3.5) gives the acceptable transfer syntax of the
 * media types that name none themselves, in the accept query parameter or the Accept header (until 6 Dec 2026 it
 * was ignored). A media type with its own transfer-syntax parameter keeps it.
 */
function withTransferSyntax(accept: string, ts: string): string {
  return accept
    .split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)
    .map((e) => (/;\s*transfer-syntax\s*=/i.test(e) ? e : `${e.trim()}; transfer-syntax=${ts}`))
    .join(', ');
}

const TOKEN = "[!#$%&'*.^_`|~\\w-]+";
const SPACED_SUFFIX = new RegExp(`(${TOKEN}/${TOKEN}) (?=${TOKEN}\\s*(?:[;,"]|$))`, 'g');

/**
 * A `+` typed as such in a query string (`?accept=application/dicom+json`) reads as a space, as HTML forms encode
 * one; no media type holds a space, so `application/dicom json` is taken for `application/dicom+json` (until 5 Dec
 * 2026 a 400: only `%2B` worked).
 */
export function plusRestored(value: string): string {
  return value.replace(SPACED_SUFFIX, '$1+');
}

export function isRenderedMediaType(type: string): type is RenderedMediaType {
  return (RENDERED_MEDIA_TYPES as readonly string[]).includes(type);
}

/** Whether the most specific range that matches this media type gives it q=0 (RFC 9110 §12.5.1). */
function refused(entries: AcceptEntry[], type: string, params: Record<string, string> = {}): boolean {
  return entries.some((e) => e.q === 0) && acceptWeight(entries, type, params) === 0;
}

/**
 * The candidate the client wants most: the highest weight by RFC 9110 §12.5.1 (the most specific matching range's),
 * above 0; on equal weights the one whose range comes first in the header, then the first candidate (the server's
 * default). Undefined when the client takes none.
 */
export function mostWanted<T>(
  entries: AcceptEntry[],
  candidates: { value: T; type: string; params?: Record<string, string> }[],
): T | undefined {
  let best: { value: T; q: number; at: number } | undefined;
  for (const c of candidates) {
    const q = acceptWeight(entries, c.type, c.params);
    if (q === 0) continue;
    const at = entries.findIndex((e) => e.q === q && acceptWeight([e], c.type, c.params) > 0);
    if (!best || q > best.q || (q === best.q && at < best.at)) best = { value: c.value, q, at };
  }
  return best?.value;
}
