// Orthanc 1.10 (Debian) as a PACS that queries Custos before it retrieves, through its REST API as the SCU:
// `POST /modalities/CUSTOS/query` at every level with Orthanc's own return keys, the answers' values against what
// was stored (non-ASCII patient names in ISO_IR 192 and ISO_IR 100), C-MOVEs started from query answers at PATIENT,
// STUDY, SERIES and INSTANCE level checked instance by instance against the original pixel data, and an AE bound to
// a narrower account: its queries come back narrowed at every level, its retrieves of a study it may not see are
// refused 0x0124 (docs/dimse.md), and the ledger records both. Orthanc 1.10.1 has no C-GET SCU (`/modalities/{id}/get` came in a later version: 404 here), so
// C-GET is not exercised with it.
//
// Each runs with Orthanc's DefaultEncoding at its default, Latin1, and at Utf8. Orthanc writes its query in that
// encoding (Specific Character Set ISO_IR 100 or ISO_IR 192) and converts every answer into it when it receives
// it. Custos answers in the query's set where the answer fits it, and in ISO_IR 192 where it does not, which PS3.4
// C.4.1.1.3.2 allows ("The SCP may return responses with a different Specific Character Set"), so with Latin1 the
// ideographic part of a name that Latin-1 cannot hold is lost at Orthanc's end, not on the wire: the test reads the
// same answer with findscu to show that.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { findscuTo } from './support/dcmtk.js';
import { makeInstance, MR_IMAGE, uid } from './support/fixtures.js';
import { startOrthancPeer, type OrthancPeer } from './support/orthanc.js';
import { ledgerHead, ledgerSince, startTestServer, type TestServer } from './support/test-server.js';

const admin = systemPrincipal('test');
const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Stored {
  study: string;
  series: string;
  sop: string;
  pixels: Buffer;
}

