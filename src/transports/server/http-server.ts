import {
  createServer,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { serverTlsContext } from './tls-context.js';
import { PURPOSE_OF_USE_CODES } from '../../domain/audit-codes.js';
import { CustosError } from '../../domain/errors.js';
import { asUserId } from '../../domain/ids.js';
import type { Principal } from '../../domain/principal.js';
import { problemBody, sendProblem } from '../http/problem.js';
import type { RequestContext, Router } from './router.js';

export interface Authenticator {
  /** Bearer token or console session cookie, with the CSRF and confined-session rules (AuthService). */
  authenticate(c: {
    authorization: string | undefined;
    cookie: string | undefined;
    method: string;
    path: string;
    requestedWith: string | undefined;
    source: string;
    channel?: string;
  }): Promise<Principal>;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  router: Router;
  auth: Authenticator;
  /** Answers what no route matches (the web console's files); returns false to leave it a 404. */
  fallback?: (req: IncomingMessage, res: ServerResponse, pathname: string) => Promise<boolean>;
  /** Called for unexpected (non-CustosError) failures; never receives request bodies. */
  onError?: (err: unknown) => void;
  /** Origins whose pages may call DICOMweb (CORS); `*` for any. */
  corsOrigins?: readonly string[];
  /** A connection on which nothing moves either way for this long is closed (http.inactivityTimeoutMs). */
  inactivityTimeoutMs?: number;
  /** Serve HTTPS with this certificate (chain) and key (http.tls): TLS 1.2 or later, BCP 195's suites. */
  tls?: { cert: Buffer; key: Buffer };
  /**
   * http.publicUrl (a trailing slash dropped): the start of every absolute URL Custos writes. Forwarded and
   * X-Forwarded-* headers are never read for it: any client can send them, and a URL made from them would send a
   * viewer that follows it wherever that client chose.
   */
  publicUrl?: string;
}

/** Where CORS applies: DICOMweb and WADO-URI, what a viewer on another origin calls. Not the console's API. */
const CORS_PATH = /^\/(dicom-web|wado)(\/|$)/;
/** Request headers a viewer sends besides the CORS-safelisted ones (Range: byte ranges of frames and bulk data). */
const CORS_ALLOW_HEADERS = 'Authorization, Content-Type, Accept, X-Purpose-Of-Use, Range';
/**
 * Response headers a viewer's script may read besides the safelisted ones: STOW-RS and QIDO-RS warnings, what a
 * byte range answer says (Content-Range, Accept-Ranges), what a 415 or 405 says is taken (Accept-Post, Allow), when
 * to try a 503 again (Retry-After, RFC 9110 §10.2.3) and how a 401 wants credentials (WWW-Authenticate, RFC 9110
 * §11.6.1). Until 7 Dec 2026 a page could not read the last four, so a viewer could not tell when to try a 503
 * again, or which scheme a 401 asked for.
 */
const CORS_EXPOSE_HEADERS =
  'Warning, Content-Location, Location, Content-Encoding, Content-Range, Accept-Ranges, Accept-Post, Allow, Retry-After, WWW-Authenticate';

const anonymous = (source: string, channel: string): Principal => ({
  kind: 'user',
  id: asUserId('anonymous'),
  name: 'anonymous',
  role: 'none',
  source,
  channel,
});

/**
 * The interface a request came in by, by its path, as the audit ledger names it (docs/audit.md): every record made
 * for the request carries it (until 6 Dec 2026 only the console's study pages and the audit API said it).
 */
export function channelOf(pathname: string): string {
  if (/^\/dicom-web(\/|$)/.test(pathname)) return 'dicomweb';
  if (/^\/wado(\/|$)/.test(pathname)) return 'wado-uri';
  if (/^\/fhir(\/|$)/.test(pathname)) return 'fhir';
  if (/^\/scim(\/|$)/.test(pathname)) return 'scim';
  return 'admin-api';
}

/**
 * The most header lines a request may have. Node keeps a bounded number (`maxHeadersCount`) and drops the rest
 * without a word, so an Authorization sent after them was read as missing (a puzzling 401): Node is told to keep
 * one more than this, and a request that has it is a 431 naming the limit (headerCountProblem).
 */
export const MAX_REQUEST_HEADERS = 2000;

/** Checks of a connection's progress per inactivity timeout: it is closed within a quarter more than the timeout. */
const INACTIVITY_CHECKS = 4;

/**
 * Closes `socket` once no byte moved either way for `ms` (to within a quarter of it). Node's own socket timeout
 * is not used: it lets a write the peer does not read run one timeout longer, since a write still queued counts
 * as moving the first time round (net.Socket _onTimeout), so a reader that stopped reading was cut only after
 * twice the timeout (until 6 Dec 2026). Bytes count as moved once the kernel took them.
 */
function watchInactivity(socket: Socket, ms: number): void {
  const handle = () => (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle;
  const moved = () =>
    socket.bytesRead + (socket.bytesWritten ?? 0) - socket.writableLength - (handle()?.writeQueueSize ?? 0);
  let last = moved();
  let still = 0;
  const timer = setInterval(
    () => {
      const now = moved();
      if (now !== last) {
        last = now;
        still = 0;
      } else if (++still >= INACTIVITY_CHECKS) socket.destroy();
    },
    Math.ceil(ms / INACTIVITY_CHECKS),
  );
  timer.unref();
  socket.once('close', () => clearInterval(timer));
}

/** How long a connection being closed is read on (and what arrives discarded) after the answer was sent. */
const LINGER_MS = 2000;

/**
 * RFC 9112 §9.6: a server that closes a connection while the client may still be sending closes its sending side
 * first and reads on for a while; closing at once leaves unread bytes, which make the kernel answer with a reset
 * that can discard the response before the client reads it. Node closes a connection after a `Connection: close`
 * answer with `socket.destroySoon()`, which destroys the socket as soon as the answer is written: that is replaced
 * with a lingering close (until 6 Dec 2026 a client still sending a body the server had stopped reading, one over
 * the size limit, say, got a reset instead of the answer).
 */
function lingerOnClose(socket: Socket, request: () => IncomingMessage | undefined): void {
  socket.destroySoon = function lingeringClose(this: Socket): void {
    if (this.writable) this.end();
    const req = request();
    if (req && !req.complete) {
      // The parser goes on delivering the body to the request: it is discarded, not left to stall the socket.
      req.removeAllListeners('readable');
      req.on('data', () => undefined);
      req.resume();
    }
    this.resume();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

/**
 * The HTTP transport: routing, authentication of every non-public route, and one place that maps errors to
 * application/problem+json. Handlers never see an unauthenticated request.
 */
export class HttpServer {
  private readonly server: Server | HttpsServer;
  /** The request being handled on each connection (for its closing, and for a client that half-closes). */
  private readonly requests = new WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>();

  constructor(private readonly opts: HttpServerOptions) {
    // Host is checked in handle (hostProblem), so that a request without one gets problem+json, not Node's bare 400.
    const options = {
      keepAliveTimeout: 65_000,
      requestTimeout: 0,
      headersTimeout: 60_000,
      requireHostHeader: false,
    };
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = opts.tls
      ? createHttpsServer({ ...options, ...serverTlsContext(opts.tls) }, handler)
      : createServer(options, handler);
    this.server.maxHeadersCount = MAX_REQUEST_HEADERS + 1;
    // A connection on which nothing moves either way for this long (an upload that stopped sending, a download
    // whose reader stopped reading) is closed: a request in flight on it fails, and nothing is stored half way.
    // A body or an answer that keeps moving, however slowly, is not cut. Until 5 Dec 2026 such a connection was
    // held for good, with its descriptor, its temporary file and what it had buffered.
    const inactivityMs = opts.inactivityTimeoutMs ?? 120_000;
    this.server.on('connection', (socket: Socket) => {
      socket.setNoDelay(true);
      watchInactivity(socket, inactivityMs);
      if (!opts.tls) lingerOnClose(socket, () => this.requests.get(socket)?.req);
    });
    // Over TLS the requests run on the TLS socket, which is the one to close with a linger.
    this.server.on('secureConnection', (socket: TLSSocket) =>
      lingerOnClose(socket, () => this.requests.get(socket)?.req),
    );
    // `Expect: 100-continue` is answered once the handler starts reading the body (handle), not before: a caller
    // without credentials gets its 401, and a STOW-RS over the size limit or of the wrong type its 413 or 415,
    // without being asked for its body.
    this.server.on('checkContinue', (req, res) => {
      void this.handle(req, res);
    });
    // RFC 9110 §10.1.1: any other expectation is a 417, in problem+json like every other error (until 6 Dec 2026
    // Node's bare 417, with an empty body). The body is not read: the connection is closed after the answer.
    this.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      res.setHeader('Connection', 'close');
      sendProblem(
        res,
        new CustosError({
          code: 'http.expectation-failed',
          message: `the expectation '${String(req.headers.expect).slice(0, 80)}' is not supported: only 100-continue (RFC 9110 §10.1.1)`,
          httpStatus: 417,
        }),
      );
    });
    // A request Node's parser refuses (a bad chunk size, two Content-Lengths, headers too large) is answered in
    // problem+json like every other error, not with a bare status line.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // A client that half-closed (shutdown(SHUT_WR)) before sending the whole body: for the request being handled
      // that is the end of its body, answered as a body cut short is (STOW-RS: 202 with the whole parts stored),
      // not with 400 HPE_INVALID_EOF_STATE as until 6 Dec 2026.
      const inFlight = this.requests.get(socket as Socket);
      if (
        err.code === 'HPE_INVALID_EOF_STATE' &&
        inFlight &&
        !inFlight.req.complete &&
        !inFlight.res.writableEnded &&
        socket.writable
      ) {
        // The request ends here. Marked complete, so that its end does not destroy it as an aborted request would
        // be, with its socket: the answer still has to go out on the half-open connection, which then closes.
        if (!inFlight.res.headersSent) inFlight.res.setHeader('Connection', 'close');
        inFlight.req.complete = true;
        inFlight.req.push(null);
        return;
      }
      if (!socket.writable || err.code === 'ECONNRESET') {
        socket.destroy();
        return;
      }
      const answer = (text: string) =>
        this.afterAnswerInFlight(socket as Socket, () => {
          if (socket.writable) socket.end(text);
          else socket.destroy();
        });
      const unknownMethod = err.code === 'HPE_INVALID_METHOD' ? methodOf(err) : undefined;
      if (unknownMethod !== undefined) {
        answer(rawProblem(methodProblem(unknownMethod)));
        return;
      }
      if (err.code === 'HPE_HEADER_OVERFLOW' && inRequestLine(err)) {
        answer(rawProblem(uriTooLongProblem()));
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      answer(
        rawProblem(
          new CustosError({
            code: 'http.bad-request',
            message: `the request cannot be parsed as HTTP/1.1: ${err.code ?? 'malformed'} (${(err as { reason?: string }).reason ?? err.message})`,
            httpStatus: status,
          }),
        ),
      );
    });
    // RFC 9110 §9.3.6: CONNECT asks for a tunnel, which only a proxy makes; this server is none, and answers 501
    // (RFC 9110 §15.6.2: a method it supports for no resource) in problem+json. Node hands such a request over with
    // its socket taken off the HTTP parser, and closed it unanswered when nobody listened (until 7 Dec 2026).
    this.server.on('connect', (req: IncomingMessage, socket: Socket) => {
      // The server's own error listener went with the parser: a client that resets must not fail the process.
      socket.on('error', () => socket.destroy());
      this.afterAnswerInFlight(socket, () => {
        if (!socket.writable) {
          socket.destroy();
          return;
        }
        socket.write(
          rawProblem(
            new CustosError({
              code: 'http.method-not-implemented',
              message: `CONNECT ${String(req.url).slice(0, 80)} is not supported: this server is no proxy and makes no tunnels (RFC 9110 §9.3.6)`,
              httpStatus: 501,
            }),
          ),
        );
        // Closed with a linger (lingerOnClose), so that bytes the client sent after its request do not reset the
        // answer.
        socket.destroySoon();
      });
    });
  }

  /**
   * Runs `send` (a raw answer written on the socket, for a request Node's parser refused or a CONNECT) once the
   * answer to a whole request before it on the connection (pipelined in the same packet) has gone out, so that it
   * is not written ahead of that answer or into it, as until 7 Dec 2026. A request whose own body the parser refused
   * is answered at once: its handler would wait for the rest of the body for ever.
   */
  private afterAnswerInFlight(socket: Socket, send: () => void): void {
    const inFlight = this.requests.get(socket);
    if (!inFlight || !inFlight.req.complete || inFlight.res.writableFinished) {
      send();
      return;
    }
    let sent = false;
    const once = () => {
      if (sent) return;
      sent = true;
      send();
    };
    inFlight.res.once('finish', once);
    inFlight.res.once('close', once);
  }

  /** Presents another certificate from the next TLS handshake on (a reload: SIGHUP). */
  useCertificate(tls: { cert: Buffer; key: Buffer }): void {
    if (!this.opts.tls) return;
    (this.server as HttpsServer).setSecureContext(serverTlsContext(tls));
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    return { host: addr.address, port: addr.port };
  }

  /**
   * Stop: no new connections; with `graceMs`, the requests in flight get that long to finish (a download, a
   * STOW-RS being stored) before their connections are closed too, as on SIGTERM; without, at once.
   */
  async close(graceMs = 0): Promise<void> {
    await new Promise<void>((resolve) => {
      const cut = setTimeout(() => this.server.closeAllConnections(), graceMs);
      // A keep-alive connection whose request finishes during the grace is closed as soon as it is idle.
      const idle = setInterval(() => this.server.closeIdleConnections(), 100);
      this.server.close(() => {
        clearTimeout(cut);
        clearInterval(idle);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }

  /**
   * CORS (Fetch standard) for DICOMweb, so that a viewer served from another origin (OHIF, say) can call it with
   * a bearer token: an allowed Origin gets Access-Control-Allow-Origin on every answer, and its preflight (OPTIONS
   * with Access-Control-Request-Method) is answered here, before authentication, since a browser sends it
   * without credentials; it discloses nothing. Cookies are never allowed cross-origin (no Allow-Credentials), so
   * the console's session stays same-origin. Returns true when it has answered the request.
   */
  private cors(req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
    const origin = req.headers.origin;
    if (!origin || !CORS_PATH.test(pathname)) return false;
    const allowed = this.opts.corsOrigins ?? [];
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    res.setHeader('Vary', 'Origin');
    if (!allowed.includes('*') && !allowed.includes(origin)) {
      if (!preflight) return false;
      throw new CustosError({
        code: 'http.cors-origin-not-allowed',
        message: `pages from ${origin} may not call this server: add the origin to http.corsOrigins`,
        httpStatus: 403,
      });
    }
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSE_HEADERS);
    if (!preflight) return false;
    res.writeHead(204, {
      'Access-Control-Allow-Methods': 'GET, HEAD, POST',
      'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS,
      'Access-Control-Max-Age': '600',
      'Content-Length': 0,
    });
    res.end();
    return true;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests.set(req.socket, { req, res });
    const source = req.socket.remoteAddress ?? 'unknown';
    // RFC 9112 §3.2.4, RFC 9110 §9.3.7: 'OPTIONS *' asks about the server as a whole, and answers what it takes,
    // without credentials as OPTIONS on a resource does; '*' is no target for any other method. Until 7 Dec 2026 both
    // were a 400 'the request URL cannot be parsed'.
    if (req.url === '*') {
      res.setHeader('X-Content-Type-Options', 'nosniff');
      if (!req.complete) res.setHeader('Connection', 'close');
      const problem = versionProblem(req) ?? hostProblem(req);
      if (problem) sendProblem(res, problem);
      else if (req.method === 'OPTIONS') {
        res.writeHead(204, { Allow: IMPLEMENTED_METHODS.join(', '), 'Content-Length': 0 });
        res.end();
      } else
        sendProblem(
          res,
          new CustosError({
            code: 'http.bad-url',
            message: `the request target '*' is for OPTIONS only, not ${req.method} (RFC 9112 §3.2.4)`,
            httpStatus: 400,
          }),
        );
      return;
    }
    let url: URL;
    try {
      // The request target is a path (origin form) or a whole URL (absolute form, RFC 9112 §3.2): a path that
      // starts with '//' is a path, not an authority (until 5 Dec 2026 '//x/api/health' was read as /api/health).
      const target = req.url ?? '/';
      url = target.startsWith('/') ? new URL(`http://localhost${target}`) : new URL(target);
    } catch {
      sendProblem(
        res,
        new CustosError({
          code: 'http.bad-url',
          message: 'the request URL cannot be parsed',
          httpStatus: 400,
        }),
      );
      return;
    }
    // Never sniffed as something other than what it says (a JSON answer echoing a value read as HTML), and the
    // administration APIs' answers (accounts, audit records, patient data) never kept by a browser's or a proxy's
    // cache; a handler may still set its own Cache-Control. Until 6 Dec 2026 only the account routes set it.
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Over HTTPS, browsers are told to come back over HTTPS only (RFC 6797), so a link or a typed http:// URL does
    // not send the session cookie's request, or a viewer's token, in clear first. A year, as is usual.
    if (this.opts.tls) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
    // DICOMweb and WADO-URI too (images, headers, query results: patient data): until 7 Dec 2026 their answers said
    // nothing, so a shared cache in front of Custos could keep one (a request signed in by cookie is not kept from
    // it as an Authorization header's is, RFC 9111 §3.5) and serve it again with no decision and no audit record.
    if (/^\/(api|scim|fhir|dicom-web|wado)(\/|$)/.test(url.pathname))
      res.setHeader('Cache-Control', 'no-store');
    let ctx: RequestContext | undefined;
    try {
      const connectionScheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
      const served = [
        connectionScheme,
        ...(this.opts.publicUrl ? [new URL(this.opts.publicUrl).protocol.slice(0, -1)] : []),
      ];
      const badHeader =
        versionProblem(req) ??
        headerCountProblem(req) ??
        hostProblem(req) ??
        repeatedFieldProblem(req) ??
        targetSchemeProblem(req.url ?? '/', url, served) ??
        queryEncodingProblem(url);
      if (badHeader) throw badHeader;
      const transfer = req.headers['transfer-encoding'];
      // RFC 9112 §6.1: HTTP/1.0 has no transfer codings; a 1.0 request with Transfer-Encoding has faulty framing (a
      // proxy in front that reads it as 1.0 takes the chunked body as the next request: smuggling), and is a 400 that
      // closes the connection. Until 7 Dec 2026 Node read the body as chunked and the request was served.
      if (transfer !== undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 0) {
        res.setHeader('Connection', 'close');
        throw new CustosError({
          code: 'http.bad-request',
          message:
            'an HTTP/1.0 request cannot have Transfer-Encoding (RFC 9112 §6.1): send it as HTTP/1.1, or with Content-Length',
          httpStatus: 400,
          detail: { header: 'Transfer-Encoding' },
        });
      }
      // RFC 9112 §6.1: a transfer coding other than chunked (which HTTP's parser has removed) cannot be read: 501,
      // not a body read as if it were plain (until 6 Dec 2026 'gzip, chunked' was taken as chunked alone).
      if (transfer?.split(',').some((c) => c.trim().toLowerCase() !== 'chunked'))
        throw new CustosError({
          code: 'http.unsupported-transfer-coding',
          message: `Transfer-Encoding '${transfer.slice(0, 80)}' is not supported: only chunked (RFC 9112 §6.1)`,
          httpStatus: 501,
        });
      if (this.cors(req, res, url.pathname)) return;
      const found = this.opts.router.match(req.method ?? 'GET', url.pathname.replace(/\/+$/, '') || '/');
      if (!found) {
        if (this.opts.fallback && (await this.opts.fallback(req, res, url.pathname))) return;
        throw new CustosError({
          code: 'http.not-found',
          message: `no resource at ${url.pathname}`,
          httpStatus: 404,
        });
      }
      if ('allowed' in found) {
        // RFC 9110 §9.3.7: OPTIONS on a resource says which methods it takes; it discloses nothing else, so it needs
        // no credentials (until 6 Dec 2026 a 405 without an Origin header).
        if (req.method === 'OPTIONS') {
          res.writeHead(204, { Allow: [...found.allowed, 'OPTIONS'].join(', '), 'Content-Length': 0 });
          res.end();
          return;
        }
        res.setHeader('Allow', found.allowed.join(', '));
        throw new CustosError({
          code: 'http.method-not-allowed',
          message: `${req.method} is not allowed on ${url.pathname}`,
          httpStatus: 405,
        });
      }
      const requestedWith = req.headers['x-requested-with'];
      const channel = channelOf(url.pathname);
      const authenticated =
        found.route.auth === 'public'
          ? anonymous(source, channel)
          : await this.opts.auth.authenticate({
              authorization: req.headers.authorization,
              cookie: req.headers.cookie,
              method: req.method ?? 'GET',
              path: found.route.path,
              requestedWith: Array.isArray(requestedWith) ? requestedWith[0] : requestedWith,
              source,
              channel,
            });
      if (req.headers.expect?.toLowerCase() === '100-continue') continueWhenRead(req, res);
      const purpose = purposeOfUse(req.headers['x-purpose-of-use']);
      const principal = { ...authenticated, channel, ...(purpose ? { purpose } : {}) };
      ctx = {
        req,
        res,
        params: found.params,
        query: url.searchParams,
        principal,
        origin:
          this.opts.publicUrl?.replace(/\/+$/, '') ??
          `${connectionScheme}://${targetAuthority(req.url ?? '/') ?? req.headers.host ?? 'localhost'}`,
        source,
      };
      await found.route.handler(ctx);
    } catch (err) {
      if (ctx?.unserved && !res.headersSent)
        await ctx.unserved(err).catch((recordErr: unknown) => this.opts.onError?.(recordErr));
      // A client that went away mid-request (a STOW-RS cancelled half way) is no server error to log with a stack:
      // its request simply ends, and nothing of it was stored.
      if (!(err instanceof CustosError) && !clientWentAway(err, req)) this.opts.onError?.(err);
      if (err instanceof CustosError && err.httpStatus === 401)
        res.setHeader('WWW-Authenticate', 'Bearer realm="custos"');
      // A request whose body was not read (refused before STOW-RS parsed it, unauthenticated): the answer closes
      // the connection, rather than reading the rest of a body that may be any size (until 5 Dec 2026 it was read
      // to its end to keep the connection alive: gigabytes from a caller without credentials).
      if (!req.complete && !res.headersSent) res.setHeader('Connection', 'close');
      // FHIR clients read errors as an OperationOutcome (FHIR R4 §3.1.0.4); until 6 Dec 2026 /fhir answered
      // problem+json like the rest.
      sendProblem(res, err, url.pathname, channelOf(url.pathname) === 'fhir' ? 'fhir' : 'problem');
    }
  }
}

/**
 * A request line without an HTTP version (HTTP/0.9, `GET /path` alone) is a 505 (RFC 9110 §15.6.6). Node's parser
 * reads it as version 0.9 and then reads header lines after it all the same, which an HTTP/0.9 request has none
 * of: a proxy in front that takes the line as HTTP/0.9 and Custos would read two different requests. Until 7 Dec
 * 2026 such a request was served as if it were HTTP/1.0 (the console, /api/health).
 */
function versionProblem(req: IncomingMessage): CustosError | undefined {
  if (req.httpVersionMajor === 1) return undefined;
  // A request line that says HTTP/2.0 (or 3.0) in HTTP/1.1's text framing is no request of those versions, which
  // frame in binary: Node served it as HTTP/1.1 until 7 Dec 2026. RFC 9112 §2.3 lets a server refuse a major
  // version with 505.
  return new CustosError({
    code: 'http.version-not-supported',
    message:
      req.httpVersionMajor === 0
        ? `the request line has no HTTP version (HTTP/${req.httpVersion}): send HTTP/1.1 or HTTP/1.0`
        : `the request line says HTTP/${req.httpVersion}, which this server does not speak: send HTTP/1.1 or HTTP/1.0`,
    httpStatus: 505,
  });
}

/** The methods some resource of Custos takes (routes, HEAD for GET, OPTIONS for every resource). */
const IMPLEMENTED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * The method of a request Node's parser refused as having an unknown method, when it is a method at all (an RFC
 * 9110 §9.1 token followed by a space): llhttp knows a fixed list of methods and refuses any other, lower-case
 * `get` included (methods are case-sensitive). Undefined for bytes that are no request line (a TLS handshake).
 */
function methodOf(err: Error): string | undefined {
  const { rawPacket, bytesParsed } = err as { rawPacket?: Buffer; bytesParsed?: number };
  if (!rawPacket) return undefined;
  // The packet may hold requests before this one (pipelined): the method starts the line the parser stopped on.
  const text = rawPacket.toString('latin1');
  const start = text.lastIndexOf('\n', Math.max((bytesParsed ?? 0) - 1, 0)) + 1;
  return /^([!#$%&'*+.^_`|~0-9A-Za-z-]{1,40}) /.exec(text.slice(start))?.[1];
}

/**
 * RFC 9110 §9.1: a method the server does not recognise is a 501 naming the ones it has (until 7 Dec 2026 a 400
 * "cannot be parsed as HTTP/1.1: HPE_INVALID_METHOD", which read as a broken request, not an unknown method).
 */
function methodProblem(method: string): CustosError {
  const upper = method.toUpperCase();
  return new CustosError({
    code: 'http.method-not-implemented',
    message:
      `the method ${method} is not implemented: this server takes ${IMPLEMENTED_METHODS.join(', ')} (RFC 9110 §9.1)` +
      (upper !== method && IMPLEMENTED_METHODS.includes(upper)
        ? `; methods are case-sensitive: send ${upper}`
        : ''),
    httpStatus: 501,
    detail: { method },
  });
}

/**
 * Whether Node's parser stopped for its size limit (http.maxHeaderSize, 16 KiB, which counts the request line too)
 * while still in the request line: from the start of the request the parser was on, a method and a target with no
 * line end yet.
 */
function inRequestLine(err: Error): boolean {
  const { rawPacket, bytesParsed } = err as { rawPacket?: Buffer; bytesParsed?: number };
  if (!rawPacket) return false;
  const text = rawPacket.toString('latin1', 0, bytesParsed ?? rawPacket.length);
  // The packet may hold whole requests before this one (pipelined): this one starts after the last blank line.
  const end = text.lastIndexOf('\r\n\r\n');
  const request = text.slice(end === -1 ? 0 : end + 4).replace(/^(\r?\n)+/, '');
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,40} [^\r\n]*$/.test(request);
}

/**
 * RFC 9112 §3: a request target longer than the server reads is a 414 URI Too Long (RFC 9110 §15.5.15), not the
 * 431 of header fields too large (RFC 6585 §5), which it was until 7 Dec 2026: a client that shortens its headers
 * will not help.
 */
function uriTooLongProblem(): CustosError {
  return new CustosError({
    code: 'http.uri-too-long',
    message:
      'the request target is longer than this server reads (16 KiB with the header fields): send a shorter URL, or a QIDO-RS query with fewer values (RFC 9112 §3, RFC 9110 §15.5.15)',
    httpStatus: 414,
  });
}

/** A whole HTTP/1.1 answer in problem+json that closes the connection, for a socket no ServerResponse writes to. */
function rawProblem(err: CustosError): string {
  const body = JSON.stringify(problemBody(err));
  return `HTTP/1.1 ${err.httpStatus} ${STATUS_CODES[err.httpStatus]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * RFC 6585 §5: a request with more header lines than MAX_REQUEST_HEADERS is a 431 naming the limit. Until 7 Dec 2026
 * the lines past Node's limit (about a thousand) were dropped without a word, with whatever they said.
 */
function headerCountProblem(req: IncomingMessage): CustosError | undefined {
  if (req.rawHeaders.length / 2 <= MAX_REQUEST_HEADERS) return undefined;
  return new CustosError({
    code: 'http.too-many-headers',
    message: `the request has more than ${MAX_REQUEST_HEADERS} header lines: send fewer (RFC 6585 §5)`,
    httpStatus: 431,
    detail: { limit: MAX_REQUEST_HEADERS },
  });
}

/** RFC 9112 §3.2 / RFC 3986 §3.2.2: a host (a name, an IPv4 address or a bracketed IP literal) and a port. */
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/;

/**
 * RFC 9112 §3.2: a request on HTTP/1.1 without Host, any request with more than one Host line, or one whose Host is
 * no host and port, is a 400. Until 7 Dec 2026 a missing Host got Node's bare 400 with an empty body, and of two
 * Hosts the first was taken, and with it the URLs Custos wrote (RetrieveURL, Content-Location) when http.publicUrl
 * is not set.
 */
function hostProblem(req: IncomingMessage): CustosError | undefined {
  const hosts = fieldLines(req, 'host');
  const bad = (message: string) =>
    new CustosError({ code: 'http.bad-host', message, httpStatus: 400, detail: { header: 'Host' } });
  if (hosts.length === 0)
    return req.httpVersionMajor === 1 && req.httpVersionMinor >= 1
      ? bad('an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)')
      : undefined;
  if (hosts.length > 1) return bad(`the request has ${hosts.length} Host headers: send one (RFC 9112 §3.2)`);
  if (!HOST_VALUE.test(hosts[0]!))
    return bad(`the Host header '${hosts[0]!.slice(0, 80)}' is not a host and port (RFC 9112 §3.2)`);
  return undefined;
}

/**
 * RFC 9112 §3.2.2: the authority (host and port, as sent) of a request target in absolute form, which an origin
 * server uses instead of Host; undefined for a path (origin form). It starts the absolute URLs Custos writes when
 * http.publicUrl is not set: until 7 Dec 2026 they named the Host header's authority instead.
 */
function targetAuthority(target: string): string | undefined {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(target)?.[1];
  // A user part (RFC 9110 §4.2.4 deprecates it) is no part of where the server is reached.
  const host = authority?.slice(authority.lastIndexOf('@') + 1);
  return host && HOST_VALUE.test(host) ? host : undefined;
}

/**
 * RFC 9112 §3.3: a request target in absolute form is the target URI, scheme included, and RFC 9110 §7.4 lets an
 * origin server answer only for URIs it is authoritative for: an `https:` URI over a plain connection (no TLS, so no
 * certificate made this server its authority, RFC 9110 §4.3.3), an `http:` one over TLS, or any other scheme
 * (`ftp:`), is a 421 naming the scheme, unless it is http.publicUrl's (a proxy in front that ends TLS). Until
 * 7 Dec 2026 the scheme was not looked at: `GET https://host/dicom-web/studies` on the plain port was served, with
 * `http://host/…` URLs in the answer, and `GET ftp://host/api/health` as /api/health.
 */
function targetSchemeProblem(target: string, url: URL, served: readonly string[]): CustosError | undefined {
  if (target.startsWith('/')) return undefined;
  const scheme = url.protocol.slice(0, -1);
  if (served.includes(scheme)) return undefined;
  return new CustosError({
    code: 'http.misdirected-request',
    message: `the request target is a URL of the scheme '${scheme.slice(0, 20)}', and this server answers ${[...new Set(served)].join(' or ')} on this connection: send the path alone (RFC 9110 §7.4)`,
    httpStatus: 421,
    detail: { scheme: scheme.slice(0, 20) },
  });
}

/**
 * RFC 3986 §2.1, WHATWG URL: the query is percent-encoded UTF-8. URLSearchParams reads a '%' without two hex digits
 * as itself and bytes that are not UTF-8 as U+FFFD, without a word, so `PatientName=Ren%E9` (Latin-1) searched for
 * 'Ren\uFFFD' and found nothing (200 []) until 7 Dec 2026. Now a 400 naming the parameter and the fault; the value is
 * not quoted (it may be a patient's name).
 */
function queryEncodingProblem(url: URL): CustosError | undefined {
  for (const pair of url.search.slice(1).split('&')) {
    const [rawName = '', ...rest] = pair.split('=');
    for (const raw of [rawName, rest.join('=')]) {
      try {
        decodeURIComponent(raw.replace(/\+/g, ' '));
      } catch {
        let name: string;
        try {
          name = decodeURIComponent(rawName.replace(/\+/g, ' ')).slice(0, 64);
        } catch {
          name = '';
        }
        const fault = /%(?![0-9A-Fa-f]{2})/.test(raw)
          ? "a '%' not followed by two hexadecimal digits (write a '%' as %25)"
          : 'percent-encoded bytes that are not UTF-8';
        return new CustosError({
          code: 'http.bad-url',
          message: `the query ${name ? `parameter '${name}'` : 'parameter name'} has ${fault} (RFC 3986 §2.1)`,
          httpStatus: 400,
          ...(name ? { detail: { parameter: name } } : {}),
        });
      }
    }
  }
  return undefined;
}

/** The values of every line of the header `name` (lower case), in the order sent. */
function fieldLines(req: IncomingMessage, name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    if (req.rawHeaders[i]!.toLowerCase() === name) values.push(req.rawHeaders[i + 1]!);
  return values;
}

/** Headers Custos acts on that hold one value, not a comma list (RFC 9110 §11.6.2, §8.3), with their spelling. */
const SINGLE_VALUED = [
  ['authorization', 'Authorization'],
  ['content-type', 'Content-Type'],
] as const;

/**
 * RFC 9110 §5.3: a header that is not a list is sent once. Of two Authorization or Content-Type lines Node keeps the
 * first and drops the other without a word, so a proxy that reads the last one (a token it checked, a multipart
 * boundary it scanned) and Custos would act on different requests: a 400 naming it. Until 7 Dec 2026 the first was
 * taken.
 */
function repeatedFieldProblem(req: IncomingMessage): CustosError | undefined {
  for (const [name, spelled] of SINGLE_VALUED) {
    const lines = fieldLines(req, name).length;
    if (lines > 1)
      return new CustosError({
        code: 'http.repeated-header',
        message: `the request has ${lines} ${spelled} headers: send one (RFC 9110 §5.3)`,
        httpStatus: 400,
        detail: { header: spelled },
      });
  }
  return undefined;
}

/**
 * RFC 9110 §10.1.1: `100 Continue` goes out when the handler starts reading the body (every body is read through
 * a 'data' or 'readable' listener), so that a request refused before that gets its final status alone (until 6 Dec
 * 2026 it went out after authentication, before STOW-RS's 413 and 415).
 */
function continueWhenRead(req: IncomingMessage, res: ServerResponse): void {
  const onListener = (event: string | symbol) => {
    if (event !== 'data' && event !== 'readable') return;
    req.off('newListener', onListener);
    if (!res.headersSent) res.writeContinue();
  };
  req.on('newListener', onListener);
}

/** Whether a request failed because its client closed the connection before sending all of it. */
function clientWentAway(err: unknown, req: IncomingMessage): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'ECONNABORTED' || (req.readableAborted && !req.complete);
}

/**
 * Why the caller accesses data (recorded with every audit record it causes): the `X-Purpose-Of-Use` header, a
 * code of the HL7 v3 PurposeOfUse value set (PURPOSE_OF_USE_CODES, in any letter case) such as TREAT, ETREAT,
 * HPAYMT, HRESCH, PUBHLTH. Until 7 Dec 2026 any word of that form was accepted, recorded and exported as an
 * ActReason code (`BOGUS` included).
 */
function purposeOfUse(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const v = (Array.isArray(header) ? header[0] : header)!.trim();
  const code = v.toUpperCase();
  if (!PURPOSE_OF_USE_CODES.has(code))
    throw new CustosError({
      code: 'http.bad-purpose',
      message:
        `X-Purpose-Of-Use must be a code of the HL7 v3 PurposeOfUse value set such as TREAT, ETREAT or HRESCH, ` +
        `got '${v.slice(0, 80)}'`,
      httpStatus: 400,
    });
  return code;
}
