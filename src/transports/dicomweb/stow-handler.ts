import type { IncomingMessage } from 'node:http';
import { CustosError, DicomStatus } from '../../domain/errors.js';
import type { BulkSpools } from '../../ports/bulk-spool.js';
import type { StorageSpace } from '../../ports/storage-space.js';
import type { IngestService } from '../../services/ingest-service.js';
import {
  heldInQuarantine,
  IngestFailure,
  keptWarning,
  type IngestOutcome,
} from '../../services/ingest-service.js';
import { contentCodings, parseMediaType } from '../http/content-type.js';
import { readMultipart, type MultipartPart } from '../http/multipart-reader.js';
import type { RequestContext } from '../server/router.js';
import { stowResponseXml } from './negotiation.js';
import { MetadataRequest, streamPieces } from './stow-metadata.js';
import { partHead, type PartHeadRefusal } from './stow-part.js';
import { sendDicomXmlDocument, sendJson, warning299 } from './responses.js';

export interface StowOptions {
  maxRequestBytes: number;
  /** Metadata held in memory per metadata-and-bulk-data request. */
  maxHeaderBytes: number;
  /** Largest bulk data part kept (no instance may be larger). */
  maxInstanceBytes: number;
  /** Where bulk data parts wait until their instances are assembled (one spool per request). */
  spools: BulkSpools;
  /** The free-space reserve, checked before a bulk data part is spooled. */
  space?: StorageSpace;
}

type Item = Record<string, { vr: string; Value?: unknown[] }>;

/** Human-readable reason per failed item; sent as Warning headers since the dataset has no place for text. */
const reasons = new WeakMap<Item, string>();

/** Parts whose commit may still be running while the next part is received. */
const MAX_INFLIGHT = 4;

/**
 * Counts request bytes and stops the upload once it passes the limit (for bodies without Content-Length). Stopping
 * leaves the request (and its socket) alive, so that the answer reaches the client: the server closes the
 * connection after it (until 6 Dec 2026 the socket was destroyed at once, and the client, still sending, got a
 * reset rather than the answer).
 */
async function* limited(req: IncomingMessage, max: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    seen += chunk.length;
    if (seen > max) {
      throw new CustosError({
        code: 'stow.too-large',
        message: `the request body exceeds the ${max}-byte limit`,
        httpStatus: 413,
        dicomStatus: DicomStatus.OutOfResources,
      });
    }
    yield chunk;
  }
}

/**
 * STOW-RS (PS3.18 §10.5): each part of a multipart/related request goes through the one ingest pipeline in
 * turn; a failing part is reported in FailedSOPSequence and does not stop the others.
 */
export function stowHandler(ingest: IngestService, opts: StowOptions) {
  const store = storeRequest(ingest, opts);
  return async (ctx: RequestContext): Promise<void> => {
    try {
      await store(ctx);
    } catch (err) {
      // A request refused as a whole (media type, content coding, size, no boundary, no parts, cut before its
      // first part) is one `store` failure in the ledger (none until 6 Dec 2026); a denial the gate recorded itself.
      if (err instanceof CustosError && err.code !== 'access.denied')
        await ingest.recordRefused(ctx.principal, 'stow-rs', { code: err.code, reason: err.message });
      throw err;
    }
  };
}

/**
 * What STOW-RS takes (PS3.18 §10.5.1), in Accept-Post (W3C Linked Data Platform 1.0 §7.1: the media types a POST
 * takes) on a 415, as RFC 9110 §15.5.16 wants the answer to say what would have been accepted.
 */
const ACCEPT_POST =
  'multipart/related; type="application/dicom", multipart/related; type="application/dicom+json", multipart/related; type="application/dicom+xml"';