for (const backend of backends())
  for (const encoding of ['Latin1', 'Utf8'] as const)
    describe(`Orthanc (DefaultEncoding ${encoding}) queries Custos, then retrieves from the answers (${backend})`, () => {
      let s: TestServer;
      let orthanc: OrthancPeer;
      /** Every instance stored in Custos, by SOP Instance UID. */
      const stored = new Map<string, Stored>();

      // Patient PID-UTF8 (ISO_IR 192): study A, Radiology, a CT series of two instances and an MR series of one;
      // study C, Neurology, one CT instance. Patient PID-LATIN1 (ISO_IR 100): study B, Radiology, one CT instance.
      const utf8Name = 'Gößmann^Zoë=山田^太郎';
      const latin1Name = 'Müller^Renée';
      /** The UTF-8 name as Orthanc shows it once converted into its DefaultEncoding. */
      const utf8NameInOrthanc = encoding === 'Latin1' ? 'Gößmann^Zoë=^' : utf8Name;
      const A = { study: uid(1), ct: uid(2), mr: uid(3) };
      const B = { study: uid(4), series: uid(5) };
      const C = { study: uid(6), series: uid(7) };

      async function store(spec: Parameters<typeof makeInstance>[0], department: string): Promise<void> {
        const pixels = randomBytes(8 * 8 * 2);
        const bytes = makeInstance({
          ...spec,
          extra: [
            ...(spec.extra ?? []),
            { tag: t(0x0008, 0x1040), vr: 'LO', value: department },
            { tag: t(0x7fe0, 0x0010), vr: 'OW', value: pixels },
          ],
        });
        await s.app.ingest.ingest(
          admin,
          (async function* () {
            yield bytes;
          })(),
          { channel: 'import' },
        );
        stored.set(spec.sopInstanceUid, {
          study: spec.studyUid,
          series: spec.seriesUid,
          sop: spec.sopInstanceUid,
          pixels,
        });
      }

      /** Orthanc's C-FIND through its REST API: the query's id and its answers, simplified. */
      const query = async (Level: string, Query: Record<string, string>) => {
        const q = await orthanc.api<{ ID: string }>('POST', '/modalities/CUSTOS/query', { Level, Query });
        const answers = await orthanc.api<Record<string, string>[]>(
          'GET',
          `/queries/${q.ID}/answers?expand&simplify`,
        );
        return { id: q.ID, answers };
      };

      /** Forget everything Orthanc holds, so that each retrieve is checked alone. */
      const emptyOrthanc = async () => {
        for (const id of await orthanc.api<string[]>('GET', '/patients'))
          await orthanc.api('DELETE', `/patients/${id}`);
      };

      /** What Orthanc holds: SOP Instance UID → SHA-256 of its pixel data (frame 0, raw, as Orthanc reads it). */
      const held = async () => {
        const out = new Map<string, string>();
        for (const id of await orthanc.api<string[]>('GET', '/instances')) {
          const tags = await orthanc.api<Record<string, string>>('GET', `/instances/${id}/simplified-tags`);
          const res = await fetch(`${orthanc.base}/instances/${id}/frames/0/raw`);
          expect(res.status).toBe(200);
          out.set(tags.SOPInstanceUID!, sha256(Buffer.from(await res.arrayBuffer())));
        }
        return out;
      };
      const originals = (sops: string[]) =>
        new Map(sops.map((sop) => [sop, sha256(stored.get(sop)!.pixels)]));

      beforeAll(async () => {
        s = await startTestServer(backend);
        orthanc = await startOrthancPeer(
          { CUSTOS: ['CUSTOS', '127.0.0.1', s.dicomPort!] },
          { config: { DefaultEncoding: encoding } },
        );
        await s.app.accounts.add(admin, { username: 'rad1', role: 'radiologist', department: 'Radiology' });
        await s.app.aes.add(admin, {
          title: 'ORTHANC',
          host: '127.0.0.1',
          port: orthanc.dicomPort,
          user: 'admin',
        });
        const a = {
          patientId: 'PID-UTF8',
          patientName: utf8Name,
          accessionNumber: 'ACC-A',
          studyDate: '20240115',
        };
        await store(
          { ...a, studyUid: A.study, seriesUid: A.ct, sopInstanceUid: uid(8), instanceNumber: 1 },
          'Radiology',
        );
        await store(
          { ...a, studyUid: A.study, seriesUid: A.ct, sopInstanceUid: uid(9), instanceNumber: 2 },
          'Radiology',
        );
        await store(
          {
            ...a,
            studyUid: A.study,
            seriesUid: A.mr,
            sopInstanceUid: uid(10),
            sopClassUid: MR_IMAGE,
            modality: 'MR',
            seriesNumber: 2,
          },
          'Radiology',
        );
        await store(
          {
            patientId: 'PID-LATIN1',
            patientName: 'placeholder',
            charset: 'ISO_IR 100',
            extra: [{ tag: t(0x0010, 0x0010), vr: 'PN', value: Buffer.from(latin1Name, 'latin1') }],
            accessionNumber: 'ACC-B',
            studyUid: B.study,
            seriesUid: B.series,
            sopInstanceUid: uid(11),
          },
          'Radiology',
        );
        await store(
          {
            ...a,
            accessionNumber: 'ACC-C',
            studyDate: '20240220',
            studyUid: C.study,
            seriesUid: C.series,
            sopInstanceUid: uid(12),
          },
          'Neurology',
        );
      });

      afterAll(async () => {
        await orthanc?.stop();
        await s?.stop();
      });

      it('answers each level with the keys Orthanc asks for, names in UTF-8 and Latin-1 as stored', async () => {
        const patients = await query('Patient', {
          PatientID: 'PID-*',
          PatientName: '',
          PatientBirthDate: '',
          PatientSex: '',
          NumberOfPatientRelatedStudies: '',
          NumberOfPatientRelatedSeries: '',
          NumberOfPatientRelatedInstances: '',
        });
        expect(
          patients.answers
            .map((p) => [
              p.PatientID,
              p.PatientName,
              p.PatientBirthDate,
              p.PatientSex,
              p.NumberOfPatientRelatedStudies,
              p.NumberOfPatientRelatedSeries,
              p.NumberOfPatientRelatedInstances,
            ])
            .sort(),
        ).toEqual([
          ['PID-LATIN1', latin1Name, '19700101', 'F', '1', '1', '1'],
          ['PID-UTF8', utf8NameInOrthanc, '19700101', 'F', '2', '3', '4'],
        ]);
        // On the wire the name is whole, in ISO_IR 192, for a query in ISO_IR 100 as Orthanc's Latin1 sends it.
        const wire = await findscuTo(
          s.dicomPort,
          'ORTHANC',
          'QueryRetrieveLevel=STUDY',
          'SpecificCharacterSet=ISO_IR 100',
          'PatientID=PID-UTF8',
          'PatientName',
        );
        expect(wire.code, wire.stderr).toBe(0);
        const answered = wire.stderr.slice(wire.stderr.indexOf('Find Response'));
        expect(answered).toContain('(0008,0005) CS [ISO_IR 192]');
        expect(answered).toContain(`(0010,0010) PN [${utf8Name}]`);

        // Orthanc encodes a query in its DefaultEncoding (Latin1 here, Specific Character Set ISO_IR 100): a
        // non-ASCII prefix must match the name stored in ISO_IR 192 and the one stored in ISO_IR 100.
        const charsetInOrthanc = encoding === 'Latin1' ? 'ISO_IR 100' : 'ISO_IR 192';
        const byName = await query('Patient', { PatientName: 'Gößmann*', PatientID: '' });
        expect(byName.answers.map((p) => p.PatientID)).toEqual(['PID-UTF8']);
        const byLatin1Name = await query('Patient', { PatientName: 'Müller*', PatientID: '' });
        expect(byLatin1Name.answers.map((p) => [p.PatientID, p.PatientName])).toEqual([
          ['PID-LATIN1', latin1Name],
        ]);

        const studies = await query('Study', {
          PatientID: 'PID-UTF8',
          PatientName: '',
          StudyInstanceUID: '',
          StudyDate: '',
          AccessionNumber: '',
          StudyDescription: '',
          ModalitiesInStudy: '',
          NumberOfStudyRelatedSeries: '',
          NumberOfStudyRelatedInstances: '',
          SpecificCharacterSet: '',
        });
        expect(
          studies.answers
            .map((a) => [
              a.StudyInstanceUID,
              a.PatientName,
              a.StudyDate,
              a.AccessionNumber,
              a.StudyDescription,
              a.ModalitiesInStudy,
              a.NumberOfStudyRelatedSeries,
              a.NumberOfStudyRelatedInstances,
              a.SpecificCharacterSet,
            ])
            .sort((x, y) => x[3]!.localeCompare(y[3]!)),
        ).toEqual([
          [A.study, utf8NameInOrthanc, '20240115', 'ACC-A', 'CT HEAD', 'CT\\MR', '2', '3', charsetInOrthanc],
          [C.study, utf8NameInOrthanc, '20240220', 'ACC-C', 'CT HEAD', 'CT', '1', '1', charsetInOrthanc],
        ]);
        const latin1Study = await query('Study', {
          AccessionNumber: 'ACC-B',
          PatientName: '',
          StudyInstanceUID: '',
        });
        expect(latin1Study.answers.map((a) => [a.StudyInstanceUID, a.PatientName])).toEqual([
          [B.study, latin1Name],
        ]);

        // A date range and a modality as Orthanc's query page sends them, then the study's series and instances as
        // Orthanc asks for them from an answer (a query of the next level down, keyed by the answer's UIDs).
        const january = await query('Study', {
          PatientID: 'PID-UTF8',
          StudyDate: '20240101-20240131',
          ModalitiesInStudy: 'MR',
          StudyInstanceUID: '',
        });
        expect(january.answers.map((a) => a.StudyInstanceUID)).toEqual([A.study]);
        const both = await query('Study', {
          ModalitiesInStudy: 'CT\\MR',
          PatientID: 'PID-UTF8',
          StudyInstanceUID: '',
        });
        expect(both.answers.map((a) => a.StudyInstanceUID).sort()).toEqual([A.study, C.study].sort());
        const down = await orthanc.api<{ ID: string }>(
          'POST',
          `/queries/${january.id}/answers/0/query-series`,
          {
            Query: { Modality: '', NumberOfSeriesRelatedInstances: '' },
          },
        );
        const downSeries = await orthanc.api<Record<string, string>[]>(
          'GET',
          `/queries/${down.ID}/answers?expand&simplify`,
        );
        expect(
          downSeries.map((a) => [a.SeriesInstanceUID, a.Modality, a.NumberOfSeriesRelatedInstances]).sort(),
        ).toEqual(
          [
            [A.ct, 'CT', '2'],
            [A.mr, 'MR', '1'],
          ].sort(),
        );
        const downMr = downSeries.findIndex((a) => a.Modality === 'MR');
        const downInstances = await orthanc.api<{ ID: string }>(
          'POST',
          `/queries/${down.ID}/answers/${downMr}/query-instances`,
          { Query: { SOPClassUID: '' } },
        );
        const mrInstances = await orthanc.api<Record<string, string>[]>(
          'GET',
          `/queries/${downInstances.ID}/answers?expand&simplify`,
        );
        const mrSop = [...stored.values()].find((x) => x.series === A.mr)!.sop;
        expect(mrInstances.map((a) => [a.SOPInstanceUID, a.SOPClassUID])).toEqual([[mrSop, MR_IMAGE]]);

        const series = await query('Series', {
          StudyInstanceUID: A.study,
          SeriesInstanceUID: '',
          Modality: '',
          SeriesNumber: '',
          NumberOfSeriesRelatedInstances: '',
        });
        expect(
          series.answers
            .map((a) => [a.SeriesInstanceUID, a.Modality, a.SeriesNumber, a.NumberOfSeriesRelatedInstances])
            .sort((x, y) => x[2]!.localeCompare(y[2]!)),
        ).toEqual([
          [A.ct, 'CT', '1', '2'],
          [A.mr, 'MR', '2', '1'],
        ]);

        const instances = await query('Instance', {
          StudyInstanceUID: A.study,
          SeriesInstanceUID: A.ct,
          SOPInstanceUID: '',
          SOPClassUID: '',
          InstanceNumber: '',
        });
        const ctSops = [...stored.values()].filter((x) => x.series === A.ct).map((x) => x.sop);
        expect(
          instances.answers
            .map((a) => [a.SOPInstanceUID, a.SOPClassUID, a.InstanceNumber])
            .sort((x, y) => x[2]!.localeCompare(y[2]!)),
        ).toEqual(ctSops.map((sop, i) => [sop, '1.2.840.10008.5.1.4.1.1.2', String(i + 1)]));
      });

      it('retrieves a patient, a study, a series and an instance by C-MOVE from query answers, each whole', async () => {
        const retrieve = async (id: string, n: number) =>
          orthanc.api('POST', `/queries/${id}/answers/${n}/retrieve`, {
            TargetAet: 'ORTHANC',
            Synchronous: true,
          });
        const sopsOf = (f: (x: Stored) => boolean) => [...stored.values()].filter(f).map((x) => x.sop);

        const patients = await query('Patient', { PatientID: 'PID-LATIN1' });
        expect(patients.answers).toHaveLength(1);
        await emptyOrthanc();
        await retrieve(patients.id, 0);
        expect(await held()).toEqual(originals(sopsOf((x) => x.study === B.study)));

        const studies = await query('Study', { AccessionNumber: 'ACC-A', StudyInstanceUID: '' });
        expect(studies.answers).toHaveLength(1);
        await emptyOrthanc();
        await retrieve(studies.id, 0);
        expect(await held()).toEqual(originals(sopsOf((x) => x.study === A.study)));

        const series = await query('Series', { StudyInstanceUID: A.study, SeriesInstanceUID: A.ct });
        expect(series.answers).toHaveLength(1);
        await emptyOrthanc();
        await retrieve(series.id, 0);
        expect(await held()).toEqual(originals(sopsOf((x) => x.series === A.ct)));

        const latin1 = await query('Instance', { StudyInstanceUID: B.study, SOPInstanceUID: '' });
        expect(latin1.answers).toHaveLength(1);
        await emptyOrthanc();
        await retrieve(latin1.id, 0);
        expect(await held()).toEqual(originals(sopsOf((x) => x.study === B.study)));
        // The object moves as stored: Orthanc reads its name in its own ISO_IR 100.
        const [patient] = await orthanc.api<{ MainDicomTags: Record<string, string> }[]>(
          'GET',
          '/patients?expand',
        );
        expect(patient!.MainDicomTags.PatientName).toBe(latin1Name);
      });

      it('narrows the queries of an AE bound to a radiologist and refuses its retrieves of another department', async () => {
        // Found while the AE still acted as the administrator: the Neurology study C at three levels, and the patient.
        const studyC = await query('Study', { StudyInstanceUID: C.study });
        const seriesC = await query('Series', { StudyInstanceUID: C.study, SeriesInstanceUID: '' });
        const instanceC = await query('Instance', { StudyInstanceUID: C.study, SOPInstanceUID: '' });
        const patient = await query('Patient', { PatientID: 'PID-UTF8' });
        for (const q of [studyC, seriesC, instanceC, patient]) expect(q.answers).toHaveLength(1);

        await s.app.aes.remove(admin, 'ORTHANC');
        await s.app.aes.add(admin, {
          title: 'ORTHANC',
          host: '127.0.0.1',
          port: orthanc.dicomPort,
          user: 'rad1',
        });
        const head = await ledgerHead(s);

        // Queried now, C is not there at any level, nor counted in the patient's numbers.
        const studies = await query('Study', { PatientID: 'PID-UTF8', StudyInstanceUID: '' });
        expect(studies.answers.map((a) => a.StudyInstanceUID)).toEqual([A.study]);
        const patients = await query('Patient', {
          PatientID: 'PID-UTF8',
          NumberOfPatientRelatedStudies: '',
          NumberOfPatientRelatedInstances: '',
        });
        expect(
          patients.answers.map((p) => [p.NumberOfPatientRelatedStudies, p.NumberOfPatientRelatedInstances]),
        ).toEqual([['1', '3']]);
        expect((await query('Series', { StudyInstanceUID: C.study, SeriesInstanceUID: '' })).answers).toEqual(
          [],
        );
        expect((await query('Instance', { StudyInstanceUID: C.study, SOPInstanceUID: '' })).answers).toEqual(
          [],
        );

        // Retrieved from the old answers: C at STUDY, SERIES and IMAGE level is refused 0x0124 (docs/dimse.md: a
        // study the AE may not read), Orthanc reporting the status; nothing arrives.
        const retrieve = (id: string) =>
          orthanc
            .api('POST', `/queries/${id}/answers/0/retrieve`, { TargetAet: 'ORTHANC', Synchronous: true })
            .then(
              () => 'moved',
              (e: Error) => e.message,
            );
        await emptyOrthanc();
        for (const q of [studyC, seriesC, instanceC])
          expect(await retrieve(q.id)).toContain('has failed with DIMSE status 0x0124');
        expect(await orthanc.api<string[]>('GET', '/instances')).toEqual([]);
        // A PATIENT-level retrieve is resolved as the PATIENT-level C-FIND is, among the studies the AE may see: it
        // moves A, whole, and C stays behind.
        expect(await retrieve(patient.id)).toBe('moved');
        const sopsOfA = [...stored.values()].filter((x) => x.study === A.study).map((x) => x.sop);
        expect(await held()).toEqual(originals(sopsOfA));

        const records = (await ledgerSince(s, head)).filter((r) => r.actor.name === 'ORTHANC');
        // Each C-FIND (and the PATIENT-level C-MOVE's own query) is recorded with the studies it answered: A, never C.
        const queries = records.filter((r) => r.action === 'query');
        expect(queries.map((r) => [r.outcome, r.objects?.studies])).toEqual([
          ['success', [A.study]],
          ['success', [A.study]],
          ['success', []],
          ['success', []],
          ['success', [A.study]],
        ]);
        const retrieves = records.filter((r) => r.action === 'view-pixels');
        expect(retrieves.map((r) => [r.outcome, r.studyUid, r.detail?.service])).toEqual([
          ['denied', C.study, 'c-move'],
          ['denied', C.study, 'c-move'],
          ['denied', C.study, 'c-move'],
          ['success', A.study, 'c-move'],
        ]);
        expect(retrieves[3]!.objects?.sopInstanceUids).toEqual(expect.arrayContaining(sopsOfA));
      });
    });
