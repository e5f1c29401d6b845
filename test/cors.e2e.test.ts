// A viewer served from another origin (as OHIF usually is) calls DICOMweb from real Chromium: CORS.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { launchChromium } from './support/chromium.js';
import { privatePostgres, type PrivatePostgres } from './support/private-postgres.js';
import { startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

describe('DICOMweb called from a page of another origin, in Chromium (CORS)', { timeout: 120_000 }, () => {
  let viewer: Server;
  let viewerPort: number;
  let s: TestServer;
  let browser: Browser;
  const study = uid(1);

  beforeAll(async () => {
    // The "viewer": an empty page on its own port, so its origin differs from Custos's.
    viewer = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>viewer</title>');
    });
    await new Promise<void>((r) => viewer.listen(0, '127.0.0.1', r));
    viewerPort = (viewer.address() as AddressInfo).port;
    s = await startTestServer('sqlite', {
      configure: (c) => ({ ...c, http: { ...c.http, corsOrigins: [`http://127.0.0.1:${viewerPort}`] } }),
    });
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
    await new Promise((r) => viewer?.close(r));
  });

  async function pageAt(origin: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`${origin}/`);
    return page;
  }

  it('stores, queries and reads metadata with a bearer token from an allowed origin', async () => {
    const page = await pageAt(`http://127.0.0.1:${viewerPort}`);
    const series = uid(2);
    const sop = uid(3);
    try {
      const { body, contentType } = stowBody([
        {
          bytes: makeInstance({
            studyUid: study,
            seriesUid: series,
            sopInstanceUid: sop,
            patientId: 'CORS-1',
          }),
        },
      ]);
      const out = await page.evaluate(
        async ({ base, token, body64, contentType, study, series, sop }) => {
          const auth = { Authorization: `Bearer ${token}` };
          const bytes = Uint8Array.from(atob(body64), (c) => c.charCodeAt(0));
          // Not a "simple" request (Authorization, multipart/related): the browser sends a preflight first.
          const stow = await fetch(`${base}/studies`, {
            method: 'POST',
            headers: { ...auth, 'Content-Type': contentType, Accept: 'application/dicom+json' },
            body: bytes,
          });
          const qido = await fetch(`${base}/studies?PatientID=CORS-1&fuzzymatching=true`, { headers: auth });
          const meta = await fetch(`${base}/studies/${study}/metadata`, { headers: auth });
          // A suffix range is not a CORS-safelisted Range value: the preflight must allow the header.
          const tail = await fetch(
            `${base}/studies/${study}/series/${series}/instances/${sop}/bulkdata/7FE00010`,
            {
              headers: { ...auth, Accept: 'application/octet-stream', Range: 'bytes=-16' },
            },
          );
          return {
            stow: stow.status,
            qido: qido.status,
            found: ((await qido.json()) as Record<string, { Value: string[] }>[]).map(
              (r) => r['0020000D']!.Value[0],
            ),
            // Readable by the page only because Custos exposes it.
            warning: qido.headers.get('Warning'),
            meta: meta.status,
            metaInstances: ((await meta.json()) as unknown[]).length,
            tail: tail.status,
            tailRange: tail.headers.get('Content-Range'),
            tailBytes: (await tail.arrayBuffer()).byteLength,
          };
        },
        {
          base: s.dicomweb,
          token: s.token,
          body64: body.toString('base64'),
          contentType,
          study,
          series,
          sop,
        },
      );
      expect(out).toEqual({
        stow: 200,
        qido: 200,
        found: [study],
        warning: expect.stringContaining('fuzzymatching'),
        meta: 200,
        metaInstances: 1,
        // 8 × 8 × 16 bits of pixel data; Content-Range readable because Custos exposes it.
        tail: 206,
        tailRange: 'bytes 112-127/128',
        tailBytes: 16,
      });
    } finally {
      await page.close();
    }
  });

  it('lets the page read what a 415 or 405 says is taken (Accept-Post, Allow)', async () => {
    const page = await pageAt(`http://127.0.0.1:${viewerPort}`);
    try {
      const out = await page.evaluate(
        async ({ base, token, study }) => {
          const auth = { Authorization: `Bearer ${token}` };
          // A viewer storing a bare Part 10 file instead of multipart/related.
          const stow = await fetch(`${base}/studies`, {
            method: 'POST',
            headers: { ...auth, 'Content-Type': 'application/dicom' },
            body: new Uint8Array(8),
          });
          // POST where only GET is taken.
          const meta = await fetch(`${base}/studies/${study}/metadata`, {
            method: 'POST',
            headers: { ...auth, 'Content-Type': 'application/dicom+json' },
            body: '[]',
          });
          return {
            stow: stow.status,
            acceptPost: stow.headers.get('Accept-Post'),
            meta: meta.status,
            allow: meta.headers.get('Allow'),
          };
        },
        { base: s.dicomweb, token: s.token, study },
      );
      expect(out).toEqual({
        stow: 415,
        acceptPost: expect.stringContaining('multipart/related; type="application/dicom"'),
        meta: 405,
        allow: expect.stringContaining('GET'),
      });
    } finally {
      await page.close();
    }
  });

  it('lets the page read when to try a 503 again (Retry-After) and what a 401 asks for (WWW-Authenticate)', async () => {
    // A second archive whose PostgreSQL index is down (a restart, a failover): every call is a 503 with Retry-After.
    let pg: PrivatePostgres | undefined;
    let down: TestServer | undefined;
    let unexpected: unknown[] | undefined;
    const page = await pageAt(`http://127.0.0.1:${viewerPort}`);
    try {
      pg = await privatePostgres();
      const url = pg.url;
      down = await startTestServer('sqlite', {
        configure: (c) => ({
          ...c,
          database: { url },
          http: { ...c.http, corsOrigins: [`http://127.0.0.1:${viewerPort}`] },
        }),
      });
      await pg.stop();
      const out = await page.evaluate(
        async ({ base, downBase, token }) => {
          const unavailable = await fetch(`${downBase}/studies`, {
            headers: { Authorization: `Bearer ${token}` },
          });
          const refused = await fetch(`${base}/studies`, {
            headers: { Authorization: 'Bearer not-a-token' },
          });
          return {
            unavailable: unavailable.status,
            retryAfter: unavailable.headers.get('Retry-After'),
            refused: refused.status,
            wwwAuthenticate: refused.headers.get('WWW-Authenticate'),
          };
        },
        { base: s.dicomweb, downBase: down.dicomweb, token: down.token },
      );
      expect(out).toEqual({
        unavailable: 503,
        retryAfter: '5',
        refused: 401,
        wwwAuthenticate: 'Bearer realm="custos"',
      });
    } finally {
      await page.close();
      unexpected = await stopThenCleanUp(down, async () => pg?.remove());
    }
    expect(unexpected).toEqual([]);
  });

  it('is refused by the browser from an origin not in http.corsOrigins, and for the console API', async () => {
    // localhost and 127.0.0.1 are different origins: only the latter is allowed.
    const other = await pageAt(`http://localhost:${viewerPort}`);
    const allowed = await pageAt(`http://127.0.0.1:${viewerPort}`);
    try {
      const call = (page: Page, url: string) =>
        page.evaluate(
          async ({ url, token }) =>
            fetch(url, { headers: { Authorization: `Bearer ${token}` } }).then(
              (r) => `status ${r.status}`,
              (e: Error) => `blocked: ${e.name}`,
            ),
          { url, token: s.token },
        );
      expect(await call(other, `${s.dicomweb}/studies`)).toBe('blocked: TypeError');
      // The admin API behind the web console is same-origin only, whatever http.corsOrigins says.
      expect(await call(allowed, `${s.url}/api/admin/aes`)).toBe('blocked: TypeError');
      expect(await call(allowed, `${s.dicomweb}/studies`)).toBe('status 200');
    } finally {
      await other.close();
      await allowed.close();
    }
  });
});
