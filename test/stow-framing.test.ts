// STOW-RS bodies whose multipart framing or part headers are wrong: a bad part fails alone when the next boundary
// can still be found, and a request cut short says where, never answering 200 or an empty `{}`. Raw sockets where
// fetch() would not send the request as written.
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { exchange } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';

type Json = Record<string, { vr: string; Value?: unknown[] }>;

const BOUNDARY = 'framing-test-b';
const CONTENT_TYPE = `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`;

/** One part as it goes on the wire: its header lines (CRLF-ended unless given whole) and its bytes. */
interface WirePart {
  head?: string;
  bytes: Buffer;
}

/** A multipart/related body written by hand, so that a part's headers can be as wrong as a test needs. */
function wireBody(parts: WirePart[], close = true): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    out.push(
      Buffer.from(`--${BOUNDARY}${p.head ?? '\r\nContent-Type: application/dicom\r\n\r\n'}`, 'latin1'),
    );
    out.push(p.bytes, Buffer.from('\r\n'));
  }
  if (close) out.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(out);
}

const sequence = (body: Json, tag: string) => (body[tag]?.Value ?? []) as Json[];
const sops = (items: Json[]) => items.map((i) => i['00081155']?.Value?.[0]);
const reasons = (items: Json[]) => items.map((i) => i['00081197']?.Value?.[0]);

