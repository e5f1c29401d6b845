// QIDO-RS and C-FIND remember rendered study rows (src/services/rendered-rows.ts): what they answer must still
// follow every change of a study and its patient, QIDO-RS's stay what the object path builds, and C-FIND's follow
// the keys each request asks for. Runs on every backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../src/domain/hl7/hl7-examples.js';
import { parseQidoQuery } from '../src/domain/qido-query.js';
import { backends } from './support/backends.js';
import { findscuTo } from './support/dcmtk.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { MllpClient } from './support/mllp-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';

type Item = Record<string, { vr: string; Value?: unknown[] }>;

describe.each(backends())('QIDO-RS rows remembered between queries on %s', (backend) => {
  let s: TestServer;
  const study = uid(1);
  const pid = `PID-RENDER-${study.slice(-6)}`;

  const store = async (series: string, sop: string) => {
    const bytes = makeInstance({
      studyUid: study,
      seriesUid: series,
      sopInstanceUid: sop,
      patientId: pid,
      patientName: 'Before^Ann',
      birthDate: '19700101',
      sex: 'F',
      modality: series.endsWith('1') ? 'CT' : 'MR',
      rows: 4,
      columns: 4,
      // PatientAge: stored with the study, returned only when asked for.
      extra: [{ tag: 0x00101010, vr: 'AS', value: '054Y' }],
    });
    const { body, contentType } = stowBody([{ bytes }]);
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    expect(res.status, await res.clone().text()).toBe(200);
  };
  const qido = async (params: string) => {
    const res = await fetch(`${s.dicomweb}/studies?${params}`, {
      headers: { Authorization: `Bearer ${s.token}`, Accept: 'application/dicom+json' },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    // The object path builds the same answer, byte for byte.
    const admin = await s.app.auth.authenticateBearer(`Bearer ${s.token}`, 'test');
    const objects = await s.app.query.search(
      admin,
      parseQidoQuery(new URLSearchParams(params), 'study', {}),
      `${s.url}/dicom-web`,
    );
    expect(text).toBe(JSON.stringify(objects.results));
    return JSON.parse(text) as Item[];
  };

  /** findscu at STUDY level for this study with `keys` (return keys, no value): the one answer's dump. */
  const cfind = async (...keys: string[]) => {
    const r = await findscuTo(
      s.dicomPort,
      'RENDERSCU',
      'QueryRetrieveLevel=STUDY',
      `StudyInstanceUID=${study}`,
      ...keys,
    );
    expect(r.code, r.stderr).toBe(0);
    expect((r.stderr.match(/Find Response: \d+ \(Pending\)/g) ?? []).length, r.stderr).toBe(1);
    return r.stderr.slice(r.stderr.indexOf('Find Response: 1 (Pending)'));
  };
  /** The value findscu's dump shows for `keyword`, padding trimmed; undefined when the answer lacks it. */
  const dumped = (dump: string, keyword: string) =>
    new RegExp(`^I: \\([0-9a-f]{4},[0-9a-f]{4}\\) \\w\\w \\[(.*?) *\\] +#.*\\b${keyword}$`, 'm').exec(
      dump,
    )?.[1];

  beforeAll(async () => {
    s = await startTestServer(backend, { hl7: { port: 0, senders: ['ADT1^GOOD HEALTH HOSPITAL'] } });
    const admin = await s.app.auth.authenticateBearer(`Bearer ${s.token}`, 'test');
    await s.app.aes.add(admin, { title: 'RENDERSCU', host: '127.0.0.1', port: 104, user: 'admin' });
  });
  afterAll(async () => {
    await s?.stop();
    expect(s.unexpected).toEqual([]);
  });

  it('answers from what changed: a new instance and series, the patient index, the fields asked for', async () => {
    const seriesA = `${uid(2)}1`;
    await store(seriesA, uid(3));
    const q = `StudyInstanceUID=${study}`;
    let [row] = await qido(q);
    expect(row!['00201208']).toEqual({ vr: 'IS', Value: [1] });
    expect(row!['00080061']).toEqual({ vr: 'CS', Value: ['CT'] });
    // Asked again: the same answer.
    expect(await qido(q)).toEqual([row]);
    const keys = ['PatientName', 'PatientBirthDate', 'ModalitiesInStudy', 'NumberOfStudyRelatedInstances'];
    let dump = await cfind(...keys);
    expect(dumped(dump, 'NumberOfStudyRelatedInstances')).toBe('1');
    expect(dumped(dump, 'ModalitiesInStudy')).toBe('CT');
    expect(await cfind(...keys)).toBe(dump);

    // Another instance of the same series: only the instance count changes.
    await store(seriesA, uid(6));
    [row] = await qido(q);
    expect(row!['00201206']).toEqual({ vr: 'IS', Value: [1] });
    expect(row!['00201208']).toEqual({ vr: 'IS', Value: [2] });

    await store(`${uid(4)}2`, uid(5));
    [row] = await qido(q);
    expect(row!['00201206']).toEqual({ vr: 'IS', Value: [2] });
    expect(row!['00201208']).toEqual({ vr: 'IS', Value: [3] });
    expect(row!['00080061']).toEqual({ vr: 'CS', Value: ['CT', 'MR'] });
    expect(row!['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Before^Ann' }] });
    dump = await cfind(...keys);
    expect(dumped(dump, 'NumberOfStudyRelatedInstances')).toBe('3');
    expect(dumped(dump, 'ModalitiesInStudy')).toBe('CT\\MR');
    expect(dumped(dump, 'PatientName')).toBe('Before^Ann');

    // The patient index changes one value at a time (HL7 A08): the name, then the birth date.
    const update = async (n: number, name: string, birth: string) => {
      const mllp = await MllpClient.connect(s.hl7Port!);
      try {
        const ack = await mllp.send(
          adtMessage('A08', `MSG-R${n}-${study.slice(-6)}`, {
            id: pid,
            family: name,
            given: 'ANN',
            birth,
            sex: 'F',
          }),
        );
        expect(ack).toMatch(/MSA\|AA/);
      } finally {
        await mllp.close();
      }
    };
    await update(1, 'AFTER', '19700101');
    [row] = await qido(q);
    expect(row!['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'AFTER^ANN^^^III' }] });
    expect(row!['00100030']).toEqual({ vr: 'DA', Value: ['19700101'] });
    await update(2, 'AFTER', '19700202');
    [row] = await qido(q);
    expect(row!['00100030']).toEqual({ vr: 'DA', Value: ['19700202'] });
    dump = await cfind(...keys);
    expect(dumped(dump, 'PatientName')).toBe('AFTER^ANN^^^III');
    expect(dumped(dump, 'PatientBirthDate')).toBe('19700202');
    // Other keys asked for: an answer with exactly those.
    const other = await cfind('PatientAge', 'StudyDate');
    expect(dumped(other, 'PatientAge')).toBe('054Y');
    expect(dumped(other, 'PatientName')).toBeUndefined();
    expect(dumped(other, 'ModalitiesInStudy')).toBeUndefined();
    expect(await cfind(...keys)).toBe(dump);

    const [wider] = await qido(`${q}&includefield=00101010`);
    expect(wider!['00101010']).toEqual({ vr: 'AS', Value: ['054Y'] });
    expect(Object.keys(row!)).not.toContain('00101010');
    expect((await qido(q))[0]).toEqual(row);
  });
});
