// Issue 3: Orthanc as a PACS peer: it stores a study into Custos by C-STORE, retrieves one by C-MOVE, and asks
// Custos for storage commitment (report on a new association back to Orthanc); the same over DICOM TLS both ways.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateSha256 } from '../src/app/certificate.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startOrthancPeer, type OrthancPeer } from './support/orthanc.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { PEER_EXT, writePki } from './support/tls-certs.js';

const admin = systemPrincipal('test');

/** Store an object in Custos directly (an import), not through Orthanc. */
async function importInto(s: TestServer, bytes: Buffer): Promise<void> {
  await s.app.ingest.ingest(
    admin,
    (async function* () {
      yield bytes;
    })(),
    { channel: 'import' },
  );
}

for (const backend of backends()) {
  describe(`Orthanc as a DIMSE peer (${backend})`, () => {
    let s: TestServer;
    let orthanc: OrthancPeer;

    beforeAll(async () => {
      s = await startTestServer(backend);
      orthanc = await startOrthancPeer({ CUSTOS: ['CUSTOS', '127.0.0.1', s.dicomPort!] });
      await s.app.aes.add(admin, {
        title: 'ORTHANC',
        host: '127.0.0.1',
        port: orthanc.dicomPort,
        user: 'admin',
      });
    });

    afterAll(async () => {
      await orthanc?.stop();
      await s?.stop();
    });

    it('receives a study Orthanc sends by C-STORE, then Orthanc retrieves another by C-MOVE', async () => {
      const study = uid(1);
      const series = uid(2);
      const sops = [uid(3), uid(3), uid(3)];
      for (const [i, sop] of sops.entries()) {
        await orthanc.api(
          'POST',
          '/instances',
          makeInstance({
            studyUid: study,
            seriesUid: series,
            sopInstanceUid: sop,
            instanceNumber: i + 1,
            patientId: 'PID-ORTHANC',
          }),
        );
      }
      const studies = await orthanc.api<string[]>('GET', '/studies');
      expect(studies).toHaveLength(1);
      await orthanc.api('POST', '/modalities/CUSTOS/store', { Resources: studies, Synchronous: true });
      const stored = await s.app.index.db
        .selectFrom('instances')
        .select('sop_instance_uid')
        .where('study_uid', '=', study)
        .execute();
      expect(stored.map((r) => r.sop_instance_uid).sort()).toEqual([...sops].sort());

      // A study only Custos has: Orthanc asks Custos to move it to Orthanc.
      const other = uid(4);
      const otherSops = [uid(5), uid(5)];
      for (const sop of otherSops) {
        const bytes = makeInstance({
          studyUid: other,
          seriesUid: uid(6),
          sopInstanceUid: sop,
          patientId: 'PID-MOVE',
        });
        await importInto(s, bytes);
      }
      await orthanc.api('POST', '/modalities/CUSTOS/move', {
        Level: 'Study',
        Resources: [{ StudyInstanceUID: other }],
        TargetAet: 'ORTHANC',
        Synchronous: true,
      });
      const found = await orthanc.api<{ ID: string }[]>('POST', '/tools/find', {
        Level: 'Instance',
        Query: { StudyInstanceUID: other },
      });
      expect(found).toHaveLength(2);

      // Orthanc as a workstation querying the archive by C-FIND (its query/retrieve page), at every level. Its
      // IMAGE-level identifier starts with an empty (0002,0003) in implicit VR: until 5 Dec 2026 Custos read that
      // as the header's explicit VR and answered 0xC000.
      const query = async (Level: string, Query: Record<string, string>) => {
        const q = await orthanc.api<{ ID: string }>('POST', '/modalities/CUSTOS/query', { Level, Query });
        return orthanc.api<Record<string, string>[]>('GET', `/queries/${q.ID}/answers?expand&simplify`);
      };
      const patients = await query('Patient', { PatientID: 'PID-MOVE', NumberOfPatientRelatedStudies: '' });
      expect(patients.map((a) => [a.PatientID, a.NumberOfPatientRelatedStudies])).toEqual([
        ['PID-MOVE', '1'],
      ]);
      const studyAnswers = await query('Study', { PatientID: 'PID-MOVE', ModalitiesInStudy: '' });
      expect(studyAnswers.map((a) => [a.StudyInstanceUID, a.ModalitiesInStudy])).toEqual([[other, 'CT']]);
      const seriesAnswers = await query('Series', {
        StudyInstanceUID: other,
        NumberOfSeriesRelatedInstances: '',
      });
      expect(seriesAnswers.map((a) => a.NumberOfSeriesRelatedInstances)).toEqual(['1', '1']);
      const instances = await query('Instance', { StudyInstanceUID: other, SOPInstanceUID: '' });
      expect(instances.map((a) => a.SOPInstanceUID).sort()).toEqual([...otherSops].sort());

      // A whole patient: Orthanc asks for it by a Study Root C-MOVE at PATIENT level, which Custos refused with
      // 0xA900 ("the Study Root model has no PATIENT level") until 5 Dec 2026. Both of the patient's studies move.
      const patientStudies = [uid(7), uid(8)];
      for (const st of patientStudies) {
        const bytes = makeInstance({
          studyUid: st,
          seriesUid: uid(9),
          sopInstanceUid: uid(10),
          patientId: 'PID-WHOLE',
        });
        await importInto(s, bytes);
      }
      await orthanc.api('POST', '/modalities/CUSTOS/move', {
        Level: 'Patient',
        Resources: [{ PatientID: 'PID-WHOLE' }],
        TargetAet: 'ORTHANC',
        Synchronous: true,
      });
      const moved = await orthanc.api<{ MainDicomTags: { StudyInstanceUID: string } }[]>(
        'POST',
        '/tools/find',
        {
          Level: 'Study',
          Query: { PatientID: 'PID-WHOLE' },
          Expand: true,
        },
      );
      expect(moved.map((x) => x.MainDicomTags.StudyInstanceUID).sort()).toEqual([...patientStudies].sort());
    });

    it('commits to stored instances and reports a missing one as failed (N-ACTION, N-EVENT-REPORT)', async () => {
      const study = uid(7);
      const sop = uid(8);
      const bytes = makeInstance({ studyUid: study, seriesUid: uid(9), sopInstanceUid: sop });
      await s.app.ingest.ingest(
        admin,
        (async function* () {
          yield bytes;
        })(),
        { channel: 'import' },
      );
      const missing = uid(10);
      const ct = '1.2.840.10008.5.1.4.1.1.2';
      const job = await orthanc.api<{ ID: string; Path: string }>(
        'POST',
        '/modalities/CUSTOS/storage-commitment',
        {
          DicomInstances: [
            [ct, sop],
            [ct, missing],
          ],
          Timeout: 30,
        },
      );
      let report: { Status: string; Success: unknown[]; Failures: { SOPInstanceUID: string }[] } | undefined;
      for (let i = 0; i < 100; i++) {
        report = await orthanc.api('GET', job.Path);
        if (report!.Status !== 'Pending') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(report!.Status).toBe('Failure');
      expect(JSON.stringify(report!.Success)).toContain(sop);
      expect(JSON.stringify(report!.Failures)).toContain(missing);
      // The ledger record is written once Orthanc has answered the N-EVENT-REPORT, which can be just after
      // its job shows the report.
      let audit: { outcome: string; record: string }[] = [];
      for (let i = 0; i < 100 && audit.length === 0; i++) {
        audit = await s.app.index.db
          .selectFrom('audit_ledger')
          .select(['outcome', 'record'])
          .where('action', '=', 'storage-commit')
          .execute();
        if (audit.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(audit).toHaveLength(1);
      expect(audit[0]!.record).toContain(missing);
    });
  });

  describe(`Orthanc as a DIMSE peer over DICOM TLS (${backend})`, () => {
    let s: TestServer;
    let orthanc: OrthancPeer;
    let dir: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'custos-orthanc-tls-'));
      writePki(dir, { keyType: 'rsa', cas: ['ca'], leaves: { custos: PEER_EXT, orthanc: PEER_EXT } });
      // TLS only on both sides: a plain association cannot happen.
      s = await startTestServer(backend, {
        dicom: {
          port: null,
          tls: {
            port: 0,
            cert: join(dir, 'custos.crt'),
            key: join(dir, 'custos.key'),
            ca: join(dir, 'ca.crt'),
            requireClientCert: true,
          },
        },
      });
      orthanc = await startOrthancPeer(
        { CUSTOS: { AET: 'CUSTOS', Host: '127.0.0.1', Port: s.dicomTlsPort!, UseDicomTls: true } },
        {
          tls: {
            cert: join(dir, 'orthanc.crt'),
            key: join(dir, 'orthanc.key'),
            trusted: join(dir, 'ca.crt'),
          },
        },
      );
      await s.app.aes.add(admin, {
        title: 'ORTHANC',
        host: '127.0.0.1',
        port: orthanc.dicomPort,
        user: 'admin',
        certSha256: await certificateSha256(join(dir, 'orthanc.crt')),
      });
    });

    afterAll(async () => {
      await orthanc?.stop();
      await s?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('stores by C-STORE over TLS, and C-MOVE over TLS sends the study back to Orthanc over TLS', async () => {
      const study = uid(1);
      const sops = [uid(3), uid(3)];
      for (const [i, sop] of sops.entries())
        await orthanc.api(
          'POST',
          '/instances',
          makeInstance({
            studyUid: study,
            seriesUid: uid(2),
            sopInstanceUid: sop,
            instanceNumber: i + 1,
            patientId: 'PID-ORTLS',
          }),
        );
      const [id] = await orthanc.api<string[]>('GET', '/studies');
      await orthanc.api('POST', '/modalities/CUSTOS/store', { Resources: [id], Synchronous: true });
      const stored = await s.app.index.db
        .selectFrom('instances')
        .select('sop_instance_uid')
        .where('study_uid', '=', study)
        .execute();
      expect(stored.map((r) => r.sop_instance_uid).sort()).toEqual([...sops].sort());

      // Orthanc forgets the study, then asks Custos to move it back: Custos calls Orthanc's TLS port.
      await orthanc.api('DELETE', `/studies/${id}`);
      await orthanc.api('POST', '/modalities/CUSTOS/move', {
        Level: 'Study',
        Resources: [{ StudyInstanceUID: study }],
        TargetAet: 'ORTHANC',
        Synchronous: true,
      });
      const found = await orthanc.api<{ ID: string }[]>('POST', '/tools/find', {
        Level: 'Instance',
        Query: { StudyInstanceUID: study },
      });
      expect(found).toHaveLength(2);
      const moves = await s.app.auditStore.search({ actor: 'ORTHANC', action: ['view-pixels'], limit: 10 });
      expect(moves.length).toBeGreaterThan(0);
    });
  });
}
