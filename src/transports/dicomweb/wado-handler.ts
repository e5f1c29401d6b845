import { CustosError } from '../../domain/errors.js';
import { isValidUid } from '../../domain/ids.js';
import { isNativeTransferSyntax, isVideoTransferSyntax } from '../../dicom/transfer-syntax.js';
import { sortByTag, type DicomJsonObject } from '../../domain/dicom-levels.js';
import { TransferSyntax } from '../../dicom/tags.js';
import { bigEndianWordSize, swapWords } from '../../dicom/little-endian.js';
import { sliceRanges, type ByteRange } from '../../domain/frames.js';
import { MAX_VIEWPORT, parseViewport, voiFunctionOf } from '../../domain/render.js';
import {
  damagedError,
  type InstanceRef,
  type RetrieveScope,
  type RetrieveService,
} from '../../services/retrieve-service.js';
import { parseByteRange, type ByteSpan } from '../http/byte-range.js';
import { parseAccept } from '../http/content-type.js';
import {
  multipartBoundary,
  multipartLength,
  writeMultipart,
  type PartHead,
} from '../http/multipart-writer.js';
import type { RequestContext } from '../server/router.js';
import {
  acceptDicom,
  acceptJson,
  DICOM_XML_MULTIPART,
  servedSyntax,
  type DicomForm,
  frameForm,
  type FrameForm,
  mostWanted,
  multiFrameRenderedMediaType,
  negotiated,
  renderedMediaType,
  renderedPartsMediaType,
} from './negotiation.js';
import { RENDERED_MEDIA_TYPES, type RenderedMediaType } from '../../domain/image-encoding.js';
import { pipeBody, primed, primedParts, sendDicomXml, sendJson, warning299 } from './responses.js';

const scopeOf = (ctx: RequestContext): RetrieveScope => ({
  studyUid: ctx.params.study!,
  ...(ctx.params.series ? { seriesUid: ctx.params.series } : {}),
  ...(ctx.params.instance ? { sopInstanceUid: ctx.params.instance } : {}),
});

const instanceUrl = (base: string, r: InstanceRef) =>
  `${base}/studies/${r.studyUid}/series/${r.seriesUid}/instances/${r.sopInstanceUid}`;

/**
 * retrieve.open(): the decision and the access record. Should the request then fail before its response starts
 * (a 406, 416 or 422 found only once the object is known: a frame that cannot be decoded, a range past its end),
 * the server records that failure too (`ctx.unserved`), so that the ledger does not show as served what never was.
 */
async function opened(
  ctx: RequestContext,
  retrieve: RetrieveService,
  ...args: Parameters<RetrieveService['open']> extends [unknown, ...infer Rest] ? Rest : never
): Promise<InstanceRef[]> {
  const [scope, action, what] = args;
  const refs = await retrieve.open(ctx.principal, ...args);
  ctx.unserved = (err) => retrieve.recordUnserved(ctx.principal, scope, refs, action, what, err);
  return refs;
}

/**
 * WADO-RS retrieve of a study, series or instance (PS3.18 §10.4) as multipart/related application/dicom, or one
 * instance as application/dicom alone when that is what the client prefers (§10.4.4: a single part media type is
 * for a single response item; for a study or series it is ignored, and a 406 follows when nothing else is left).
 */
export function retrieveInstancesHandler(retrieve: RetrieveService) {
  return async (ctx: RequestContext): Promise<void> => {
    const oneInstance = ctx.params.instance !== undefined;
    const forms = acceptDicom(ctx.req.headers.accept).filter((f) => oneInstance || !f.single);
    if (forms.length === 0)
      throw new CustosError({
        code: 'http.not-acceptable',
        message:
          'application/dicom alone is for one instance; a study or series comes as multipart/related; type="application/dicom"',
        httpStatus: 406,
      });
    // Each object in the most wanted form it can be served in (servedSyntax: as stored, converted to Explicit VR
    // Little Endian, decompressed); each part names its own syntax (PS3.18 §8.7.3.5). Until 5 Dec 2026 one form
    // served every object, so a JPEG asked for first as JPEG was decompressed when a native object in the same
    // study needed the fallback.
    const syntaxOf = (r: InstanceRef) => {
      const decompressible = retrieve.decompresses(r);
      for (const f of forms) {
        const ts = servedSyntax(f, r.transferSyntaxUid, decompressible);
        if (ts !== undefined) return { form: f, ts };
      }
      return undefined;
    };
    // An object to decompress is read frame by frame, not read ahead whole.
    const decompress = (r: InstanceRef) =>
      !isNativeTransferSyntax(r.transferSyntaxUid) && syntaxOf(r)?.ts === EXPLICIT_VR;
    const matched = await opened(
      ctx,
      retrieve,
      scopeOf(ctx),
      'view-pixels',
      'wado-rs instances',
      {},
      // A HEAD request reads nothing (pipeBody), a Range request only its bytes.
      {
        readAhead: (r) =>
          !r.damaged && ctx.req.method !== 'HEAD' && ctx.req.headers.range === undefined && !decompress(r),
        // A study or series goes without its damaged instances (206, below); one instance is refused whole.
        damagedAsFailed: !oneInstance,
      },
    );
    const damaged = matched.filter((r) => r.damaged).map((r) => r.sopInstanceUid);
    const refs = matched.filter((r) => !r.damaged);
    if (!refs.length) throw damagedError(damaged);
    const formByRef = new Map(refs.map((r) => [r, syntaxOf(r)]));
    const refused = refs.find((r) => !formByRef.get(r));
    if (refused)
      throw new CustosError({
        code: 'http.not-acceptable',
        message: notServable(refused, forms, retrieve.decompresses(refused)),
        httpStatus: 406,
      });
    const syntax = (r: InstanceRef) => formByRef.get(r)!.ts;
    retrieve.assertServable(refs);
    if (formByRef.get(refs[0]!)!.form.single) {
      const ref = refs[0]!;
      // Decompressed, the first frame is decoded before the response starts: a failure is a status.
      const out = decompress(ref)
        ? decompressedPart(await retrieve.decompressed(ref))
        : inSyntax(retrieve, syntax(ref), { ref, ...retrieve.served(ref) });
      await sendObject(ctx, retrieve, ref, out, { 'Content-Type': out.contentType });
      return;
    }
    // Likewise the first object to be decompressed, before the status line.
    const firstDecompressed = refs.find(decompress);
    const early = firstDecompressed ? await retrieve.decompressed(firstDecompressed) : undefined;
    const boundary = multipartBoundary();
    async function* parts(): AsyncGenerator<Served> {
      // Served headers carry steward and patient-index corrections (one rewrite, RetrieveService.open); stored
      // bytes never change. The next objects are read and decrypted while this one is sent.
      if (!firstDecompressed) {
        for await (const served of retrieve.servedInOrder(refs))
          yield inSyntax(retrieve, syntax(served.ref), served);
        return;
      }
      // With objects to decompress, in order, each next one to decompress prepared (its first frame decoded on a
      // decode thread) while the one before is sent: decoding, not reading, is what takes the time.
      const toDecompress = refs.filter(decompress);
      /** Index in toDecompress of the object being sent. */
      let k = 0;
      const prepared = new Map<InstanceRef, Promise<Decompressed>>([
        [firstDecompressed, Promise.resolve(early!)],
      ]);
      const prepare = (ref: InstanceRef | undefined) => {
        if (!ref || prepared.has(ref)) return;
        const p = retrieve.decompressed(ref);
        p.catch(() => undefined); // awaited when its turn comes; not unhandled if the client has gone by then
        prepared.set(ref, p);
      };
      for (const ref of refs) {
        if (!decompress(ref)) {
          yield inSyntax(retrieve, syntax(ref), { ref, ...retrieve.served(ref) });
          continue;
        }
        prepare(ref);
        prepare(toDecompress[++k]);
        const d = await prepared.get(ref)!;
        prepared.delete(ref);
        yield decompressedPart(d);
      }
    }
    // The first object opened before the status line: one whose file is missing or damaged is a problem+json.
    const body = await primedParts(ctx.res, parts());
    // Instances the fixity job found damaged are left out, the rest served: 206 (Partial Content), which PS3.18
    // gives a retrieve that returns some of its target resources, with a Warning naming them (PS3.18 §8.3.4.2), as
    // a C-MOVE or C-GET lists them as failed sub-operations. Until 6 Dec 2026 one refused the whole study (500).
    if (damaged.length) {
      await retrieve.recordUnserved(
        ctx.principal,
        scopeOf(ctx),
        matched.filter((r) => r.damaged),
        'view-pixels',
        'wado-rs instances',
        damagedError(damaged),
      );
      ctx.res.setHeader(
        'Warning',
        warning299(
          `${ctx.origin}/dicom-web`,
          `${damaged.length} of ${matched.length} instances left out: ${damagedError(damaged).message}`,
        ),
      );
    }
    // When every object goes as stored its length is known, and so the body's: a Content-Length instead of chunked
    // framing (the client reads less framing, and knows how much is coming). Until 7 Dec 2026 every multipart
    // retrieve was chunked.
    const length =
      firstDecompressed || refs.some((r) => syntax(r) !== r.transferSyntaxUid)
        ? undefined
        : multipartLength(
            refs.map((r) => ({ ...asStoredHead(r.transferSyntaxUid, r.size), size: r.size })),
            boundary,
          );
    ctx.res.writeHead(damaged.length ? 206 : 200, {
      'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      ...(length === undefined ? {} : { 'Content-Length': String(length) }),
    });
    await pipeBody(ctx.res, writeMultipart(body, boundary), length !== undefined);
  };
}

