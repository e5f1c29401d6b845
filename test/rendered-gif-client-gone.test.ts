// A client that goes away in the middle of an animated GIF (a viewer closing a cine loop): the frames left are not
// rendered, and the GIF's source is closed. Until 7 Dec 2026 the rendering stopped, but when the client left while
// the next image was being rendered, the response waited for ever for a 'close' event already emitted, holding the
// source and the image rendered ahead.
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobStore } from '../src/ports/blob-store.js';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, type TestServer } from './support/test-server.js';

const FRAMES = 30;

describe.each(backends())('an animated GIF whose client goes away on %s', (backend) => {
  let s: TestServer;
  const study = uid(1);
  const series = uid(2);
  const sop = uid(3);
  /** Ranged reads of the object: one a frame. */
  let frameReads = 0;

  beforeAll(async () => {
    s = await startTestServer(backend, {
      wrapBlobs: (inner: BlobStore): BlobStore => ({
        create: (key) => inner.create(key),
        exists: (id) => inner.exists(id),
        list: (prefix) => inner.list(prefix),
        delete: (id) => inner.delete(id),
        sweepTemp: () => inner.sweepTemp(),
        read(id, key, range, expected) {
          if (range) frameReads++;
          return inner.read(id, key, range, expected);
        },
      }),
    });
    const res = await postStow(s, [
      makeInstance({
        studyUid: study,
        seriesUid: series,
        sopInstanceUid: sop,
        rows: 64,
        columns: 64,
        frames: FRAMES,
      }),
    ]);
    expect(res.status, await res.clone().text()).toBe(200);
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
  });

  it('stops rendering frames and closes the GIF once the client has gone', async () => {
    // The GIF's images as the server sends them, the third held until the client has gone.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let closed = false;
    const retrieve = s.app.retrieve;
    const animatedGif = retrieve.animatedGif.bind(retrieve);
    retrieve.animatedGif = async (...args) => {
      const body = await animatedGif(...args);
      return (async function* () {
        let n = 0;
        try {
          for await (const chunk of body) {
            if (++n === 3) await gate;
            yield chunk;
          }
        } finally {
          closed = true;
        }
      })();
    };
    frameReads = 0;
    const url = new URL(`${s.dicomweb}/studies/${study}/series/${series}/instances/${sop}/rendered`);
    await new Promise<void>((resolve, reject) => {
      const req = request(
        url,
        { headers: { Authorization: `Bearer ${s.token}`, Accept: 'image/gif' } },
        (res) => {
          expect(res.statusCode).toBe(200);
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
      req.end();
    });
    // Time for the server to see the connection closed, then the held image is made and offered.
    await sleep(500);
    release();
    for (let i = 0; i < 100 && !closed; i++) await sleep(100);
    expect(closed).toBe(true);
    // Frames 1 to 3 sent or held, the fourth rendered ahead at most: not the 30.
    expect(frameReads).toBeLessThanOrEqual(4);
    const res = await fetch(`${s.dicomweb}/studies?StudyInstanceUID=${study}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(res.status).toBe(200);
  });
});
