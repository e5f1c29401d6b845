import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

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
 * (client-side routes such as /studies/1.2.3). Answers only GET and HEAD outside the API prefixes; returns
 * false when it has nothing to serve, so the caller answers 404 as before.
 */
export function consoleFiles(root: string): StaticHandler {
  const base = resolve(root);
  const fileAt = async (p: string) => {
    try {
      const s = await stat(p);
      return s.isFile() ? s : undefined;
    } catch {
      return undefined;
    }
  };
  return async (req, res, pathname) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (API_PREFIXES.some((p) => pathname === p || pathname.startsWith(`${p}/`))) return false;
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return false;
    }
    if (decoded.includes('\0')) return false;
    let file = resolve(base, `.${decoded}`);
    if (file !== base && !file.startsWith(base + sep)) return false;
    let info = decoded.endsWith('/') ? undefined : await fileAt(file);
    if (!info) {
      // A client-side route (/studies/1.2.840…, whose UID looks like an extension) gets the app, which decides
      // what to show; a missing asset or file stays a 404.
      if (decoded.startsWith('/assets/') || TYPES[extname(decoded).toLowerCase()] !== undefined) return false;
      file = join(base, 'index.html');
      info = await fileAt(file);
      if (!info) return false;
    }
    const immutable = file.startsWith(join(base, 'assets') + sep);
    res.writeHead(200, {
      ...CONSOLE_SECURITY_HEADERS,
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Length': info.size,
      'Cache-Control': immutable
        ? 'public, max-age=31536000, immutable'
        : 'no-cache, no-store, must-revalidate',
    });
    if (req.method === 'HEAD') {
      res.end();
      return true;
    }
    await new Promise<void>((done, fail) => {
      const stream = createReadStream(file);
      stream.on('error', fail);
      res.on('finish', done);
      res.on('close', done);
      stream.pipe(res);
    });
    return true;
  };
}