const EXPLICIT_VR = '1.2.840.10008.1.2.1';

/**
 * Why an object cannot go out in any transfer syntax asked for: Custos serves an object as stored, a native one
 * also in Explicit VR Little Endian, and decompresses one it decodes to Explicit VR Little Endian; it compresses
 * and transcodes nothing else.
 */
function notServable(ref: InstanceRef, forms: DicomForm[], decodes: boolean): string {
  const asked = [...new Set(forms.map((f) => f.transferSyntax ?? EXPLICIT_VR))].join(', ');
  const offered = isNativeTransferSyntax(ref.transferSyntaxUid)
    ? `as stored (${ref.transferSyntaxUid}) or in ${EXPLICIT_VR}`
    : decodes
      ? `as stored (${ref.transferSyntaxUid}) or decompressed to ${EXPLICIT_VR}`
      : `only as stored (${ref.transferSyntaxUid}), which Custos does not decode`;
  return `instance ${ref.sopInstanceUid} cannot go out in ${asked}: Custos serves it ${offered}, and compresses or transcodes nothing else; accept transfer-syntax=* or one of those`;
}

type Decompressed = Awaited<ReturnType<RetrieveService['decompressed']>>;

/** An object decompressed to Explicit VR Little Endian (RetrieveService.decompressed), its length known. */
function decompressedPart(d: Decompressed): Served {
  return {
    contentType: `application/dicom; transfer-syntax=${EXPLICIT_VR}`,
    headers: { 'Content-Length': String(d.size) },
    body: d.body,
    converted: true,
  };
}

/**
 * An object as served, in the transfer syntax servedSyntax chose for it (`ts`): as stored with its length, or
 * converted to Explicit VR Little Endian on the way (from implicit VR, big endian or deflated), whose length is
 * known only once sent.
 */
function inSyntax(
  retrieve: RetrieveService,
  ts: string,
  served: { ref: InstanceRef; size: number; body: AsyncIterable<Buffer> },
): Served {
  const converted = ts !== served.ref.transferSyntaxUid;
  return {
    ...(converted
      ? { contentType: `application/dicom; transfer-syntax=${ts}`, headers: {} }
      : asStoredHead(ts, served.size)),
    body: converted ? retrieve.explicitLittleEndian(served.ref, served.body) : served.body,
    converted,
  };
}

/** The part head of an object served as stored (inSyntax), whose length multipartLength counts. */
function asStoredHead(ts: string, size: number): Required<PartHead> {
  return {
    contentType: `application/dicom; transfer-syntax=${ts}`,
    headers: { 'Content-Length': String(size) },
  };
}

interface Served {
  contentType: string;
  headers: Record<string, string>;
  body: AsyncIterable<Buffer>;
  converted: boolean;
}

/**
 * The one byte range a Range header asks of `total` bytes (parseByteRange); a 416 says how long the value is.
 * With If-Range the Range applies only when its validator matches the representation's (RFC 9110 §13.1.5);
 * Custos sends neither an ETag nor a Last-Modified, so none does, and the whole value goes (200). Until 7 Dec 2026
 * If-Range was not read: a client resuming a download begun elsewhere got bytes spliced from another
 * representation.
 */
function rangeOf(ctx: RequestContext, total: number): ByteSpan | undefined {
  // RFC 9110 §14.2: range handling is defined for GET alone, and a server MUST ignore Range on another method. A
  // HEAD gets the headers of the whole value (200, its length), as a client sizing a download expects; until 7 Dec
  // 2026 it got a 206 with the range's length, or a 416.
  if (ctx.req.method !== 'GET') return undefined;
  if (ctx.req.headers['if-range'] !== undefined) return undefined;
  try {
    return parseByteRange(ctx.req.headers.range, total);
  } catch (err) {
    ctx.res.setHeader('Content-Range', `bytes */${total}`);
    throw err;
  }
}

/**
 * One object as the whole body (WADO-RS single part, WADO-URI). When the bytes served are the stored bytes (not
 * converted, no corrected header, not deflated), a Range header gets those bytes alone, read from the encrypted
 * store chunk by chunk: 206, so an interrupted download of a large object resumes. Otherwise the object goes
 * whole (200), as RFC 9110 allows.
 */
async function sendObject(
  ctx: RequestContext,
  retrieve: RetrieveService,
  ref: InstanceRef,
  out: Served,
  headers: Record<string, string>,
): Promise<void> {
  const asStored = !out.converted && !ref.rewritten && !ref.bulk.deflated;
  const span = asStored ? rangeOf(ctx, ref.size) : undefined;
  if (span) {
    const length = span.end - span.start + 1;
    const body = await primed(ctx.res, retrieve.ranges(ref, [{ offset: span.start, length }]));
    ctx.res.writeHead(206, {
      ...headers,
      'Content-Length': String(length),
      'Content-Range': `bytes ${span.start}-${span.end}/${span.total}`,
      'Accept-Ranges': 'bytes',
    });
    await pipeBody(ctx.res, body);
    return;
  }
  const body = await primed(ctx.res, out.body);
  ctx.res.writeHead(200, { ...headers, ...out.headers, ...(asStored ? { 'Accept-Ranges': 'bytes' } : {}) });
  await pipeBody(ctx.res, body);
}

/** WADO-RS metadata (PS3.18 §10.4.1.1.2): DICOM JSON with BulkDataURIs that point back at this server. */
export function metadataHandler(retrieve: RetrieveService) {
  return async (ctx: RequestContext): Promise<void> => {
    const media = acceptJson(ctx.req.headers.accept, 'metadata');
    const refs = await opened(ctx, retrieve, scopeOf(ctx), 'view-metadata', 'wado-rs metadata');
    const base = `${ctx.origin}/dicom-web`;
    // Available Transfer Syntax UID (0008,3002): the syntax the instance is stored in, which the stored header
    // (the data set, without its file meta information) cannot say. OHIF's video handler reads it to decide
    // whether it can play an instance; dcm4chee's metadata carries it too. Until 7 Dec 2026 it was missing.
    const out = refs.map((r) =>
      sortByTag({
        ...withBulkUris(r.metadata, `${instanceUrl(base, r)}/bulkdata/`),
        '00083002': { vr: 'UI', Value: [r.transferSyntaxUid] },
      }),
    );
    if (media === DICOM_XML_MULTIPART) await sendDicomXml(ctx.res, out);
    else await sendJson(ctx.res, 200, out, media);
  };
}

function withBulkUris(json: DicomJsonObject, prefix: string): DicomJsonObject {
  const walk = (obj: DicomJsonObject): DicomJsonObject => {
    const out: DicomJsonObject = {};
    for (const [tag, el] of Object.entries(obj)) {
      if (typeof el.BulkDataURI === 'string' && el.BulkDataURI.startsWith('bulk:')) {
        out[tag] = { vr: el.vr, BulkDataURI: prefix + el.BulkDataURI.slice(5) };
      } else if (el.vr === 'SQ' && Array.isArray(el.Value)) {
        out[tag] = { vr: 'SQ', Value: (el.Value as DicomJsonObject[]).map(walk) };
      } else {
        out[tag] = el;
      }
    }
    return out;
  };
  return walk(json);
}