function storeRequest(ingest: IngestService, opts: StowOptions) {
  return async (ctx: RequestContext): Promise<void> => {
    const { req } = ctx;
    // A caller that may not store at all is refused before anything is read: 403 problem+json and the gate's
    // denial record (until 6 Dec 2026 each part's refusal ended the request as 409 with the body {}).
    await ingest.requireStore(ctx.principal);
    const ct = parseMediaType(req.headers['content-type'] ?? '');
    if (ct.type !== 'multipart/related') {
      // Until 7 Dec 2026 the 415 did not say what is taken.
      ctx.res.setHeader('Accept-Post', ACCEPT_POST);
      throw new CustosError({
        code: 'stow.unsupported-media-type',
        message: `STOW-RS needs Content-Type multipart/related; type="application/dicom", not '${ct.type || '(none)'}'`,
        httpStatus: 415,
      });
    }
    const rootType = ct.params.type?.toLowerCase();
    // PS3.18 §10.5.1: Part 10 objects (application/dicom), or metadata and bulk data (application/dicom+json or
    // application/dicom+xml; until 7 Dec 2026 a 415).
    const metadataForm = rootType === 'application/dicom+json' || rootType === 'application/dicom+xml';
    if (rootType !== undefined && rootType !== 'application/dicom' && !metadataForm) {
      ctx.res.setHeader('Accept-Post', ACCEPT_POST);
      throw new CustosError({
        code: 'stow.unsupported-media-type',
        message: `Custos stores application/dicom parts, or application/dicom+json or application/dicom+xml metadata with its bulk data; multipart type '${rootType}' is not supported`,
        httpStatus: 415,
      });
    }
    // RFC 9110 §8.4, §15.5.16: a content coding (gzip, deflate, br…) is refused, not read as if it were none (until
    // 6 Dec 2026 a gzip body was "without the multipart boundary" and a br label on a plain body was ignored).
    // Decoding would need the size limits on the decoded bytes too, for no gain on already compressed pixel data.
    const coding = contentCodings(req.headers['content-encoding']);
    if (coding.length) {
      ctx.res.setHeader('Accept-Encoding', 'identity');
      throw new CustosError({
        code: 'stow.unsupported-content-encoding',
        message: `STOW-RS takes the body without a content coding: Content-Encoding '${coding.join(', ').slice(0, 80)}' is not supported (send it as identity)`,
        httpStatus: 415,
      });
    }
    const boundary = ct.params.boundary;
    if (!boundary)
      throw new CustosError({
        code: 'stow.no-boundary',
        message: 'the multipart/related Content-Type has no boundary parameter',
        httpStatus: 400,
      });
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > opts.maxRequestBytes) {
      throw new CustosError({
        code: 'stow.too-large',
        message: `the request body of ${declared} bytes exceeds the ${opts.maxRequestBytes}-byte limit`,
        httpStatus: 413,
      });
    }

    const base = `${ctx.origin}/dicom-web`;
    if (metadataForm) {
      const { results, bodyRead } = await storeMetadataForm(ctx, ingest, opts, boundary, base, rootType);
      return answer(ctx, base, results, undefined, bodyRead);
    }
    // One slot per part, filled in part order whatever order the commits finish in.
    const results: Result[] = [];
    let parts = 0;
    let requestError: CustosError | undefined;
    /** Causes already reported as a part's failure (a body cut inside a part), not to be reported twice. */
    const causes = new Set<unknown>();
    const inflight = new Set<Promise<void>>();
    const source = limited(req, opts.maxRequestBytes);
    let bodyRead = false;
    try {
      for await (const part of readMultipart(source, boundary)) {
        const slot = parts++;
        const head = partRefusal(part, slot + 1);
        if ('refused' in head) {
          const refused = head.refused;
          for await (const _ of part.body) void _;
          results[slot] = { failed: failure(undefined, undefined, refused.reason, refused.text) };
          // Recorded as every other failed part is (until 6 Dec 2026 these parts left no record).
          await ingest.recordRefused(ctx.principal, 'stow-rs', {
            code: refused.code,
            reason: refused.text,
            part: slot + 1,
          });
          continue;
        }
        let received!: () => void;
        const partRead = new Promise<void>((resolve) => (received = resolve));
        const task: Promise<void> = ingest
          .ingest(ctx.principal, part.body, {
            channel: 'stow-rs',
            onReceived: received,
            ...(ctx.params.study ? { expectedStudyUid: ctx.params.study } : {}),
            ...(head.transferSyntax !== undefined ? { declaredTransferSyntax: head.transferSyntax } : {}),
          })
          .then(
            (outcome) => {
              results[slot] = storedResult(outcome, base);
            },
            (err: unknown) => {
              if (!(err instanceof IngestFailure)) throw err;
              const cause = err.cause;
              // A broken request body (truncated multipart, over the size limit) ends the request after this part.
              if (
                cause instanceof CustosError &&
                (cause.code.startsWith('multipart.') || cause.code === 'stow.too-large')
              ) {
                requestError ??= cause;
                causes.add(cause);
              }
              // Each Warning names its part (and instance, when known): identical texts of two parts were merged
              // into one, and none said which failed item it went with (until 6 Dec 2026).
              results[slot] = {
                failed: failure(
                  err.sopClassUid,
                  err.sopInstanceUid,
                  err.dicomStatus ?? DicomStatus.ProcessingFailure,
                  `part ${slot + 1}${err.sopInstanceUid ? ` (${err.sopInstanceUid})` : ''}: ${err.message}`,
                ),
              };
            },
          );
        inflight.add(task);
        void task.finally(() => inflight.delete(task)).catch(() => undefined);
        // The next part can be read once this one's bytes are in; its commit (fsync, index, audit) overlaps.
        await Promise.race([partRead, task]);
        if (inflight.size >= MAX_INFLIGHT) await Promise.race(inflight);
        if (requestError) break;
      }
      // After the closing delimiter: an epilogue (RFC 2046 §5.1.1), read up to a bound so that the connection
      // can serve the next request.
      if (!requestError) bodyRead = await drainEpilogue(source);
    } catch (err) {
      await Promise.allSettled(inflight);
      if (!(err instanceof CustosError)) throw err;
      if (parts === 0) throw err;
      // The framing was lost between parts (the body ended in a part's headers, or right after a delimiter): the
      // request was cut there, and that place is a failed item of its own (until 6 Dec 2026 it was in no sequence,
      // and a request cut after stored parts could answer 200, or 409 with `{}` when none was).
      if (!causes.has(err)) {
        const slot = parts++;
        await ingest.recordRefused(ctx.principal, 'stow-rs', {
          code: err.code,
          reason: err.message,
          part: slot + 1,
        });
        results[slot] = {
          failed: failure(
            undefined,
            undefined,
            err.dicomStatus ?? DicomStatus.CannotUnderstand,
            `part ${slot + 1}: ${err.message}`,
          ),
        };
      }
      requestError ??= err;
    }
    await Promise.all(inflight);
    if (parts === 0) {
      throw new CustosError({
        code: 'stow.empty',
        message: 'the multipart/related body contains no parts',
        httpStatus: 400,
      });
    }
    await answer(ctx, base, results, requestError, bodyRead);
  };
}

