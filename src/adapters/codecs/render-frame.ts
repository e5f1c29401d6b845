// One frame rendered for consumer display (WADO-RS rendered, thumbnails, WADO-URI), as a decode thread renders it
// (codec-worker.ts): decoded when compressed, rendered to RGBA, fitted to the viewport and encoded. Until 7 Dec 2026
// all but the decoding ran on the server's event loop: a 1024 × 1024 frame's GIF image held it ~0.1 s, a 500-frame
// animation 55 s, and every other request waited its turn between frames.
import jpeg from 'jpeg-js';
import { CustosError } from '../../domain/errors.js';
import { encodeGif, encodePng, gifHeader, gifImage, type RgbaImage } from '../../domain/image-encoding.js';
import { fitToViewport, renderToRgba } from '../../domain/render.js';
import type { DecodedFrame, RenderedFrame, RenderJob, RenderOutput } from '../../ports/frame-decoder.js';
import { decodeFrame } from './decode-frame.js';

export async function renderFrame(job: RenderJob): Promise<RenderedFrame> {
  const g = job.geometry;
  const decoded: DecodedFrame = job.native
    ? { ...g, pixels: job.stored }
    : await decodeFrame(job.transferSyntaxUid, job.stored, g).catch((err: unknown) => {
        throw err instanceof CustosError
          ? err
          : new CustosError({ code: 'render.decode-failed', message: String(err), httpStatus: 422 });
      });
  const { rows, columns } = decoded;
  const rgba = renderToRgba(decoded.pixels, {
    ...decoded,
    bitsStored: Math.min(g.bitsStored, decoded.bitsAllocated),
    pixelRepresentation: g.pixelRepresentation,
    ...job.params,
  });
  const image = job.viewport
    ? fitToViewport(rgba, columns, rows, job.viewport)
    : { data: rgba, width: columns, height: rows };
  return encode(image, job.output);
}

function encode(image: RgbaImage, output: RenderOutput): RenderedFrame {
  switch (output.type) {
    case 'image/jpeg':
      return { bytes: jpeg.encode(image, output.quality).data };
    case 'image/png':
      return { bytes: encodePng(image) };
    case 'image/gif':
      return { bytes: encodeGif(image) };
    case 'gif-image': {
      if (output.grey !== undefined)
        return { bytes: gifImage(image, { grey: output.grey, delay: output.delay }) };
      const header = gifHeader(image, { loop: true });
      return {
        bytes: Buffer.concat([header.bytes, gifImage(image, { grey: header.grey, delay: output.delay })]),
        grey: header.grey,
      };
    }
  }
}