/** Number of Frames is IS (PS3.5 §6.2): no instance has more frames than this. */
const MAX_FRAMES = 2 ** 31 - 1;

/**
 * A frame list: comma-separated positive integers, leading zeros allowed ("01" is frame 1; until 6 Dec 2026 a
 * 400). A number no Number of Frames can reach is a 404 naming its digits as given (until then rounded: frame
 * 99999999999999999999 was reported as 100000000000000000000).
 */
function parseFrameList(raw: string): number[] {
  const frames = raw.split(',').map((s) => s.trim());
  if (frames.length === 0 || frames.some((f) => !POSITIVE_INTEGER.test(f))) {
    throw new CustosError({
      code: 'wado.bad-frame-list',
      message: `frame list '${raw}' must be comma-separated positive integers`,
      httpStatus: 400,
    });
  }
  frames.forEach(assertFrameCanExist);
  return frames.map(Number);
}

function assertFrameCanExist(digits: string): void {
  if (Number(digits) > MAX_FRAMES)
    throw new CustosError({
      code: 'wado.frame-not-found',
      message: `frame ${digits.replace(/^0+/, '')} does not exist: an instance has at most ${MAX_FRAMES} frames`,
      httpStatus: 404,
    });
}

const POSITIVE_INTEGER = /^0*[1-9]\d*$/;

/** WADO-RS frames (PS3.18 §10.4.1.1.4): one part per requested frame, read by byte range, not whole objects. */
export function framesHandler(retrieve: RetrieveService) {
  return async (ctx: RequestContext): Promise<void> => {
    const frames = parseFrameList(ctx.params.frames!);
    const [ref] = await opened(ctx, retrieve, scopeOf(ctx), 'view-pixels', 'wado-rs frames', {
      frames,
    });
    await sendFrames(ctx, retrieve, ref!, frames);
  };
}

/**
 * Frames in the form the client asked for: as stored, or decoded to Explicit VR Little Endian where it asked for
 * that (by name, or as application/octet-stream's default) and Custos decodes the stored syntax.
 */
async function sendFrames(
  ctx: RequestContext,
  retrieve: RetrieveService,
  ref: InstanceRef,
  frames: number[],
  /** Each frame's part's Content-Location, where the resource asks for one. */
  locations?: string[],
): Promise<void> {
  const swap = bigEndianPixelWords(ref);
  const form = framesForm(ctx, retrieve, ref);
  if (form.decode) {
    const sent = await sendDecoded(ctx, retrieve, ref, form, frames, locations).then(
      () => true,
      (err: unknown) => {
        // Decoding was the media type's default, not asked for by name: what it cannot give goes out as stored.
        if (form.asStored && err instanceof CustosError && err.httpStatus === 406 && !ctx.res.headersSent)
          return false;
        throw err;
      },
    );
    if (sent) return;
  }
  const served = form.decode ? form.asStored! : form;
  await sendValues(ctx, retrieve, ref, served, retrieve.frames(ref, frames), swap, locations);
}

/** The form an instance's frames go out in, by the client's Accept: as stored, or decoded where Custos can. */
function framesForm(ctx: RequestContext, retrieve: RetrieveService, ref: InstanceRef): FrameForm {
  return frameForm(
    nativeBigEndian(ref) ? EXPLICIT_VR : ref.transferSyntaxUid,
    ctx.req.headers.accept,
    retrieve.decodes(ref.transferSyntaxUid),
  );
}

/**
 * The word size in which native pixel data of a (retired) Explicit VR Big Endian object is stored swapped: 2 for
 * OW (4 or 8 when Bits Allocated says so), 0 for OB and for every other transfer syntax. Frames and the pixel
 * bulk data of such an object go out as Explicit VR Little Endian, the default for native data (PS3.18 §8.7.3),
 * swapped back word by word; until 5 Dec 2026 they went out in big endian, which a viewer that does not read the
 * transfer-syntax parameter shows as noise.
 */
function bigEndianPixelWords(ref: InstanceRef): number {
  if (!nativeBigEndian(ref)) return 0;
  return bigEndianWordSize(ref.metadata['7FE00010']?.vr, Number(ref.metadata['00280100']?.Value?.[0] ?? 16));
}

/** Native pixel data of an Explicit VR Big Endian object: it goes out labelled (and made) little endian. */
function nativeBigEndian(ref: InstanceRef): boolean {
  return (
    ref.transferSyntaxUid === TransferSyntax.ExplicitVRBigEndian && ref.bulk.pixel?.encapsulated === false
  );
}

/** The single part form holds one frame or value; several asked for that way are a 406. */
function assertOnePart(form: FrameForm, count: number, what = 'frames'): void {
  if (form.single && count !== 1)
    throw new CustosError({
      code: 'http.not-acceptable',
      message: `${count} ${what} cannot go out as a single part ${form.type.split(';')[0]!}; ask for multipart/related`,
      httpStatus: 406,
    });
}

