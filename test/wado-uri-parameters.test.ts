// WADO-URI query parameters PS3.18 §9 says are errors, each a 400 problem+json naming the parameter.
//
// - frameNumber (§9.5.2.1) names a frame of a multi-frame image that it has: on a single-frame instance, or beyond
//   the instance's Number of Frames, it is a 400. Until 8 Dec 2026 a single-frame instance's frameNumber=1 rendered
//   the image, and a frame beyond the last was a 404. A multi-frame instance without frameNumber still renders its
//   first frame.
//
// - Each parameter Custos reads takes one value (§9.4.2.3 and §9.5.2.1 say so of anonymize and frameNumber): given
//   twice it is a 400 naming it, before anything is opened or recorded. Until 8 Dec 2026 that held for the UIDs and
//   transferSyntax only, and of two of any other the first counted.
//
// - contentType takes no transfer-syntax or charset media type parameter (§9.1.2.2.1: forbidden, a 400); WADO-URI
//   has its transferSyntax and charset query parameters for them. Until 8 Dec 2026 they were ignored, and
//   `application/dicom;transfer-syntax=1.2.840.10008.1.2.4.50` got the object in Explicit VR Little Endian.
//
// - presentationSeriesUID and presentationUID come together (§9.5.1.2.7), and not with windowCenter and
//   windowWidth (§9.5.2.2) or frameNumber (§9.5.2.3): a 400 naming the one missing or the one that clashes, before
//   anything is opened or recorded. Until 8 Dec 2026 they were ignored, and the image rendered as if absent.
//
// - annotation (§9.5.1.2.2, §8.3.5.1.1) is a list of keywords: none, or one that is no keyword, is a 400 naming it;
//   Custos burns in no annotation, so each value is ignored with a Warning naming them, as §8.3.5.1.1 has it for
//   values a server does not support. Until 8 Dec 2026 the parameter was not read: no 400, no Warning.
//
// - WADO-RS rendered resources and thumbnails read annotation (§8.3.5.1.1) the same way, their Warning naming
//   the DICOMweb base URL. Until 8 Dec 2026 they did not read it either.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import {
  ledgerHead,
  ledgerSince,
  postStow,
  startTestServer,
  stopThenCleanUp,
  type TestServer,
} from './support/test-server.js';

