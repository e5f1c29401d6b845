// Oversized input: a precise error, nothing stored half-way, the server still up.
import { request } from 'node:http';
import { connect } from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';

type Json = Record<string, { vr: string; Value?: unknown[] }>;

describe.each(backends())('STOW-RS limits on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend, { limits: { maxRequestBytes: 200_000, maxInstanceBytes: 50_000 } });
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
  });

  const post = (body: Buffer, contentType: string, chunked = false) =>
    new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
      const url = new URL(`${s.dicomweb}/studies`);
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            Authorization: `Bearer ${s.token}`,
            'Content-Type': contentType,
            ...(chunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': body.length }),
          },
        },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  it('refuses a body whose Content-Length exceeds the limit with 413 problem+json', async () => {
    const { body, contentType } = stowBody([{ bytes: Buffer.alloc(250_000) }]);
    const res = await post(body, contentType);
    expect(res.status).toBe(413);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
    expect(JSON.parse(res.body).code).toBe('stow.too-large');
  });

  it('fails only the instance over the size limit (0xA700) and stores the others', async () => {
    const small = uid(1);
    const big = makeInstance({
      studyUid: uid(2),
      seriesUid: uid(3),
      sopInstanceUid: uid(4),
      rows: 200,
      columns: 200,
    });
    expect(big.length).toBeGreaterThan(50_000);
    const { body, contentType } = stowBody([
      { bytes: big },
      { bytes: makeInstance({ studyUid: uid(5), seriesUid: uid(6), sopInstanceUid: small }) },
    ]);
    const res = await post(body, contentType, true);
    expect(res.status).toBe(202);
    const json = JSON.parse(res.body) as Json;
    expect((json['00081198']!.Value as Json[])[0]!['00081197']!.Value).toEqual([0xa700]);
    expect((json['00081199']!.Value as Json[]).map((i) => i['00081155']!.Value![0])).toEqual([small]);
  });

  it('stops a chunked body that grows past the request limit and keeps nothing of it', async () => {
    const parts = Array.from({ length: 6 }, (_, i) => ({
      bytes: makeInstance({
        studyUid: uid(10 + i),
        seriesUid: uid(20 + i),
        sopInstanceUid: uid(30 + i),
        rows: 150,
        columns: 150,
      }),
    }));
    const { body, contentType } = stowBody(parts);
    expect(body.length).toBeGreaterThan(200_000);
    const res = await post(body, contentType, true);
    // The instances that arrived whole before the limit are stored; the one cut off is reported, not kept.
    expect([202, 409]).toContain(res.status);
    expect(res.headers.warning).toMatch(/exceeds the 200000-byte limit/);
    const json = JSON.parse(res.body) as Json;
    const stored = ((json['00081199']?.Value ?? []) as Json[]).length;
    expect(stored).toBeLessThan(6);
    const rows = await s.app.index.db.selectFrom('instances').select('blob_id').execute();
    const onDisk: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(join(d, e.name));
        else onDisk.push(e.name);
      }
    };
    await walk(join(s.dataDir, 'blobs'));
    // Every blob on disk is indexed, every indexed blob is on disk: nothing half-stored.
    expect(onDisk.sort()).toEqual(rows.map((r) => r.blob_id).sort());
    const health = await fetch(`${s.url}/api/health`);
    expect(health.status).toBe(200);
  });

  it('answers a chunked body past the limit with Connection: close, and a client still sending reads it whole', async () => {
    const parts = Array.from({ length: 12 }, (_, i) => ({
      bytes: makeInstance({
        studyUid: uid(40 + i),
        seriesUid: uid(60 + i),
        sopInstanceUid: uid(80 + i),
        rows: 150,
        columns: 150,
      }),
    }));
    const { body, contentType } = stowBody(parts);
    const socket = connect(Number(new URL(s.url).port), '127.0.0.1');
    let answer = '';
    let reset = false;
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.on('error', () => (reset = true));
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.write(
      `POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\n` +
        `Content-Type: ${contentType}\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    // The client sends on, in 16 KiB chunks, as a sender that reads only once it has sent everything would.
    let at = 0;
    const pump = setInterval(() => {
      if (!socket.writable || at >= body.length) return;
      const chunk = body.subarray(at, at + 16 * 1024);
      at += chunk.length;
      socket.write(`${chunk.length.toString(16)}\r\n`);
      socket.write(chunk);
      socket.write('\r\n');
    }, 2);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
    clearInterval(pump);
    socket.destroy();
    // Until 6 Dec 2026: keep-alive, then the socket destroyed while the client still sent (a reset).
    expect(answer).toMatch(/^HTTP\/1\.1 (202|409) /);
    expect(answer).toMatch(/\r\nConnection: close\r\n/i);
    const [head, text] = answer.split('\r\n\r\n', 2) as [string, string];
    expect(Buffer.byteLength(text, 'latin1')).toBe(Number(/content-length: (\d+)/i.exec(head)?.[1]));
    expect(JSON.parse(text)).toBeTypeOf('object');
    expect(reset).toBe(false);
  });
});