async function* only(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

/**
 * Compressed frames decoded to Explicit VR Little Endian pixel data, one part each (or the one frame alone).
 * The first frame is decoded before anything is sent, so that a frame that cannot be decoded, or would contradict
 * its header once decoded, is answered with an error status. A `Range` header is not applied to decoded frames.
 */
async function sendDecoded(
  ctx: RequestContext,
  retrieve: RetrieveService,
  ref: InstanceRef,
  form: FrameForm,
  frames: number[],
  locations?: string[],
): Promise<void> {
  assertOnePart(form, frames.length);
  const first = await retrieve.decodedFrame(ref, frames[0]!);
  if (form.single) {
    ctx.res.writeHead(200, { 'Content-Type': form.type, 'Content-Length': String(first.length) });
    await pipeBody(ctx.res, only(first));
    return;
  }
  const boundary = multipartBoundary();
  ctx.res.writeHead(200, {
    'Content-Type': `multipart/related; type="application/octet-stream"; boundary=${boundary}`,
  });
  async function* parts() {
    for (let i = 0; i < frames.length; i++) {
      const pixels = i === 0 ? first : await retrieve.decodedFrame(ref, frames[i]!);
      yield {
        contentType: form.type,
        headers: { 'Content-Length': String(pixels.length), ...located(locations, i) },
        body: only(pixels),
      };
    }
  }
  await pipeBody(ctx.res, writeMultipart(parts(), boundary));
}

const located = (locations: string[] | undefined, i: number): Record<string, string> =>
  locations?.[i] ? { 'Content-Location': locations[i] } : {};

/** WADO-RS bulk data (PS3.18 §10.4.1.1.5) for the BulkDataURIs that metadata hands out. */
export function bulkdataHandler(retrieve: RetrieveService) {
  return async (ctx: RequestContext): Promise<void> => {
    const [ref] = await opened(ctx, retrieve, scopeOf(ctx), 'view-pixels', 'wado-rs bulkdata', {
      tagPath: ctx.params.tagpath,
    });
    await sendPlan(ctx, retrieve, ref!, planBulk(ctx, retrieve, ref!, ctx.params.tagpath!.toUpperCase()));
  };
}

/**
 * How the value at one BulkDataURI goes out: the rule its own URI and the study, series and instance bulkdata and
 * pixeldata resources share. Either frames (compressed pixel data, one part per frame, decoded where asked) or
 * values cut from the stored object by byte range.
 */
type BulkPlan =
  | { kind: 'frames'; frames: number[]; locations: string[] }
  | { kind: 'values'; form: FrameForm; values: ByteRange[][]; swap: number; locations: string[] };

function planBulk(ctx: RequestContext, retrieve: RetrieveService, ref: InstanceRef, path: string): BulkPlan {
  const px = ref.bulk.pixel;
  // PS3.18 §10.4.3.3.5: bulk data in a multipart response has a Content-Location, the URI metadata gave for it;
  // a frame of compressed pixel data (one part each) names its frame resource. Until 7 Dec 2026 parts had none.
  const instance = instanceUrl(`${ctx.origin}/dicom-web`, ref);
  const uri = [`${instance}/bulkdata/${path}`];
  // PS3.18 §8.7.3.3 Note 5: video bulk data is one part holding every frame, the stream's fragments in order.
  // Until 7 Dec 2026 it was cut into Number of Frames values like an image's, which a stream in fewer fragments
  // cannot be: the BulkDataURI that metadata hands out for a video's pixel data was a 501.
  if (px && px.tagPath === path && px.encapsulated && isVideoTransferSyntax(ref.transferSyntaxUid)) {
    const stream = (px.fragments ?? []).map(({ offset, length }) => ({ offset, length }));
    if (stream.length) {
      const form = frameForm(ref.transferSyntaxUid, ctx.req.headers.accept);
      return { kind: 'values', form, values: [stream], swap: 0, locations: uri };
    }
  }
  // Compressed pixel data goes as its frames do, one part each: decoded where the client asks for
  // application/octet-stream without a transfer-syntax (Explicit VR Little Endian is that media type's default,
  // PS3.18 Table 8.7.3-2) or names Explicit VR Little Endian. Until 7 Dec 2026 it went out compressed under that
  // label, where …/frames/{n} asked for the same way was decoded.
  if (px && px.tagPath === path && px.encapsulated) {
    const n = Number(ref.metadata['00280008']?.Value?.[0] ?? 1) || 1;
    const frames = Array.from({ length: n }, (_, i) => i + 1);
    return { kind: 'frames', frames, locations: frames.map((f) => `${instance}/frames/${f}`) };
  }
  const range = retrieve.bulkRange(ref, path);
  const pixels = px && px.tagPath === path;
  const form = frameForm(
    pixels && !nativeBigEndian(ref) ? ref.transferSyntaxUid : EXPLICIT_VR,
    ctx.req.headers.accept,
  );
  return {
    kind: 'values',
    form,
    values: [[range]],
    swap: pixels ? bigEndianPixelWords(ref) : 0,
    locations: uri,
  };
}

/** One instance's bulk value as its own URI answers it: alone or one part per frame, a `Range` applied. */
function sendPlan(
  ctx: RequestContext,
  retrieve: RetrieveService,
  ref: InstanceRef,
  plan: BulkPlan,
): Promise<void> {
  return plan.kind === 'frames'
    ? sendFrames(ctx, retrieve, ref, plan.frames, plan.locations)
    : sendValues(ctx, retrieve, ref, plan.form, plan.values, plan.swap, plan.locations);
}

/**
 * Frames or bulk data values, each made of byte ranges of the stored object: one part each in multipart/related,
 * or the one value as the body when the client asked for the single part form. A `Range` header applies to a
 * lone value (PS3.18's bulk data response: only the bytes asked for), with Content-Range naming them: single part,
 * a 206 whose body is those bytes (RFC 9110 §15.3.7.1); multipart/related, a 200 whose one part carries them and
 * the Content-Range. A 206 says its content is the range the Content-Range names, or a multipart/byteranges of
 * ranges (§15.3.7); a multipart/related message is neither, nor any range of the message the same request without
 * Range gets. Until 7 Dec 2026 that answer was a 206 with no Content-Range of its own.
 */
async function sendValues(
  ctx: RequestContext,
  retrieve: RetrieveService,
  ref: InstanceRef,
  form: FrameForm,
  values: ByteRange[][],
  /** Reverse words of this many bytes (big endian pixel data going out little endian); 0: as stored. */
  swap = 0,
  /** Each value's part's Content-Location, where the resource asks for one. */
  locations?: string[],
): Promise<void> {
  assertOnePart(form, values.length);
  const read = (r: ByteRange[]) => readValue(retrieve, ref, r, swap);
  let span: ByteSpan | undefined;
  // A Range of swapped words is not applied (the whole value is sent, 200): its bytes are not the stored ones.
  if (values.length === 1 && !swap) {
    span = rangeOf(
      ctx,
      values[0]!.reduce((n, x) => n + x.length, 0),
    );
    if (span) values = [sliceRanges(values[0]!, span.start, span.end)];
  }
  const lengths = values.map((r) => r.reduce((n, x) => n + x.length, 0));
  const contentRange: Record<string, string> = span
    ? { 'Content-Range': `bytes ${span.start}-${span.end}/${span.total}` }
    : {};
  const ranges: Record<string, string> = values.length === 1 && !swap ? { 'Accept-Ranges': 'bytes' } : {};
  // The first value's first bytes are read before the status line, as for an instance (primed): damage or a
  // missing file found there is answered 500 object.corrupt. Until 6 Dec 2026 the status line went first, and the
  // client saw an empty reply (single part) or a 200 cut after the first part's headers.
  if (form.single) {
    const body = await primed(ctx.res, read(values[0]!));
    ctx.res.writeHead(span ? 206 : 200, {
      'Content-Type': form.type,
      'Content-Length': String(lengths[0]),
      ...ranges,
      ...contentRange,
    });
    await pipeBody(ctx.res, body);
    return;
  }
  const heads = lengths.map((size, i) => ({
    contentType: form.type,
    headers: { 'Content-Length': String(size), ...located(locations, i), ...contentRange },
    size,
  }));
  async function* parts() {
    for (let i = 0; i < values.length; i++) yield { ...heads[i]!, body: read(values[i]!) };
  }
  const first = await primedParts(ctx.res, parts());
  const boundary = multipartBoundary();
  const inner = form.type.split(';')[0]!;
  // Every value's length is known, and so the body's (as for a retrieve of objects as stored).
  ctx.res.writeHead(200, {
    'Content-Type': `multipart/related; type="${inner}"; boundary=${boundary}`,
    'Content-Length': String(multipartLength(heads, boundary)),
    ...ranges,
  });
  await pipeBody(ctx.res, writeMultipart(first, boundary), true);
}

/** A value's bytes from the stored object, its words swapped back to little endian where `swap` says so. */
const readValue = (retrieve: RetrieveService, ref: InstanceRef, ranges: ByteRange[], swap: number) =>
  swap ? swapWords(retrieve.ranges(ref, ranges), swap) : retrieve.ranges(ref, ranges);

/**
 * Where an instance's bulk values are, in the order its metadata lists them (nested ones where their sequence
 * is): the tag paths of the BulkDataURIs metadata hands out for it, so that each part's Content-Location is the
 * URI metadata gave (PS3.18 §10.4.3.3.5).
 */
function bulkPaths(metadata: DicomJsonObject): string[] {
  const out: string[] = [];
  const walk = (obj: DicomJsonObject) => {
    for (const tag of Object.keys(obj).sort()) {
      const el = obj[tag]!;
      if (typeof el.BulkDataURI === 'string' && el.BulkDataURI.startsWith('bulk:'))
        out.push(el.BulkDataURI.slice(5).toUpperCase());
      else if (el.vr === 'SQ' && Array.isArray(el.Value)) (el.Value as DicomJsonObject[]).forEach(walk);
    }
  };
  walk(metadata);
  return out;
}

/**
 * The Pixel Data Resource's value of an instance (PS3.18 §10.4.3.3.6): Pixel Data, Float Pixel Data or Double
 * Float Pixel Data of the top level data set, where it has one (not an Icon Image Sequence's, nor a private one).
 */
function pixelPaths(ref: InstanceRef): string[] {
  const px = ref.bulk.pixel;
  return px && ref.metadata[px.tagPath]?.BulkDataURI !== undefined ? [px.tagPath] : [];
}

/** The parts of one BulkDataURI's value: its stored byte ranges, and its frames where they may go decoded. */
interface ValueGroup {
  ref: InstanceRef;
  form: FrameForm;
  values: ByteRange[][];
  swap: number;
  locations: string[];
  frames?: number[];
}

/** One part of a study, series or instance bulkdata or pixeldata answer, its bytes read when it is sent. */
interface SetPart {
  contentType: string;
  location: string;
  /** Known ahead for a value as stored; a decoded frame's only once decoded. */
  size?: number;
  body: () => Promise<AsyncIterable<Buffer>>;
}

/**
 * WADO-RS Study, Series and Instance Bulkdata and Pixel Data (PS3.18 Table 10.3-2): every bulk value
 * (§10.4.3.3.5), or the top level pixel data (§10.4.3.3.6), of each instance in scope, each in the parts and media
 * type its own BulkDataURI answers with for the same Accept (planBulk), under that URI as Content-Location, or
 * for compressed pixel data each frame's. One access decision and record for the scope, as for the study itself.
 */
export function bulkdataSetHandler(retrieve: RetrieveService, which: 'bulkdata' | 'pixeldata') {
  return async (ctx: RequestContext): Promise<void> => {
    const level = ctx.params.instance ? 'instance' : ctx.params.series ? 'series' : 'study';
    const refs = await opened(ctx, retrieve, scopeOf(ctx), 'view-pixels', `wado-rs ${which}`, {
      resource: level,
    });
    // Every value's form is chosen before the status line: a value that cannot go in any type the client accepts
    // refuses the whole answer (406), as one object of a study does for the study's retrieve.
    const plans = refs.flatMap((ref) =>
      (which === 'pixeldata' ? pixelPaths(ref) : bulkPaths(ref.metadata)).map((path) => ({
        ref,
        plan: planBulk(ctx, retrieve, ref, path),
      })),
    );
    if (plans.length === 0)
      throw new CustosError({
        code: 'wado.bulkdata-not-found',
        message: `${refs.length === 1 ? 'the instance here has' : `none of the ${refs.length} instances here has`} ${which === 'pixeldata' ? 'pixel data' : 'bulk data'}`,
        httpStatus: 404,
      });
    // One value goes as its own URI sends it: alone when asked so, a Range applied.
    if (plans.length === 1) return sendPlan(ctx, retrieve, plans[0]!.ref, plans[0]!.plan);
    const groups = plans.map(({ ref, plan }): ValueGroup => {
      if (plan.kind === 'values')
        return { ref, form: plan.form, values: plan.values, swap: plan.swap, locations: plan.locations };
      const form = framesForm(ctx, retrieve, ref);
      const stored = { values: retrieve.frames(ref, plan.frames), swap: bigEndianPixelWords(ref) };
      return { ref, form, ...stored, frames: plan.frames, locations: plan.locations };
    });
    const count = groups.reduce((n, g) => n + g.values.length, 0);
    for (const g of groups) assertOnePart(g.form, count, 'bulk values');
    const storedParts = (
      ref: InstanceRef,
      form: FrameForm,
      values: ByteRange[][],
      swap: number,
      at: string[],
    ) =>
      values.map((r, i): SetPart => ({
        contentType: form.type,
        location: at[i]!,
        size: r.reduce((n, x) => n + x.length, 0),
        body: async () => readValue(retrieve, ref, r, swap),
      }));
    async function* parts(): AsyncGenerator<SetPart> {
      for (const g of groups) {
        if (!g.form.decode || !g.frames) {
          yield* storedParts(g.ref, g.form, g.values, g.swap, g.locations);
          continue;
        }
        // Decoded frames, the first decoded before the instance's first part is written: where decoding was only
        // application/octet-stream's default and cannot be done, the frames go as stored, as sendFrames has it.
        let first: Buffer;
        try {
          first = await retrieve.decodedFrame(g.ref, g.frames[0]!);
        } catch (err) {
          if (g.form.asStored && err instanceof CustosError && err.httpStatus === 406) {
            yield* storedParts(g.ref, g.form.asStored, g.values, g.swap, g.locations);
            continue;
          }
          throw err;
        }
        for (let i = 0; i < g.frames.length; i++) {
          const pixels = i === 0 ? first : await retrieve.decodedFrame(g.ref, g.frames[i]!);
          yield {
            contentType: g.form.type,
            location: g.locations[i]!,
            size: pixels.length,
            body: async () => only(pixels),
          };
        }
      }
    }
    const partHeaders = (p: SetPart) => ({
      'Content-Length': String(p.size),
      'Content-Location': p.location,
    });
    let rootType: string | undefined;
    async function* outgoing() {
      for await (const p of parts()) {
        rootType ??= p.contentType;
        yield {
          contentType: p.contentType,
          headers: partHeaders(p),
          body: await p.body(),
        };
      }
    }
    // The first part's first bytes are read (and its frame decoded) before the status line: a failure there is a
    // status, as for every other multipart answer (primedParts).
    const first = await primedParts(ctx.res, outgoing());
    const boundary = multipartBoundary();
    // RFC 2387 §3.1: the type parameter is the root's, the first part's, media type.
    const inner = (rootType ?? groups[0]!.form.type).split(';')[0]!;
    const allStored = groups.every((g) => !g.form.decode);
    const length = allStored
      ? {
          'Content-Length': String(
            multipartLength(
              groups.flatMap((g) =>
                storedParts(g.ref, g.form, g.values, g.swap, g.locations).map((p) => ({
                  contentType: p.contentType,
                  headers: partHeaders(p),
                  size: p.size!,
                })),
              ),
              boundary,
            ),
          ),
        }
      : {};
    ctx.res.writeHead(200, {
      'Content-Type': `multipart/related; type="${inner}"; boundary=${boundary}`,
      ...length,
    });
    await pipeBody(ctx.res, writeMultipart(first, boundary), allStored);
  };
}

/** WADO-URI (PS3.18 §9): application/dicom of one instance. */
export function wadoUriHandler(retrieve: RetrieveService) {
  return async (ctx: RequestContext): Promise<void> => {
    const q = ctx.query;
    const bad = (message: string, parameter: string) =>
      new CustosError({ code: 'wado-uri.bad-parameter', message, httpStatus: 400, detail: { parameter } });
    if (q.get('requestType') !== 'WADO') throw bad(`requestType must be WADO`, 'requestType');
    // One value each (PS3.18 §9.4.2.3, §9.5.2.1: "the number of parameter values is not equal to one" is a 400), or
    // a cache, a proxy or a log may read another request than the one answered. Until 8 Dec 2026 only the UIDs and
    // transferSyntax were held to one: of two the first counted (`contentType=application/dicom&contentType=image/jpeg`
    // sent the object, `anonymize=yes&anonymize=no` was a 501).
    onceEach(q, WADO_URI_PARAMETERS);
    // PS3.18 §9.4.1: one UID each. One that is no UID, or given twice, is a 400 naming it before anything is
    // decided or recorded, as a WADO-RS path's is (until 7 Dec 2026 it was looked up: a 403 recorded as a denial,
    // or a 404, and of two the first was taken).
    const uidParam = (name: string): string => {
      const values = q.getAll(name);
      if (values.length > 1) throw bad(`${name} is given ${values.length} times; give one UID`, name);
      const [value] = values;
      if (!value) throw bad(`${name} is required`, name);
      if (!isValidUid(value))
        throw bad(
          `${name} '${value.length > 64 ? `${value.slice(0, 64)}…` : value}' is not a valid UID (PS3.5 §9.1: up to 64 digits and dots, no leading zero in a component)`,
          name,
        );
      return value;
    };
    const studyUid = uidParam('studyUID');
    const seriesUid = uidParam('seriesUID');
    const objectUid = uidParam('objectUID');
    // PS3.18 §9.4.2.3: a server that cannot anonymize may answer with an error. Serving the identified object in
    // its place, as until 4 Dec 2026, would hand a teaching file or a trial what it asked not to get.
    const anonymize = q.get('anonymize');
    if (anonymize !== null) {
      if (anonymize !== 'yes') throw bad(`anonymize must be 'yes', got '${anonymize}'`, 'anonymize');
      throw new CustosError({
        code: 'wado-uri.anonymize-unsupported',
        message:
          'Custos does not de-identify on retrieve (anonymize=yes), and does not serve the identified object instead',
        httpStatus: 501,
        detail: { parameter: 'anonymize' },
      });
    }
    const contentType = wadoUriContentType(q.get('contentType'));
    // PS3.18 §9.5.1.2.6: windowCenter and windowWidth go together, and only with a rendered contentType; either
    // alone, or either with application/dicom, is a 400 (until 7 Dec 2026 the one was ignored, the image rendered
    // with the object's own window, and the object sent).
    const windowing = (['windowCenter', 'windowWidth'] as const).filter((name) => q.has(name));
    if (contentType === 'application/dicom' && windowing.length)
      throw badParameter(
        windowing[0]!,
        `${windowing.join(' and ')} ${windowing.length > 1 ? 'are' : 'is'} for a rendered image, not contentType=application/dicom (PS3.18 §9.5.1.2.6)`,
      );
    if (windowing.length === 1) {
      const missing = windowing[0] === 'windowCenter' ? 'windowWidth' : 'windowCenter';
      throw badParameter(
        missing,
        `${windowing[0]} needs ${missing}: the two are given together or not at all (PS3.18 §9.5.1.2.6)`,
      );
    }
    if (contentType !== 'application/dicom') {
      // Parameters first: a bad one is a 400 before anything is opened or recorded.
      presentationParams(q);
      const annotation = annotationWarning(q, `${ctx.origin}/wado`);
      const frameNumber = q.get('frameNumber');
      const frame = intParam(frameNumber, 'frameNumber') ?? 1;
      if (frame > MAX_FRAMES)
        throw badParameter(
          'frameNumber',
          `frameNumber ${frameNumber!.replace(/^0+/, '')} is beyond any instance's frames: an instance has at most ${MAX_FRAMES} (PS3.18 §9.5.2.1)`,
        );
      const rows = intParam(q.get('rows'), 'rows');
      const columns = intParam(q.get('columns'), 'columns');
      for (const [name, v] of [
        ['rows', rows],
        ['columns', columns],
      ] as const)
        if (v !== undefined && v > MAX_VIEWPORT)
          throw badParameter(name, `${name} must be at most ${MAX_VIEWPORT}, got ${v}`);
      const region = regionParam(q.get('region'));
      const sized = rows !== undefined || columns !== undefined;
      const options = {
        ...renderOptions(
          [q.get('windowCenter'), 'windowCenter'],
          [q.get('windowWidth'), 'windowWidth'],
          [q.get('imageQuality'), 'imageQuality'],
        ),
        // PS3.18 §9.4.1.1.3-4: scaled to these rows and columns, the aspect ratio kept (one alone bounds its axis);
        // §8.2.4: the region first cut out of the image, at its own size when no rows or columns are given.
        ...(sized || region
          ? {
              viewport: {
                ...parseViewport(`${columns ?? MAX_VIEWPORT},${rows ?? MAX_VIEWPORT}`),
                ...(region ? { fraction: region } : {}),
                ...(sized ? {} : { shrinkOnly: true }),
              },
            }
          : {}),
      };
      const [ref] = await opened(
        ctx,
        retrieve,
        { studyUid, seriesUid, sopInstanceUid: objectUid },
        'view-pixels',
        'wado-uri rendered',
      );
      // PS3.18 §9.5.2.1: frameNumber names a frame of a multi-frame image (Number of Frames above 1, Table 8.7.2-1),
      // one it has; else a 400 naming it. Until 8 Dec 2026 a single-frame instance's frameNumber=1 rendered the
      // image and a frame beyond the last was a 404. Checked once the instance is opened (its frame count is its
      // header's, which only a recorded access reads), and before a byte of it is read.
      if (frameNumber !== null) {
        const count = retrieve.frameCount(ref!);
        if (count === 1)
          throw badParameter(
            'frameNumber',
            `frameNumber is for a frame of a multi-frame image, and this instance has one frame: leave frameNumber out (PS3.18 §9.5.2.1)`,
          );
        if (frame > count)
          throw badParameter(
            'frameNumber',
            `frameNumber ${frame} is beyond the instance's ${count} frames (PS3.18 §9.5.2.1)`,
          );
      }
      sendImage(
        ctx,
        contentType,
        await retrieve.renderImage(ref!, frame, { ...options, format: contentType }),
        annotation,
      );
      return;
    }
    const wantTs = transferSyntaxParam(q.getAll('transferSyntax'));
    // PS3.18 §9.4.2.4: Explicit VR Little Endian by default (servedSyntax: converted from implicit VR, big endian
    // or deflated, a losslessly compressed object Custos decodes decompressed), else the syntax named.
    const form: DicomForm = { single: true, transferSyntax: wantTs ?? undefined, q: 1 };
    const syntaxOf = (r: InstanceRef) => servedSyntax(form, r.transferSyntaxUid, retrieve.decompresses(r));
    const decompress = (r: InstanceRef) =>
      !isNativeTransferSyntax(r.transferSyntaxUid) && syntaxOf(r) === EXPLICIT_VR;
    const [ref] = await opened(
      ctx,
      retrieve,
      { studyUid, seriesUid, sopInstanceUid: objectUid },
      'view-pixels',
      'wado-uri',
      {},
      // A HEAD request reads nothing (pipeBody), a Range request only its bytes; an object to decompress is read
      // frame by frame.
      {
        readAhead: (r) => ctx.req.method !== 'HEAD' && ctx.req.headers.range === undefined && !decompress(r),
      },
    );
    const ts = syntaxOf(ref!);
    if (ts === undefined) {
      throw new CustosError({
        code: 'http.not-acceptable',
        message: `the instance is stored as ${ref!.transferSyntaxUid}; Custos does not transcode it to ${wantTs}`,
        httpStatus: 406,
      });
    }
    retrieve.assertServable([ref!]);
    const out = decompress(ref!)
      ? decompressedPart(await retrieve.decompressed(ref!))
      : inSyntax(retrieve, ts, { ref: ref!, ...retrieve.served(ref!) });
    await sendObject(ctx, retrieve, ref!, out, {
      'Content-Type': 'application/dicom',
      'Content-Disposition': `attachment; filename="${ref!.sopInstanceUid}.dcm"`,
    });
  };
}

/**
 * WADO-URI `contentType` (PS3.18 §9.4.1.1.5): media types in the client's order of preference, with q-values as in
 * an Accept header; image/jpeg when absent or empty. The first one Custos serves wins: application/dicom, or
 * image/jpeg (also for any image type, or any type at all), image/png or image/gif.
 */
function wadoUriContentType(raw: string | null): 'application/dicom' | RenderedMediaType {
  let entries: ReturnType<typeof parseAccept>;
  try {
    entries = parseAccept(raw ?? '');
  } catch {
    throw new CustosError({
      code: 'wado-uri.bad-parameter',
      message: `contentType '${(raw ?? '').slice(0, 120)}' is not a list of media types`,
      httpStatus: 400,
      detail: { parameter: 'contentType' },
    });
  }
  // PS3.18 §9.1.2.2.1, §9.1.3: the transfer-syntax and charset media type parameters are forbidden in a WADO-URI
  // request (its transferSyntax and charset query parameters say that), a 400. Until 8 Dec 2026 they were ignored:
  // `contentType=application/dicom;transfer-syntax=1.2.840.10008.1.2.4.50` sent the object in Explicit VR Little
  // Endian.
  for (const entry of entries)
    for (const [name, instead] of [
      ['transfer-syntax', 'transferSyntax'],
      ['charset', 'charset'],
    ] as const)
      if (name in entry.params)
        throw badParameter(
          'contentType',
          `contentType takes no ${name} parameter in WADO-URI (PS3.18 §9.1.2.2.1): give the ${instead} query parameter instead, got '${(raw ?? '').slice(0, 120)}'`,
        );
  if (entries.length === 0) return 'image/jpeg';
  // As for an Accept header (RFC 9110 §12.5.1): `image/jpeg;q=0,image/*` is not JPEG (until 6 Dec 2026 it was).
  const chosen = mostWanted<'application/dicom' | RenderedMediaType>(entries, [
    ...RENDERED_MEDIA_TYPES.map((type) => ({ value: type, type })),
    { value: 'application/dicom', type: 'application/dicom' },
  ]);
  if (chosen !== undefined) return chosen;
  throw new CustosError({
    code: 'http.not-acceptable',
    message: `WADO-URI contentType ${raw} is not available: use image/jpeg, image/png, image/gif or application/dicom`,
    httpStatus: 406,
  });
}

/**
 * WADO-URI `transferSyntax` (PS3.18 §9.4.2.4): one value, a UID (or `*`, as stored, as WADO-RS takes it); given
 * twice or not a UID it is a 400 naming it (until 7 Dec 2026 the first was taken, and one that is no UID was a 406
 * "does not transcode it to").
 */
function transferSyntaxParam(values: string[]): string | undefined {
  if (values.length > 1)
    throw badParameter('transferSyntax', `transferSyntax is given ${values.length} times; give one UID`);
  const [ts] = values;
  if (ts !== undefined && ts !== '*' && !isValidUid(ts))
    throw badParameter(
      'transferSyntax',
      `transferSyntax must be a transfer syntax UID (or *), got '${ts.length > 80 ? `${ts.slice(0, 80)}…` : ts}'`,
    );
  return ts;
}

/**
 * WADO-URI `presentationSeriesUID` and `presentationUID` (PS3.18 §9.5.1.2.7) come together, and not with a window or
 * a frame number (§9.5.2.2, §9.5.2.3: a 400); until 8 Dec 2026 either was ignored, and so was the combination (the
 * image rendered with the window or frame asked for). Custos applies no presentation state: given both, alone, they
 * are still ignored.
 */
function presentationParams(q: URLSearchParams): void {
  const given = PRESENTATION_PARAMETERS.filter((name) => q.has(name));
  if (!given.length) return;
  if (given.length === 1) {
    const missing = PRESENTATION_PARAMETERS.find((name) => name !== given[0])!;
    throw badParameter(
      missing,
      `${given[0]} needs ${missing}: the two are given together or not at all (PS3.18 §9.5.1.2.7)`,
    );
  }
  const clash = (['windowCenter', 'windowWidth', 'frameNumber'] as const).find((name) => q.has(name));
  if (clash)
    throw badParameter(
      clash,
      `${clash} is not given with a presentation state (presentationSeriesUID and presentationUID; PS3.18 §9.5.2.2, §9.5.2.3)`,
    );
}

/**
 * `annotation` (PS3.18 §8.3.5.1.1; WADO-URI §9.5.1.2.2): a comma-separated list of keywords (`patient`,
 * `technique`); none, or one that is no keyword, is a 400 naming it. Custos burns in no annotation, so every value
 * is one it does not support, which §8.3.5.1.1 has ignored with a Warning naming them: the Warning's value is
 * returned, for the answer to carry. Until 8 Dec 2026 the parameter was not read (`annotation=` rendered, and no
 * Warning said what was left out).
 */
function annotationWarning(q: URLSearchParams, service: string): string | undefined {
  const raw = q.get('annotation');
  if (raw === null) return undefined;
  const values = raw.split(',').map((v) => v.trim());
  if (values.some((v) => !/^[A-Za-z][A-Za-z0-9_-]*$/.test(v)))
    throw badParameter(
      'annotation',
      `annotation must be a comma-separated list of keywords (patient, technique; PS3.18 §8.3.5.1.1), got '${raw.slice(0, 80)}'`,
    );
  return warning299(service, `The following annotation values are not supported: ${values.join(',')}`);
}

const PRESENTATION_PARAMETERS = ['presentationSeriesUID', 'presentationUID'] as const;

/** WADO-URI `region=xmin,ymin,xmax,ymax` (PS3.18 §8.2.4): fractions of the image, 0 to 1, top left first. */
function regionParam(raw: string | null): { x0: number; y0: number; x1: number; y1: number } | undefined {
  if (raw === null) return undefined;
  const v = raw.split(',').map((p) => (/^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(p) ? Number(p) : NaN));
  const [x0, y0, x1, y1] = v as [number, number, number, number];
  if (v.length !== 4 || v.some((n) => !(n >= 0 && n <= 1)) || !(x0 < x1 && y0 < y1))
    throw badParameter(
      'region',
      `region must be xmin,ymin,xmax,ymax, fractions from 0 to 1 with xmin < xmax and ymin < ymax, got '${raw}'`,
    );
  return { x0, y0, x1, y1 };
}

const badParameter = (name: string, message: string) =>
  new CustosError({ code: 'wado.bad-parameter', message, httpStatus: 400, detail: { parameter: name } });

function intParam(raw: string | null, name: string): number | undefined {
  if (raw === null) return undefined;
  if (!POSITIVE_INTEGER.test(raw)) throw badParameter(name, `${name} must be a positive integer`);
  return Number(raw);
}

/**
 * A decimal number (PS3.18 §8.3.5.1.4, §9.5.1.2.6; the form of a DS value, PS3.5 §6.2): digits with an optional
 * sign, point and exponent. JavaScript's Number() also reads hexadecimal, binary and octal (`0x10` is 16), which no
 * client means by a window or a quality: until 7 Dec 2026 `window=0x10,0x100` rendered with 16 and 256.
 */
const DECIMAL = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/;

/** A number parameter, or undefined when absent. */
function optionalNumber(raw: string | null, name: string): number | undefined {
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!DECIMAL.test(raw) || !Number.isFinite(n))
    throw badParameter(name, `${name} must be a decimal number, got '${raw.slice(0, 40)}'`);
  return n;
}