describe.each(backends())('WADO-URI parameters on %s', (backend) => {
  let s: TestServer;
  const study = uid(1);
  const series = uid(2);
  const single = uid(3);
  const multi = uid(4);

  beforeAll(async () => {
    s = await startTestServer(backend);
    const stored = await postStow(s, [
      makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: single, rows: 8, columns: 8 }),
      makeInstance({
        studyUid: study,
        seriesUid: series,
        sopInstanceUid: multi,
        instanceNumber: 2,
        rows: 4,
        columns: 5,
        frames: 3,
      }),
    ]);
    expect(stored.status, await stored.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const wado = (objectUid: string, query: string) =>
    fetch(
      `${s.url}/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${objectUid}${query}`,
      { headers: { Authorization: `Bearer ${s.token}` } },
    );

  /** A 400 problem+json naming `parameter`, its detail saying `words`. */
  const refused = async (res: Response, parameter: string, words: string) => {
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await res.json()) as { detail: string };
    expect(problem).toMatchObject({ code: 'wado.bad-parameter', parameter });
    expect(problem.detail).toContain(words);
  };

  describe('frameNumber (PS3.18 §9.5.2.1)', () => {
    it('is a 400 naming it on a single-frame instance, recorded as not served', async () => {
      const before = await ledgerHead(s);
      await refused(await wado(single, '&frameNumber=1'), 'frameNumber', 'this instance has one frame');
      // The frame count is the instance's header, read only under a recorded access; what was refused is recorded.
      const records = await ledgerSince(s, before);
      expect(records.map((r) => [r.action, r.outcome])).toEqual([
        ['view-pixels', 'success'],
        ['view-pixels', 'failure'],
      ]);
    });

    it('is a 400 naming it beyond the Number of Frames of the instance', async () => {
      await refused(await wado(multi, '&frameNumber=4'), 'frameNumber', "beyond the instance's 3 frames");
      await refused(
        await wado(multi, '&frameNumber=4&contentType=image/png'),
        'frameNumber',
        "beyond the instance's 3 frames",
      );
    });

    it('is a 400 naming it, before anything is opened or recorded, when no instance can have that frame', async () => {
      for (const value of ['0', '-1', '1.5', '', 'x', '99999999999999999999']) {
        const before = await ledgerHead(s);
        await refused(await wado(multi, `&frameNumber=${value}`), 'frameNumber', 'frameNumber');
        expect(await ledgerHead(s), value).toBe(before);
      }
    });

    it('renders the frame it names of a multi-frame instance, and the first without it', async () => {
      const image = async (query: string) => {
        const res = await wado(multi, query);
        expect(res.status, `${query}: ${await res.clone().text()}`).toBe(200);
        expect(res.headers.get('content-type')).toBe('image/png');
        return Buffer.from(await res.arrayBuffer());
      };
      // One window for all: frame 1's pixels are about 0, frame 3's about 2000 (pixelValue).
      const png = '&contentType=image/png&windowCenter=500&windowWidth=1000';
      const first = await image(`${png}&frameNumber=1`);
      const third = await image(`${png}&frameNumber=03`);
      expect(third.equals(first)).toBe(false);
      expect((await image(png)).equals(first)).toBe(true);
      // A single-frame instance without frameNumber is its one image, as before.
      const one = await wado(single, '');
      expect(one.status).toBe(200);
      expect(one.headers.get('content-type')).toBe('image/jpeg');
    });
  });

  describe('a parameter given twice', () => {
    it.each([
      ['requestType=WADO', 'requestType'],
      ['contentType=application/dicom&contentType=image/jpeg', 'contentType'],
      ['contentType=image/png&contentType=image/png', 'contentType'],
      ['anonymize=yes&anonymize=no', 'anonymize'],
      ['anonymize=yes&anonymize=yes', 'anonymize'],
      ['frameNumber=2&frameNumber=3', 'frameNumber'],
      ['rows=4&rows=5', 'rows'],
      ['columns=4&columns=5', 'columns'],
      ['region=0,0,1,1&region=0,0,0.5,0.5', 'region'],
      ['windowCenter=10&windowCenter=20&windowWidth=5', 'windowCenter'],
      ['windowCenter=10&windowWidth=5&windowWidth=50', 'windowWidth'],
      ['imageQuality=100&imageQuality=50', 'imageQuality'],
    ])('%s is a 400 naming %s, before anything is opened or recorded', async (query, parameter) => {
      const before = await ledgerHead(s);
      await refused(await wado(multi, `&${query}`), parameter, `${parameter} is given more than once`);
      expect(await ledgerHead(s)).toBe(before);
    });

    it('takes each once', async () => {
      const res = await wado(
        multi,
        '&contentType=image/png&frameNumber=2&rows=4&columns=5&region=0,0,1,1&windowCenter=10&windowWidth=5&imageQuality=50',
      );
      expect(res.status, await res.clone().text()).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
    });
  });

  describe('contentType (PS3.18 §9.1.2.2.1)', () => {
    it.each([
      ['application/dicom;transfer-syntax=1.2.840.10008.1.2.4.50', 'transfer-syntax', 'transferSyntax'],
      ['application/dicom; transfer-syntax=1.2.840.10008.1.2.1', 'transfer-syntax', 'transferSyntax'],
      ['image/jpeg,application/dicom;q=0.5;transfer-syntax=*', 'transfer-syntax', 'transferSyntax'],
      ['application/dicom;charset="ISO_IR 192"', 'charset', 'charset'],
      ['image/jpeg;CHARSET=utf-8', 'charset', 'charset'],
    ])(
      '%s is a 400 naming contentType, before anything is opened or recorded',
      async (contentType, parameter, instead) => {
        const before = await ledgerHead(s);
        await refused(
          await wado(single, `&contentType=${encodeURIComponent(contentType)}`),
          'contentType',
          `contentType takes no ${parameter} parameter in WADO-URI (PS3.18 §9.1.2.2.1): give the ${instead} query parameter`,
        );
        expect(await ledgerHead(s)).toBe(before);
      },
    );

    it('takes the media types with their q-values, and the transfer syntax as the transferSyntax parameter', async () => {
      const dicom = await wado(
        single,
        `&contentType=${encodeURIComponent('image/jpeg;q=0.5,application/dicom')}&transferSyntax=1.2.840.10008.1.2.1`,
      );
      expect(dicom.status, await dicom.clone().text()).toBe(200);
      expect(dicom.headers.get('content-type')).toBe('application/dicom');
      const png = await wado(
        single,
        `&contentType=${encodeURIComponent('image/png;q=0.9, image/jpeg;q=0.1')}`,
      );
      expect(png.status).toBe(200);
      expect(png.headers.get('content-type')).toBe('image/png');
    });
  });

  describe('presentationSeriesUID and presentationUID (PS3.18 §9.5.1.2.7, §9.5.2.2, §9.5.2.3)', () => {
    const ps = `presentationSeriesUID=${uid(20)}&presentationUID=${uid(21)}`;
    it.each([
      [`presentationUID=${uid(21)}`, 'presentationSeriesUID', 'presentationUID needs presentationSeriesUID'],
      [`presentationSeriesUID=${uid(20)}`, 'presentationUID', 'presentationSeriesUID needs presentationUID'],
      [
        `${ps}&windowCenter=10&windowWidth=5`,
        'windowCenter',
        'windowCenter is not given with a presentation state',
      ],
      [`${ps}&frameNumber=2`, 'frameNumber', 'frameNumber is not given with a presentation state'],
    ])('%s is a 400 naming %s, before anything is opened or recorded', async (query, parameter, words) => {
      const before = await ledgerHead(s);
      await refused(await wado(multi, `&${query}`), parameter, words);
      expect(await ledgerHead(s)).toBe(before);
    });
  });

  describe('annotation (PS3.18 §9.5.1.2.2, §8.3.5.1.1)', () => {
    it.each(['', 'patient,,technique', 'patient%20name', '1', 'patient&annotation=technique'])(
      'annotation=%s is a 400 naming it, before anything is opened or recorded',
      async (value) => {
        const before = await ledgerHead(s);
        await refused(await wado(single, `&annotation=${value}`), 'annotation', 'annotation');
        expect(await ledgerHead(s)).toBe(before);
      },
    );

    it('renders without the annotations, with a Warning naming the values it left out', async () => {
      for (const [value, named] of [
        ['patient', 'patient'],
        ['technique, patient', 'technique,patient'],
      ] as const) {
        const res = await wado(single, `&annotation=${encodeURIComponent(value)}`);
        expect(res.status, await res.clone().text()).toBe(200);
        expect(res.headers.get('content-type')).toBe('image/jpeg');
        expect(res.headers.get('warning')).toBe(
          `299 ${s.url}/wado "The following annotation values are not supported: ${named}"`,
        );
      }
      const plain = await wado(single, '');
      expect(plain.status).toBe(200);
      expect(plain.headers.get('warning')).toBeNull();
    });
  });

  describe('annotation on WADO-RS rendered resources and thumbnails (PS3.18 §8.3.5.1.1)', () => {
    const rs = (path: string, accept = 'image/jpeg') =>
      fetch(`${s.dicomweb}/studies/${study}/series/${series}${path}`, {
        headers: { Authorization: `Bearer ${s.token}`, Accept: accept },
      });
    const paths: [string, string][] = [
      [`/instances/${single}/rendered`, 'image/jpeg'],
      [`/instances/${multi}/rendered`, 'image/gif'],
      [`/instances/${multi}/frames/2/rendered`, 'image/png'],
      [`/instances/${single}/thumbnail`, 'image/jpeg'],
      ['/rendered', 'multipart/related; type="image/jpeg"'],
    ];

    it.each(paths)(
      '%s renders without them, with a Warning naming the values left out',
      async (path, accept) => {
        const res = await rs(`${path}?annotation=patient,technique`, accept);
        expect(res.status, await res.clone().text()).toBe(200);
        expect(res.headers.get('content-type')).toContain(
          accept.replace(/^multipart.*/, 'multipart/related'),
        );
        expect(res.headers.get('warning')).toBe(
          `299 ${s.dicomweb} "The following annotation values are not supported: patient,technique"`,
        );
        const plain = await rs(path, accept);
        expect(plain.status).toBe(200);
        expect(plain.headers.get('warning')).toBeNull();
      },
    );

    it.each(paths)('%s takes no empty annotation, nor one given twice', async (path, accept) => {
      for (const query of ['annotation=', 'annotation=patient&annotation=technique']) {
        const before = await ledgerHead(s);
        await refused(await rs(`${path}?${query}`, accept), 'annotation', 'annotation');
        expect(await ledgerHead(s)).toBe(before);
      }
    });
  });
});
