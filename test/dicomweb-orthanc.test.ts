// Orthanc (Debian's orthanc + orthanc-dicomweb) as a DICOMweb peer: a hospital's Orthanc router that pushes
// studies to Custos by STOW-RS, pulls studies from it by WADO-RS and queries it by QIDO-RS, with a bearer token.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startOrthancPeer, type OrthancPeer } from './support/orthanc.js';
import { startTestServer, type TestServer } from './support/test-server.js';

for (const backend of backends()) {
  describe(`Orthanc as a DICOMweb peer (${backend})`, () => {
    let s: TestServer;
    let orthanc: OrthancPeer;

    beforeAll(async () => {
      s = await startTestServer(backend);
      orthanc = await startOrthancPeer(
        {},
        {
          dicomWebServers: {
            custos: { Url: `${s.dicomweb}/`, HttpHeaders: { Authorization: `Bearer ${s.token}` } },
          },
        },
      );
    });

    afterAll(async () => {
      await orthanc?.stop();
      await s?.stop();
    });

    it('receives a study Orthanc pushes by STOW-RS, byte for byte', async () => {
      const study = uid(1);
      const objects = [uid(3), uid(3), uid(3)].map((sop, i) =>
        makeInstance({
          studyUid: study,
          seriesUid: uid(2),
          sopInstanceUid: sop,
          instanceNumber: i + 1,
          patientId: 'PID-ORTHANC-WEB',
          patientName: 'Weber^Wanda',
        }),
      );
      for (const bytes of objects) await orthanc.api('POST', '/instances', bytes);
      const [orthancStudy] = await orthanc.api<string[]>('GET', '/studies');
      const pushed = await orthanc.api<{ InstancesCount: string }>('POST', '/dicom-web/servers/custos/stow', {
        Resources: [orthancStudy],
        Synchronous: true,
      });
      expect(Number(pushed.InstancesCount)).toBe(3);
      // Stored exactly as Orthanc had them: the SHA-256 of each object is the one of what was put into Orthanc.
      const rows = await s.app.index.db
        .selectFrom('instances')
        .select(['sop_instance_uid', 'sha256'])
        .where('study_uid', '=', study)
        .execute();
      expect(rows).toHaveLength(3);
      const sent = objects.map((b) => createHash('sha256').update(b).digest('hex')).sort();
      expect(rows.map((r) => r.sha256).sort()).toEqual(sent);
      const records = await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['action', 'outcome'])
        .where('action', '=', 'store')
        .where('study_uid', '=', study)
        .execute();
      expect(records.map((r) => `${r.action}:${r.outcome}`)).toEqual(Array(3).fill('store:success'));
    });

    it('finds studies by QIDO-RS and pulls one by WADO-RS into Orthanc', async () => {
      const study = uid(4);
      const series = uid(5);
      const objects = [uid(6), uid(6)].map((sop, i) =>
        makeInstance({
          studyUid: study,
          seriesUid: series,
          sopInstanceUid: sop,
          instanceNumber: i + 1,
          patientId: 'PID-PULL',
          patientName: 'Puller^Paul',
        }),
      );
      for (const bytes of objects)
        await s.app.ingest.ingest(
          systemPrincipal('test'),
          (async function* () {
            yield bytes;
          })(),
          { channel: 'import' },
        );
      const found = await orthanc.api<Record<string, { Value?: unknown[] }>[]>(
        'POST',
        '/dicom-web/servers/custos/get',
        { Uri: '/studies', Arguments: { PatientID: 'PID-PULL' } },
      );
      expect(found.map((r) => r['0020000D']?.Value?.[0])).toEqual([study]);
      const pulled = await orthanc.api<{ ReceivedInstancesCount: string }>(
        'POST',
        '/dicom-web/servers/custos/retrieve',
        { Resources: [{ Study: study }] },
      );
      expect(Number(pulled.ReceivedInstancesCount)).toBe(2);
      // Orthanc now holds the two objects exactly as Custos stored them.
      const ids = await orthanc.api<{ ID: string; Type: string }[]>(
        'POST',
        '/tools/lookup',
        Buffer.from(study),
      );
      expect(ids.map((i) => i.Type)).toEqual(['Study']);
      const instances = await orthanc.api<{ ID: string; MainDicomTags: { SOPInstanceUID: string } }[]>(
        'GET',
        `/studies/${ids[0]!.ID}/instances`,
      );
      expect(instances).toHaveLength(2);
      for (const inst of instances) {
        const file = Buffer.from(
          await (await fetch(`${orthanc.base}/instances/${inst.ID}/file`)).arrayBuffer(),
        );
        const original = objects.find((b) => b.includes(Buffer.from(inst.MainDicomTags.SOPInstanceUID)))!;
        expect(file.equals(original), inst.MainDicomTags.SOPInstanceUID).toBe(true);
      }
    });
  });
}
