import { describe, expect, it } from 'vitest';
import { frameForm } from './negotiation.js';

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
});
