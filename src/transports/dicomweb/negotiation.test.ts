import { describe, expect, it } from 'vitest';
import {
  acceptDicom,
  acceptJson,
  DICOM_XML_MULTIPART,
  frameForm,
  plusRestored,
  renderedMediaType,
  servedSyntax,
  stowResponseXml,
} from './negotiation.js';

const EXPLICIT = '1.2.840.10008.1.2.1';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';

describe('frameForm', () => {
  it('answers in multipart/related by default and for a wildcard', () => {
    for (const accept of [undefined, '*/*', 'multipart/related; type="application/octet-stream"'])
      expect(frameForm(EXPLICIT, accept), String(accept)).toEqual({
        type: `application/octet-stream; transfer-syntax=${EXPLICIT}`,
        single: false,
      });
  });

  it('answers in a single part when the media type itself is asked for', () => {
    expect(frameForm(EXPLICIT, 'application/octet-stream')).toEqual({
      type: `application/octet-stream; transfer-syntax=${EXPLICIT}`,
      single: true,
    });
    expect(frameForm(JPEG_BASELINE, 'image/jpeg')).toEqual({
      type: `image/jpeg; transfer-syntax=${JPEG_BASELINE}`,
      single: true,
    });
    // The client's order decides: multipart first stays multipart.
    expect(
      frameForm(EXPLICIT, 'multipart/related; type="application/octet-stream", application/octet-stream'),
    ).toEqual({
      type: `application/octet-stream; transfer-syntax=${EXPLICIT}`,
      single: false,
    });
  });

  it('refuses a media type or transfer syntax it would have to transcode to (406)', () => {
    expect(() => frameForm(JPEG_BASELINE, 'image/jls')).toThrow(/no transcoding/);
    expect(() => frameForm(EXPLICIT, 'application/octet-stream; transfer-syntax=1.2.840.10008.1.2')).toThrow(
      /no transcoding/,
    );
  });

  it('labels RLE frames image/dicom-rle and takes the older image/x-dicom-rle for it', () => {
    const RLE = '1.2.840.10008.1.2.5';
    const labelled = { type: `image/dicom-rle; transfer-syntax=${RLE}` };
    for (const accept of [undefined, '*/*', 'multipart/related; type="image/dicom-rle"', 'image/dicom-rle'])
      expect(frameForm(RLE, accept), String(accept)).toMatchObject(labelled);
    // dicomweb-client 0.11 asks for the name of older editions.
    expect(frameForm(RLE, 'multipart/related; type="image/x-dicom-rle"')).toEqual({
      ...labelled,
      single: false,
    });
    expect(frameForm(RLE, 'image/x-dicom-rle')).toEqual({ ...labelled, single: true });
  });

  it('takes image/x-jls, the older name of image/jls, for JPEG-LS frames (PS3.18 §8.7.3.3 Note 8)', () => {
    for (const ts of ['1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81']) {
      const labelled = { type: `image/jls; transfer-syntax=${ts}` };
      expect(frameForm(ts, `multipart/related; type="image/x-jls"; transfer-syntax=${ts}`)).toEqual({
        ...labelled,
        single: false,
      });
      expect(frameForm(ts, 'image/x-jls')).toEqual({ ...labelled, single: true });
    }
    // An alias names the same media type only: JPEG frames are no JPEG-LS.
    expect(() => frameForm(JPEG_BASELINE, 'multipart/related; type="image/x-jls"')).toThrow(/no transcoding/);
  });

  it('labels each compressed syntax of PS3.18 Table 8.7.3-5 with its own media type, not application/octet-stream', () => {
    for (const [ts, type] of [
      ['1.2.840.10008.1.2.4.92', 'image/jpx'],
      ['1.2.840.10008.1.2.4.93', 'image/jpx'],
      ['1.2.840.10008.1.2.4.101', 'video/mpeg2'],
      ['1.2.840.10008.1.2.4.104', 'video/mp4'],
      ['1.2.840.10008.1.2.4.105', 'video/mp4'],
      ['1.2.840.10008.1.2.4.106', 'video/mp4'],
    ]) {
      expect(frameForm(ts!, undefined), ts).toEqual({
        type: `${type}; transfer-syntax=${ts}`,
        single: false,
      });
      expect(frameForm(ts!, `multipart/related; type="${type}"`), ts).toEqual({
        type: `${type}; transfer-syntax=${ts}`,
        single: false,
      });
    }
    expect(() => frameForm('1.2.840.10008.1.2.4.92', 'multipart/related; type="image/jp2"')).toThrow(
      /no transcoding/,
    );
  });

  it('decodes compressed frames asked for as octet-stream in Explicit VR Little Endian, where it can', () => {
    const want = `multipart/related; type="application/octet-stream"; transfer-syntax=${EXPLICIT}`;
    expect(frameForm(JPEG_BASELINE, want, true)).toEqual({
      type: `application/octet-stream; transfer-syntax=${EXPLICIT}`,
      single: false,
      decode: true,
    });
    expect(
      frameForm(JPEG_BASELINE, `application/octet-stream; transfer-syntax=${EXPLICIT}`, true),
    ).toMatchObject({
      single: true,
      decode: true,
    });
    // As stored when the client takes that too (its order decides), never for another media type or syntax.
    expect(frameForm(JPEG_BASELINE, `image/jpeg, ${want}`, true)).toEqual({
      type: `image/jpeg; transfer-syntax=${JPEG_BASELINE}`,
      single: true,
    });
    expect(() => frameForm(JPEG_BASELINE, want)).toThrow(/no transcoding/);
    expect(() => frameForm(JPEG_BASELINE, 'image/jls; transfer-syntax=1.2.840.10008.1.2.4.80', true)).toThrow(
      /decoded to 1.2.840.10008.1.2.1 only/,
    );
    // Without a transfer-syntax, application/octet-stream means Explicit VR Little Endian (PS3.18 Table 8.7.3-2):
    // decoded where Custos can, with the stored form to fall back on; as stored where it cannot.
    const asStored = (single: boolean) => ({
      type: `application/octet-stream; transfer-syntax=${JPEG_BASELINE}`,
      single,
    });
    expect(frameForm(JPEG_BASELINE, 'multipart/related; type="application/octet-stream"', true)).toEqual({
      type: `application/octet-stream; transfer-syntax=${EXPLICIT}`,
      single: false,
      decode: true,
      asStored: asStored(false),
    });
    expect(frameForm(JPEG_BASELINE, 'application/octet-stream', true)).toMatchObject({
      single: true,
      decode: true,
      asStored: asStored(true),
    });
    expect(frameForm(JPEG_BASELINE, 'application/octet-stream', false)).toEqual(asStored(true));
    // A wildcard or no Accept still gets the frame in its own media type.
    expect(frameForm(JPEG_BASELINE, undefined, true)).toEqual({
      type: `image/jpeg; transfer-syntax=${JPEG_BASELINE}`,
      single: false,
    });
    expect(frameForm(JPEG_BASELINE, '*/*', true)).toMatchObject({
      type: `image/jpeg; transfer-syntax=${JPEG_BASELINE}`,
    });
    expect(frameForm(EXPLICIT, want, true)).toEqual({
      type: `application/octet-stream; transfer-syntax=${EXPLICIT}`,
      single: false,
    });
  });
});