type Result = { ok: Item; studyUid?: string; texts: string[] } | { failed: Item };

/** A stored instance's ReferencedSOPSequence item, and the Warning texts it gets. */
function storedResult(outcome: IngestOutcome, base: string): Result {
  const item: Item = {
    '00081150': { vr: 'UI', Value: [outcome.sopClassUid] },
    '00081155': { vr: 'UI', Value: [outcome.sopInstanceUid] },
  };
  // PS3.18 Table 10.5.3-3 WarningReason, as C-STORE reports it (keptWarning).
  const quarantined = heldInQuarantine(outcome);
  const warning = keptWarning({ ...outcome, quarantined });
  if (warning) item['00081196'] = { vr: 'US', Value: [warning.status] };
  if (quarantined) {
    // Stored but quarantined: kept for the data steward, not retrievable, so no RetrieveURL.
    const reasons = outcome.defects.filter((d) => d.disposition === 'quarantine').map((d) => d.message);
    return {
      ok: item,
      texts: [
        `${outcome.sopInstanceUid} stored in quarantine ${outcome.quarantineId} (not in the archive until a data steward releases it): ${reasons.join('; ')}`,
      ],
    };
  }
  item['00081190'] = {
    vr: 'UR',
    Value: [
      `${base}/studies/${outcome.studyUid}/series/${outcome.seriesUid}/instances/${outcome.sopInstanceUid}`,
    ],
  };
  return {
    ok: item,
    studyUid: outcome.studyUid,
    texts: outcome.warnings.map((w) => `${outcome.sopInstanceUid}: ${w}`),
  };
}