type Param = [raw: string | null, name: string];

/**
 * A rendered image's window and quality (WADO-RS `window` and `quality`, WADO-URI `windowCenter`, `windowWidth`
 * and `imageQuality`): a window width greater than 0 (PS3.3 C.11.2.1.2) and a quality from 1 to 100 (PS3.18);
 * anything else is a 400 naming the parameter, not an image.
 */
function renderOptions(
  center: Param,
  width: Param,
  quality: Param,
): { windowCenter?: number; windowWidth?: number; quality?: number } {
  const c = optionalNumber(...center);
  const w = optionalNumber(...width);
  const qy = optionalNumber(...quality);
  if (w !== undefined && w <= 0)
    throw badParameter(width[1], `the window width must be greater than 0, got ${w}`);
  if (qy !== undefined && !(Number.isInteger(qy) && qy >= 1 && qy <= 100))
    throw badParameter(quality[1], `${quality[1]} must be an integer from 1 to 100, got '${quality[0]}'`);
  return {
    ...(c !== undefined ? { windowCenter: c } : {}),
    ...(w !== undefined ? { windowWidth: w } : {}),
    ...(qy !== undefined ? { quality: qy } : {}),
  };
}

/** The one frame a rendered image or thumbnail shows: the path's (one only, else a 400 saying why), or the first. */
function oneFrame(ctx: RequestContext, why: string): [number] {
  const frames = ctx.params.frames ? parseFrameList(ctx.params.frames) : [1];
  if (frames.length !== 1)
    throw new CustosError({ code: 'wado.bad-frame-list', message: why, httpStatus: 400 });
  return [frames[0]!];
}