describe('servedSyntax', () => {
  const form = (transferSyntax: string | undefined) => ({ single: false, transferSyntax, q: 1 });
  const IMPLICIT = '1.2.840.10008.1.2';
  it('serves implicit VR objects in explicit VR unless implicit VR is asked for by name', () => {
    expect(servedSyntax(form('*'), IMPLICIT)).toBe(EXPLICIT);
    expect(servedSyntax(form(EXPLICIT), IMPLICIT)).toBe(EXPLICIT);
    expect(servedSyntax(form(IMPLICIT), IMPLICIT)).toBe(IMPLICIT);
    expect(servedSyntax(form(JPEG_BASELINE), IMPLICIT)).toBeUndefined();
  });
  it('serves big endian and deflated objects in explicit VR little endian unless asked for as stored', () => {
    const BIG_ENDIAN = '1.2.840.10008.1.2.2';
    const DEFLATED = '1.2.840.10008.1.2.1.99';
    for (const ts of [BIG_ENDIAN, DEFLATED]) {
      expect(servedSyntax(form(undefined), ts), ts).toBe(EXPLICIT);
      expect(servedSyntax(form(EXPLICIT), ts), ts).toBe(EXPLICIT);
      expect(servedSyntax(form(ts), ts), ts).toBe(ts);
      expect(servedSyntax(form(JPEG_BASELINE), ts), ts).toBeUndefined();
    }
    // Big endian is not for the web (PS3.18 §8.7.3); deflate is.
    expect(servedSyntax(form('*'), BIG_ENDIAN)).toBe(EXPLICIT);
    expect(servedSyntax(form('*'), DEFLATED)).toBe(DEFLATED);
  });
  it('by default decompresses what is losslessly compressed and Custos decodes; the rest as stored', () => {
    const JLS = '1.2.840.10008.1.2.4.80';
    const JLS_NEAR = '1.2.840.10008.1.2.4.81';
    const J2K = '1.2.840.10008.1.2.4.91';
    for (const ts of [JLS, '1.2.840.10008.1.2.5', '1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.90']) {
      expect(servedSyntax(form(undefined), ts, true), ts).toBe(EXPLICIT);
      expect(servedSyntax(form(undefined), ts, false), ts).toBe(ts);
      expect(servedSyntax(form('*'), ts, true), ts).toBe(ts);
    }
    for (const ts of [JPEG_BASELINE, '1.2.840.10008.1.2.4.51', JLS_NEAR, J2K])
      expect(servedSyntax(form(undefined), ts, true), ts).toBe(ts);
    expect(servedSyntax(form(undefined), EXPLICIT)).toBe(EXPLICIT);
  });
  it('serves every other object as stored, or not at all', () => {
    expect(servedSyntax(form('*'), JPEG_BASELINE)).toBe(JPEG_BASELINE);
    expect(servedSyntax(form(JPEG_BASELINE), JPEG_BASELINE)).toBe(JPEG_BASELINE);
    expect(servedSyntax(form(EXPLICIT), JPEG_BASELINE)).toBeUndefined();
    expect(servedSyntax(form(EXPLICIT), JPEG_BASELINE, true)).toBe(EXPLICIT);
    expect(servedSyntax(form(IMPLICIT), EXPLICIT)).toBeUndefined();
  });
});

