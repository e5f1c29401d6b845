// Issue 6: one header rewrite. An object released from quarantine with a data steward's corrections, whose
// patient the HL7 feed then updates, is served with both (patient index winning for the patient attributes) by
// WADO-RS, WADO-URI, WADO-RS metadata and DIMSE C-GET; a compressed one alike when it is served decompressed.
// Runs on every backend.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getString, type Dataset } from '../src/dicom/dataset.js';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { Tags } from '../src/dicom/tags.js';
import { adtMessage } from '../src/domain/hl7/hl7-examples.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk } from './support/dcmtk.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { multipartParts } from './support/http.js';
import { MllpClient } from './support/mllp-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const MODALITY = 0x00080060;
const STUDY_DESCRIPTION = 0x00081030;
type Item = Record<string, { vr: string; Value?: unknown[] }>;

describe.each(backends())('served headers with steward and patient-index corrections on %s', (backend) => {
  let s: TestServer;
  let steward: string;
  let work: string;
  const study = uid(1);
  const series = uid(2);
  const sop = uid(3);
  /** The same object compressed by dcmcrle, under a UID of its own. */
  const rleSop = uid(4);
  const pid = `PID-BOTH-${sop.slice(-6)}`;
  let original: Buffer;

  const pixelsOf = async (bytes: Buffer) => {
    const p = await parsePart10(bytes);
    return bytes.subarray(p.pixelData!.offset, p.pixelData!.offset + p.pixelData!.length);
  };
  /** Both kinds of correction are in this header, and the pixel data is the stored one. */
  const expectBoth = async (bytes: Buffer, asSop = sop) => {
    expect(getString((await parsePart10(bytes)).dataset, Tags.SOPInstanceUID)).toBe(asSop);
    const ds: Dataset = (await parsePart10(bytes)).dataset;
    // Patient index (HL7 A08) wins for the patient attributes, even the name the steward had corrected.
    expect(getString(ds, Tags.PatientName)).toBe('INDEX^IRIS^^^III');
    expect(getString(ds, Tags.PatientBirthDate)).toBe('19800202');
    expect(getString(ds, Tags.PatientSex)).toBe('F');
    expect(getString(ds, Tags.PatientID)).toBe(pid);
    // The steward's corrections stand for everything else.
    expect(getString(ds, MODALITY)).toBe('CT');
    expect(getString(ds, STUDY_DESCRIPTION)).toBe('Corrected by the steward');
    expect((await pixelsOf(bytes)).equals(await pixelsOf(original))).toBe(true);
  };

  beforeAll(async () => {
    s = await startTestServer(backend, { hl7: { port: 0, senders: ['ADT1^GOOD HEALTH HOSPITAL'] } });
    const operator = systemPrincipal('test');
    await s.app.accounts.add(operator, { username: 'steward', role: 'data-steward' });
    steward = (await s.app.auth.createToken(operator, 'steward')).token;
    await s.app.aes.add(operator, { title: 'GETSCU', host: '127.0.0.1', port: 104, user: 'admin' });
    work = await mkdtemp(join(tmpdir(), 'custos-served-header-'));

    // Without Modality (Type 1): quarantined at the default level.
    const fixture = () => ({
      studyUid: study,
      seriesUid: series,
      sopInstanceUid: sop,
      patientId: pid,
      patientName: 'Sender^Typo',
      birthDate: '19800101',
      sex: 'F',
      rows: 8,
      columns: 8,
      omit: [MODALITY],
    });
    original = makeInstance(fixture());
    const rleIn = join(work, 'rle-in.dcm');
    const rleOut = join(work, 'rle-out.dcm');
    await writeFile(rleIn, makeInstance({ ...fixture(), sopInstanceUid: rleSop }));
    const rle = await dcmtk('dcmcrle', [rleIn, rleOut]);
    expect(rle.code, rle.stderr).toBe(0);
    const { body, contentType } = stowBody([{ bytes: original }, { bytes: await readFile(rleOut) }]);
    const stow = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    expect(stow.status).toBe(202);
    const asSteward = (path: string, payload?: unknown) =>
      fetch(`${s.url}${path}`, {
        method: payload === undefined ? 'GET' : 'POST',
        headers: { Authorization: `Bearer ${steward}`, 'Content-Type': 'application/json' },
        ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
      });
    const list = (await (await asSteward('/api/quarantine?limit=1000')).json()) as {
      entries: { id: string; sopInstanceUid: string }[];
    };
    for (const held of [sop, rleSop]) {
      const id = list.entries.find((e) => e.sopInstanceUid === held)!.id;
      const fixed = await asSteward(`/api/quarantine/${id}/corrections`, {
        Modality: 'CT',
        StudyDescription: 'Corrected by the steward',
        PatientName: 'Steward^Spelling',
      });
      expect(fixed.status, await fixed.clone().text()).toBe(200);
      const released = await asSteward(`/api/quarantine/${id}/release`, {});
      expect(released.status, await released.clone().text()).toBe(200);
    }

    // Then the patient feed updates the demographics of that patient.
    const mllp = await MllpClient.connect(s.hl7Port!);
    try {
      const ack = await mllp.send(
        adtMessage('A08', `MSG-${sop.slice(-6)}`, {
          id: pid,
          family: 'INDEX',
          given: 'IRIS',
          birth: '19800202',
          sex: 'F',
        }),
      );
      expect(ack).toMatch(/MSA\|AA/);
    } finally {
      await mllp.close();
    }
  });

  afterAll(async () => {
    await s?.stop();
    await rm(work, { recursive: true, force: true });
    expect(s.unexpected).toEqual([]);
  });

  const instanceUrl = () => `${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}`;
  const auth = () => ({ Authorization: `Bearer ${s.token}` });

  it('serves both kinds of correction by WADO-RS, the stored pixel data unchanged', async () => {
    const res = await fetch(instanceUrl(), {
      headers: { ...auth(), Accept: 'multipart/related; type="application/dicom"' },
    });
    expect(res.status).toBe(200);
    // The corrected header's length is counted in the body's Content-Length, computed before the body is written.
    expect(Number(res.headers.get('content-length'))).toBe((await res.clone().arrayBuffer()).byteLength);
    const [part] = await multipartParts(res);
    await expectBoth(part!.body);
  });

  it('serves both by WADO-URI', async () => {
    const q = `requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${sop}&contentType=application/dicom`;
    const res = await fetch(`${s.url}/wado?${q}`, { headers: auth() });
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(bytes.length);
    await expectBoth(bytes);
  });

  it('serves both on a compressed object decompressed (WADO-RS in Explicit VR Little Endian)', async () => {
    const res = await fetch(`${s.dicomweb}/studies/${study}/series/${series}/instances/${rleSop}`, {
      headers: { ...auth(), Accept: 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1' },
    });
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect((await parsePart10(bytes)).transferSyntaxUid).toBe('1.2.840.10008.1.2.1');
    await expectBoth(bytes, rleSop);
  });

  it('serves both in WADO-RS metadata', async () => {
    const res = await fetch(`${instanceUrl()}/metadata`, {
      headers: { ...auth(), Accept: 'application/dicom+json' },
    });
    const [meta] = (await res.json()) as Item[];
    expect(meta!['00100010']!.Value).toEqual([{ Alphabetic: 'INDEX^IRIS^^^III' }]);
    expect(meta!['00100030']!.Value).toEqual(['19800202']);
    expect(meta!['00080060']!.Value).toEqual(['CT']);
    expect(meta!['00081030']!.Value).toEqual(['Corrected by the steward']);
  });

  it('serves both by DIMSE C-GET', async () => {
    const out = await mkdtemp(join(work, 'get-'));
    const r = await dcmtk('getscu', [
      '-aet',
      'GETSCU',
      '-aec',
      'CUSTOS',
      '-S',
      '-od',
      out,
      '127.0.0.1',
      String(s.dicomPort),
      '-k',
      'QueryRetrieveLevel=IMAGE',
      '-k',
      `StudyInstanceUID=${study}`,
      '-k',
      `SeriesInstanceUID=${series}`,
      '-k',
      `SOPInstanceUID=${sop}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [file] = await readdir(out);
    await expectBoth(await readFile(join(out, file!)));
  });

  it('answers QIDO-RS with the patient index values', async () => {
    const res = await fetch(`${s.dicomweb}/studies?StudyInstanceUID=${study}`, {
      headers: { ...auth(), Accept: 'application/dicom+json' },
    });
    expect(res.status).toBe(200);
    const [row] = (await res.json()) as Item[];
    expect(row!['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'INDEX^IRIS^^^III' }] });
    expect(row!['00100030']).toEqual({ vr: 'DA', Value: ['19800202'] });
  });
});