/** A rendered image, with the Warning of annotation values left out (annotationWarning) when there is one. */
function sendImage(ctx: RequestContext, type: RenderedMediaType, bytes: Buffer, warning?: string) {
  ctx.res.writeHead(200, {
    'Content-Type': type,
    'Content-Length': bytes.length,
    ...(warning ? { Warning: warning } : {}),
  });
  ctx.res.end(bytes);
}

/**
 * WADO-RS rendered (PS3.18 §10.4.1.1.3): one frame as JPEG, PNG or GIF; an instance of one frame likewise, and one
 * of more frames (a Multi-frame Image, Table 8.7.2-1) as an animated GIF of all of them, its rendered media type in
 * Table 8.7.4-1 (until 7 Dec 2026 its first frame alone, in any of the three).
 */
export function renderedHandler(retrieve: RetrieveService) {
  return async (ctx: RequestContext): Promise<void> => {
    const format = negotiated(ctx.req, (accept) => renderedMediaType(accept, 'rendered images'));
    const frames = oneFrame(ctx, 'rendered frames are served one at a time');
    // Parameters first: a bad one is a 400 before anything is opened or recorded.
    const options = renderedOptions(ctx.query);
    const annotation = annotationWarning(ctx.query, `${ctx.origin}/dicom-web`);
    const [ref] = await opened(ctx, retrieve, scopeOf(ctx), 'view-pixels', 'wado-rs rendered', {
      frames,
    });
    const count = retrieve.frameCount(ref!);
    if (ctx.params.frames === undefined && count > 1) {
      const type = negotiated(ctx.req, (accept) => multiFrameRenderedMediaType(accept, count));
      const body = await primed(ctx.res, await retrieve.animatedGif(ref!, options));
      ctx.res.writeHead(200, { 'Content-Type': type, ...(annotation ? { Warning: annotation } : {}) });
      await pipeBody(ctx.res, body);
      return;
    }
    sendImage(ctx, format, await retrieve.renderImage(ref!, frames[0]!, { ...options, format }), annotation);
  };
}