describe('plusRestored', () => {
  it('reads a space inside a media type of the accept query parameter as the + it was typed as', () => {
    expect(plusRestored('application/dicom json')).toBe('application/dicom+json');
    expect(plusRestored('application/dicom json;q=0.5, application/json')).toBe(
      'application/dicom+json;q=0.5, application/json',
    );
    expect(plusRestored('multipart/related; type="application/dicom xml"')).toBe(
      'multipart/related; type="application/dicom+xml"',
    );
    for (const kept of [
      'application/dicom+json',
      'multipart/related; type="application/dicom"; transfer-syntax=*',
    ])
      expect(plusRestored(kept)).toBe(kept);
  });
});

describe('the most specific range decides (RFC 9110 §12.5.1)', () => {
  it('does not bring back through a wildcard a media type refused with q=0', () => {
    expect(renderedMediaType('image/jpeg;q=0, image/*', 'rendered images')).toBe('image/png');
    expect(renderedMediaType('image/jpeg;q=0, image/png;q=0, */*', 'rendered images')).toBe('image/gif');
    expect(() => renderedMediaType('image/jpeg;q=0, image/png;q=0, image/gif;q=0, image/*', 'x')).toThrow(
      /406|image\/jpeg, image\/png or image\/gif/,
    );
    expect(acceptJson('application/dicom+json;q=0, */*', 'QIDO-RS results')).toBe('application/json');
    expect(acceptJson('application/dicom+json;q=0, application/json;q=0, */*', 'x')).toBe(
      DICOM_XML_MULTIPART,
    );
    expect(stowResponseXml('application/dicom+json;q=0, application/json;q=0, */*')).toBe(true);
    expect(acceptDicom('multipart/related; type="application/dicom";q=0, */*')).toEqual([
      { single: true, transferSyntax: undefined, q: 1 },
    ]);
    expect(() => acceptDicom('multipart/related; type="application/dicom";q=0, multipart/*')).toThrow(
      /cannot produce/,
    );
  });

  it('takes */* for the value alone when the multipart form of frames is refused with q=0', () => {
    expect(frameForm(EXPLICIT, 'multipart/related; type="application/octet-stream";q=0, */*')).toEqual({
      type: `application/octet-stream; transfer-syntax=${EXPLICIT}`,
      single: true,
    });
    expect(frameForm(JPEG_BASELINE, 'multipart/related;q=0, */*')).toEqual({
      type: `image/jpeg; transfer-syntax=${JPEG_BASELINE}`,
      single: true,
    });
    expect(() => frameForm(EXPLICIT, 'multipart/*;q=0, application/octet-stream;q=0, */*')).toThrow(
      /cannot produce/,
    );
    // A multipart range that refuses another part type refuses nothing here.
    expect(frameForm(EXPLICIT, 'multipart/related; type="image/jpeg";q=0, */*').single).toBe(false);
  });

  it('weighs a media type by its most specific range, not the first one by q', () => {
    // image/* says 0.9 for GIF (no range of its own), PNG has 0.5 of its own, JPEG 0.1.
    expect(renderedMediaType('image/*;q=0.9, image/png;q=0.5, image/jpeg;q=0.1', 'x')).toBe('image/gif');
    // Equal weights: the range first in the header, then the server's default.
    expect(renderedMediaType('image/png, image/gif', 'x')).toBe('image/png');
    expect(renderedMediaType('image/*', 'x')).toBe('image/jpeg');
    // Parameters the type does not consider are not compared; one that it does must agree.
    expect(acceptJson('application/dicom+json; charset=utf-8', 'x')).toBe('application/dicom+json');
    expect(() => acceptJson('multipart/related; type="application/dicom"', 'x')).toThrow(/cannot produce/);
    // Refusing one transfer syntax does not refuse the form.
    expect(
      acceptDicom(`multipart/related; type="application/dicom"; transfer-syntax=${JPEG_BASELINE};q=0, */*`),
    ).toEqual([{ single: false, transferSyntax: undefined, q: 1 }]);
  });
});
