import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, posix } from 'node:path';
import { CustosError } from '../../domain/errors.js';
import type { ConsoleAssets } from '../../ports/console-assets.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Paths that belong to the APIs: never answered with the console, so their 404s stay problem+json. */
const API_PREFIXES = ['/api', '/dicom-web', '/wado', '/scim', '/fhir'];

/** Headers on everything the console is served with (docs/console.md). */
export const CONSOLE_SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

export type StaticHandler = (req: IncomingMessage, res: ServerResponse, pathname: string) => Promise<boolean>;

/**
 * The built web console (a single-page app) from one directory: files with their content types, hashed
 * assets cached for good, index.html never cached, and index.html for any other path without an extension
 * (client-side routes such as /studies/1.2.3). Answers GET and HEAD outside the API prefixes (OPTIONS with what it
 * takes, any other method with 405); returns false when it has nothing to serve, so the caller answers 404 as before.
 */
export function consoleFiles(files: ConsoleAssets): StaticHandler {
  /** The file a GET of `pathname` is answered with, if any. */
  const locate = async (pathname: string) => {
    if (API_PREFIXES.some((p) => pathname === p || pathname.startsWith(`${p}/`))) return undefined;
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return undefined;
    }
    // A path that would leave the console's root, or holds a NUL, is nothing to serve (a 404), not a route.
    const inside = posix.normalize(`.${decoded}`);
    if (decoded.includes('\0') || inside === '..' || inside.startsWith('../')) return undefined;
    const file = decoded.endsWith('/') ? undefined : await files.file(decoded);
    if (file) return { name: decoded, file };
    // A client-side route (/studies/1.2.840…, whose UID looks like an extension) gets the app, which decides
    // what to show; a missing asset or file stays a 404.
    if (decoded.startsWith('/assets/') || TYPES[extname(decoded).toLowerCase()] !== undefined)
      return undefined;
    const app = await files.file('/index.html');
    return app ? { name: '/index.html', file: app } : undefined;
  };
  return async (req, res, pathname) => {
    const found = await locate(pathname);
    if (!found) return false;
    const { name, file } = found;
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { Allow: 'GET, HEAD, OPTIONS', 'Content-Length': 0 });
      res.end();
      return true;
    }
    // RFC 9110 §15.5.6: what the console serves takes GET and HEAD only; any other method is a 405 saying so (until
    // 7 Dec 2026 a 404 'no resource at', for a page that is there).
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      throw new CustosError({
        code: 'http.method-not-allowed',
        message: `${req.method} is not allowed on ${pathname.slice(0, 200)}: the console's pages take GET and HEAD`,
        httpStatus: 405,
      });
    }
    res.writeHead(200, {
      ...CONSOLE_SECURITY_HEADERS,
      'Content-Type': TYPES[extname(name)] ?? 'application/octet-stream',
      'Content-Length': file.size,
      'Cache-Control': file.immutable
        ? 'public, max-age=31536000, immutable'
        : 'no-cache, no-store, must-revalidate',
    });
    if (req.method === 'HEAD') {
      res.end();
      return true;
    }
    await new Promise<void>((done, fail) => {
      const stream = file.open();
      stream.on('error', fail);
      res.on('finish', done);
      res.on('close', done);
      stream.pipe(res);
    });
    return true;
  };
}