/**
 * WADO-RS rendered study and series (PS3.18 §10.4.1.1.3): each instance's first frame rendered as the frame
 * resource renders it (the same window, quality and viewport), one part each, by series UID and instance number,
 * as `multipart/related; type="image/jpeg"` (or PNG, GIF). Each part names its instance's rendered resource in
 * Content-Location (a multi-frame instance's first frame's). Decided and recorded as one `wado-rs rendered`
 * access to every instance in scope.
 * Instances that cannot be rendered (no pixel data, a transfer syntax Custos does not decode, a frame too large)
 * and those the fixity job found damaged are left out, as a study retrieve leaves damaged ones out: 206 with a
 * Warning naming them, and a failure record; none left is the error the first would get alone.
 */
export function renderedSetHandler(retrieve: RetrieveService) {
  return async (ctx: RequestContext): Promise<void> => {
    const format = negotiated(ctx.req, renderedPartsMediaType);
    // Parameters first: a bad one is a 400 before anything is opened or recorded.
    const options = { ...renderedOptions(ctx.query), format };
    const annotation = annotationWarning(ctx.query, `${ctx.origin}/dicom-web`);
    const scope = scopeOf(ctx);
    const matched = await opened(
      ctx,
      retrieve,
      scope,
      'view-pixels',
      'wado-rs rendered',
      {},
      {
        damagedAsFailed: true,
      },
    );
    const refs: InstanceRef[] = [];
    const damaged: InstanceRef[] = [];
    const unrenderable: { ref: InstanceRef; why: CustosError }[] = [];
    for (const ref of matched) {
      const refusal = ref.damaged ? undefined : retrieve.renderRefusal(ref);
      if (ref.damaged) damaged.push(ref);
      else if (refusal) unrenderable.push({ ref, why: refusal });
      else refs.push(ref);
    }
    const why = (u: (typeof unrenderable)[number]) => `instance ${u.ref.sopInstanceUid}: ${u.why.message}`;
    const damage = damaged.length ? damagedError(damaged.map((r) => r.sopInstanceUid)) : undefined;
    if (!refs.length) {
      if (!unrenderable.length) throw damage!;
      const first = unrenderable[0]!;
      const more = unrenderable.length > 1 ? `, and ${unrenderable.length - 1} more` : '';
      // The error the first would get alone, with what it is about.
      throw new CustosError({
        code: first.why.code,
        message: `none of the ${matched.length} instances here can be rendered: ${why(first)}${more}`,
        httpStatus: first.why.httpStatus,
      });
    }
    const base = `${ctx.origin}/dicom-web`;
    // The next instance is rendered while the one before is sent; the first before the status line, so that a
    // failure there is a status, not a cut connection.
    async function* parts() {
      const render = (ref: InstanceRef) => {
        const p = retrieve.renderImage(ref, 1, options);
        p.catch(() => undefined); // awaited in turn; not unhandled if the client has gone
        return p;
      };
      let next = render(refs[0]!);
      for (let i = 0; i < refs.length; i++) {
        const bytes = await next;
        if (i + 1 < refs.length) next = render(refs[i + 1]!);
        yield {
          contentType: format,
          headers: {
            'Content-Length': String(bytes.length),
            // A multi-frame instance's part is its first frame: the instance's own rendered resource is all of
            // them, animated (renderedHandler), so the part names the frame's (until 7 Dec 2026 the instance's).
            'Content-Location': `${instanceUrl(base, refs[i]!)}${retrieve.frameCount(refs[i]!) > 1 ? '/frames/1' : ''}/rendered`,
          },
          body: only(bytes),
        };
      }
    }
    const body = await primedParts(ctx.res, parts());
    if (damaged.length || unrenderable.length) {
      const reasons = [
        ...(damage ? [damage.message] : []),
        ...unrenderable.slice(0, 5).map(why),
        ...(unrenderable.length > 5 ? [`${unrenderable.length - 5} more cannot be rendered`] : []),
      ];
      const left = damaged.length + unrenderable.length;
      const text = `${left} of ${matched.length} instances left out: ${reasons.join('; ')}`;
      // The ledger holds what was not served, and why, as for a study retrieve's damaged instances.
      if (damage)
        await retrieve.recordUnserved(
          ctx.principal,
          scope,
          damaged,
          'view-pixels',
          'wado-rs rendered',
          damage,
        );
      if (unrenderable.length) {
        const first = unrenderable[0]!.why;
        await retrieve.recordUnserved(
          ctx.principal,
          scope,
          unrenderable.map((u) => u.ref),
          'view-pixels',
          'wado-rs rendered',
          new CustosError({ code: first.code, message: text, httpStatus: first.httpStatus }),
        );
      }
      ctx.res.setHeader('Warning', [...(annotation ? [annotation] : []), warning299(base, text)]);
    } else if (annotation) ctx.res.setHeader('Warning', annotation);
    const boundary = multipartBoundary();
    ctx.res.writeHead(damaged.length || unrenderable.length ? 206 : 200, {
      'Content-Type': `multipart/related; type="${format}"; boundary=${boundary}`,
    });
    await pipeBody(ctx.res, writeMultipart(body, boundary));
  };
}

