// A vendor's private storage SOP class (Siemens CSA Non-Image, 1.3.12.2.1107.5.9.1, which a Siemens MR sends
// with every series): STOW-RS and `custos import` store such an object with a warning (unknown SOP class), and
// C-STORE now does as well. Until 7 Dec 2026 the presentation context was rejected ("abstract syntax not
// supported"), so Orthanc forwarding the series could not send it at all ("Cannot transcode ... to one of [ ]").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startOrthancPeer, type OrthancPeer } from './support/orthanc.js';
import { startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const CSA_NON_IMAGE = '1.3.12.2.1107.5.9.1';
const t = (g: number, e: number) => ((g << 16) | e) >>> 0;

describe.each(backends())('a private storage SOP class over C-STORE, on %s', (backend) => {
  let s: TestServer;
  let orthanc: OrthancPeer;

  beforeAll(async () => {
    s = await startTestServer(backend);
    orthanc = await startOrthancPeer({ CUSTOS: ['CUSTOS', '127.0.0.1', s.dicomPort!] });
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'ORTHANC',
      host: '127.0.0.1',
      port: orthanc.dicomPort,
      user: 'admin',
    });
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s, () => orthanc?.stop())).toEqual([]);
  });

  it('stores the object Orthanc sends in its private class, with the other objects of its series', async () => {
    const studyUid = uid(1);
    const seriesUid = uid(2);
    const privateSop = uid(3);
    const imageSop = uid(3);
    await orthanc.api('POST', '/instances', makeInstance({ studyUid, seriesUid, sopInstanceUid: imageSop }));
    await orthanc.api(
      'POST',
      '/instances',
      makeInstance({
        studyUid,
        seriesUid,
        sopInstanceUid: privateSop,
        sopClassUid: CSA_NON_IMAGE,
        instanceNumber: 2,
        // No pixels: a CSA Non-Image object carries the vendor's private header only.
        omit: [t(0x7fe0, 0x0010)],
      }),
    );
    const [study] = await orthanc.api<string[]>('GET', '/studies');
    await orthanc.api('POST', '/modalities/CUSTOS/store', { Resources: [study], Synchronous: true });
    const stored = await s.app.index.db
      .selectFrom('instances')
      .select(['sop_instance_uid', 'sop_class_uid'])
      .where('study_uid', '=', studyUid)
      .orderBy('sop_instance_uid')
      .execute();
    expect(stored).toEqual(
      [
        { sop_instance_uid: imageSop, sop_class_uid: '1.2.840.10008.5.1.4.1.1.2' },
        { sop_instance_uid: privateSop, sop_class_uid: CSA_NON_IMAGE },
      ].sort((a, b) => a.sop_instance_uid.localeCompare(b.sop_instance_uid)),
    );
  });
});
