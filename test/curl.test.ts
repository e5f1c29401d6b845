// DICOMweb with curl, the way an administrator scripts it (the README's commands).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { compress, nativeObject } from './support/compressed.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';

const run = promisify(execFile);

describe.each(backends())('curl against Custos on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  const study = uid(1);
  const series = uid(2);
  const sop = uid(3);
  const dcm = makeInstance({
    studyUid: study,
    seriesUid: series,
    sopInstanceUid: sop,
    patientId: 'CURL-1',
    patientName: 'Curl^Carla',
  });

  beforeAll(async () => {
    s = await startTestServer(backend);
    dir = await mkdtemp(join(tmpdir(), 'custos-curl-'));
  });
  afterAll(async () => {
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const curl = async (...args: string[]) => {
    const { stdout } = await run('curl', ['-sS', '-H', `Authorization: Bearer ${s.token}`, ...args], {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  };

  it('stores with STOW-RS, finds with QIDO-RS and retrieves with WADO-URI', async () => {
    const { body, contentType } = stowBody([{ bytes: dcm }]);
    await writeFile(join(dir, 'body.bin'), body);
    const stowOut = await curl(
      '-w',
      '\n%{http_code}',
      '-X',
      'POST',
      '-H',
      `Content-Type: ${contentType}`,
      '--data-binary',
      `@${join(dir, 'body.bin')}`,
      `${s.dicomweb}/studies`,
    );
    const lines = stowOut.toString().trim().split('\n');
    expect(lines.at(-1)).toBe('200');
    expect(lines.slice(0, -1).join('\n')).toContain(sop);

    const found = JSON.parse((await curl(`${s.dicomweb}/studies?PatientName=curl*`)).toString()) as Record<
      string,
      { Value: unknown[] }
    >[];
    expect(found.map((r) => r['0020000D']!.Value[0])).toEqual([study]);

    const out = join(dir, 'out.dcm');
    await curl(
      '-o',
      out,
      `${s.url}/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${sop}&contentType=application/dicom`,
    );
    expect(await readFile(out)).toEqual(dcm);
  });

  it('sends metadata and QIDO-RS answers gzip-compressed to a client that accepts gzip (curl --compressed)', async () => {
    // Stored by the test above; a viewer's browser always sends Accept-Encoding: gzip.
    const url = `${s.dicomweb}/studies/${study}/metadata`;
    const plain = await curl('-D', join(dir, 'plain.h'), url);
    const packed = await curl('--compressed', '-D', join(dir, 'packed.h'), '-w', '%{size_download}', url);
    const plainHeaders = (await readFile(join(dir, 'plain.h'), 'latin1')).toLowerCase();
    const packedHeaders = (await readFile(join(dir, 'packed.h'), 'latin1')).toLowerCase();
    expect(plainHeaders).not.toContain('content-encoding');
    expect(packedHeaders).toContain('content-encoding: gzip');
    expect(packedHeaders).toContain('vary: accept-encoding');
    // curl inflated the body and appended the bytes it received: the same JSON, fewer bytes on the wire.
    const json = plain.toString();
    expect(json.length).toBeGreaterThan(1024);
    const received = Number(packed.toString().slice(json.length));
    expect(packed.toString().slice(0, json.length)).toBe(json);
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(json.length / 2);
    const refused = await curl('-D', '-', '-o', '/dev/null', '-H', 'Accept-Encoding: gzip;q=0, br', url);
    expect(refused.toString().toLowerCase()).not.toContain('content-encoding');
    const qido = await curl(
      '-D',
      '-',
      '-o',
      '/dev/null',
      '-H',
      'Accept-Encoding: gzip',
      `${s.dicomweb}/instances?includefield=all`,
    );
    expect(qido.toString().toLowerCase()).toContain('content-encoding: gzip');
  });

  it('is told by every DICOMweb and WADO-URI answer that no cache may keep it (Cache-Control: no-store)', async () => {
    // Stored by the first test. Until 7 Dec 2026 these answers (patient data) had no Cache-Control at all.
    const instance = `${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}`;
    for (const url of [
      `${s.dicomweb}/studies?PatientName=curl*`,
      `${s.dicomweb}/studies/${study}/metadata`,
      instance,
      `${instance}/bulkdata/7FE00010`,
      `${instance}/rendered`,
      `${s.url}/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${sop}&contentType=application/dicom`,
    ]) {
      for (const method of ['GET', 'HEAD']) {
        const head = (
          await curl('-o', '/dev/null', '-D', '-', ...(method === 'HEAD' ? ['-I'] : []), url)
        ).toString();
        expect(head, `${method} ${url}`).toMatch(/^HTTP\/1\.1 200 /);
        expect(head, `${method} ${url}`).toMatch(/\r\nCache-Control: no-store\r\n/i);
      }
    }
  });

  it('reads in each bulk data part the Content-Location of the BulkDataURI it asked for (PS3.18 §10.4.3.3.5)', async () => {
    // The native object the first test stored, and a JPEG-LS one, whose pixel data goes one part per frame.
    const ids = { studyUid: uid(4), seriesUid: uid(5), sopInstanceUid: uid(6) };
    const { bytes: jls } = await compress(dir, 'jpegls', nativeObject('mono16', ids));
    const { body, contentType } = stowBody([{ bytes: jls }]);
    await writeFile(join(dir, 'jls.bin'), body);
    await curl(
      '-f',
      '-X',
      'POST',
      '-H',
      `Content-Type: ${contentType}`,
      '--data-binary',
      `@${join(dir, 'jls.bin')}`,
      `${s.dicomweb}/studies`,
    );
    for (const [st, frame] of [
      [study, undefined],
      [
        ids.studyUid,
        `${s.dicomweb}/studies/${ids.studyUid}/series/${ids.seriesUid}/instances/${ids.sopInstanceUid}/frames/1`,
      ],
    ] as const) {
      const [meta] = JSON.parse(
        (await curl('-f', `${s.dicomweb}/studies/${st}/metadata`)).toString(),
      ) as Record<string, { BulkDataURI?: string }>[];
      const uri = meta!['7FE00010']!.BulkDataURI!;
      // As stored, decoded (octet-stream's default syntax, for the JPEG-LS one), and as stored in its own type.
      for (const accept of [
        'multipart/related; type="application/octet-stream"; transfer-syntax=*',
        'multipart/related; type="application/octet-stream"',
        '*/*',
      ]) {
        const parts = (await curl('-f', '-H', `Accept: ${accept}`, uri)).toString('latin1');
        // Until 7 Dec 2026 the parts had Content-Type and Content-Length only.
        expect(parts, `${uri} ${accept}`).toContain(`\r\nContent-Location: ${frame ?? uri}\r\n`);
      }
    }
  });

  it('is told with a STOW-RS 415 what to send instead: Accept-Post for the media type, Accept-Encoding for a coding', async () => {
    // Until 7 Dec 2026 the 415 for a media type said it in its text alone.
    const { body, contentType } = stowBody([{ bytes: dcm }]);
    await writeFile(join(dir, 'refused.bin'), body);
    const head = async (...headers: string[]) =>
      (
        await curl(
          '-o',
          '/dev/null',
          '-D',
          '-',
          '-X',
          'POST',
          ...headers.flatMap((h) => ['-H', h]),
          '--data-binary',
          `@${join(dir, 'refused.bin')}`,
          `${s.dicomweb}/studies`,
        )
      ).toString();
    const accepted =
      'multipart/related; type="application/dicom", multipart/related; type="application/dicom+json", multipart/related; type="application/dicom+xml"';
    for (const type of [
      'application/json',
      contentType.replace('application/dicom', 'application/octet-stream'),
    ]) {
      const answer = await head(`Content-Type: ${type}`);
      expect(answer).toMatch(/^HTTP\/1\.1 415 /);
      expect(answer).toContain(`\r\nAccept-Post: ${accepted}\r\n`);
    }
    const coded = await head(`Content-Type: ${contentType}`, 'Content-Encoding: gzip');
    expect(coded).toMatch(/^HTTP\/1\.1 415 /);
    expect(coded).toMatch(/\r\nAccept-Encoding: identity\r\n/);
    expect(coded).not.toMatch(/Accept-Post/);
  });

  it('gets application/problem+json for a request without a token', async () => {
    const { stdout } = await run('curl', ['-sS', '-i', `${s.dicomweb}/studies`]);
    expect(stdout).toMatch(/^HTTP\/1\.1 401/);
    expect(stdout.toLowerCase()).toContain('content-type: application/problem+json');
  });
});