describe.each(backends())('STOW-RS framing and part headers on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend);
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
  });

  const instance = () => {
    const sop = uid(1);
    return { sop, bytes: makeInstance({ studyUid: uid(2), seriesUid: uid(3), sopInstanceUid: sop }) };
  };
  const post = (body: Buffer, headers: Record<string, string> = {}) =>
    fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': CONTENT_TYPE, ...headers },
      body,
    });
  const stored = async (sop: string) => {
    const res = await fetch(`${s.dicomweb}/instances?SOPInstanceUID=${sop}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    return ((await res.json()) as unknown[]).length === 1;
  };

  const badHeads: [string, string][] = [
    ['a Content-Type that cannot be parsed', '\r\nContent-Type: application/dicom; x="u\r\n\r\n'],
    [
      'two Content-Type headers',
      '\r\nContent-Type: application/dicom\r\nContent-Type: application/dicom\r\n\r\n',
    ],
    ['a header line with a bad name', '\r\nContent-Type: application/dicom\r\nBad Header: x\r\n\r\n'],
    ['headers over 16 KiB', `\r\nContent-Type: application/dicom\r\nX-Long: ${'a'.repeat(20_000)}\r\n\r\n`],
    ['text after the boundary on the delimiter line', ' junk\r\nContent-Type: application/dicom\r\n\r\n'],
    ['headers ended by a bare LF', '\nContent-Type: application/dicom\n\n'],
    // Until 7 Dec 2026 the first transfer-syntax counted and the part was stored.
    [
      'a Content-Type parameter given twice',
      '\r\nContent-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1; Transfer-Syntax=1.2.840.10008.1.2.4.50\r\n\r\n',
    ],
  ];

  it.each(badHeads)(
    'fails a part with %s alone (0xC000) and stores the parts before and after it (202)',
    async (_what, head) => {
      const [a, b, c] = [instance(), instance(), instance()];
      const res = await post(wireBody([{ bytes: a.bytes }, { head, bytes: b.bytes }, { bytes: c.bytes }]));
      const body = (await res.json()) as Json;
      // Until 6 Dec 2026: 200 with a only; b and c neither stored nor in either sequence.
      expect(res.status, JSON.stringify(body)).toBe(202);
      expect(sops(sequence(body, '00081199'))).toEqual([a.sop, c.sop]);
      const failed = sequence(body, '00081198');
      expect(failed).toEqual([{ '00081197': { vr: 'US', Value: [0xc000] } }]);
      expect(res.headers.get('warning')).toMatch(/part 2/);
      expect([await stored(a.sop), await stored(b.sop), await stored(c.sop)]).toEqual([true, false, true]);
    },
  );

  it('stores a part whose transfer-syntax parameter disagrees with its file meta as the file meta says, with a warning (PS3.18 §8.7.9)', async () => {
    // Until 7 Dec 2026 the disagreement went unsaid: 200, no WarningReason, no Warning.
    const [labelled, agreeing] = [instance(), instance()];
    const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
    const EXPLICIT_LE = '1.2.840.10008.1.2.1';
    const res = await post(
      wireBody([
        {
          head: `\r\nContent-Type: application/dicom; transfer-syntax=${JPEG_BASELINE}\r\n\r\n`,
          bytes: labelled.bytes,
        },
        {
          head: `\r\nContent-Type: application/dicom; transfer-syntax="${EXPLICIT_LE}"\r\n\r\n`,
          bytes: agreeing.bytes,
        },
      ]),
    );
    const body = (await res.json()) as Json;
    expect(res.status).toBe(202);
    const referenced = sequence(body, '00081199');
    expect(sops(referenced)).toEqual([labelled.sop, agreeing.sop]);
    // B000: stored, with something the sender should hear of; the part that agrees has no WarningReason.
    expect(referenced.map((i) => i['00081196']?.Value?.[0])).toEqual([0xb000, undefined]);
    expect(res.headers.get('warning')).toContain(
      `${labelled.sop}: the part's Content-Type names transfer-syntax=${JPEG_BASELINE}, but its File Meta Information Transfer Syntax UID (0002,0010) is ${EXPLICIT_LE}: read and stored as ${EXPLICIT_LE}`,
    );
    expect(res.headers.get('warning')).not.toContain(agreeing.sop);
    const row = await s.app.index.db
      .selectFrom('instances')
      .select('transfer_syntax_uid')
      .where('sop_instance_uid', '=', labelled.sop)
      .executeTakeFirstOrThrow();
    expect(row.transfer_syntax_uid).toBe(EXPLICIT_LE);
  });

  it('fails a base64 or quoted-printable part naming its Content-Transfer-Encoding, and stores the others', async () => {
    for (const coding of ['base64', 'quoted-printable']) {
      const [a, b, c] = [instance(), instance(), instance()];
      const head = `\r\nContent-Type: application/dicom\r\nContent-Transfer-Encoding: ${coding}\r\n\r\n`;
      const res = await post(
        wireBody([
          { bytes: a.bytes },
          { head, bytes: Buffer.from(b.bytes.toString('base64')) },
          {
            head: '\r\nContent-Type: application/dicom\r\nContent-Transfer-Encoding: binary\r\n\r\n',
            bytes: c.bytes,
          },
        ]),
      );
      const body = (await res.json()) as Json;
      expect(res.status).toBe(202);
      expect(sops(sequence(body, '00081199'))).toEqual([a.sop, c.sop]);
      expect(reasons(sequence(body, '00081198'))).toEqual([0xc000]);
      // Until 6 Dec 2026: "expected 'DICM' … found 'AAAA'".
      expect(res.headers.get('warning')).toContain(
        `part 2 has Content-Transfer-Encoding ${coding}, which is not supported`,
      );
    }
  });

  const storeFailures = async () =>
    (
      await s.app.auditStore.search({ action: ['store'], outcome: 'failure', order: 'asc', limit: 10_000 })
    ).filter((r) => (r.objects as { channel?: string } | undefined)?.channel === 'stow-rs');

  it('records a store failure for each part refused before parsing, and one for a request refused whole', async () => {
    const before = (await storeFailures()).length;
    const a = instance();
    const res = await post(
      wireBody([
        { head: '\r\nContent-Type: text/plain\r\n\r\n', bytes: Buffer.from('hello') },
        { head: badHeads[2]![1], bytes: instance().bytes },
        { bytes: a.bytes },
      ]),
    );
    expect(res.status).toBe(202);
    const refused = await post(Buffer.from('{}'), { 'Content-Type': 'application/json' });
    expect(refused.status).toBe(415);
    const coded = await post(gzipSync(wireBody([{ bytes: instance().bytes }])), {
      'Content-Encoding': 'gzip',
    });
    expect(coded.status).toBe(415);
    const records = (await storeFailures()).slice(before);
    // Until 6 Dec 2026 none of these four left a record.
    expect(records.map((r) => (r.detail as { code: string }).code)).toEqual([
      'stow.unsupported-media-type',
      'multipart.bad-header',
      'stow.unsupported-media-type',
      'stow.unsupported-content-encoding',
    ]);
    expect((records[1]!.detail as { reason: string }).reason).toMatch(/part 2/);
  });

  it("names the part, and the instance when known, in each failed part's Warning, so that equal texts stay apart", async () => {
    const junk = Buffer.from('not dicom at all');
    const res = await post(wireBody([{ bytes: junk }, { bytes: junk }]));
    expect(res.status).toBe(409);
    const warning = res.headers.get('warning') ?? '';
    // Until 6 Dec 2026 the two identical texts were one Warning, naming neither part.
    expect(warning).toMatch(/"part 1: /);
    expect(warning).toMatch(/"part 2: /);
    const a = instance();
    const other = await fetch(`${s.dicomweb}/studies/${uid(9)}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': CONTENT_TYPE },
      body: wireBody([{ bytes: a.bytes }]),
    });
    expect(other.status).toBe(409);
    expect(other.headers.get('warning')).toContain(`"part 1 (${a.sop}): `);
  });

  it('lists HEAD in Allow, answers OPTIONS without Origin with the methods, and names a leading zero in a UID', async () => {
    const put = await fetch(`${s.dicomweb}/studies`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(put.status).toBe(405);
    // Until 6 Dec 2026 'POST, GET', though HEAD works.
    expect(put.headers.get('allow')).toBe('POST, GET, HEAD');
    const options = await fetch(`${s.dicomweb}/studies`, { method: 'OPTIONS' });
    // Until 6 Dec 2026 a 405 without an Origin header.
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')).toBe('POST, GET, HEAD, OPTIONS');
    const bad = await fetch(`${s.dicomweb}/studies/1.2.03`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': CONTENT_TYPE },
      body: wireBody([{ bytes: instance().bytes }]),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { detail: string }).detail).toContain(
      "no leading zero in a component: '03'",
    );
  });

  it('answers 409 with the failed part, not `{}`, when the only part has malformed headers', async () => {
    const a = instance();
    const res = await post(wireBody([{ head: badHeads[0]![1], bytes: a.bytes }]));
    expect(res.status).toBe(409);
    const body = (await res.json()) as Json;
    expect(reasons(sequence(body, '00081198'))).toEqual([0xc000]);
    expect(res.headers.get('warning')).toMatch(
      /part 1: Content-Type 'application\/dicom; x='u' is not a valid/,
    );
  });

  it('says where the request was cut when the body ends inside the headers of a part (202, never 200)', async () => {
    const a = instance();
    const body = Buffer.concat([
      wireBody([{ bytes: a.bytes }], false),
      Buffer.from(`--${BOUNDARY}\r\nContent-Type: appl`),
    ]);
    const res = await post(body);
    const json = (await res.json()) as Json;
    expect(res.status, JSON.stringify(json)).toBe(202);
    expect(sops(sequence(json, '00081199'))).toEqual([a.sop]);
    expect(reasons(sequence(json, '00081198'))).toEqual([0xc000]);
    expect(res.headers.get('warning')).toMatch(/the request body ended in the headers of part 2/);
  });

  it('answers 409 naming the cut when the body ends inside the headers of the part after a refused one', async () => {
    const a = instance();
    const body = Buffer.concat([
      wireBody([{ head: badHeads[2]![1], bytes: a.bytes }], false),
      Buffer.from(`--${BOUNDARY}\r\nContent-Type: appl`),
    ]);
    const res = await post(body);
    const json = (await res.json()) as Json;
    expect(res.status).toBe(409);
    expect(reasons(sequence(json, '00081198'))).toEqual([0xc000, 0xc000]);
    expect(res.headers.get('warning')).toMatch(/the request body ended in the headers of part 2/);
  });

  const rawPost = (body: Buffer) =>
    Buffer.concat([
      Buffer.from(
        `POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\n` +
          `Content-Type: ${CONTENT_TYPE}\r\nContent-Length: ${body.length}\r\n\r\n`,
      ),
      body,
    ]);
  const health = Buffer.from('GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n');

  it('closes the connection after the answer when it left a long epilogue unread, so the next request is not stuck', async () => {
    const a = instance();
    const body = Buffer.concat([wireBody([{ bytes: a.bytes }]), Buffer.alloc(300 * 1024, 'e')]);
    const r = await exchange(Number(new URL(s.url).port), Buffer.concat([rawPost(body), health]), 6000);
    // Until 6 Dec 2026 the answer said keep-alive and the request after it waited for the inactivity timeout.
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.text).toMatch(/\r\nConnection: close\r\n/i);
    expect(r.closed).toBe(true);
  });

  it('keeps the connection after reading a short epilogue, and answers the next request on it', async () => {
    const a = instance();
    const body = Buffer.concat([wireBody([{ bytes: a.bytes }]), Buffer.from('a short epilogue\r\n')]);
    const r = await exchange(
      Number(new URL(s.url).port),
      Buffer.concat(
        [rawPost(body), health.toString().replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')].map((x) =>
          Buffer.from(x),
        ),
      ),
      6000,
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.text).toContain('"storage"');
    expect(r.closed).toBe(true);
  });

  it('refuses a request whose Content-Type gives type or boundary twice with 400 naming the parameter, storing nothing', async () => {
    const before = (await storeFailures()).length;
    for (const [param, contentType] of [
      [
        'type',
        `multipart/related; type="application/dicom"; type="application/dicom+json"; boundary=${BOUNDARY}`,
      ],
      ['boundary', `multipart/related; type="application/dicom"; boundary=other-b; boundary=${BOUNDARY}`],
    ] as const) {
      const a = instance();
      const res = await post(wireBody([{ bytes: a.bytes }]), { 'Content-Type': contentType });
      // Until 7 Dec 2026 the first counted: the first request was stored as application/dicom (200), the second
      // was a 400 saying the body "does not contain the multipart boundary 'other-b'".
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
      const problem = (await res.json()) as { code: string; detail: string };
      expect(problem.code).toBe('http.bad-content-type');
      expect(problem.detail).toContain(`the parameter '${param}' is given more than once`);
      expect(await stored(a.sop)).toBe(false);
    }
    const records = (await storeFailures()).slice(before);
    expect(records.map((r) => (r.detail as { code: string }).code)).toEqual([
      'http.bad-content-type',
      'http.bad-content-type',
    ]);
  });

  it('refuses a content coding with 415 naming it and Accept-Encoding: identity, storing nothing', async () => {
    for (const [coding, encode] of [
      ['gzip', gzipSync],
      ['br', (b: Buffer) => b],
    ] as const) {
      const a = instance();
      const res = await post(encode(wireBody([{ bytes: a.bytes }])), { 'Content-Encoding': coding });
      // Until 6 Dec 2026: gzip a 400 "does not contain the multipart boundary", br on a plain body stored (200).
      expect(res.status).toBe(415);
      expect(res.headers.get('accept-encoding')).toBe('identity');
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
      expect(((await res.json()) as { detail: string }).detail).toContain(`Content-Encoding '${coding}'`);
      expect(await stored(a.sop)).toBe(false);
    }
    const a = instance();
    const plain = await post(wireBody([{ bytes: a.bytes }]), { 'Content-Encoding': 'identity' });
    expect(plain.status).toBe(200);
  });

  it('answers a transfer coding other than chunked with 501 problem+json', async () => {
    const a = instance();
    const body = wireBody([{ bytes: a.bytes }]);
    const r = await exchange(
      Number(new URL(s.url).port),
      Buffer.concat([
        Buffer.from(
          `POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\n` +
            `Content-Type: ${CONTENT_TYPE}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${body.length.toString(16)}\r\n`,
        ),
        body,
        Buffer.from('\r\n0\r\n\r\n'),
      ]),
      6000,
    );
    // Until 6 Dec 2026 the gzip coding was ignored and the body read as plain (here: stored, 200).
    expect(r.text).toMatch(/^HTTP\/1\.1 501 /);
    expect(r.text).toMatch(/application\/problem\+json/);
    expect(r.text).toContain('http.unsupported-transfer-coding');
    expect(await stored(a.sop)).toBe(false);
  });

  it('answers a client that half-closes mid-upload as a body cut short: 202, the whole parts stored', async () => {
    const [a, b, c] = [instance(), instance(), instance()];
    const body = wireBody([{ bytes: a.bytes }, { bytes: b.bytes }, { bytes: c.bytes }]);
    const request = rawPost(body);
    const socket = connect(Number(new URL(s.url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    // Two whole parts and half the third, then shutdown(SHUT_WR).
    socket.end(request.subarray(0, request.length - (c.bytes.length >> 1)));
    await Promise.race([closed, new Promise((r) => setTimeout(r, 6000))]);
    socket.destroy();
    // Until 6 Dec 2026: 400 http.bad-request "HPE_INVALID_EOF_STATE", though a and b were stored.
    expect(answer).toMatch(/^HTTP\/1\.1 202 /);
    const json = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Json;
    expect(sops(sequence(json, '00081199'))).toEqual([a.sop, b.sop]);
    expect(reasons(sequence(json, '00081198'))).toEqual([0xc000]);
    expect([await stored(a.sop), await stored(b.sop), await stored(c.sop)]).toEqual([true, true, false]);
  });

  it('answers 400 problem+json naming the cut when the body ends inside the headers of the first part', async () => {
    const res = await post(Buffer.from(`--${BOUNDARY}\r\nContent-Type: appl`));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/ended in the headers of part 1/);
  });
});
