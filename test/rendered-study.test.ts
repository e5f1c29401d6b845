// WADO-RS rendered study and series (PS3.18 §10.4.1.1.3): each instance's rendering as one part of a
// multipart/related answer. Until 7 Dec 2026 only instances and frames were rendered; a study or series was a 404.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import jpegJs from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { multipartParts } from './support/http.js';
import {
  ledgerHead,
  ledgerSince,
  postStow,
  startTestServer,
  type TestServer,
} from './support/test-server.js';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= require('xhr2');
const { api } = require('dicomweb-client') as {
  api: {
    DICOMwebClient: new (o: { url: string; headers: Record<string, string> }) => {
      // The library has no method of its own for a rendered study or series; OHIF reaches multipart rendered
      // answers through this one.
      _httpGetMultipartImage(
        url: string,
        mediaTypes: { mediaType: string }[],
        byteRange: false,
        params: false,
        rendered: boolean,
      ): Promise<ArrayBuffer[]>;
    };
  };
};

describe.each(backends())('WADO-RS rendered study and series on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  const auth = () => ({ Authorization: `Bearer ${s.token}` });
  const study = uid(1);
  const images = { seriesUid: uid(2), seriesNumber: 1 };
  const mixed = { seriesUid: uid(3), seriesNumber: 2 };
  const reports = { seriesUid: uid(4), seriesNumber: 3 };
  const imageSops = [uid(5), uid(6)];
  const mixedImage = uid(7);
  const mixedReport = uid(8);
  const onlyReport = uid(9);
  const sr = (
    x: { seriesUid: string; seriesNumber: number },
    sopInstanceUid: string,
    instanceNumber: number,
  ) =>
    makeInstance({
      studyUid: study,
      ...x,
      sopInstanceUid,
      instanceNumber,
      patientId: 'REND-1',
      modality: 'SR',
      sopClassUid: '1.2.840.10008.5.1.4.1.1.88.11',
      omit: [0x7fe00010, 0x00280010, 0x00280011, 0x00280100, 0x00280101, 0x00280102, 0x00280103, 0x00280002],
    });
  const instanceRendered = (seriesUid: string, sop: string) =>
    `${s.dicomweb}/studies/${study}/series/${seriesUid}/instances/${sop}/rendered`;
  /**
   * What a part shows, rendered alone: the instance, or for the one of two frames its first frame (its instance
   * resource is both frames, animated; until 7 Dec 2026 the part named the instance's).
   */
  const partRendered = (seriesUid: string, sop: string) =>
    sop === imageSops[1]
      ? `${s.dicomweb}/studies/${study}/series/${seriesUid}/instances/${sop}/frames/1/rendered`
      : instanceRendered(seriesUid, sop);

  beforeAll(async () => {
    s = await startTestServer(backend);
    dir = await mkdtemp(join(tmpdir(), 'custos-rendered-'));
    const stored = await postStow(s, [
      makeInstance({
        studyUid: study,
        ...images,
        sopInstanceUid: imageSops[0]!,
        instanceNumber: 1,
        patientId: 'REND-1',
        rows: 4,
        columns: 6,
      }),
      makeInstance({
        studyUid: study,
        ...images,
        sopInstanceUid: imageSops[1]!,
        instanceNumber: 2,
        patientId: 'REND-1',
        rows: 4,
        columns: 6,
        frames: 2,
      }),
      makeInstance({
        studyUid: study,
        ...mixed,
        sopInstanceUid: mixedImage,
        instanceNumber: 1,
        patientId: 'REND-1',
        rows: 8,
        columns: 5,
      }),
      sr(mixed, mixedReport, 2),
      sr(reports, onlyReport, 1),
    ]);
    expect(stored.status, await stored.clone().text()).toBe(200);
  });
  afterAll(async () => {
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves a study with curl, one JPEG part per instance, leaving out what has no pixel data with a 206 and a Warning', async () => {
    const head = await ledgerHead(s);
    const headers = join(dir, 'headers.txt');
    const bodyFile = join(dir, 'body.bin');
    const { stdout } = await run('curl', [
      '-sS',
      '-H',
      `Authorization: Bearer ${s.token}`,
      '-D',
      headers,
      '-o',
      bodyFile,
      '-w',
      '%{http_code} %{content_type}',
      `${s.dicomweb}/studies/${study}/rendered`,
    ]);
    const [code, ...type] = stdout.split(' ');
    expect(code).toBe('206');
    expect(type.join(' ')).toMatch(/^multipart\/related; type="image\/jpeg"; boundary=/);
    const warning = (await readFile(headers, 'latin1')).split('\r\n').find((l) => /^warning:/i.test(l));
    expect(warning).toContain(`2 of 5 instances left out`);
    expect(warning).toContain(`instance ${mixedReport}: the instance has no pixel data`);
    expect(warning).toContain(onlyReport);
    const parts = await multipartParts(
      new Response(await readFile(bodyFile), { headers: { 'content-type': type.join(' ') } }),
    );
    // By series, then instance number; each part says which instance it is and is that instance's rendering.
    const expected: [string, string, number, number][] = [
      [images.seriesUid, imageSops[0]!, 6, 4],
      [images.seriesUid, imageSops[1]!, 6, 4],
      [mixed.seriesUid, mixedImage, 5, 8],
    ];
    expected.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    expect(parts.map((p) => p.headers['content-location'])).toEqual(
      expected.map(([se, sop]) => partRendered(se, sop)),
    );
    for (const [i, [se, sop, width, height]] of expected.entries()) {
      expect(parts[i]!.contentType).toBe('image/jpeg');
      const img = jpegJs.decode(parts[i]!.body);
      expect([img.width, img.height], sop).toEqual([width, height]);
      const alone = await fetch(partRendered(se, sop), { headers: auth() });
      expect(parts[i]!.body.equals(Buffer.from(await alone.arrayBuffer())), sop).toBe(true);
    }
    // One access decided and recorded for the study, and what was left out recorded as not served.
    const records = (await ledgerSince(s, head)).filter((r) => r.action === 'view-pixels');
    expect(records[0]).toMatchObject({
      outcome: 'success',
      studyUid: study,
      objects: { what: 'wado-rs rendered', count: 5 },
    });
    const failed = records.find((r) => r.outcome === 'failure')!;
    expect(failed.objects).toMatchObject({ what: 'wado-rs rendered', count: 2 });
    expect([...(failed.objects!.sopInstanceUids as string[])].sort()).toEqual(
      [mixedReport, onlyReport].sort(),
    );
  });

  it("serves a series with dicomweb-client, PNG when asked, and takes the instance resource's parameters", async () => {
    const client = new api.DICOMwebClient({ url: s.dicomweb, headers: auth() });
    const url = `${s.dicomweb}/studies/${study}/series/${images.seriesUid}/rendered`;
    const jpegs = await client._httpGetMultipartImage(url, [{ mediaType: 'image/jpeg' }], false, false, true);
    expect(jpegs.map((b) => jpegJs.decode(Buffer.from(b))).map((i) => [i.width, i.height])).toEqual([
      [6, 4],
      [6, 4],
    ]);
    const res = await fetch(`${url}?viewport=3,2&window=100,50`, {
      headers: { ...auth(), Accept: 'multipart/related; type="image/png"' },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get('warning')).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/^multipart\/related; type="image\/png"/);
    const parts = await multipartParts(res);
    expect(parts.length).toBe(2);
    for (const [i, p] of parts.entries()) {
      expect(p.contentType).toBe('image/png');
      const pnm = execFileSync('pngtopnm', { input: p.body }).toString('latin1', 0, 20);
      expect(pnm).toMatch(/^P[56]\s+3\s+2\s/);
      const alone = await fetch(
        `${partRendered(images.seriesUid, imageSops[i]!)}?viewport=3,2&window=100,50`,
        {
          headers: { ...auth(), Accept: 'image/png' },
        },
      );
      expect(p.body.equals(Buffer.from(await alone.arrayBuffer()))).toBe(true);
    }
    // The parts' type alone in Accept is taken too.
    const gif = await fetch(url, { headers: { ...auth(), Accept: 'image/gif' } });
    expect(gif.status).toBe(200);
    expect(gif.headers.get('content-type')).toMatch(/^multipart\/related; type="image\/gif"/);
    expect((await multipartParts(gif)).map((p) => p.contentType)).toEqual(['image/gif', 'image/gif']);
  });

  it('refuses an unsupported media type (406) and a bad parameter (400) before opening anything', async () => {
    const url = `${s.dicomweb}/studies/${study}/rendered`;
    const head = await ledgerHead(s);
    for (const accept of ['multipart/related; type="application/dicom"', 'image/tiff', 'application/dicom']) {
      const res = await fetch(url, { headers: { ...auth(), Accept: accept } });
      expect(res.status, accept).toBe(406);
      expect(await res.json()).toMatchObject({
        code: 'http.not-acceptable',
        detail: expect.stringContaining('image/jpeg, image/png or image/gif parts'),
      });
    }
    const bad = await fetch(`${url}?quality=500`, { headers: auth() });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'wado.bad-parameter', parameter: 'quality' });
    expect((await ledgerSince(s, head)).filter((r) => r.action === 'view-pixels')).toEqual([]);
  });

  it('answers a series with nothing to render with the error an instance gets, and an unknown one with 404', async () => {
    const none = await fetch(`${s.dicomweb}/studies/${study}/series/${reports.seriesUid}/rendered`, {
      headers: auth(),
    });
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({
      code: 'wado.frame-not-found',
      detail: `none of the 1 instances here can be rendered: instance ${onlyReport}: the instance has no pixel data`,
    });
    const unknown = await fetch(`${s.dicomweb}/studies/${study}/series/${uid(99)}/rendered`, {
      headers: auth(),
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'wado.not-found' });
  });

  it('leaves out an instance the fixity job found damaged, as a study retrieve does, and refuses one left alone', async () => {
    const seriesUid = uid(10);
    const [sound, damaged] = [uid(11), uid(12)];
    const stored = await postStow(
      s,
      [sound, damaged].map((sop, i) =>
        makeInstance({
          studyUid: study,
          seriesUid,
          sopInstanceUid: sop,
          instanceNumber: i + 1,
          patientId: 'REND-1',
        }),
      ),
    );
    expect(stored.status).toBe(200);
    const mark = (sop: string) =>
      s.app.index.db
        .updateTable('instances')
        .set({ fixity_status: 'corrupt' })
        .where('sop_instance_uid', '=', sop)
        .execute();
    await mark(damaged);
    const url = `${s.dicomweb}/studies/${study}/series/${seriesUid}/rendered`;
    const res = await fetch(url, { headers: auth() });
    expect(res.status, await res.clone().text()).toBe(206);
    expect(res.headers.get('warning')).toContain(
      `1 of 2 instances left out: instance ${damaged} failed the fixity check`,
    );
    const parts = await multipartParts(res);
    expect(parts.map((p) => p.headers['content-location'])).toEqual([instanceRendered(seriesUid, sound)]);
    await mark(sound);
    const none = await fetch(url, { headers: auth() });
    expect(none.status).toBe(500);
    expect(await none.json()).toMatchObject({ code: 'object.corrupt' });
  });

  it('refuses a caller without a token, as every data route', async () => {
    const res = await fetch(`${s.dicomweb}/studies/${study}/rendered`);
    expect(res.status).toBe(401);
  });
});