/**
 * Metadata and bulk data (PS3.18 §10.5.1): every part is read first (bulk data spooled to the data directory,
 * stow-metadata.ts), then each instance of the metadata is assembled as a Part 10 object and ingested in turn. A
 * body cut short or over the limit stores nothing: the whole request is refused with its error.
 */
async function storeMetadataForm(
  ctx: RequestContext,
  ingest: IngestService,
  opts: StowOptions,
  boundary: string,
  base: string,
  rootType: string,
): Promise<{ results: Result[]; bodyRead: boolean }> {
  const request = new MetadataRequest({
    spools: opts.spools,
    maxMetadataBytes: opts.maxHeaderBytes,
    maxBulkBytes: opts.maxInstanceBytes,
    ...(opts.space ? { ensureRoom: () => opts.space!.ensureRoom() } : {}),
  });
  try {
    const source = limited(ctx.req, opts.maxRequestBytes);
    let parts = 0;
    for await (const part of readMultipart(source, boundary)) await request.add(part, ++parts, rootType);
    if (parts === 0)
      throw new CustosError({
        code: 'stow.empty',
        message: 'the multipart/related body contains no parts',
        httpStatus: 400,
      });
    const bodyRead = await drainEpilogue(source);
    if (request.instances.length === 0 && request.refused.length === 0)
      throw new CustosError({
        code: 'stow.no-metadata',
        message: `the multipart/related; type="${rootType}" body has no metadata part (application/dicom+json or application/dicom+xml)`,
        httpStatus: 400,
      });
    const results: Result[] = [];
    for (const instance of request.instances) {
      let pieces;
      try {
        pieces = await request.assemble(instance);
      } catch (err) {
        if (!(err instanceof CustosError)) throw err;
        const json = instance.json as Record<string, { Value?: unknown[] }> | undefined;
        const uidOf = (key: string) => {
          const v = typeof json === 'object' && json !== null ? json[key]?.Value?.[0] : undefined;
          return typeof v === 'string' ? v : undefined;
        };
        await ingest.recordRefused(ctx.principal, 'stow-rs', { code: err.code, reason: err.message });
        results.push({
          failed: failure(
            uidOf('00080016'),
            uidOf('00080018'),
            err.dicomStatus ?? DicomStatus.CannotUnderstand,
            `${instance.label}${uidOf('00080018') ? ` (${uidOf('00080018')})` : ''}: ${err.message}`,
          ),
        });
        continue;
      }
      try {
        const outcome = await ingest.ingest(ctx.principal, streamPieces(pieces), {
          channel: 'stow-rs',
          ...(ctx.params.study ? { expectedStudyUid: ctx.params.study } : {}),
        });
        results.push(storedResult(outcome, base));
      } catch (err) {
        if (!(err instanceof IngestFailure)) throw err;
        results.push({
          failed: failure(
            err.sopClassUid,
            err.sopInstanceUid,
            err.dicomStatus ?? DicomStatus.ProcessingFailure,
            `${instance.label}${err.sopInstanceUid ? ` (${err.sopInstanceUid})` : ''}: ${err.message}`,
          ),
        });
      }
    }
    for (const refused of [...request.refused, ...request.unreferenced()].sort(
      (a, b) => a.partNo - b.partNo,
    )) {
      await ingest.recordRefused(ctx.principal, 'stow-rs', {
        code: refused.code,
        reason: refused.text,
        part: refused.partNo,
      });
      results.push({ failed: failure(undefined, undefined, refused.reason, refused.text) });
    }
    return { results, bodyRead };
  } finally {
    await request.close();
  }
}