/**
 * WADO-RS rendered parameters (PS3.18 §8.3.5.1): window (`center,width` and optionally its VOI LUT function,
 * LINEAR, LINEAR_EXACT or SIGMOID, §8.3.5.1.4), quality and viewport.
 */
function renderedOptions(q: URLSearchParams, defaultViewport?: string) {
  onceEach(q, RENDERED_PARAMETERS);
  const window = q.get('window')?.split(',');
  if (window && (window.length < 2 || window.length > 3))
    throw badParameter(
      'window',
      `window must be center,width or center,width,function, got '${q.get('window')}'`,
    );
  // PS3.18 §8.3.5.1.4 writes the functions "linear", "linear-exact" and "sigmoid", the VOI LUT Function's terms
  // (PS3.3 C.11.2.1.3) with a hyphen for the underscore; both spellings are taken, in either case.
  const fn = window?.[2] === undefined ? undefined : voiFunctionOf(window[2].replace(/-/g, '_'));
  if (window?.[2] !== undefined && fn === undefined)
    throw badParameter(
      'window',
      `the window's function must be linear, linear-exact or sigmoid (PS3.18 §8.3.5.1.4), got '${window![2]}'`,
    );
  const size = q.get('viewport') ?? defaultViewport;
  return {
    ...renderOptions(
      [window?.[0] ?? null, 'window'],
      [window?.[1] ?? null, 'window'],
      [q.get('quality'), 'quality'],
    ),
    ...(fn !== undefined ? { voiFunction: fn } : {}),
    ...(size !== undefined ? { viewport: parseViewport(size) } : {}),
  };
}

/**
 * The WADO-URI parameters Custos reads that take one value, besides the UIDs and transferSyntax (each refused
 * twice with a message of its own).
 */
const WADO_URI_PARAMETERS = [
  'requestType',
  'contentType',
  'anonymize',
  'frameNumber',
  'rows',
  'columns',
  'region',
  'windowCenter',
  'windowWidth',
  'imageQuality',
  'annotation',
] as const;

/** The rendering parameters of PS3.18 §8.3.5.1 Custos reads, each of one value. */
const RENDERED_PARAMETERS = ['window', 'quality', 'viewport', 'annotation'] as const;

/**
 * Each of these parameters given at most once: of two, which one a cache, a proxy or a log reads is anyone's guess,
 * so neither is taken (as WADO-URI refuses a parameter given twice). Until 7 Dec 2026 the first counted without a
 * word (`window=40,400&window=1,2` rendered with 40,400).
 */
function onceEach(q: URLSearchParams, names: readonly string[]): void {
  for (const name of names)
    if (q.getAll(name).length > 1) throw badParameter(name, `${name} is given more than once; give it once`);
}

/** Side of the square a thumbnail fits in when the request names no viewport. */
const THUMBNAIL_SIZE = 128;

/**
 * WADO-RS thumbnails (PS3.18 §10.4.1.1.4) of a study, series or instance: one representative instance's first
 * frame, rendered and scaled to fit the viewport (128 × 128 by default). Only that instance is opened, decided
 * and recorded.
 */
export function thumbnailHandler(retrieve: RetrieveService) {
  return async (ctx: RequestContext): Promise<void> => {
    const format = negotiated(ctx.req, (accept) => renderedMediaType(accept, 'thumbnails'));
    const frames = oneFrame(ctx, 'a thumbnail is of one frame');
    // PS3.18 §8.3.5.1.3: a thumbnail's viewport is vw,vh alone; a region (sx, sy, sw, sh) is a 400. Until 7 Dec 2026
    // it was taken, and the thumbnail cut out of the image.
    onceEach(ctx.query, RENDERED_PARAMETERS);
    const viewport = ctx.query.get('viewport');
    if (viewport !== null && viewport.split(',').length > 2)
      throw badParameter(
        'viewport',
        `a thumbnail's viewport is vw,vh alone, without a region (PS3.18 §8.3.5.1.3), got '${viewport.slice(0, 80)}'`,
      );
    const options = renderedOptions(ctx.query, `${THUMBNAIL_SIZE},${THUMBNAIL_SIZE}`);
    const annotation = annotationWarning(ctx.query, `${ctx.origin}/dicom-web`);
    const [ref] = await opened(
      ctx,
      retrieve,
      scopeOf(ctx),
      'view-pixels',
      'wado-rs thumbnail',
      ctx.params.frames ? { frames } : {},
      {
        representative: true,
      },
    );
    sendImage(ctx, format, await retrieve.renderImage(ref!, frames[0]!, { ...options, format }), annotation);
  };
}

export { sendJson };
