// DICOMweb query parameters that take one value, and the charset parameter, each refused with a 400 naming it
// before anything is decided or recorded. One server per backend serves the four groups.
//
// - QIDO-RS control parameters (limit, offset, fuzzymatching, emptyvaluematching, multiplevaluematching) given twice,
//   as a matching key given twice is. Until 7 Dec 2026 the last one counted without a word (`limit=1&limit=3`
//   answered three studies), where a proxy or a log that read the first saw another query than the one answered.
// - WADO-RS rendered and thumbnail parameters (window, quality, viewport; PS3.18 §8.3.5.1) given twice, as WADO-URI
//   refuses a parameter given twice. Until 7 Dec 2026 the first counted (`window=40,400&window=1,2` rendered with
//   40,400), where a cache or a proxy that read the last one saw another image asked for than the one served.
// - The transfer-syntax parameter (PS3.18 §8.7.3.7) given twice, as WADO-URI's transferSyntax is. Until 7 Dec 2026
//   the first counted, so the same two values in the other order got another answer (a 406, or the object).
// - The charset parameter (PS3.18 §8.3.3.2) lists the character sets a client takes; one that lists none Custos
//   answers in (it writes UTF-8 only and converts no object) is a 400 naming it, as the standard has it. Until
//   7 Dec 2026 it was not read: `charset=ISO-8859-1` got UTF-8.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import {
  ledgerHead,
  postStow,
  startTestServer,
  stopThenCleanUp,
  type TestServer,
} from './support/test-server.js';

describe.each(backends())('DICOMweb parameters given twice or naming no UTF-8, on %s', (backend) => {
  let s: TestServer;
  const patientId = 'TWICE-1';
  const study = uid(1);
  const series = uid(2);
  const sop = uid(3);
  const instance = () => `/studies/${study}/series/${series}/instances/${sop}`;

  beforeAll(async () => {
    s = await startTestServer(backend);
    const stored = await postStow(s, [
      // One study of the patient is the one the WADO-RS groups read; the QIDO-RS group pages over three.
      makeInstance({
        studyUid: study,
        seriesUid: series,
        sopInstanceUid: sop,
        rows: 8,
        columns: 8,
        patientId,
      }),
      ...[4, 5].map((n) =>
        makeInstance({ studyUid: uid(n), seriesUid: uid(6), sopInstanceUid: uid(7), patientId }),
      ),
    ]);
    expect(stored.status, await stored.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const get = (path: string, accept?: string) =>
    fetch(`${s.dicomweb}${path}`, {
      headers: { Authorization: `Bearer ${s.token}`, ...(accept ? { Accept: accept } : {}) },
    });

  /** Asks `path` and expects a 400 problem naming `parameter` with `code`, and no record in the ledger. */
  const refused = async (path: string, code: string, parameter: string) => {
    const before = await ledgerHead(s);
    const res = await get(path);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await res.json()) as { detail?: string };
    expect(problem).toMatchObject({ code, parameter });
    expect(await ledgerHead(s)).toBe(before);
    return problem;
  };

  describe('QIDO-RS', () => {
    it.each([
      ['limit=1&limit=3', 'limit'],
      ['offset=0&offset=2', 'offset'],
      ['limit=1&LIMIT=1', 'limit'],
      ['fuzzymatching=true&fuzzymatching=false', 'fuzzymatching'],
      ['emptyvaluematching=false&emptyvaluematching=true', 'emptyvaluematching'],
      ['multiplevaluematching=true&multiplevaluematching=true', 'multiplevaluematching'],
    ])('refuses %s with a 400 naming the parameter', async (query, parameter) => {
      const problem = await refused(
        `/studies?PatientID=${patientId}&${query}`,
        'qido.bad-parameter',
        parameter,
      );
      expect(problem.detail).toBe(`${parameter} is given more than once; give it once`);
    });

    it('still pages with one limit and one offset, and takes includefield as often as it comes', async () => {
      const res = await get(
        `/studies?PatientID=${patientId}&limit=1&offset=2&includefield=StudyDescription&includefield=00081030`,
      );
      expect(res.status).toBe(200);
      expect(await res.json()).toHaveLength(1);
    });
  });

  describe('WADO-RS rendered and thumbnails', () => {
    it.each([
      ['rendered', 'window=40,400&window=1,2', 'window'],
      ['rendered', 'quality=90&quality=50', 'quality'],
      ['rendered', 'viewport=64,64&viewport=16,16', 'viewport'],
      ['frames/1/rendered', 'window=40,400&window=40,400', 'window'],
      ['thumbnail', 'viewport=64,64&viewport=32,32', 'viewport'],
      ['series-thumbnail', 'quality=80&quality=80', 'quality'],
      ['study-rendered', 'window=40,400&window=1,2', 'window'],
    ])(
      'refuses %s?%s with a 400 naming the parameter, recording nothing',
      async (resource, query, parameter) => {
        const path =
          resource === 'series-thumbnail'
            ? `/studies/${study}/series/${series}/thumbnail`
            : resource === 'study-rendered'
              ? `/studies/${study}/rendered`
              : `${instance()}/${resource}`;
        const problem = await refused(`${path}?${query}`, 'wado.bad-parameter', parameter);
        expect(problem.detail).toBe(`${parameter} is given more than once; give it once`);
      },
    );

    it('renders with each parameter given once', async () => {
      const res = await get(`${instance()}/rendered?window=40,400&quality=80&viewport=16,16`, 'image/png');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
    });
  });

  describe('WADO-RS transfer-syntax', () => {
    it.each([
      '?accept=application/dicom&transfer-syntax=1.2.840.10008.1.2.4.50&transfer-syntax=*',
      '?accept=application/dicom&transfer-syntax=*&transfer-syntax=1.2.840.10008.1.2.4.50',
      '/frames/1?accept=application/octet-stream&transfer-syntax=*&transfer-syntax=*',
    ])('refuses %s given twice with a 400 naming it, recording nothing', async (query) => {
      const problem = await refused(`${instance()}${query}`, 'wado.bad-parameter', 'transfer-syntax');
      expect(problem.detail).toBe('transfer-syntax is given more than once; give it once');
    });

    it('takes it once', async () => {
      const res = await get(`${instance()}?accept=application/dicom&transfer-syntax=*`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
    });
  });

  describe('charset', () => {
    it.each([
      `/studies?PatientID=${patientId}&charset=ISO-8859-1`,
      `/studies?PatientID=${patientId}&charset=utf-8;q=0,ISO-8859-1`,
      `/studies/${study}/metadata?charset=%22ISO_IR%20100%22`,
      `/studies?PatientID=${patientId}&charset=*;q=0`,
    ])('refuses %s with a 400 naming the parameter, recording nothing', async (path) => {
      await refused(path, 'dicomweb.bad-parameter', 'charset');
    });

    it.each([
      'charset=utf-8',
      'charset=UTF-8',
      'charset=ISO-8859-1;q=0.9,utf-8;q=0.5',
      'charset=%22ISO_IR%20192%22',
      'charset=*',
    ])('answers a study search with %s in UTF-8', async (query) => {
      const res = await get(`/studies?StudyInstanceUID=${study}&${query}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/dicom+json; charset=utf-8');
      expect(await res.json()).toHaveLength(1);
    });
  });
});
