// Available Transfer Syntax UID (0008,3002): the transfer syntax an instance is stored in, which a client asks of an
// instance-level query to pick what it can decode without a retrieve (wsidicom asks QIDO-RS for it by includefield;
// OHIF's video and PDF handlers read it from the instance's attributes; dcm4chee answers it at the instance level).
// Until 7 Dec 2026 QIDO-RS left it out and C-FIND answered it at zero length, as if the instance had none; WADO-RS
// metadata, where OHIF reads it from, left it out too.
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { compress, nativeObject } from './support/compressed.js';
import { findscuTo } from './support/dcmtk.js';
import { uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const require = createRequire(import.meta.url);
(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= require('xhr2');
const { api } = require('dicomweb-client') as {
  api: {
    DICOMwebClient: new (o: { url: string; headers: Record<string, string> }) => {
      searchForInstances(o: {
        studyInstanceUID: string;
        queryParams?: Record<string, string>;
      }): Promise<Record<string, { vr?: string; Value?: unknown[] }>[]>;
      retrieveSeriesMetadata(o: {
        studyInstanceUID: string;
        seriesInstanceUID: string;
      }): Promise<Record<string, { vr?: string; Value?: unknown[] }>[]>;
    };
  };
};

const EXPLICIT = '1.2.840.10008.1.2.1';
const JPEG_LS = '1.2.840.10008.1.2.4.80';

describe.each(backends())('Available Transfer Syntax UID of an instance, on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  const studyUid = uid(1);
  const seriesUid = uid(2);
  const nativeUid = uid(3);
  let jlsUid: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-ats-'));
    s = await startTestServer(backend);
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'ATSSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    const native = nativeObject('mono16', { studyUid, seriesUid, sopInstanceUid: nativeUid });
    const jls = await compress(
      dir,
      'jpegls',
      nativeObject('mono16', { studyUid, seriesUid, sopInstanceUid: uid(3) }),
    );
    jlsUid = jls.sopInstanceUid;
    const stored = await postStow(s, [native, jls.bytes]);
    expect(stored.status, await stored.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s, () => rm(dir, { recursive: true, force: true }))).toEqual([]);
  });

  it('answers it by QIDO-RS when includefield asks for it, by keyword or tag, and with includefield=all', async () => {
    const client = new api.DICOMwebClient({
      url: s.dicomweb,
      headers: { Authorization: `Bearer ${s.token}` },
    });
    for (const includefield of ['AvailableTransferSyntaxUID', '00083002', 'all']) {
      const found = await client.searchForInstances({
        studyInstanceUID: studyUid,
        queryParams: { includefield },
      });
      const bySop = Object.fromEntries(found.map((i) => [i['00080018']!.Value![0], i['00083002']] as const));
      expect(bySop, includefield).toEqual({
        [nativeUid]: { vr: 'UI', Value: [EXPLICIT] },
        [jlsUid]: { vr: 'UI', Value: [JPEG_LS] },
      });
    }
  });

  it('leaves it out when not asked for (it is no default return attribute)', async () => {
    const client = new api.DICOMwebClient({
      url: s.dicomweb,
      headers: { Authorization: `Bearer ${s.token}` },
    });
    const found = await client.searchForInstances({ studyInstanceUID: studyUid });
    expect(found).toHaveLength(2);
    for (const i of found) expect(i['00083002']).toBeUndefined();
  });

  it('gives it in WADO-RS metadata, as OHIF reads the series metadata, in tag order', async () => {
    const client = new api.DICOMwebClient({
      url: s.dicomweb,
      headers: { Authorization: `Bearer ${s.token}` },
    });
    const meta = await client.retrieveSeriesMetadata({
      studyInstanceUID: studyUid,
      seriesInstanceUID: seriesUid,
    });
    const bySop = Object.fromEntries(meta.map((i) => [i['00080018']!.Value![0], i['00083002']] as const));
    expect(bySop).toEqual({
      [nativeUid]: { vr: 'UI', Value: [EXPLICIT] },
      [jlsUid]: { vr: 'UI', Value: [JPEG_LS] },
    });
    for (const i of meta) expect(Object.keys(i)).toEqual(Object.keys(i).sort());
  });

  it('answers it to findscu at IMAGE level with the stored transfer syntax', async () => {
    const r = await findscuTo(
      s.dicomPort,
      'ATSSCU',
      'QueryRetrieveLevel=IMAGE',
      `StudyInstanceUID=${studyUid}`,
      'SOPInstanceUID',
      'AvailableTransferSyntaxUID',
    );
    expect(r.code, r.stderr).toBe(0);
    const answers = r.stderr
      .split('Find Response:')
      .slice(1)
      .map((block) => ({
        sop: /\(0008,0018\) UI \[([\d.]+)/.exec(block)?.[1],
        ts: /\(0008,3002\) UI [=[]([^\] ]+)/.exec(block)?.[1],
      }))
      .sort((a, b) => a.sop!.localeCompare(b.sop!));
    expect(answers).toEqual(
      [
        { sop: nativeUid, ts: 'LittleEndianExplicit' },
        { sop: jlsUid, ts: 'JPEGLSLossless' },
      ].sort((a, b) => a.sop.localeCompare(b.sop)),
    );
  });
});
