// The HTTP transport with callers that do not behave: requests refused before their body is read, a body or an
// answer that stops moving, request targets and encodings HTTP's parser or URL handling takes otherwise than a
// path. Raw sockets, since fetch() would not send any of these.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { exchange } from './support/http.js';
import { postStow, startTestServer, type TestServer } from './support/test-server.js';

describe('HTTP with callers that do not behave', () => {
  let s: TestServer;
  let port: number;
  beforeAll(async () => {
    s = await startTestServer('sqlite', {
      configure: (c) => ({ ...c, http: { ...c.http, inactivityTimeoutMs: 1500 } }),
    });
    port = Number(new URL(s.url).port);
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
  });

  it('answers Expect: 100-continue without credentials with 401 and closes, never asking for the body', async () => {
    const r = await exchange(
      port,
      'POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n' +
        'Content-Type: multipart/related; type="application/dicom"; boundary=b\r\n' +
        'Content-Length: 100000000000000\r\nExpect: 100-continue\r\n\r\n',
    );
    // Until 5 Dec 2026: "100 Continue", then 401, then the body read to its end (gigabytes from anyone).
    expect(r.text).not.toContain('100 Continue');
    expect(r.text).toMatch(/^HTTP\/1\.1 401 /);
    expect(r.text).toMatch(/connection: close/i);
    expect(r.closed).toBe(true);
  });

  it('answers a STOW-RS with Expect: 100-continue that is over the size limit (413) or of the wrong type (415) without 100 Continue', async () => {
    for (const [type, length, status] of [
      ['multipart/related; type="application/dicom"; boundary=b', '100000000000000', 413],
      ['application/json', '2', 415],
    ] as const) {
      const r = await exchange(
        port,
        `POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\n` +
          `Content-Type: ${type}\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`,
      );
      // Until 6 Dec 2026 "100 Continue" came first, asking for a body that was then refused.
      expect(r.text).not.toContain('100 Continue');
      expect(r.text).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(r.text).toMatch(/application\/problem\+json/);
    }
  });

  it('asks for the body of a STOW-RS with Expect: 100-continue once it will read it, and stores it', async () => {
    const sop = uid(21);
    const { body, contentType } = stowBody([
      { bytes: makeInstance({ studyUid: uid(22), seriesUid: uid(23), sopInstanceUid: sop }) },
    ]);
    const socket: Socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    let answer = '';
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('data', (d: Buffer) => {
      const first = answer === '';
      answer += d.toString('latin1');
      if (first && answer.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) socket.write(body);
    });
    socket.write(
      `POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\nConnection: close\r\n` +
        `Content-Type: ${contentType}\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
    );
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
    socket.destroy();
    expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(answer).toContain(sop);
  });

  it('answers an Expect other than 100-continue with 417 problem+json', async () => {
    const r = await exchange(
      port,
      'POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Content-Length: 2\r\nExpect: something-else\r\n\r\n',
    );
    // Until 6 Dec 2026 Node's own 417, with an empty body.
    expect(r.text).toMatch(/^HTTP\/1\.1 417 /);
    expect(r.text).toMatch(/Content-Type: application\/problem\+json/);
    const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as { code: string; detail: string };
    expect(body.code).toBe('http.expectation-failed');
    expect(body.detail).toContain("'something-else'");
    expect(r.closed).toBe(true);
  });

  it('closes the connection of a refused request whose body it did not read, while the client still sends', async () => {
    const socket: Socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.write(
      'POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/related; type="application/dicom"; boundary=b\r\n' +
        'Content-Length: 100000000000\r\n\r\n',
    );
    // Keep sending: a server reading the body to its end would never close.
    const chunk = Buffer.alloc(64 * 1024);
    const pump = setInterval(() => socket.writable && socket.write(chunk), 5);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
    clearInterval(pump);
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(socket.destroyed || socket.readableEnded).toBe(true);
    socket.destroy();
  });

  it('closes a connection on which an upload stopped moving, and stores nothing of it', async () => {
    const sop = uid(1);
    const { body, contentType } = stowBody([
      { bytes: makeInstance({ studyUid: uid(2), seriesUid: uid(3), sopInstanceUid: sop }) },
    ]);
    const started = Date.now();
    const r = await exchange(
      port,
      Buffer.concat([
        Buffer.from(
          `POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\n` +
            `Content-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`,
        ),
        body.subarray(0, body.length >> 1),
      ]),
      10_000,
    );
    // Until 5 Dec 2026 it stayed open for good, with its descriptor and its temporary file.
    expect(r.closed).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    const found = await fetch(`${s.dicomweb}/instances?SOPInstanceUID=${sop}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(await found.json()).toEqual([]);
  });

  it('closes a connection whose reader stopped reading once nothing moved for the inactivity timeout', async () => {
    // Its own server, with a timeout long enough that the two outcomes are far apart on a loaded machine.
    const own = await startTestServer('sqlite', {
      configure: (c) => ({ ...c, http: { ...c.http, inactivityTimeoutMs: 4000 } }),
    });
    try {
      const [study, series, sop] = [uid(11), uid(12), uid(13)];
      // 32 MB: more than the two ends' socket buffers hold, so the answer stops moving while nobody reads.
      const bytes = makeInstance({
        studyUid: study,
        seriesUid: series,
        sopInstanceUid: sop,
        rows: 4096,
        columns: 4096,
      });
      expect((await postStow(own, [bytes])).status).toBe(200);
      const socket: Socket = connect(Number(new URL(own.url).port), '127.0.0.1');
      socket.on('error', () => undefined);
      socket.pause();
      let received = 0;
      const closed = new Promise<void>((r) => socket.on('close', () => r()));
      socket.write(
        `GET /dicom-web/studies/${study}/series/${series}/instances/${sop} HTTP/1.1\r\nHost: x\r\n` +
          `Authorization: Bearer ${own.token}\r\nAccept: application/dicom\r\n\r\n`,
      );
      // Read nothing for 6.5 s: past the timeout and a quarter (5 s), short of twice it (8 s). Then read on: a
      // connection the server closed ends short of the object; one it kept sends the rest.
      await new Promise((r) => setTimeout(r, 6500));
      socket.on('data', (d: Buffer) => (received += d.length));
      socket.resume();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 30_000))]);
      socket.destroy();
      // Until 6 Dec 2026 a reader that stopped reading kept its connection for twice the timeout.
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThan(bytes.length);
      expect(own.unexpected).toEqual([]);
    } finally {
      await own.stop();
    }
  });

  it('reads a request target that starts with // as a path, not as an authority', async () => {
    // Until 5 Dec 2026 '//anything/api/health' was /api/health: a proxy denying by path prefix let it through.
    const r = await exchange(
      port,
      'GET //anything/api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    // Now no API route: the web console's page, as for any other path it does not know.
    expect(r.text).not.toMatch(/content-type: application\/json/i);
    expect(r.text).not.toContain('"storage"');
    const plain = await exchange(port, 'GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(plain.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(plain.text).toContain('"storage"');
  });

  it('writes the absolute URLs of a request whose target is an absolute URL with its authority, not with Host', async () => {
    const study = uid(71);
    const stored = await postStow(s, [
      makeInstance({ studyUid: study, seriesUid: uid(72), sopInstanceUid: uid(73) }),
    ]);
    expect(stored.status).toBe(200);
    const r = await exchange(
      port,
      `GET http://pacs.example.org:8042/dicom-web/studies?StudyInstanceUID=${study} HTTP/1.1\r\n` +
        `Host: elsewhere.example\r\nAuthorization: Bearer ${s.token}\r\nConnection: close\r\n\r\n`,
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    // RFC 9112 §3.2.2: Host is ignored. Until 7 Dec 2026 the RetrieveURL was http://elsewhere.example/….
    expect(r.text).toContain(`"http://pacs.example.org:8042/dicom-web/studies/${study}"`);
    expect(r.text).not.toContain('elsewhere.example');
  });

  it('answers a path segment that is not valid percent-encoding with 400 naming it', async () => {
    const res = await fetch(`${s.dicomweb}/studies/%zz/series`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: 'http.bad-url',
      detail: "the path segment '%zz' is not valid percent-encoding (RFC 3986 §2.1)",
    });
  });

  it('answers a query parameter that is not percent-encoded UTF-8 with 400 naming it, without quoting its value', async () => {
    const qido = (query: string) =>
      fetch(`${s.dicomweb}/studies?${query}`, { headers: { Authorization: `Bearer ${s.token}` } });
    // Until 7 Dec 2026 read as 'Ren\uFFFD' and '%zz' without a word: a search for nothing, 200 [].
    for (const [query, detail] of [
      [
        'PatientName=Ren%E9',
        "the query parameter 'PatientName' has percent-encoded bytes that are not UTF-8 (RFC 3986 §2.1)",
      ],
      [
        'limit=5&PatientName=Doe%zz',
        "the query parameter 'PatientName' has a '%' not followed by two hexadecimal digits (write a '%' as %25) (RFC 3986 §2.1)",
      ],
    ] as const) {
      const res = await qido(query);
      expect(res.status).toBe(400);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ code: 'http.bad-url', detail, parameter: 'PatientName' });
      expect(JSON.stringify(body)).not.toMatch(/Ren|Doe/);
    }
    expect((await qido('PatientName=Ren%C3%A9&StudyDescription=a+b%25')).status).toBe(200);
  });

  it("answers what HTTP's parser refuses in problem+json, and stays up", async () => {
    const r = await exchange(
      port,
      'POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(r.text).toMatch(/Content-Type: application\/problem\+json/);
    const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as { code: string; detail: string };
    expect(body.code).toBe('http.bad-request');
    expect(body.detail).toMatch(/^the request cannot be parsed as HTTP\/1\.1: HPE_/);
    const big = await exchange(
      port,
      `GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
    );
    expect(big.text).toMatch(/^HTTP\/1\.1 431 /);
    expect((await fetch(`${s.url}/api/health`)).status).toBe(200);
  });

  it('answers a request target longer than it reads with 414 URI Too Long, and header fields too large with 431', async () => {
    // Until 7 Dec 2026 a long URL was a 431 Request Header Fields Too Large (RFC 9112 §3 says 414).
    const long = await exchange(
      port,
      `GET /dicom-web/studies?PatientID=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(long.text).toMatch(/^HTTP\/1\.1 414 URI Too Long\r\n/);
    expect(long.text).toMatch(/Content-Type: application\/problem\+json/);
    const body = JSON.parse(long.text.slice(long.text.indexOf('\r\n\r\n') + 4)) as {
      code: string;
      detail: string;
    };
    expect(body.code).toBe('http.uri-too-long');
    expect(body.detail).toMatch(/^the request target is longer than this server reads/);
    expect(long.closed).toBe(true);
    // Behind a request it serves in the same packet: that one is answered, then the 414.
    const pipelined = await exchange(
      port,
      `GET /api/health HTTP/1.1\r\nHost: x\r\n\r\nGET /api/health?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(pipelined.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*HTTP\/1\.1 414 URI Too Long\r\n/);
    // A short request line with a header too large is still the headers' fault.
    const header = await exchange(
      port,
      `GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(header.text).toMatch(/^HTTP\/1\.1 431 /);
    expect((await fetch(`${s.url}/api/health`)).status).toBe(200);
  });

  it('answers CONNECT with 501 problem+json, since it is no proxy, and stays up', async () => {
    // Until 7 Dec 2026 the connection was closed with no answer at all.
    const r = await exchange(
      port,
      'CONNECT pacs.example.org:443 HTTP/1.1\r\nHost: pacs.example.org:443\r\n\r\n',
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 501 Not Implemented\r\n/);
    expect(r.text).toMatch(/Content-Type: application\/problem\+json/);
    const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as { code: string; detail: string };
    expect(body.code).toBe('http.method-not-implemented');
    expect(body.detail).toMatch(/^CONNECT pacs\.example\.org:443 is not supported: this server is no proxy/);
    expect(r.closed).toBe(true);
    expect((await fetch(`${s.url}/api/health`)).status).toBe(200);
  });

  it('answers a request it cannot parse after the answer to the one before it in the same packet', async () => {
    // Pipelined behind a request it serves: that one's answer goes out first, whole (until 7 Dec 2026 the refusal
    // was written ahead of it), and of an unknown method the one named is the second request's.
    const pipelined = await exchange(
      port,
      'GET /api/health HTTP/1.1\r\nHost: x\r\n\r\nBREW /api/health HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    expect(pipelined.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(pipelined.text).toMatch(/HTTP\/1\.1 501 Not Implemented\r\n/);
    expect(pipelined.text).toContain('"method":"BREW"');
    expect(pipelined.text).toContain('"storage"');
    const unparsable = await exchange(
      port,
      'GET /api/health HTTP/1.1\r\nHost: x\r\n\r\nGET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
    );
    expect(unparsable.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*"storage"[^]*HTTP\/1\.1 400 Bad Request\r\n/);
    // The same for a CONNECT behind it.
    const connect = await exchange(
      port,
      'GET /api/health HTTP/1.1\r\nHost: x\r\n\r\nCONNECT pacs.example.org:443 HTTP/1.1\r\nHost: pacs.example.org:443\r\n\r\n',
    );
    expect(connect.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*"storage"[^]*HTTP\/1\.1 501 Not Implemented\r\n/);
  });

  it('answers a method it does not know with 501 naming the methods it has, and stays up', async () => {
    // Until 7 Dec 2026 a 400 'cannot be parsed as HTTP/1.1: HPE_INVALID_METHOD'.
    for (const [method, detail] of [
      [
        'BREW',
        'the method BREW is not implemented: this server takes GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (RFC 9110 §9.1)',
      ],
      [
        'get',
        'the method get is not implemented: this server takes GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (RFC 9110 §9.1); methods are case-sensitive: send GET',
      ],
    ] as const) {
      const r = await exchange(port, `${method} /api/health HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(r.text).toMatch(/^HTTP\/1\.1 501 Not Implemented\r\n/);
      expect(r.text).toMatch(/Content-Type: application\/problem\+json/);
      const body = JSON.parse(
        Buffer.from(r.text.slice(r.text.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8'),
      ) as Record<string, unknown>;
      expect(body).toMatchObject({ code: 'http.method-not-implemented', detail, method });
      expect(r.closed).toBe(true);
    }
    // Bytes that are no request line at all stay a 400.
    const garbage = await exchange(port, '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03');
    expect(garbage.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect((await fetch(`${s.url}/api/health`)).status).toBe(200);
  });

  it("answers OPTIONS * with the methods the server takes, and '*' with another method with 400 naming it", async () => {
    // Until 7 Dec 2026 both were a 400 'the request URL cannot be parsed'.
    const options = await exchange(port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(options.text).toMatch(/^HTTP\/1\.1 204 No Content\r\n/);
    expect(options.text).toMatch(/\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/);
    const get = await exchange(port, 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(get.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(
      JSON.parse(Buffer.from(get.text.slice(get.text.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8')),
    ).toMatchObject({
      code: 'http.bad-url',
      detail: "the request target '*' is for OPTIONS only, not GET (RFC 9112 §3.2.4)",
    });
  });

  it('answers a request line without an HTTP version (HTTP/0.9) with 505 problem+json, not as HTTP/1.0', async () => {
    // Until 7 Dec 2026 Node read the header lines after it all the same and the request was served.
    const r = await exchange(port, 'GET /api/health\r\nHost: a.example\r\n\r\n');
    expect(r.text).toMatch(/^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/);
    expect(r.text).toMatch(/Content-Type: application\/problem\+json/);
    const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as { code: string; detail: string };
    expect(body).toMatchObject({ code: 'http.version-not-supported' });
    expect(body.detail).toMatch(/^the request line has no HTTP version/);
    expect(r.closed).toBe(true);
    expect((await fetch(`${s.url}/api/health`)).status).toBe(200);
  });

  it('answers an HTTP/1.0 request with Transfer-Encoding with 400 and closes, storing nothing of its body', async () => {
    // Until 7 Dec 2026 Node read the body as chunked and served the request: a proxy reading it as HTTP/1.0 would
    // take that body for the next request.
    const study = uid(81);
    const { body, contentType } = stowBody([
      { bytes: makeInstance({ studyUid: study, seriesUid: uid(82), sopInstanceUid: uid(83) }) },
    ]);
    const r = await exchange(
      port,
      Buffer.concat([
        Buffer.from(
          `POST /dicom-web/studies HTTP/1.0\r\nAuthorization: Bearer ${s.token}\r\nContent-Type: ${contentType}\r\n` +
            `Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n`,
        ),
        body,
        Buffer.from('\r\n0\r\n\r\n'),
      ]),
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(r.text).toMatch(/Connection: close/);
    expect(
      JSON.parse(Buffer.from(r.text.slice(r.text.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8')),
    ).toMatchObject({
      code: 'http.bad-request',
      detail:
        'an HTTP/1.0 request cannot have Transfer-Encoding (RFC 9112 §6.1): send it as HTTP/1.1, or with Content-Length',
      header: 'Transfer-Encoding',
    });
    expect(r.closed).toBe(true);
    const found = await fetch(`${s.dicomweb}/studies?StudyInstanceUID=${study}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(await found.json()).toEqual([]);
  });

  it('answers a request line that says HTTP/2.0 with 505 problem+json, not as HTTP/1.1', async () => {
    // Until 7 Dec 2026 Node's parser took the version and the request was served, the answer as HTTP/1.1.
    const r = await exchange(port, 'GET /api/health HTTP/2.0\r\nHost: a.example\r\n\r\n');
    expect(r.text).toMatch(/^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/);
    expect(r.text).toMatch(/Content-Type: application\/problem\+json/);
    const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as { code: string; detail: string };
    expect(body).toMatchObject({
      code: 'http.version-not-supported',
      detail: 'the request line says HTTP/2.0, which this server does not speak: send HTTP/1.1 or HTTP/1.0',
    });
    expect(r.text).not.toContain('"storage"');
  });

  it('answers an HTTP/1.1 request without Host, with two Hosts or with a Host that is no host with 400 naming it', async () => {
    const problemOf = (text: string) =>
      JSON.parse(Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8')) as Record<
        string,
        unknown
      >;
    // Until 7 Dec 2026: Node's bare 400 with an empty body for the first, and the first Host taken of two.
    for (const [headers, detail] of [
      ['', 'an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)'],
      ['Host: a.example\r\nHost: b.example\r\n', 'the request has 2 Host headers: send one (RFC 9112 §3.2)'],
      ['Host: a.example/b?c\r\n', "the Host header 'a.example/b?c' is not a host and port (RFC 9112 §3.2)"],
    ] as const) {
      const r = await exchange(port, `GET /api/health HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`);
      expect(r.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(r.text).toMatch(/Content-Type: application\/problem\+json/);
      expect(problemOf(r.text)).toMatchObject({ code: 'http.bad-host', detail, header: 'Host' });
    }
    // HTTP/1.0 has no Host to require; a host with a port, or an IP literal, is a host.
    for (const request of [
      'GET /api/health HTTP/1.0\r\n\r\n',
      'GET /api/health HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n',
      'GET /api/health HTTP/1.1\r\nHost: pacs.example.org:443\r\nConnection: close\r\n\r\n',
    ])
      expect((await exchange(port, request)).text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });

  it('answers a request with two Authorization or two Content-Type headers with 400 naming it, and stores nothing', async () => {
    const problemOf = (text: string) =>
      JSON.parse(Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8')) as Record<
        string,
        unknown
      >;
    // Until 7 Dec 2026 the first line was taken and the second dropped: this read the studies with the first token.
    const twoTokens = await exchange(
      port,
      `GET /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\n` +
        'Authorization: Bearer someone-else\r\nConnection: close\r\n\r\n',
    );
    expect(twoTokens.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(problemOf(twoTokens.text)).toMatchObject({
      code: 'http.repeated-header',
      detail: 'the request has 2 Authorization headers: send one (RFC 9110 §5.3)',
      header: 'Authorization',
    });
    // A STOW-RS whose two Content-Types name different boundaries: until 7 Dec 2026 the first was read, and stored.
    const study = uid(61);
    const { body, contentType } = stowBody([
      { bytes: makeInstance({ studyUid: study, seriesUid: uid(62), sopInstanceUid: uid(63) }) },
    ]);
    const twoTypes = await exchange(
      port,
      Buffer.concat([
        Buffer.from(
          `POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\n` +
            `Content-Type: ${contentType}\r\nContent-Type: ${contentType.replace(/boundary=.*/, 'boundary=other')}\r\n` +
            `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
        ),
        body,
      ]),
    );
    expect(twoTypes.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(problemOf(twoTypes.text)).toMatchObject({ code: 'http.repeated-header', header: 'Content-Type' });
    const found = await fetch(`${s.dicomweb}/studies?StudyInstanceUID=${study}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(found.status).toBe(200);
    expect(await found.json()).toEqual([]);
  });

  it('answers a request with more than 2,000 header lines with 431 naming the limit, and reads every line of one with fewer', async () => {
    const problemOf = (text: string) =>
      JSON.parse(Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8')) as Record<
        string,
        unknown
      >;
    const request = (junk: number) =>
      `GET /dicom-web/studies HTTP/1.1\r\nHost: x\r\n${'X-Junk:\r\n'.repeat(junk)}` +
      `Authorization: Bearer ${s.token}\r\nConnection: close\r\n\r\n`;
    // Until 7 Dec 2026 Node kept about a thousand lines and dropped the rest: the token after them went unread (401).
    const many = await exchange(port, request(1500));
    expect(many.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const tooMany = await exchange(port, request(2000));
    expect(tooMany.text).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(tooMany.text).toMatch(/Content-Type: application\/problem\+json/);
    expect(problemOf(tooMany.text)).toMatchObject({
      code: 'http.too-many-headers',
      detail: 'the request has more than 2000 header lines: send fewer (RFC 6585 §5)',
      limit: 2000,
    });
    expect(tooMany.closed).toBe(true);
  });

  it('answers an admin API body that is not UTF-8 with 400 saying so, and keeps nothing of it', async () => {
    const auth = { Authorization: `Bearer ${s.token}`, 'Content-Type': 'application/json' };
    // Latin-1 bytes: until 7 Dec 2026 read as U+FFFD, and the token created with the name 'caf\uFFFD'.
    const latin1 = Buffer.concat([Buffer.from('{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const refused = await fetch(`${s.url}/api/auth/tokens`, { method: 'POST', headers: auth, body: latin1 });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(await refused.json()).toMatchObject({
      code: 'http.bad-json',
      detail: 'the request body is not UTF-8: send JSON encoded in UTF-8 (RFC 8259 §8.1)',
    });
    const tokens = (await (await fetch(`${s.url}/api/auth/tokens`, { headers: auth })).json()) as {
      name: string;
    }[];
    expect(tokens.map((t) => t.name)).not.toContain('caf\uFFFD');
    // The same name in UTF-8 is taken, and so is one after a byte order mark, which RFC 8259 §8.1 lets a reader skip.
    for (const body of [
      Buffer.from('{"name":"café"}'),
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"name":"café with BOM"}')]),
    ])
      expect((await fetch(`${s.url}/api/auth/tokens`, { method: 'POST', headers: auth, body })).status).toBe(
        201,
      );
  });
});
