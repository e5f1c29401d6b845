// Behind a TLS-terminating reverse proxy, the absolute URLs Custos writes (BulkDataURI, RetrieveURL) must name the
// proxy, not the plain-HTTP socket it talks to: http.publicUrl. Until 6 Dec 2026 there was no such setting, and
// the URLs were http:// and the proxy's upstream host. Forwarded and X-Forwarded-* headers, which any client can
// send, are never taken for it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { exchange } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';

type Json = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>;

describe.each(backends())('absolute URLs on %s', (backend) => {
  const PUBLIC = 'https://pacs.example.org/custos';
  let proxied: TestServer;
  let direct: TestServer;
  const study = uid(1);
  const series = uid(2);
  const sop = uid(3);
  const forged = {
    Forwarded: 'proto=https;host=evil.example',
    'X-Forwarded-Proto': 'https',
    'X-Forwarded-Host': 'evil.example',
  };

  /** STOW-RS the one instance; the RetrieveURL of the stored instance, and a metadata BulkDataURI. */
  async function urls(s: TestServer, headers: Record<string, string> = {}) {
    const auth = { Authorization: `Bearer ${s.token}`, ...headers };
    const { body, contentType } = stowBody([
      { bytes: makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: sop }) },
    ]);
    const stored = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': contentType },
      body,
    });
    expect(stored.status, await stored.clone().text()).toBe(200);
    const answer = (await stored.json()) as Record<string, { Value?: Json[] }>;
    const retrieveUrl = answer['00081199']!.Value![0]!['00081190']!.Value![0];
    const meta = await fetch(`${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}/metadata`, {
      headers: auth,
    });
    const bulk = ((await meta.json()) as Json[])[0]!['7FE00010']!.BulkDataURI;
    const found = await fetch(`${s.dicomweb}/studies?StudyInstanceUID=${study}`, { headers: auth });
    const qido = ((await found.json()) as Json[])[0]!['00081190']!.Value![0];
    return { retrieveUrl, bulk, qido };
  }

  beforeAll(async () => {
    proxied = await startTestServer(backend, {
      configure: (c) => ({ ...c, http: { ...c.http, publicUrl: `${PUBLIC}/` } }),
    });
    direct = await startTestServer(backend);
  });
  afterAll(async () => {
    expect(proxied.unexpected).toEqual([]);
    await proxied.stop();
    await direct.stop();
  });

  it('writes every absolute URL from http.publicUrl, path prefix included, whatever the request says', async () => {
    const instance = `${PUBLIC}/dicom-web/studies/${study}/series/${series}/instances/${sop}`;
    expect(await urls(proxied, forged)).toEqual({
      retrieveUrl: instance,
      bulk: `${instance}/bulkdata/7FE00010`,
      qido: `${PUBLIC}/dicom-web/studies/${study}`,
    });
  });

  it('without it, takes no Forwarded or X-Forwarded-* header a client sends for the origin', async () => {
    const { retrieveUrl, bulk } = await urls(direct, forged);
    expect(retrieveUrl).toMatch(new RegExp(`^${direct.url}/dicom-web/`));
    expect(bulk).toMatch(new RegExp(`^${direct.url}/dicom-web/`));
  });

  it('answers a request whose target is a URL of another scheme than the connection (or http.publicUrl) has with 421', async () => {
    const raw = (server: TestServer, target: string) =>
      exchange(
        Number(new URL(server.url).port),
        `GET ${target} HTTP/1.1\r\nHost: pacs.example.org\r\nAuthorization: Bearer ${server.token}\r\nConnection: close\r\n\r\n`,
      );
    const problemOf = (text: string) =>
      JSON.parse(Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8')) as Record<
        string,
        unknown
      >;
    // RFC 9112 §3.3: the target URI is https://…, which a plain connection is no authority for. Until 7 Dec 2026 it
    // was served, with http://pacs.example.org/… URLs in the answer; and ftp://… as if it were the path alone.
    for (const [target, scheme] of [
      [`https://pacs.example.org/dicom-web/studies?StudyInstanceUID=${study}`, 'https'],
      ['ftp://pacs.example.org/api/health', 'ftp'],
    ] as const) {
      const r = await raw(direct, target);
      expect(r.text).toMatch(/^HTTP\/1\.1 421 Misdirected Request\r\n/);
      expect(r.text).toMatch(/Content-Type: application\/problem\+json/);
      expect(problemOf(r.text)).toMatchObject({
        code: 'http.misdirected-request',
        detail: `the request target is a URL of the scheme '${scheme}', and this server answers http on this connection: send the path alone (RFC 9110 §7.4)`,
        scheme,
      });
    }
    // An http: URL is this connection's; behind a proxy that ends TLS, http.publicUrl's https: is taken too.
    const plain = await raw(direct, `http://pacs.example.org/dicom-web/studies?StudyInstanceUID=${study}`);
    expect(plain.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const proxiedTarget = await raw(
      proxied,
      `https://pacs.example.org/dicom-web/studies?StudyInstanceUID=${study}`,
    );
    expect(proxiedTarget.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(proxiedTarget.text).toContain(`"${PUBLIC}/dicom-web/studies/${study}"`);
  });
});