/** The STOW-RS response (PS3.18 §10.5.3) for the results of every part or instance. */
async function answer(
  ctx: RequestContext,
  base: string,
  results: Result[],
  requestError: CustosError | undefined,
  bodyRead: boolean,
): Promise<void> {
  const { req } = ctx;
  const referenced: Item[] = [];
  const failed: Item[] = [];
  const studies = new Set<string>();
  let warnings = 0;
  const warned: string[] = [];
  for (const r of results) {
    if (!r) continue;
    if ('ok' in r) {
      referenced.push(r.ok);
      if (r.studyUid) studies.add(r.studyUid);
      if (r.texts.length) {
        warnings++;
        warned.push(...r.texts);
      }
    } else failed.push(r.failed);
  }

  const body: Item = {};
  if (studies.size === 1) body['00081190'] = { vr: 'UR', Value: [`${base}/studies/${[...studies][0]}`] };
  if (failed.length) body['00081198'] = { vr: 'SQ', Value: failed };
  if (referenced.length) body['00081199'] = { vr: 'SQ', Value: referenced };
  // PS3.18 §10.5.3: 200 all stored, 202 some failed or stored with warnings (or the request was cut short), 409
  // none stored.
  const status =
    referenced.length === 0 ? 409 : failed.length > 0 || warnings > 0 || requestError ? 202 : 200;
  const texts = [
    ...failed.slice(0, 20).map((f) => warning299(base, reasons.get(f) ?? 'failed')),
    ...warned.slice(0, 20).map((w) => warning299(base, w)),
  ];
  // A body cut short fails its last part with the same words as the request: said once.
  const cut = requestError?.message;
  if (cut !== undefined && !failed.some((f) => reasons.get(f)?.endsWith(cut)))
    texts.push(warning299(base, cut));
  // A body cut short fails its last part with the same words as the request: said once (the same Warning twice
  // until 5 Dec 2026).
  if (texts.length) ctx.res.setHeader('Warning', [...new Set(texts)]);
  // The rest of a body not read to its end (a request cut short, over the limit, a long epilogue) would stand
  // before the next request on this connection: it is closed after the answer (until 6 Dec 2026 the answer
  // said keep-alive, and the next request waited for the inactivity timeout).
  if (!bodyRead && !req.complete) ctx.res.setHeader('Connection', 'close');
  if (stowResponseXml(ctx.req.headers.accept)) await sendDicomXmlDocument(ctx.res, status, body);
  else await sendJson(ctx.res, status, body, 'application/dicom+json');
}

/**
 * Why a part is refused before its bytes are parsed: malformed headers (FailureReason 0xC000, cannot understand,
 * as a part cut short), or a media type other than application/dicom (0x0122). Otherwise the transfer syntax its
 * media type names, if any.
 */
function partRefusal(
  part: MultipartPart,
  partNo: number,
): { refused: PartHeadRefusal } | { transferSyntax?: string } {
  const head = partHead(part, partNo, 'application/dicom');
  if ('refused' in head) return head;
  if (head.type !== 'application/dicom')
    return {
      refused: {
        reason: DicomStatus.SopClassNotSupported,
        code: 'stow.unsupported-media-type',
        text: `part ${partNo} has media type ${head.type}, not application/dicom`,
      },
    };
  const ts = head.params['transfer-syntax'];
  return ts !== undefined ? { transferSyntax: ts } : {};
}

/** Most bytes of epilogue read after the closing delimiter, and how long to wait for them, to keep a connection. */
const EPILOGUE_BYTES = 64 * 1024;
const EPILOGUE_MS = 1000;

/** Reads what follows the closing delimiter; whether the body ended within the bounds. */
async function drainEpilogue(source: AsyncIterator<Buffer>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), EPILOGUE_MS)));
  let bytes = 0;
  try {
    for (;;) {
      const next = source.next();
      // Left pending when the wait ends first: whatever it settles to later is of no interest.
      next.catch(() => undefined);
      const r = await Promise.race([next, late]);
      if (r === 'late') return false;
      if (r.done) return true;
      bytes += r.value.length;
      if (bytes > EPILOGUE_BYTES) return false;
    }
  } catch {
    // Over the size limit, or the client went away: either way the connection is not kept.
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function failure(
  sopClassUid: string | undefined,
  sopInstanceUid: string | undefined,
  reason: number,
  text: string,
): Item {
  const item: Item = {};
  if (sopClassUid) item['00081150'] = { vr: 'UI', Value: [sopClassUid] };
  if (sopInstanceUid) item['00081155'] = { vr: 'UI', Value: [sopInstanceUid] };
  item['00081197'] = { vr: 'US', Value: [reason] };
  reasons.set(item, text);
  return item;
}
