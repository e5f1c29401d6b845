// Issue 3: DIMSE services against real dcmtk peers, on every backend.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk, findscuWith, freePort, spawnDcmtk, stopChild, untilListening } from './support/dcmtk.js';
import {
  CT_IMAGE,
  CYRILLIC_PROCEDURE_CODE,
  makeInstance,
  MR_IMAGE,
  pixelBytes,
  uid,
} from './support/fixtures.js';
import { pixelDataOf } from './support/compressed.js';
import { writePart10, type WriteElement } from '../src/dicom/part10-writer.js';
import { getString, parsePart10 } from '../src/dicom/part10-parser.js';
import { datasetToJson } from '../src/dicom/dicom-json.js';
import { Tags } from '../src/dicom/tags.js';
import {
  ledgerHead,
  ledgerSince,
  postStow,
  startTestServer,
  type TestServer,
} from './support/test-server.js';
import { multipartParts } from './support/http.js';
import { openScuAssociation, type ScuOptions } from '../src/transports/dimse/scu-association.js';
import type { Command } from '../src/transports/dimse/command.js';

const admin = systemPrincipal('test');
const VERIFICATION = '1.2.840.10008.1.1';

async function countRows(s: TestServer, table: 'instances' | 'studies') {
  const r = await s.app.index.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** The instances indexed with this study or SOP Instance UID (or one of these SOP Instance UIDs). */
function storedInstances(s: TestServer, column: 'study_uid' | 'sop_instance_uid', value: string | string[]) {
  return s.app.index.db
    .selectFrom('instances')
    .select(['sop_instance_uid', 'transfer_syntax_uid'])
    .where(column, Array.isArray(value) ? 'in' : '=', value)
    .execute();
}

async function blobFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  await walk(dir);
  return out;
}

for (const backend of backends()) {
  describe(`DIMSE with dcmtk (${backend})`, () => {
    let s: TestServer;
    let work: string;
    let port: string;
    const study = uid(1);
    const series = uid(2);
    const files: string[] = [];
    const sops: string[] = [];

    beforeAll(async () => {
      s = await startTestServer(backend, {
        dicom: { artimTimeoutMs: 1000, idleTimeoutMs: 2000, responseTimeoutMs: 3000 },
        // The transfer-syntax objects carry only what the codec needs; header validation is not what they test.
        validation: { byAe: { TSSCU: 'lenient' } },
        // C-FIND and C-MOVE/C-GET read their matches in pages of this size: the 3-instance series and the
        // 3-study patient below span two pages.
        limits: { maxQueryResults: 2 },
      });
      port = String(s.dicomPort);
      work = await mkdtemp(join(tmpdir(), 'custos-dimse-'));
      await s.app.aes.add(admin, { title: 'TESTSCU', host: '127.0.0.1', port: 104, user: 'admin' });
      await s.app.aes.add(admin, { title: 'NOROLE', host: '127.0.0.1', port: 104 });
      await s.app.aes.add(admin, { title: 'TSSCU', host: '127.0.0.1', port: 104, user: 'admin' });
      await s.app.aes.add(admin, { title: 'ELSEWHERE', host: '192.0.2.7', port: 104, user: 'admin' });
      for (let i = 0; i < 3; i++) {
        const sop = uid(3);
        sops.push(sop);
        const f = join(work, `in${i}.dcm`);
        await writeFile(
          f,
          makeInstance({
            studyUid: study,
            seriesUid: series,
            sopInstanceUid: sop,
            patientId: 'PID-DIMSE',
            patientName: 'Dimse^Dora',
            instanceNumber: i + 1,
            rows: 64,
            columns: 64,
          }),
        );
        files.push(f);
      }
    });

    afterAll(async () => {
      await s.stop();
      await rm(work, { recursive: true, force: true });
    });

    const scu = ['-aet', 'TESTSCU', '-aec', 'CUSTOS'];
    /** An association of Custos's own requestor (for what dcmtk's tools cannot send), as TESTSCU unless named. */
    const associate = (
      opts: Omit<ScuOptions, 'host' | 'port' | 'calledAe' | 'callingAe' | 'timeoutMs'> & {
        callingAe?: string;
      },
    ) =>
      openScuAssociation({
        host: '127.0.0.1',
        port: Number(port),
        calledAe: 'CUSTOS',
        callingAe: 'TESTSCU',
        timeoutMs: 5000,
        ...opts,
      });
    /** A C-STORE-RQ on the association's context for `sopClass`: with this data set, or declaring none. */
    const storeRq = (
      scuA: Awaited<ReturnType<typeof associate>>,
      sopClass: string,
      sopInstance: string,
      data?: Buffer,
    ) =>
      scuA.request(
        scuA.context(sopClass)!.id,
        {
          commandField: 0x0001,
          messageId: scuA.conn.messageId(),
          affectedSopClassUid: sopClass,
          affectedSopInstanceUid: sopInstance,
          priority: 0,
          commandDataSetType: data ? 0 : 0x0101,
        },
        data,
      );
    /** A C-STORE-RSP with success for a C-STORE-RQ received on the association (a C-GET's sub-operation). */
    const answerStored = (
      scuA: Awaited<ReturnType<typeof associate>>,
      contextId: number,
      cmd: { messageId?: number; affectedSopClassUid?: string; affectedSopInstanceUid?: string },
    ) =>
      scuA.conn.send(contextId, {
        commandField: 0x8001,
        messageIdBeingRespondedTo: cmd.messageId!,
        affectedSopClassUid: cmd.affectedSopClassUid!,
        affectedSopInstanceUid: cmd.affectedSopInstanceUid!,
        commandDataSetType: 0x0101,
        status: 0,
      });
    /** A Study Root C-GET-RQ at SERIES level for one series, its identifier in `ts` (Explicit VR Little Endian). */
    const seriesGetRq = async (
      scuA: Awaited<ReturnType<typeof associate>>,
      study: string,
      series: string,
      ts = '1.2.840.10008.1.2.1',
    ) => {
      const { encodeDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      const GET = '1.2.840.10008.5.1.4.1.2.2.3';
      return scuA.request(
        scuA.context(GET)!.id,
        {
          commandField: 0x0010,
          messageId: scuA.conn.messageId(),
          affectedSopClassUid: GET,
          priority: 0,
          commandDataSetType: 0,
        },
        encodeDataset(
          [
            { tag: 0x00080052, vr: 'CS', value: 'SERIES' },
            { tag: Tags.StudyInstanceUID, vr: 'UI', value: study },
            { tag: Tags.SeriesInstanceUID, vr: 'UI', value: series },
          ],
          ts,
        ),
      );
    };
    /** A Part 10 file's data set, as a C-STORE carries it (after the file meta information). */
    const dataSetOf = (file: Buffer) => file.subarray(144 + file.readUInt32LE(140));
    /** findscu at this level with these keys (each a `-k`), Study Root unless `-P`, as TESTSCU unless `ae`. */
    const findscu = (
      level: string,
      keys: string[],
      opts: { model?: '-S' | '-P'; ae?: string; debug?: boolean } = {},
    ) => findscuWith(port, opts.ae ?? 'TESTSCU', [`QueryRetrieveLevel=${level}`, ...keys], opts);
    /** The identifier keys of one series, for movescu and getscu (`-k` each). */
    const seriesKeys = (studyUid: string, seriesUid: string) => [
      '-k',
      'QueryRetrieveLevel=SERIES',
      '-k',
      `StudyInstanceUID=${studyUid}`,
      '-k',
      `SeriesInstanceUID=${seriesUid}`,
    ];
    /** What findscu printed from the first pending answer on. */
    const firstAnswer = (stderr: string) => stderr.slice(stderr.indexOf('Find Response: 1 (Pending)'));
    /**
     * dcmtk's storescp on a free port, registered as the AE `title` (a C-MOVE destination), receiving into a new
     * directory named from `prefix`; `flags` go before its own options. Returned once it listens (until 8 Dec 2026
     * each was given 300 ms instead).
     */
    const storescpDestination = async (title: string, prefix: string, ...flags: string[]) => {
      const port = await freePort();
      const out = await mkdtemp(join(work, prefix));
      const scp = spawnDcmtk('storescp', [...flags, '-aet', title, '-od', out, String(port)]);
      try {
        await s.app.aes.add(admin, { title, host: '127.0.0.1', port });
        await untilListening(port);
      } catch (err) {
        await stopChild(scp);
        throw err;
      }
      return { scp, out, port };
    };
    /**
     * C-STORE of the test study (its three instances) by storescu: the retrieves of it store it first, so each runs
     * alone too (`-t`; the same data set again is success). Until 8 Dec 2026 some relied on an earlier test's store.
     */
    const storeTestStudy = async () => {
      const r = await dcmtk('storescu', [...scu, '127.0.0.1', port, ...files]);
      expect(r.code, r.stderr).toBe(0);
    };
    /** movescu of the test study (Study Root) to a registered destination. */
    const moveStudy = (destination: string, ...flags: string[]) =>
      dcmtk('movescu', [
        ...flags,
        ...scu,
        '-S',
        '-aem',
        destination,
        '127.0.0.1',
        port,
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${study}`,
      ]);

    it('answers C-ECHO from a registered AE', async () => {
      const r = await dcmtk('echoscu', [...scu, '127.0.0.1', port]);
      expect(r.code, r.stderr).toBe(0);
    });

    it('takes a User Identity token (PS3.7 D.3.3.7): its user becomes the principal; a bad one is refused', async () => {
      const f = files[0]!;
      const associations = () =>
        s.app.index.db
          .selectFrom('audit_ledger')
          .select(['actor', 'outcome', 'record'])
          .where('action', '=', 'dicom-associate')
          .orderBy('seq', 'desc')
          .limit(1)
          .executeTakeFirstOrThrow();
      // The token of the server's admin account as the passcode of user 'admin', a positive response asked for:
      // until 4 Dec 2026 dcmtk gave up ("Positive response requested but none received").
      const ok = await dcmtk('storescu', [
        ...scu,
        '--user',
        'admin',
        '--password',
        s.token,
        '--pos-response',
        '127.0.0.1',
        port,
        f,
      ]);
      expect(ok.code, ok.stderr).toBe(0);
      const accepted = await associations();
      expect(accepted.outcome).toBe('success');
      expect(JSON.parse(accepted.record)).toMatchObject({
        actor: { kind: 'user', name: 'admin' },
        detail: { ae: 'TESTSCU', userIdentity: 2 },
      });
      // A user whose role may not store: associated as that user, the store is refused by the decision point.
      await s.app.accounts.add(admin, { username: 'dimse-student', role: 'student' });
      const { token } = await s.app.auth.createToken(admin, 'dimse-student');
      const sop = uid(44);
      const other = join(work, 'student.dcm');
      await writeFile(other, makeInstance({ studyUid: uid(45), seriesUid: uid(46), sopInstanceUid: sop }));
      const refused = await dcmtk('storescu', [
        '-v',
        ...scu,
        '--user',
        'dimse-student',
        '--password',
        token,
        '--pos-response',
        '127.0.0.1',
        port,
        other,
      ]);
      expect(refused.stderr).toMatch(/Store Response \(Unknown Status: 0x124\)|Refused: NotAuthorized/);
      expect(await storedInstances(s, 'sop_instance_uid', sop)).toEqual([]);
      // A passcode that is no token, or another user's: no association, and the attempt is recorded.
      for (const [user, passcode, why] of [
        ['admin', 'not-a-token', /user identity \(type 2\)/],
        ['dimse-student', s.token, /the passcode is not a token of user 'dimse-student'/],
      ] as const) {
        const r = await dcmtk('storescu', [
          ...scu,
          '--user',
          user,
          '--password',
          passcode,
          '127.0.0.1',
          port,
          f,
        ]);
        expect(r.code).not.toBe(0);
        expect(r.stderr + r.stdout).toMatch(/Association Rejected/);
        const denied = await associations();
        expect(denied.outcome).toBe('denied');
        expect(JSON.parse(denied.record).detail.reason).toMatch(why);
      }
    });

    it('rejects an unregistered calling AE with A-ASSOCIATE-RJ and audits the attempt', async () => {
      const r = await dcmtk('echoscu', ['-aet', 'STRANGER', '-aec', 'CUSTOS', '127.0.0.1', port]);
      expect(r.code).not.toBe(0);
      expect(r.stderr + r.stdout).toMatch(/Calling AE Title Not Recognized/i);
      const rows = await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['actor', 'outcome', 'record'])
        .where('action', '=', 'dicom-associate')
        .where('actor', '=', 'STRANGER')
        .execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]!.outcome).toBe('denied');
    });

    it('rejects a registered AE calling from another host', async () => {
      const r = await dcmtk('echoscu', ['-aet', 'ELSEWHERE', '-aec', 'CUSTOS', '127.0.0.1', port]);
      expect(r.code).not.toBe(0);
      expect(r.stderr + r.stdout).toMatch(/Calling AE Title Not Recognized/i);
      const row = await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['record'])
        .where('action', '=', 'dicom-associate')
        .where('actor', '=', 'ELSEWHERE')
        .executeTakeFirstOrThrow();
      expect(row.record).toContain('192.0.2.7');
    });

    it('rejects a wrong called AE title', async () => {
      const r = await dcmtk('echoscu', ['-aet', 'TESTSCU', '-aec', 'NOTUS', '127.0.0.1', port]);
      expect(r.code).not.toBe(0);
      expect(r.stderr + r.stdout).toMatch(/Called AE Title Not Recognized/i);
    });

    it('stores instances by C-STORE through the one ingest pipeline', async () => {
      const r = await dcmtk('storescu', [...scu, '127.0.0.1', port, ...files]);
      expect(r.code, r.stderr).toBe(0);
      const rows = await storedInstances(s, 'study_uid', study);
      expect(rows.map((x) => x.sop_instance_uid).sort()).toEqual([...sops].sort());
      const audit = await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['record'])
        .where('action', '=', 'store')
        .where('outcome', '=', 'success')
        .where('actor', '=', 'TESTSCU')
        .execute();
      expect(audit).toHaveLength(3);
      expect(audit[0]!.record).toContain('"channel":"c-store"');
      // Stored as received: the bytes read back are the Part 10 file dcmtk sent (dataset identical).
      const refs = await s.app.retrieve.open(
        admin,
        { studyUid: study, sopInstanceUid: sops[0]! },
        'view-pixels',
        'test',
      );
      const chunks: Buffer[] = [];
      for await (const c of s.app.retrieve.stream(refs[0]!)) chunks.push(c);
      const stored = Buffer.concat(chunks);
      const original = makeInstance({
        studyUid: study,
        seriesUid: series,
        sopInstanceUid: sops[0]!,
        patientId: 'PID-DIMSE',
        patientName: 'Dimse^Dora',
        instanceNumber: 1,
        rows: 64,
        columns: 64,
      });
      const tail = original.subarray(original.length - 8192);
      expect(stored.subarray(stored.length - 8192).equals(tail)).toBe(true);
      // The same objects again from another AE (a router's retry, a second modality console): the file meta header
      // Custos wrote names another Source AE Title, the data sets are the same, so each is the object already
      // stored (until 5 Dec 2026: 0x0111, "already stored with different content"); so is the sender's own file.
      const again = await dcmtk('storescu', ['-aet', 'TSSCU', '-aec', 'CUSTOS', '127.0.0.1', port, ...files]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).not.toMatch(/0x0?111|Unknown Status|Error|Fail/i);
      const file = await s.app.ingest.ingest(
        admin,
        (async function* () {
          yield await readFile(files[0]!);
        })(),
        { channel: 'import' },
      );
      expect(file.status).toBe('duplicate');
      expect((await storedInstances(s, 'study_uid', study)).length).toBe(3);
    });

    it('answers B007 naming the finding for an object archived with warnings or held in quarantine, as STOW-RS does', async () => {
      // Before 4 Dec 2026 both were answered Success: the modality never heard of them.
      const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
      const warned = join(work, 'warned.dcm');
      const held = join(work, 'held.dcm');
      const warnedSop = uid(7);
      const heldSop = uid(7);
      await writeFile(
        warned,
        makeInstance({
          studyUid: uid(8),
          seriesUid: uid(9),
          sopInstanceUid: warnedSop,
          extra: [{ tag: t(0x0008, 0x1030), vr: 'LO', value: 'CT\0HEAD' }],
        }),
      );
      await writeFile(
        held,
        makeInstance({
          studyUid: uid(8),
          seriesUid: uid(9),
          sopInstanceUid: heldSop,
          patientName: 'Doe\0^山田',
        }),
      );
      const r = await dcmtk('storescu', ['-d', ...scu, '127.0.0.1', port, warned, held]);
      expect(r.code, r.stderr).toBe(0);
      const statuses = r.stderr.match(/DIMSE Status +: 0x[0-9a-f]{4}/g) ?? [];
      expect(statuses).toEqual([
        'DIMSE Status                  : 0xb007',
        'DIMSE Status                  : 0xb007',
      ]);
      // The Error Comment (LO, default repertoire) quotes the value in printable ASCII.
      expect(r.stderr).toContain(
        "(0000,0902) LO [(0008,1030) StudyDescription invalid LO: 'CTU+0000HEAD' contains]",
      );
      expect(r.stderr).toContain(
        "(0000,0902) LO [quarantined: (0010,0010) PatientName invalid PN: 'DoeU+0000^U+5C]",
      );
      const archived = await storedInstances(s, 'sop_instance_uid', [warnedSop, heldSop]);
      expect(archived.map((x) => x.sop_instance_uid)).toEqual([warnedSop]);
      const quarantined = await s.app.index.db
        .selectFrom('quarantine')
        .select('sop_instance_uid')
        .where('sop_instance_uid', '=', heldSop)
        .execute();
      expect(quarantined).toHaveLength(1);
    });

    it('answers B000 with an Error Comment that holds no backslash, the LO value delimiter', async () => {
      // Until 6 Dec 2026 the comment quoted the character set as sent, 'ISO_IR 100\ISO_IR 999': two values.
      const f = join(work, 'unknown-charset.dcm');
      await writeFile(
        f,
        makeInstance({
          studyUid: uid(5),
          seriesUid: uid(6),
          sopInstanceUid: uid(4),
          charset: 'ISO_IR 100\\ISO_IR 999',
        }),
      );
      const r = await dcmtk('storescu', ['-d', ...scu, '127.0.0.1', port, f]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('DIMSE Status                  : 0xb000');
      expect(r.stderr).toContain(
        "(0000,0902) LO [unknown Specific Character Set 'ISO_IR 100/ISO_IR 999': text dec]",
      );
    });

    it('answers B000 naming the attribute whose bytes its character set does not define, and stores it', async () => {
      // Until 6 Dec 2026 such bytes were read as U+FFFD without a word.
      const f = join(work, 'bad-utf8.dcm');
      const sop = uid(4);
      await writeFile(
        f,
        makeInstance({
          studyUid: uid(5),
          seriesUid: uid(6),
          sopInstanceUid: sop,
          extra: [{ tag: 0x00081030, vr: 'LO', value: Buffer.from('M\xfcller', 'latin1') }],
        }),
      );
      const r = await dcmtk('storescu', ['-d', ...scu, '127.0.0.1', port, f]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('DIMSE Status                  : 0xb000');
      expect(r.stderr).toContain(
        '(0000,0902) LO [(0008,1030) StudyDescription: not valid UTF-8, read as U+FFFD]',
      );
      expect(await storedInstances(s, 'sop_instance_uid', sop)).toHaveLength(1);
    });

    it('refuses C-STORE from an AE without a role: 0x0124 and nothing stored', async () => {
      const sop = uid(4);
      const f = join(work, 'norole.dcm');
      await writeFile(f, makeInstance({ studyUid: uid(5), seriesUid: uid(6), sopInstanceUid: sop }));
      const r = await dcmtk('storescu', ['-v', '-aet', 'NOROLE', '-aec', 'CUSTOS', '127.0.0.1', port, f]);
      expect(r.stderr).toMatch(/Store Response \(Unknown Status: 0x124\)/);
      const found = await storedInstances(s, 'sop_instance_uid', sop);
      expect(found).toEqual([]);
    });

    for (const [model, flag] of [
      ['patient root', '-P'],
      ['study root', '-S'],
    ] as const) {
      it(`answers C-FIND at every level (${model})`, async () => {
        const levels = flag === '-P' ? ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'] : ['STUDY', 'SERIES', 'IMAGE'];
        for (const level of levels) {
          const keys = ['PatientID=PID-DIMSE', 'PatientName'];
          if (level !== 'PATIENT') keys.push('StudyInstanceUID', 'StudyDate');
          if (level === 'SERIES' || level === 'IMAGE')
            keys.push(`StudyInstanceUID=${study}`, 'SeriesInstanceUID', 'Modality');
          if (level === 'IMAGE') keys.push(`SeriesInstanceUID=${series}`, 'SOPInstanceUID', 'InstanceNumber');
          const r = await findscu(level, keys, { model: flag });
          expect(r.code, `${level}: ${r.stderr}`).toBe(0);
          const answers = (r.stderr.match(/Find Response: \d+ \(Pending\)/g) ?? []).length;
          expect(answers, `${level}: ${r.stderr}`).toBe(level === 'IMAGE' ? 3 : 1);
          expect(r.stderr).toContain('Dimse^Dora');
          if (level === 'IMAGE') for (const sop of sops) expect(r.stderr).toContain(sop);
          if (level === 'STUDY') expect(r.stderr).toContain(study);
        }
      });
    }

    it('answers every match by C-FIND and C-GET, past one page of query results (limits.maxQueryResults)', async () => {
      const studies = [uid(7), uid(7), uid(7)];
      for (const [i, st] of studies.entries()) {
        const bytes = makeInstance({
          studyUid: st,
          seriesUid: uid(8),
          sopInstanceUid: uid(9),
          patientId: 'PID-PAGES',
          patientName: 'Pages^Paula',
          studyDate: `2024010${i + 1}`,
        });
        await s.app.ingest.ingest(
          admin,
          (async function* () {
            yield bytes;
          })(),
          { channel: 'import' },
        );
      }
      const find = (level: string, ...keys: string[]) => findscu(level, keys, { model: '-P' });
      const patient = await find('PATIENT', 'PatientID=PID-PAGES', 'NumberOfPatientRelatedStudies');
      expect(patient.code, patient.stderr).toBe(0);
      expect(patient.stderr.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(1);
      expect(patient.stderr).toMatch(/\(0020,1200\) IS \[3 ?\]/);
      const study = await find('STUDY', 'PatientID=PID-PAGES', 'StudyInstanceUID');
      expect(study.code, study.stderr).toBe(0);
      expect(study.stderr.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(3);
      for (const st of studies) expect(study.stderr).toContain(st);
      expect(study.stderr).toMatch(/Final Find Response \(Success\)/);
      const out = await mkdtemp(join(work, 'get-patient-'));
      const got = await dcmtk('getscu', [
        ...scu,
        '-P',
        '-od',
        out,
        '127.0.0.1',
        port,
        '-k',
        'QueryRetrieveLevel=PATIENT',
        '-k',
        'PatientID=PID-PAGES',
      ]);
      expect(got.code, got.stderr).toBe(0);
      expect(await readdir(out)).toHaveLength(3);
      // Patient ID is a unique key of a retrieve, matched as one value: a wildcard is refused (0xA900), never
      // read as "every patient whose ID begins with PID-".
      const wildOut = await mkdtemp(join(work, 'get-wild-'));
      const wild = await dcmtk('getscu', [
        ...scu,
        '-P',
        '-od',
        wildOut,
        '127.0.0.1',
        port,
        '-k',
        'QueryRetrieveLevel=PATIENT',
        '-k',
        'PatientID=PID-*',
      ]);
      expect(wild.stderr).toMatch(/DIMSE status is: Error: DataSetDoesNotMatchSOPClass/);
      expect(await readdir(wildOut)).toHaveLength(0);
    });

    it("answers the study modules' attributes at the STUDY level, by C-FIND and QIDO-RS (Referenced Study Sequence)", async () => {
      const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
      const [own, referenced] = [uid(66), uid(67)];
      const stored = await postStow(s, [
        makeInstance({
          studyUid: own,
          seriesUid: uid(68),
          sopInstanceUid: uid(69),
          extra: [
            {
              tag: t(0x0008, 0x1110),
              vr: 'SQ',
              value: [
                [
                  { tag: t(0x0008, 0x1150), vr: 'UI', value: '1.2.840.10008.3.1.2.3.1' },
                  { tag: t(0x0008, 0x1155), vr: 'UI', value: referenced },
                ],
              ],
            },
            { tag: t(0x0008, 0x1048), vr: 'PN', value: 'Record^Rita' },
            { tag: t(0x0012, 0x0050), vr: 'LO', value: 'BASELINE' },
          ],
        }),
      ]);
      expect(stored.status).toBe(200);
      const r = await findscu('STUDY', [
        `StudyInstanceUID=${own}`,
        'ReferencedStudySequence',
        'PhysiciansOfRecord',
        'ClinicalTrialTimePointID',
      ]);
      expect(r.code, r.stderr).toBe(0);
      const answer = firstAnswer(r.stderr);
      expect(answer).toContain(referenced);
      expect(answer).toContain('Record^Rita');
      expect(answer).toContain('BASELINE');
      const res = await fetch(
        `${s.dicomweb}/studies?StudyInstanceUID=${own}&includefield=ReferencedStudySequence,PhysiciansOfRecord`,
        { headers: { Authorization: `Bearer ${s.token}` } },
      );
      const [study] = (await res.json()) as Record<string, { Value?: unknown[] }>[];
      expect(JSON.stringify(study!['00081110'])).toContain(referenced);
      expect(study!['00081048']?.Value).toEqual([{ Alphabetic: 'Record^Rita' }]);
    });

    it('answers a PATIENT-level C-FIND per Patient ID and Issuer, with the patient attributes asked for', async () => {
      const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
      // One Patient ID, two issuers: Smith^John (HOSP_A, two studies, one of two instances) and Smith^Johnny
      // (HOSP_B, one study).
      const patients = [
        { issuer: 'HOSP_A', name: 'Smith^John', birth: '19600101', other: 'OLD-A', instances: 2 },
        { issuer: 'HOSP_A', name: 'Smith^John', birth: '19600101', other: 'OLD-A', instances: 1 },
        { issuer: 'HOSP_B', name: 'Smith^Johnny', birth: '19610101', other: 'OLD-B', instances: 1 },
      ];
      for (const p of patients) {
        const [st, se] = [uid(63), uid(64)];
        for (let i = 0; i < p.instances; i++) {
          const bytes = makeInstance({
            studyUid: st,
            seriesUid: se,
            sopInstanceUid: uid(65),
            patientId: 'PID-ISSUERS',
            patientName: p.name,
            birthDate: p.birth,
            extra: [
              { tag: t(0x0010, 0x0021), vr: 'LO', value: p.issuer },
              { tag: t(0x0010, 0x0032), vr: 'TM', value: '101500' },
              { tag: t(0x0010, 0x1000), vr: 'LO', value: p.other },
              { tag: t(0x0010, 0x4000), vr: 'LT', value: `comment ${p.issuer}` },
            ],
          });
          await s.app.ingest.ingest(
            admin,
            (async function* () {
              yield bytes;
            })(),
            { channel: 'import' },
          );
        }
      }
      const find = (...keys: string[]) =>
        findscu('PATIENT', ['PatientID=PID-ISSUERS', ...keys], { model: '-P' });
      // 0xFF01 (Pending: WarningUnsupportedOptionalKeys) where a key Custos does not match on has a value.
      const answersOf = (stderr: string) => stderr.split(/Find Response: \d+ \(Pending[^)]*\)/).slice(1);
      // Without IssuerOfPatientID among the keys (until 6 Dec 2026 one answer: John's name, three studies).
      const counts = await find(
        'PatientName',
        'NumberOfPatientRelatedStudies',
        'NumberOfPatientRelatedSeries',
        'NumberOfPatientRelatedInstances',
      );
      expect(counts.code, counts.stderr).toBe(0);
      const answers = answersOf(counts.stderr);
      expect(answers).toHaveLength(2);
      const john = answers.find((a) => a.includes('Smith^John]'))!;
      const johnny = answers.find((a) => a.includes('Smith^Johnny'))!;
      expect(john).toMatch(/\(0020,1200\) IS \[2 ?\]/);
      expect(john).toMatch(/\(0020,1202\) IS \[2 ?\]/);
      expect(john).toMatch(/\(0020,1204\) IS \[3 ?\]/);
      expect(johnny).toMatch(/\(0020,1200\) IS \[1 ?\]/);
      // The Issuer tells them apart but was not asked for: it is not answered.
      for (const a of answers) expect(a).not.toMatch(/\(0010,0021\)/);
      // Patient attributes other than the matching keys come back with their values (until 6 Dec 2026 at zero
      // length), and a value given for one Custos does not match on is matched universally (until then 0xA900).
      const optional = await find(
        'IssuerOfPatientID=HOSP_B',
        '(0010,1000)',
        'PatientComments',
        'PatientBirthTime=1200',
      );
      expect(optional.code, optional.stderr).toBe(0);
      // PatientBirthTime is not matched on: the answers say so (PS3.4 Table C.4-1), until 7 Dec 2026 they did not.
      expect(optional.stderr).toMatch(/Find Response: 1 \(Pending: WarningUnsupportedOptionalKeys\)/);
      const [only, ...rest] = answersOf(optional.stderr);
      expect(rest).toHaveLength(0);
      expect(only).toMatch(/\(0010,1000\) LO \[OLD-B ?\]/);
      expect(only).toMatch(/\(0010,4000\) LT \[comment HOSP_B\]/);
      expect(only).toMatch(/\(0010,0032\) TM \[101500\]/);
      // A study attribute asked of a patient is left out; matching on one is still refused.
      const studyKey = await find('StudyDescription');
      expect(answersOf(studyKey.stderr)[0]).not.toMatch(/\(0008,1030\)/);
      const studyMatch = await find('StudyDate=20240115');
      expect(studyMatch.stderr).toMatch(/Final Find Response \(Error: DataSetDoesNotMatchSOPClass\)/);
    });

    it('answers 0xFF01 (optional keys not supported) when a key it does not match on was given a value', async () => {
      const stored = await dcmtk('storescu', [...scu, '127.0.0.1', port, ...files]);
      expect(stored.code, stored.stderr).toBe(0);
      const status = async (...keys: string[]) => {
        const r = await findscu('STUDY', [`StudyInstanceUID=${study}`, ...keys], { debug: true });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/DIMSE Status +: 0x0000: Success/);
        const pending = [...r.stderr.matchAll(/DIMSE Status +: (0xff0[01])/g)].map((m) => m[1]);
        expect(pending, keys.join(' ')).toHaveLength(1);
        return pending[0];
      };
      // Matched keys, and return keys without a value or with universal matching (*): 0xFF00.
      expect(await status('PatientID=PID-DIMSE', 'PatientName=Dimse*')).toBe('0xff00');
      expect(await status('PatientAge', 'PatientWeight=*', '(0040,0275)[0].(0040,0009)')).toBe('0xff00');
      // A private creator's value names its block, and is no matching.
      expect(await status('(0009,0010)=ACME 1.0', '(0009,1001)')).toBe('0xff00');
      // A value for a key Custos matches universally (a return key, a sequence item's key): 0xFF01,
      // "Matches are continuing - Warning that one or more Optional Keys were not supported for existence and/or
      // matching for this Identifier" (PS3.4 Table C.4-1). Until 7 Dec 2026 these were 0xFF00 too.
      expect(await status('PatientAge=040Y')).toBe('0xff01');
      expect(await status('(0040,0275)[0].(0040,0009)=REQ-7')).toBe('0xff01');
      expect(await status('PatientID=PID-DIMSE', 'SOPClassesInStudy=1.2.840.10008.5.1.4.1.1.2')).toBe(
        '0xff01',
      );
    });

    it('refuses a C-FIND key holding bytes its Specific Character Set does not define (A900 naming it)', async () => {
      const stored = await dcmtk('storescu', [...scu, '127.0.0.1', port, ...files]);
      expect(stored.code, stored.stderr).toBe(0);
      // 'Dimse^D\xf6ra*': Latin-1 bytes, declared as UTF-8 by one query and as Latin-1 by the other. A command line
      // argument cannot carry them, so findscu reads the identifier from a file.
      const query = async (charset: string) => {
        const file = join(work, `query-${charset.replace(/\W/g, '')}.dcm`);
        await writeFile(
          file,
          writePart10(
            [
              { tag: Tags.SpecificCharacterSet, vr: 'CS', value: charset },
              { tag: 0x00080052, vr: 'CS', value: 'STUDY' },
              { tag: 0x00100010, vr: 'PN', value: Buffer.from('Dimse^D\xf6ra*', 'latin1') },
              { tag: Tags.StudyInstanceUID, vr: 'UI', value: '' },
            ],
            { transferSyntaxUid: '1.2.840.10008.1.2.1' },
          ),
        );
        return dcmtk('findscu', ['-d', ...scu, '-S', '127.0.0.1', port, file]);
      };
      const utf8 = await query('ISO_IR 192');
      // Until 7 Dec 2026 the bytes were read as U+FFFD and matched so: no answer, and a Success saying nothing.
      expect(utf8.stderr).toMatch(/DIMSE Status +: 0xa900/);
      expect(utf8.stderr).toContain('LO [PatientName: bytes not defined in ISO_IR 192]');
      expect(utf8.stderr).not.toMatch(/0xff00/);
      const latin1 = await query('ISO_IR 100');
      expect(latin1.stderr).toMatch(/DIMSE Status +: 0x0000: Success/);
    });

    it('returns the attributes a sequence return key asks for in its item, or the items whole for an empty one', async () => {
      const [own, ownSeries] = [uid(57), uid(58)];
      const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
      const stored = await postStow(s, [
        makeInstance({
          studyUid: own,
          seriesUid: ownSeries,
          sopInstanceUid: uid(59),
          extra: [
            {
              tag: t(0x0040, 0x0275),
              vr: 'SQ',
              value: [
                [
                  { tag: t(0x0040, 0x0007), vr: 'LO', value: 'CT HEAD PLAIN' },
                  { tag: t(0x0040, 0x0009), vr: 'SH', value: 'SPS-7' },
                  { tag: t(0x0040, 0x1001), vr: 'SH', value: 'RP-7' },
                ],
              ],
            },
            { tag: t(0x0009, 0x0010), vr: 'LO', value: 'CUSTOS TEST' },
            { tag: t(0x0009, 0x1001), vr: 'LO', value: 'private value' },
          ],
        }),
      ]);
      expect(stored.status).toBe(200);
      const findAt = (level: string, ...keys: string[]) =>
        findscu(level, [`StudyInstanceUID=${own}`, ...keys]);
      const find = (...keys: string[]) => findAt('SERIES', 'SeriesInstanceUID', ...keys);
      const narrowed = await find('(0040,0275)[0].(0040,0009)', '(0040,0275)[0].(0040,0008)');
      expect(narrowed.code, narrowed.stderr).toBe(0);
      const answer = firstAnswer(narrowed.stderr);
      expect(answer).toMatch(/\(0040,0009\) SH \[SPS-7 ?\]/);
      expect(answer).toMatch(/\(0040,0008\) SQ \(Sequence with (explicit|undefined) length #=0\)/);
      // Not asked for: until 5 Dec 2026 every attribute of the item came back.
      expect(answer).not.toContain('CT HEAD PLAIN');
      expect(answer).not.toContain('RP-7');
      const whole = await find('RequestAttributesSequence');
      expect(whole.code, whole.stderr).toBe(0);
      const all = firstAnswer(whole.stderr);
      for (const v of ['CT HEAD PLAIN', 'SPS-7', 'RP-7']) expect(all).toContain(v);
      // A private return key: its value at the IMAGE level, where every attribute is kept (until 5 Dec 2026 it
      // came back at zero length); left out at the STUDY level, which does not keep it, rather than answered
      // as if the object had no value.
      const image = await findAt(
        'IMAGE',
        `SeriesInstanceUID=${ownSeries}`,
        'SOPInstanceUID',
        '(0009,0010)',
        '(0009,1001)',
      );
      expect(image.code, image.stderr).toBe(0);
      const imageAnswer = firstAnswer(image.stderr);
      expect(imageAnswer).toContain('CUSTOS TEST');
      expect(imageAnswer).toContain('private value');
      const study = await findAt('STUDY', '(0009,1001)', 'StudyDescription');
      expect(study.code, study.stderr).toBe(0);
      const studyAnswer = firstAnswer(study.stderr);
      expect(studyAnswer).toMatch(/\(0008,1030\) LO \[CT HEAD ?\]/);
      expect(studyAnswer).not.toMatch(/\(0009,1001\)/);
    });

    it('answers a C-FIND with a sequence whose item names its own character set, that item in UTF-8 too', async () => {
      // Until 6 Dec 2026 the item kept ISO_IR 144, which the writer could not encode Cyrillic in: 0xC000 for the
      // whole C-FIND.
      const [own, ownSeries] = [uid(63), uid(64)];
      const stored = await postStow(s, [
        makeInstance({
          studyUid: own,
          seriesUid: ownSeries,
          sopInstanceUid: uid(65),
          extra: [CYRILLIC_PROCEDURE_CODE],
        }),
      ]);
      expect(stored.status).toBe(200);
      const r = await findscu('STUDY', [`StudyInstanceUID=${own}`, 'ProcedureCodeSequence']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/0xc000|Failed/i);
      const answer = firstAnswer(r.stderr);
      expect(answer).toMatch(/\(0008,0104\) LO \[Рентген ?\]/);
      expect(answer.match(/\(0008,0005\) CS \[ISO_IR 192\]/g)).toHaveLength(2);
    });

    it('answers a C-FIND for a study whose multi-valued person name has an empty value, that value empty', async () => {
      // Until 6 Dec 2026 the empty value (null in the query's DICOM JSON) made every C-FIND matching the study fail
      // with 0xC000 "Cannot read properties of null", while QIDO-RS answered it.
      const [own, ownSeries] = [uid(74), uid(75)];
      const stored = await postStow(s, [
        makeInstance({
          studyUid: own,
          seriesUid: ownSeries,
          sopInstanceUid: uid(76),
          extra: [{ tag: Tags.ReferringPhysicianName, vr: 'PN', value: ['Jones^Ann', '', 'Smith^John'] }],
        }),
      ]);
      expect(stored.status).toBe(202);
      for (const [level, keys] of [
        ['STUDY', [`StudyInstanceUID=${own}`, 'ReferringPhysicianName']],
        ['SERIES', [`StudyInstanceUID=${own}`, 'SeriesInstanceUID']],
        ['IMAGE', [`StudyInstanceUID=${own}`, `SeriesInstanceUID=${ownSeries}`, 'SOPInstanceUID']],
      ] as const) {
        const r = await findscu(level, [...keys]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr, level).not.toMatch(/0xc000|Failed|Error/i);
        expect(r.stderr.match(/Find Response: \d+ \(Pending\)/g), level).toHaveLength(1);
      }
      const study = firstAnswer(
        (await findscu('STUDY', [`StudyInstanceUID=${own}`, 'ReferringPhysicianName'])).stderr,
      );
      expect(study).toMatch(/\(0008,0090\) PN \[Jones\^Ann\\\\Smith\^John ?\] +# +\d+, 3 /);
    });

    it('finds by C-FIND a name given by its alphabetic group alone in a name stored with three groups', async () => {
      // Until 7 Dec 2026 such a value was compared with the whole stored value: an exact alphabetic name found
      // nothing. The same query service answers QIDO-RS (test/dicomweb.test.ts).
      const [own, other] = [uid(77), uid(78)];
      const prefix = `PNGROUP-${uid(79)}`;
      const stored = await postStow(s, [
        makeInstance({
          studyUid: own,
          seriesUid: uid(80),
          sopInstanceUid: uid(81),
          patientId: `${prefix}-0`,
          patientName: 'Gößmann^Zoë=山田^太郎=やまだ^たろう',
        }),
        makeInstance({
          studyUid: other,
          seriesUid: uid(82),
          sopInstanceUid: uid(83),
          patientId: `${prefix}-1`,
          patientName: 'Gößmann^Zoëlle=山田^花子',
        }),
      ]);
      expect(stored.status).toBe(200);
      const studiesFound = async (name: string) => {
        const r = await findscu('STUDY', [
          'SpecificCharacterSet=ISO_IR 192',
          `PatientID=${prefix}-*`,
          `PatientName=${name}`,
          'StudyInstanceUID',
        ]);
        expect(r.code, r.stderr).toBe(0);
        return [...r.stderr.matchAll(/\(0020,000d\) UI \[([\d.]+)\0?\]/g)].map((m) => m[1]);
      };
      expect(await studiesFound('Gößmann^Zoë')).toEqual([own]);
      expect(await studiesFound('gö?mann^zoë')).toEqual([own]);
      expect(await studiesFound('Gößmann^Zoë=山田^花子')).toEqual([]);
    });

    it('finds a name with trailing empty components (DOE^JOHN^^^) by the name without them, and the reverse', async () => {
      // PS3.5 §6.2.1.1: trailing empty components and their delimiters may be left out, so both are one name. Until
      // 7 Dec 2026 each found only itself, by C-FIND and QIDO-RS alike.
      const [trailing, plain] = [uid(90), uid(91)];
      const prefix = `PNTRAIL-${uid(92)}`;
      const dir = await mkdtemp(join(work, 'pn-trail-'));
      const sent = [
        { study: trailing, name: 'TRAIL^TOM^^^', referring: 'House^Gregory' },
        { study: plain, name: 'Plain^Pete', referring: 'Wilson^James^^^' },
      ];
      const paths: string[] = [];
      for (const [i, f] of sent.entries()) {
        const path = join(dir, `${i}.dcm`);
        await writeFile(
          path,
          makeInstance({
            studyUid: f.study,
            seriesUid: uid(93),
            sopInstanceUid: uid(94),
            patientId: `${prefix}-${i}`,
            patientName: f.name,
            referringPhysician: f.referring,
          }),
        );
        paths.push(path);
      }
      const stored = await dcmtk('storescu', [...scu, '127.0.0.1', port, ...paths]);
      expect(stored.code, stored.stderr).toBe(0);
      const studiesFound = async (...keys: string[]) => {
        const r = await findscu('STUDY', [`PatientID=${prefix}-*`, ...keys, 'StudyInstanceUID']);
        expect(r.code, r.stderr).toBe(0);
        return [...r.stderr.matchAll(/\(0020,000d\) UI \[([\d.]+)\0?\]/g)].map((m) => m[1]);
      };
      expect(await studiesFound('PatientName=Trail^Tom')).toEqual([trailing]);
      expect(await studiesFound('PatientName=TRAIL^TOM^^^')).toEqual([trailing]);
      expect(await studiesFound('PatientName=Trail^T?m')).toEqual([trailing]);
      expect(await studiesFound('PatientName=Plain^Pete^^^')).toEqual([plain]);
      expect(await studiesFound('PatientName=Plain^Pete^')).toEqual([plain]);
      // Any middle name and the rest, none included: both stored forms.
      expect(await studiesFound('PatientName=Trail^Tom^*')).toEqual([trailing]);
      expect(await studiesFound('PatientName=Plain^Pete^*')).toEqual([plain]);
      expect(await studiesFound('ReferringPhysicianName=Wilson^James')).toEqual([plain]);
      expect(await studiesFound('ReferringPhysicianName=House^Gregory^^^')).toEqual([trailing]);
      // A component inside the name is no trailing one: Trail^^Tom is another name.
      expect(await studiesFound('PatientName=Trail^^Tom')).toEqual([]);
      const qido = await fetch(`${s.dicomweb}/studies?PatientName=${encodeURIComponent('trail^tom')}`, {
        headers: { authorization: `Bearer ${s.token}`, accept: 'application/dicom+json' },
      });
      expect(qido.status).toBe(200);
      const found = ((await qido.json()) as { '0020000D': { Value: string[] } }[]).map(
        (r) => r['0020000D'].Value[0],
      );
      expect(found).toEqual([trailing]);
    });

    it("answers a private key from the block its query's private creator names, wherever the object keeps it", async () => {
      // PS3.5 §7.8.1: (0009,0010)=ACME 1.0 with (0009,1001) asks for ACME 1.0's element 01; this object keeps OTHER's
      // block at (0009,10xx) and ACME's at (0009,11xx). Until 7 Dec 2026 the raw tag was read: OTHER's value came back.
      const studyUid = uid(95);
      const seriesUid = uid(96);
      const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
      const path = join(await mkdtemp(join(work, 'private-')), 'p.dcm');
      await writeFile(
        path,
        makeInstance({
          studyUid,
          seriesUid,
          sopInstanceUid: uid(97),
          patientId: 'PID-PRIVATE',
          extra: [
            { tag: t(0x0009, 0x0010), vr: 'LO', value: 'OTHER' },
            { tag: t(0x0009, 0x0011), vr: 'LO', value: 'ACME 1.0' },
            { tag: t(0x0009, 0x1001), vr: 'LO', value: 'other-value' },
            { tag: t(0x0009, 0x1101), vr: 'LO', value: 'acme-value' },
          ],
        }),
      );
      const stored = await dcmtk('storescu', ['-R', ...scu, '127.0.0.1', port, path]);
      expect(stored.code, stored.stderr).toBe(0);
      const answer = async (creator: string) => {
        const r = await findscu('IMAGE', [
          `StudyInstanceUID=${studyUid}`,
          `SeriesInstanceUID=${seriesUid}`,
          `(0009,0010)=${creator}`,
          '(0009,1001)',
        ]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(1);
        const a = firstAnswer(r.stderr);
        return {
          creator: /\(0009,0010\) LO \[([^\]]*?) ?\]/.exec(a)?.[1],
          // A value, or '' for an element answered at zero length (absent: undefined).
          value: /\(0009,1001\) (?:LO \[([^\]]*?) ?\]|(\w\w) \(no value available\))/
            .exec(a)
            ?.slice(1)
            .map((v, i) => (i === 0 ? v : v === undefined ? undefined : ''))
            .find((v) => v !== undefined),
        };
      };
      expect(await answer('ACME 1.0')).toEqual({ creator: 'ACME 1.0', value: 'acme-value' });
      expect(await answer('OTHER')).toEqual({ creator: 'OTHER', value: 'other-value' });
      // A creator the object does not hold: its element has no value here.
      expect(await answer('NOBODY')).toEqual({ creator: 'NOBODY', value: '' });
    });

    it('answers SOPClassesInStudy as a STUDY-level return key by C-FIND, and by QIDO-RS as an includefield', async () => {
      // PS3.4 C.6.2.1.2 lists it as an optional study key; until 7 Dec 2026 C-FIND left it out of its answers and
      // QIDO-RS never returned it.
      const SC_IMAGE = '1.2.840.10008.5.1.4.1.1.7';
      const own = uid(84);
      const [ct, mr] = [uid(85), uid(86)];
      const stored = await postStow(s, [
        makeInstance({ studyUid: own, seriesUid: ct, sopInstanceUid: uid(87), sopClassUid: CT_IMAGE }),
        makeInstance({ studyUid: own, seriesUid: ct, sopInstanceUid: uid(88), sopClassUid: CT_IMAGE }),
        makeInstance({
          studyUid: own,
          seriesUid: mr,
          sopInstanceUid: uid(89),
          sopClassUid: MR_IMAGE,
          modality: 'MR',
        }),
      ]);
      expect(stored.status).toBe(200);
      const cfind = async () => {
        const r = await findscu('STUDY', [`StudyInstanceUID=${own}`, 'SOPClassesInStudy']);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(1);
        // UI is padded to even length with a NUL (PS3.5 §6.2), which findscu prints.
        return /\(0008,0062\) UI \[([^\]\0]*)\0?\]/.exec(firstAnswer(r.stderr))?.[1]?.split(/\\+/);
      };
      const qido = async (include: string) => {
        const res = await fetch(`${s.dicomweb}/studies?StudyInstanceUID=${own}${include}`, {
          headers: { Authorization: `Bearer ${s.token}` },
        });
        expect(res.status).toBe(200);
        const [study] = (await res.json()) as Record<string, { vr: string; Value?: unknown[] }>[];
        return study!['00080062'];
      };
      expect(await cfind()).toEqual([CT_IMAGE, MR_IMAGE]);
      expect(await qido('&includefield=SOPClassesInStudy')).toEqual({
        vr: 'UI',
        Value: [CT_IMAGE, MR_IMAGE],
      });
      expect(await qido('&includefield=00080062')).toEqual({ vr: 'UI', Value: [CT_IMAGE, MR_IMAGE] });
      expect(await qido('&includefield=all')).toEqual({ vr: 'UI', Value: [CT_IMAGE, MR_IMAGE] });
      expect(await qido('')).toBeUndefined();
      // A class added to the study comes back in the next answer, not the one remembered for the study before.
      const more = await postStow(s, [
        makeInstance({
          studyUid: own,
          seriesUid: uid(90),
          sopInstanceUid: uid(91),
          sopClassUid: SC_IMAGE,
          modality: 'OT',
          // ConversionType, Type 1 in the SC Equipment module: without it the object is stored with a warning.
          extra: [{ tag: 0x00080064, vr: 'CS', value: 'WSD' }],
        }),
      ]);
      expect(more.status, await more.clone().text()).toBe(200);
      expect(await cfind()).toEqual([CT_IMAGE, MR_IMAGE, SC_IMAGE]);
      expect(await qido('&includefield=SOPClassesInStudy')).toEqual({
        vr: 'UI',
        Value: [CT_IMAGE, MR_IMAGE, SC_IMAGE],
      });
    });

    it('sends a deflated object inflated to a C-GET requestor and a C-MOVE destination that do not take deflate', async () => {
      const [own, ownSeries, sop] = [uid(60), uid(61), uid(62)];
      const original = makeInstance({ studyUid: own, seriesUid: ownSeries, sopInstanceUid: sop });
      await writeFile(join(work, 'plain.dcm'), original);
      const conv = await dcmtk('dcmconv', ['+td', join(work, 'plain.dcm'), join(work, 'deflated.dcm')]);
      expect(conv.code, conv.stderr).toBe(0);
      const deflated = await readFile(join(work, 'deflated.dcm'));
      expect((await parsePart10(deflated)).transferSyntaxUid).toBe('1.2.840.10008.1.2.1.99');
      expect((await postStow(s, [deflated])).status).toBe(200);
      const keys = seriesKeys(own, ownSeries);
      const same = async (dir: string) => {
        const [name] = await readdir(dir);
        const got = await parsePart10(await readFile(join(dir, name!)));
        expect(['1.2.840.10008.1.2.1', '1.2.840.10008.1.2']).toContain(got.transferSyntaxUid);
        expect(JSON.stringify(datasetToJson(got.dataset))).toBe(
          JSON.stringify(datasetToJson((await parsePart10(original)).dataset)),
        );
      };
      // getscu proposes Explicit and Implicit VR Little Endian; until 5 Dec 2026 this was 0xA702.
      const got = await mkdtemp(join(work, 'get-deflated-'));
      const r = await dcmtk('getscu', [...scu, '-S', '-od', got, '127.0.0.1', port, ...keys]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/Failed|0xa702/i);
      await same(got);
      // storescp with its defaults takes uncompressed syntaxes only, deflate not among them.
      const { scp, out: moved } = await storescpDestination('INFLATED', 'moved-deflated-');
      try {
        const m = await dcmtk('movescu', [...scu, '-S', '-aem', 'INFLATED', '127.0.0.1', port, ...keys]);
        expect(m.code, m.stderr).toBe(0);
        expect(m.stderr).not.toMatch(/Failed|0xa702/i);
      } finally {
        await stopChild(scp);
      }
      await same(moved);
    });

    it('sends an odd-length deflated object as stored, padded to even length, to a destination that takes deflate', async () => {
      // A sender that did not pad its deflate stream (PS3.5 A.5 asks for one 00H after an odd one): such an object
      // is stored as received. Until 7 Dec 2026 Custos sent it so, and storescp aborted the association (`DIMSE: Odd
      // Fragment Length`): the C-MOVE failed.
      const [own, ownSeries] = [uid(66), uid(67)];
      let odd: Buffer | undefined;
      for (let i = 1; i <= 40 && !odd; i++) {
        const file = makeInstance({
          studyUid: own,
          seriesUid: ownSeries,
          sopInstanceUid: uid(68),
          transferSyntaxUid: '1.2.840.10008.1.2.1.99',
          studyDescription: `DEFLATED ${'x'.repeat(i)}`,
        });
        const start = (await parsePart10(file)).datasetStart;
        const stream = deflateRawSync(inflateRawSync(file.subarray(start)));
        if (stream.length % 2 === 1) odd = Buffer.concat([file.subarray(0, start), stream]);
      }
      expect(odd, 'an object whose deflate stream is odd').toBeDefined();
      const stored = await postStow(s, [odd!]);
      expect(stored.status).toBe(200);
      const { scp, out: moved } = await storescpDestination('DEFLATE', 'moved-odd-', '+xd');
      try {
        const m = await dcmtk('movescu', [
          ...scu,
          '-S',
          '-aem',
          'DEFLATE',
          '127.0.0.1',
          port,
          ...seriesKeys(own, ownSeries),
        ]);
        expect(m.code, m.stderr).toBe(0);
        expect(m.stderr).not.toMatch(/Failed|Warning|0xa7|0xb000/i);
      } finally {
        await stopChild(scp);
      }
      const names = await readdir(moved);
      expect(names, 'the one object received').toHaveLength(1);
      const got = await parsePart10(await readFile(join(moved, names[0]!)));
      // Sent as stored: deflated, the same data set.
      expect(got.transferSyntaxUid).toBe('1.2.840.10008.1.2.1.99');
      expect(JSON.stringify(datasetToJson(got.dataset))).toBe(
        JSON.stringify(datasetToJson((await parsePart10(odd!)).dataset)),
      );
    });

    it('sends a big endian object in little endian, its pixel words swapped, to a C-GET requestor and a C-MOVE destination that take only little endian', async () => {
      const [own, ownSeries, sop] = [uid(63), uid(64), uid(65)];
      const original = makeInstance({
        studyUid: own,
        seriesUid: ownSeries,
        sopInstanceUid: sop,
        rows: 4,
        columns: 5,
        frames: 3,
      });
      await writeFile(join(work, 'le.dcm'), original);
      // dcmconv +tb writes Explicit VR Big Endian (retired, still sent by old modalities): 16-bit words swapped.
      const conv = await dcmtk('dcmconv', ['+tb', join(work, 'le.dcm'), join(work, 'be.dcm')]);
      expect(conv.code, conv.stderr).toBe(0);
      const bigEndian = await readFile(join(work, 'be.dcm'));
      expect((await parsePart10(bigEndian)).transferSyntaxUid).toBe('1.2.840.10008.1.2.2');
      expect((await postStow(s, [bigEndian])).status).toBe(200);
      const keys = seriesKeys(own, ownSeries);
      const expected = await parsePart10(original);
      const littleEndian = async (dir: string, ts: string) => {
        const names = await readdir(dir);
        expect(names, 'the one object received').toHaveLength(1);
        const bytes = await readFile(join(dir, names[0]!));
        const got = await parsePart10(bytes);
        expect(got.transferSyntaxUid).toBe(ts);
        expect(JSON.stringify(datasetToJson(got.dataset))).toBe(
          JSON.stringify(datasetToJson(expected.dataset)),
        );
        // The pixel values as the modality made them: each 16-bit word swapped back, not the big endian bytes.
        expect(await pixelDataOf(bytes)).toEqual(pixelBytes(4, 5, 3));
      };
      // getscu +xi (dcmtk 3.6.7) proposes its storage contexts in Explicit VR Little Endian alone; +B writes each
      // object in the syntax it came in. Until 6 Dec 2026 this, and the C-MOVE below, failed with 0xA702.
      const got = await mkdtemp(join(work, 'get-be-'));
      const r = await dcmtk('getscu', [...scu, '+xi', '+B', '-S', '-od', got, '127.0.0.1', port, ...keys]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/Failed|0xa702/i);
      await littleEndian(got, '1.2.840.10008.1.2.1');
      // storescp +xi takes Implicit VR Little Endian alone.
      const { scp, out: moved } = await storescpDestination('LITTLEEND', 'moved-be-', '+xi');
      try {
        const m = await dcmtk('movescu', [...scu, '-S', '-aem', 'LITTLEEND', '127.0.0.1', port, ...keys]);
        expect(m.code, m.stderr).toBe(0);
        expect(m.stderr).not.toMatch(/Failed|0xa702/i);
      } finally {
        await stopChild(scp);
      }
      await littleEndian(moved, '1.2.840.10008.1.2');
    });

    it('answers every match of a C-FIND, one with a value too long for an explicit VR length sent as UN', async () => {
      const [own, ownSeries] = [uid(66), uid(67)];
      // The third image's comments (LT) are longer than an explicit VR element's 16-bit length: stored in Implicit
      // VR, they go in the Explicit VR Little Endian findscu's context takes as UN (PS3.5 §6.2.2, CP-1066). It comes
      // on the second page (limits.maxQueryResults: 2). Until 7 Dec 2026 it could not be encoded and failed the
      // whole C-FIND (0xC000) after the first page was answered.
      const long = 'x'.repeat(70_000);
      const instances = [1, 2, 3].map((n) =>
        makeInstance({
          studyUid: own,
          seriesUid: ownSeries,
          sopInstanceUid: uid(68),
          instanceNumber: n,
          transferSyntaxUid: '1.2.840.10008.1.2',
          extra: [{ tag: 0x00204000, vr: 'LT', value: n === 3 ? long : `image ${n}` }],
        }),
      );
      // Archived with a warning for the comments' length (202, 0xB007), not refused.
      const stored = await postStow(s, instances);
      expect(stored.status, await stored.clone().text()).toBe(202);
      expect(await storedInstances(s, 'study_uid', own)).toHaveLength(3);
      const before = await ledgerHead(s);
      const out = await mkdtemp(join(work, 'find-long-'));
      const r = await findscuWith(
        port,
        'TESTSCU',
        [
          'QueryRetrieveLevel=IMAGE',
          `StudyInstanceUID=${own}`,
          `SeriesInstanceUID=${ownSeries}`,
          'SOPInstanceUID',
          'InstanceNumber',
          'ImageComments',
        ],
        { flags: ['-X'], cwd: out },
      );
      expect(r.stderr.match(/Received Find Response \d+ \(Pending\)/g), r.stderr).toHaveLength(3);
      expect(r.stderr).toMatch(/Received Final Find Response \(Success\)/);
      // findscu -X keeps each answer as a file: the third holds the comments whole.
      const comments = new Map<string, number>();
      for (const f of (await readdir(out)).sort()) {
        const { dataset } = await parsePart10(await readFile(join(out, f)));
        const el = dataset.get(0x00204000);
        const text =
          el?.kind === 'text' ? el.values.join('\\') : el?.kind === 'bytes' ? el.data.toString('latin1') : '';
        comments.set(getString(dataset, Tags.InstanceNumber) ?? '', text.trimEnd().length);
      }
      expect(Object.fromEntries(comments)).toEqual({ '1': 7, '2': 7, '3': 70_000 });
      const queries = (await ledgerSince(s, before)).filter((x) => x.action === 'query');
      // Both pages read are recorded as answered, and nothing failed.
      expect(queries.map((q) => q.outcome)).toEqual(['success', 'success']);
      expect(queries.map((q) => (q.objects as { count: number }).count)).toEqual([2, 1]);
    });

    it("lets an AE bound to a department's radiologist find that department's studies, as the account would", async () => {
      await s.app.accounts.add(admin, {
        username: 'dimse-rad',
        role: 'radiologist',
        department: 'Neuroradiology',
      });
      await s.app.aes.add(admin, { title: 'RADWS', host: '127.0.0.1', port: 104, user: 'dimse-rad' });
      const [mine, theirs] = [uid(63), uid(64)];
      const department = (name: string) => [{ tag: 0x00081040, vr: 'LO', value: name }];
      const stored = await postStow(s, [
        makeInstance({
          studyUid: mine,
          seriesUid: uid(65),
          sopInstanceUid: uid(66),
          patientId: 'PID-DEPT',
          extra: department('Neuroradiology'),
        }),
        makeInstance({
          studyUid: theirs,
          seriesUid: uid(67),
          sopInstanceUid: uid(68),
          patientId: 'PID-DEPT',
          extra: department('Cardiology'),
        }),
      ]);
      expect(stored.status).toBe(200);
      const r = await findscu('STUDY', ['PatientID=PID-DEPT', 'StudyInstanceUID'], { ae: 'RADWS' });
      expect(r.code, r.stderr).toBe(0);
      // Until 5 Dec 2026 the AE had the account's role but not its department: no study matched, and C-FIND
      // said Success with nothing.
      expect(r.stderr.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(1);
      expect(r.stderr).toContain(mine);
      expect(r.stderr).not.toContain(theirs);
    });

    it('answers C-FIND with no matches and a precise status for a bad level or key', async () => {
      const none = await findscu('STUDY', ['PatientID=NOBODY']);
      expect(none.code).toBe(0);
      expect(none.stderr).not.toMatch(/Pending/);
      const bad = await findscu('PATIENT', ['PatientID']);
      expect(bad.stderr).toMatch(/Final Find Response \(Error: DataSetDoesNotMatchSOPClass\)/);
      // A number no IS value can hold (a database error on PostgreSQL before 4 Dec 2026): the same status.
      const big = await findscu('SERIES', ['SeriesNumber=99999999999', 'SeriesInstanceUID']);
      expect(big.stderr).toMatch(/Final Find Response \(Error: DataSetDoesNotMatchSOPClass\)/);
    });

    it('matches an Instance Number or Series Number given with a leading + (an IS value, PS3.5 Table 6.2-1)', async () => {
      const stored = await dcmtk('storescu', [...scu, '127.0.0.1', port, ...files]);
      expect(stored.code, stored.stderr).toBe(0);
      const image = await findscu('IMAGE', [
        `StudyInstanceUID=${study}`,
        `SeriesInstanceUID=${series}`,
        'InstanceNumber=+2',
        'SOPInstanceUID',
      ]);
      // Until 7 Dec 2026: 0xA900, "InstanceNumber '+2' is not an integer".
      expect(image.stderr).toMatch(/Final Find Response \(Success\)/);
      expect(image.stderr.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(1);
      expect(firstAnswer(image.stderr)).toContain(sops[1]!);
      const seriesAnswer = await findscu('SERIES', [
        `StudyInstanceUID=${study}`,
        'SeriesNumber=+1',
        'SeriesInstanceUID',
      ]);
      expect(seriesAnswer.stderr).toMatch(/Final Find Response \(Success\)/);
      expect(firstAnswer(seriesAnswer.stderr)).toContain(series);
    });

    it('matches several UIDs or modalities given with a backslash, and refuses several values of any other key naming it', async () => {
      const own = uid(70);
      const bytes = makeInstance({
        studyUid: own,
        seriesUid: uid(71),
        sopInstanceUid: uid(72),
        accessionNumber: 'ACC-BS1',
        studyDate: '20240115',
      });
      await s.app.ingest.ingest(
        admin,
        (async function* () {
          yield bytes;
        })(),
        { channel: 'import' },
      );
      const or = await findscu('STUDY', [`StudyInstanceUID=${own}\\${uid(73)}`, 'ModalitiesInStudy=MR\\CT']);
      expect(or.code, or.stderr).toBe(0);
      expect(or.stderr.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(1);
      expect(or.stderr).toContain(own);
      // Until 6 Dec 2026 the first became the literal 'ACC-BS1,ACC-BS2' (no answer, success) and the second a
      // refusal that did not name the key.
      for (const [key, comment] of [
        ['AccessionNumber=ACC-BS1\\ACC-BS2', 'AccessionNumber: one value only (no multiple value matching)'],
        ['StudyDate=20240101\\20240115', 'StudyDate: one value only (no multiple value matching)'],
      ]) {
        const r = await findscu('STUDY', [`StudyInstanceUID=${own}`, key!], { debug: true });
        expect(r.stderr, key).not.toMatch(/\(Pending\)/);
        expect(r.stderr, key).toMatch(/DIMSE Status +: 0xa900/);
        expect(r.stderr, key).toContain(comment);
      }
    });

    it('moves a study by C-MOVE to a registered storescp destination', async () => {
      await storeTestStudy();
      const move = (destination: string, ...flags: string[]) => moveStudy(destination, ...flags);
      const { scp, out, port: destPort } = await storescpDestination('DEST', 'move-');
      try {
        const r = await move('DEST');
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).not.toMatch(/Failed/i);
        const received = await readdir(out);
        expect(received).toHaveLength(3);
        // storescp takes explicit and implicit VR: the objects go in the form they were stored in.
        for (const f of received)
          expect((await parsePart10(await readFile(join(out, f)))).transferSyntaxUid).toBe(
            '1.2.840.10008.1.2.1',
          );
        const unknown = await move('NOWHERE');
        expect(unknown.stderr).toMatch(/Refused: MoveDestinationUnknown/);
      } finally {
        await stopChild(scp);
      }
      // Registered but nobody listens there now: every sub-operation failed, each named, and why (0xA702, as
      // dcmtk's own Q/R SCP answers; it was 0xA801, "unknown destination", until 4 Dec 2026).
      const gone = await move('DEST', '-d');
      expect(gone.stderr).toMatch(/Move response with error status \(Refused: OutOfResourcesSubOperations\)/);
      expect(gone.stderr).toMatch(/Failed Suboperations +: 3/);
      for (const sop of sops) expect(gone.stderr).toContain(sop);
      // The address once, as the reason's prefix (until 7 Dec 2026 Node's message repeated it, and the 64-character
      // Error Comment cut the repeat short).
      expect(gone.stderr).toMatch(
        new RegExp(`LO \\[DEST at 127\\.0\\.0\\.1:${destPort}: connect ECONNREFUSED ?\\]`),
      );
      // Both are in the ledger as failures: the unknown destination, and the three objects DEST never got (until
      // 5 Dec 2026 only the decision to send them was, which read as if they had gone).
      const failures = (
        await s.app.index.db
          .selectFrom('audit_ledger')
          .select('record')
          .where('action', '=', 'view-pixels')
          .where('outcome', '=', 'failure')
          .execute()
      ).map((r) => r.record);
      expect(failures.some((r) => r.includes('"destination":"NOWHERE"') && r.includes('0xA801'))).toBe(true);
      expect(
        failures.some(
          (r) =>
            r.includes('"destination":"DEST"') &&
            r.includes('"unsent":3') &&
            sops.every((u) => r.includes(u)),
        ),
      ).toBe(true);
    });

    it('gives up on a C-MOVE destination that takes an object and never answers, after dicom.responseTimeoutMs', async () => {
      await storeTestStudy();
      // storescp --sleep-during holds each C-STORE-RSP for 60 s. Until 5 Dec 2026 the C-MOVE waited for ever
      // (and a C-CANCEL with it); now the association to the destination is aborted after 3 s (this server's
      // setting; 60 s by default) and every sub-operation is reported failed.
      const { scp } = await storescpDestination('SLOWDEST', 'move-slow-', '--sleep-during', '60');
      try {
        const started = Date.now();
        const r = await moveStudy('SLOWDEST', '-d');
        expect(Date.now() - started).toBeLessThan(10_000);
        expect(r.stderr).toMatch(/Failed Suboperations +: 3/);
        expect(r.stderr).toMatch(/Refused: OutOfResourcesSubOperations/);
        expect(r.stderr).toContain('no C-STORE response within 3000 ms');
      } finally {
        await stopChild(scp);
      }
    });

    it('names why a C-MOVE destination that went away mid-transfer failed, before the error of calling it again', async () => {
      await storeTestStudy();
      // storescp holds the first C-STORE-RSP and is killed meanwhile. Until 6 Dec 2026 the Error Comment was the
      // error of calling it again (`DEADDEST at 127.0.0.1:…: connect ECONNREFUSED`) alone.
      const { scp } = await storescpDestination('DEADDEST', 'move-dead-', '-v', '--sleep-during', '30');
      const storing = new Promise<void>((resolve) =>
        scp.stderr!.on('data', (d: Buffer) => {
          if (d.toString().includes('Received Store Request')) resolve();
        }),
      );
      try {
        const moving = moveStudy('DEADDEST', '-d');
        await storing;
        scp.kill('SIGKILL');
        const r = await moving;
        expect(r.stderr).toMatch(/Failed Suboperations +: 3/);
        const comment = /\(0000,0902\) LO \[([^\]]*)\]/.exec(r.stderr)?.[1] ?? '';
        expect(comment).toMatch(
          /^DEADDEST(?: closed the connection|: read ECONNRESET); calling again: DEADDEST at/,
        );
      } finally {
        await stopChild(scp);
      }
    });

    it('names the address of an AE that takes the connection and never answers the A-ASSOCIATE-RQ', async () => {
      const held: Socket[] = [];
      const silent = createServer((c) => held.push(c));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const silentPort = (silent.address() as { port: number }).port;
      try {
        await expect(
          openScuAssociation({
            host: '127.0.0.1',
            port: silentPort,
            calledAe: 'SILENT',
            callingAe: 'CUSTOS',
            timeoutMs: 300,
            contexts: [{ abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2'] }],
          }),
        ).rejects.toThrow(`SILENT at 127.0.0.1:${silentPort}: no association answer in 300 ms`);
      } finally {
        for (const c of held) c.destroy();
        await new Promise((r) => silent.close(r));
      }
    });

    it('names the address of an AE that resets the connection before it answers the A-ASSOCIATE-RQ', async () => {
      // Until 6 Dec 2026 the error was Node's alone (`read ECONNRESET`): a C-MOVE destination that went away while
      // being called again was named nowhere in the Error Comment.
      const resetting = createServer((c) => c.once('data', () => c.resetAndDestroy()));
      await new Promise<void>((r) => resetting.listen(0, '127.0.0.1', r));
      const resetPort = (resetting.address() as { port: number }).port;
      try {
        await expect(
          openScuAssociation({
            host: '127.0.0.1',
            port: resetPort,
            calledAe: 'RESETTER',
            callingAe: 'CUSTOS',
            timeoutMs: 3000,
            contexts: [{ abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2'] }],
          }),
        ).rejects.toThrow(`RESETTER at 127.0.0.1:${resetPort}: read ECONNRESET`);
      } finally {
        await new Promise((r) => resetting.close(r));
      }
    });

    it('retrieves a series by C-GET on the same association', async () => {
      await storeTestStudy();
      const getSeries = async (...flags: string[]) => {
        const out = await mkdtemp(join(work, 'get-'));
        const r = await dcmtk('getscu', [
          ...scu,
          ...flags,
          '-S',
          '-od',
          out,
          '127.0.0.1',
          port,
          ...seriesKeys(study, series),
        ]);
        return { ...r, files: await readdir(out) };
      };
      const r = await getSeries();
      expect(r.code, r.stderr).toBe(0);
      expect(r.files).toHaveLength(3);
      // getscu +xs proposes JPEG Lossless first in each storage context, where Custos is to send what it holds:
      // Explicit VR Little Endian is accepted instead, which carries every object (until 5 Dec 2026 the JPEG
      // syntax was, and every object stored otherwise failed with 0xA702).
      const xs = await getSeries('+xs');
      expect(xs.code, xs.stderr).toBe(0);
      expect(xs.stderr).not.toMatch(/Failed|0xa702/i);
      expect(xs.files).toHaveLength(3);
    });

    it('sends an object once by C-GET or C-MOVE whose identifier lists its Study, Series or SOP Instance UID twice', async () => {
      const sub = (stderr: string, what: string) =>
        Number(new RegExp(`Number of ${what} Suboperations +: (\\d+)`).exec(stderr)?.[1] ?? -1);
      await storeTestStudy();
      // Until 7 Dec 2026 each listing was a retrieve of its own: `A\A` sent the study twice (6 sub-operations), and a
      // SERIES retrieve listing its one study twice was refused (0xA900).
      const twice = [
        ['-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}\\${study}`],
        [
          ...['-k', 'QueryRetrieveLevel=SERIES', '-k', `StudyInstanceUID=${study}\\${study}`],
          ...['-k', `SeriesInstanceUID=${series}\\${series}`],
        ],
        [
          ...['-k', 'QueryRetrieveLevel=IMAGE', '-k', `StudyInstanceUID=${study}`],
          ...[
            '-k',
            `SeriesInstanceUID=${series}`,
            '-k',
            `SOPInstanceUID=${sops[0]!}\\${sops[1]!}\\${sops[0]!}`,
          ],
        ],
      ];
      for (const [keys, expected] of [
        [twice[0]!, 3],
        [twice[1]!, 3],
        [twice[2]!, 2],
      ] as const) {
        const out = await mkdtemp(join(work, 'get-twice-'));
        const r = await dcmtk('getscu', ['-v', ...scu, '-S', '-od', out, '127.0.0.1', port, ...keys]);
        expect(r.code, r.stderr).toBe(0);
        expect(sub(r.stderr, 'Completed'), r.stderr).toBe(expected);
        expect(sub(r.stderr, 'Failed')).toBe(0);
        expect(sub(r.stderr, 'Warning')).toBe(0);
        expect(r.stderr.match(/Received C-STORE Request/g) ?? [], r.stderr).toHaveLength(expected);
        expect(await readdir(out)).toHaveLength(expected);
      }
      const { scp, out } = await storescpDestination('TWICEDEST', 'move-twice-');
      try {
        for (const [keys, expected] of [
          [twice[0]!, 3],
          [twice[1]!, 3],
          [twice[2]!, 2],
        ] as const) {
          const r = await dcmtk('movescu', [
            '-d',
            ...scu,
            '-S',
            '-aem',
            'TWICEDEST',
            '127.0.0.1',
            port,
            ...keys,
          ]);
          expect(r.code, r.stderr).toBe(0);
          // movescu -d prints each response's counts; the final response's are what the C-MOVE did.
          const final = r.stderr.slice(r.stderr.indexOf('Received Final Move Response'));
          expect(final, r.stderr).toMatch(/DIMSE Status +: 0x0000/);
          expect(/Completed Suboperations +: (\d+)/.exec(final)?.[1], r.stderr).toBe(String(expected));
          expect(final).toMatch(/Failed Suboperations +: 0\b/);
          expect(final).toMatch(/Warning Suboperations +: 0\b/);
        }
        expect(await readdir(out)).toHaveLength(3);
      } finally {
        await stopChild(scp);
      }
    });

    it('retrieves nothing by a Patient Root C-GET or C-MOVE naming a study, series or image under another Patient ID', async () => {
      const sub = (stderr: string, what: string) =>
        Number(new RegExp(`Number of ${what} Suboperations +: (\\d+)`).exec(stderr)?.[1] ?? -1);
      const below = (patientId: string) =>
        [
          ['-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`],
          [
            '-k',
            'QueryRetrieveLevel=SERIES',
            '-k',
            `StudyInstanceUID=${study}`,
            '-k',
            `SeriesInstanceUID=${series}`,
          ],
          [
            ...['-k', 'QueryRetrieveLevel=IMAGE', '-k', `StudyInstanceUID=${study}`],
            ...['-k', `SeriesInstanceUID=${series}`, '-k', `SOPInstanceUID=${sops[0]!}`],
          ],
        ].map((keys) => [...keys, '-k', `PatientID=${patientId}`]);
      const get = async (keys: string[]) => {
        const out = await mkdtemp(join(work, 'get-pr-'));
        const r = await dcmtk('getscu', ['-v', ...scu, '-P', '-od', out, '127.0.0.1', port, ...keys]);
        return { ...r, files: await readdir(out) };
      };
      await storeTestStudy();
      // The study's own patient: the study, the series, the one image.
      const own = await Promise.all(below('PID-DIMSE').map(get));
      expect(own.map((r) => r.files.length)).toEqual([3, 3, 1]);
      // Another patient's: the study is not under that patient, so nothing matches (PS3.4 C.4.2.2.1); until 7 Dec
      // 2026 the Patient ID was ignored and the study went.
      for (const r of await Promise.all(below('PID-SOMEONE-ELSE').map(get))) {
        expect(r.code, r.stderr).toBe(0);
        expect(r.files).toEqual([]);
        expect(r.stderr).toMatch(
          /Received C-GET Response \(Success\)|Received Final C-GET Response \(Success\)/,
        );
        expect(sub(r.stderr, 'Completed')).toBe(0);
      }
      const { scp, out } = await storescpDestination('PRDEST', 'move-pr-');
      try {
        const move = (keys: string[]) =>
          dcmtk('movescu', ['-v', ...scu, '-P', '-aem', 'PRDEST', '127.0.0.1', port, ...keys]);
        for (const keys of below('PID-SOMEONE-ELSE')) {
          const r = await move(keys);
          expect(r.stderr).toMatch(/Received Final Move Response \(Success\)/);
        }
        expect(await readdir(out)).toEqual([]);
        const r = await move(below('PID-DIMSE')[0]!);
        expect(r.stderr).toMatch(/Received Final Move Response \(Success\)/);
        expect(await readdir(out)).toHaveLength(3);
      } finally {
        await stopChild(scp);
      }
    });

    it('sends objects stored in Explicit VR Little Endian as Implicit VR Little Endian to peers taking only that', async () => {
      await storeTestStudy();
      // storescp +xi (a C-MOVE destination) and getscu +xi (C-GET) accept the DICOM default transfer syntax alone
      // (PS3.5 §10.1). Until 5 Dec 2026 every sub-operation to them failed: Custos sent only the stored syntax.
      const refs = await s.app.retrieve.open(admin, { studyUid: study }, 'view-pixels', 'test');
      expect(refs.map((r) => r.transferSyntaxUid)).toEqual(sops.map(() => '1.2.840.10008.1.2.1'));
      const originals = new Map<string, string>();
      for (const f of files) {
        const p = await parsePart10(await readFile(f));
        originals.set(getString(p.dataset, Tags.SOPInstanceUID)!, JSON.stringify(datasetToJson(p.dataset)));
      }
      const check = async (dir: string) => {
        const names = await readdir(dir);
        expect(names).toHaveLength(3);
        for (const n of names) {
          const p = await parsePart10(await readFile(join(dir, n)));
          expect(p.transferSyntaxUid, `${dir}/${n}`).toBe('1.2.840.10008.1.2');
          const sop = getString(p.dataset, Tags.SOPInstanceUID)!;
          // The same elements and values, read back from implicit VR through the data dictionary.
          expect(JSON.stringify(datasetToJson(p.dataset)), sop).toBe(originals.get(sop));
        }
      };
      const { scp, out: moved } = await storescpDestination('IMPLICIT', 'move-implicit-', '+xi');
      try {
        const r = await moveStudy('IMPLICIT');
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).not.toMatch(/Failed|Warning/i);
      } finally {
        await stopChild(scp);
      }
      await check(moved);
      // dcmtk 3.6.7's getscu cannot be told to take implicit VR alone (its +xi proposes explicit VR only), so the
      // C-GET requestor is Custos's own SCU, proposing the storage context in implicit VR little endian only.
      const { parseDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      const IMPLICIT = '1.2.840.10008.1.2';
      const GET = '1.2.840.10008.5.1.4.1.2.2.3';
      const received: { ts: string | undefined; data: Buffer }[] = [];
      const scuA: Awaited<ReturnType<typeof associate>> = await associate({
        contexts: [
          { abstractSyntax: GET, transferSyntaxes: [IMPLICIT] },
          { abstractSyntax: CT_IMAGE, transferSyntaxes: [IMPLICIT] },
        ],
        roles: [{ sopClassUid: CT_IMAGE, scu: false, scp: true }],
        onRequest: (ctxId, cmd, data) => {
          received.push({ ts: scuA.context(CT_IMAGE)?.transferSyntax, data: data! });
          void answerStored(scuA, ctxId, cmd);
        },
      });
      try {
        const rsp = await seriesGetRq(scuA, study, series, IMPLICIT);
        expect(rsp.cmd.status).toBe(0);
        expect(rsp.cmd.completed).toBe(3);
      } finally {
        await scuA.release();
      }
      expect(received).toHaveLength(3);
      for (const r of received) {
        expect(r.ts).toBe(IMPLICIT);
        const ds = await parseDataset(r.data, IMPLICIT);
        const sop = getString(ds, Tags.SOPInstanceUID)!;
        expect(JSON.stringify(datasetToJson(ds)), sop).toBe(originals.get(sop));
      }
    });

    it('serves an object a modality sent in Implicit VR Little Endian over WADO in Explicit VR Little Endian', async () => {
      // PS3.18 §8.7.3: implicit VR "shall not be used with Web Services"; explicit VR is the default. Until 5 Dec
      // 2026 WADO-RS and WADO-URI served such an object as stored, in implicit VR.
      const ids = { studyUid: uid(51), seriesUid: uid(52), sopInstanceUid: uid(53) };
      const original = makeInstance({ ...ids, patientId: 'PID-IMPLICIT', rows: 64, columns: 64 });
      const f = join(work, 'implicit.dcm');
      await writeFile(f, original);
      const sent = await dcmtk('storescu', [...scu, '-xi', '127.0.0.1', port, f]);
      expect(sent.code, sent.stderr).toBe(0);
      const [row] = await storedInstances(s, 'sop_instance_uid', ids.sopInstanceUid);
      expect(row?.transfer_syntax_uid).toBe('1.2.840.10008.1.2');
      const want = JSON.stringify(datasetToJson((await parsePart10(original)).dataset));
      const auth = { Authorization: `Bearer ${s.token}` };
      const base = `${s.url}/dicom-web/studies/${ids.studyUid}`;
      const instance = `${base}/series/${ids.seriesUid}/instances/${ids.sopInstanceUid}`;
      const explicitOf = async (bytes: Buffer) => {
        const p = await parsePart10(bytes);
        expect(p.transferSyntaxUid).toBe('1.2.840.10008.1.2.1');
        expect(JSON.stringify(datasetToJson(p.dataset))).toBe(want);
      };
      for (const accept of [undefined, 'multipart/related; type="application/dicom"; transfer-syntax=*']) {
        const res = await fetch(base, { headers: { ...auth, ...(accept ? { Accept: accept } : {}) } });
        expect(res.status).toBe(200);
        const parts = await multipartParts(res);
        expect(parts.map((p) => p.contentType)).toEqual([
          'application/dicom; transfer-syntax=1.2.840.10008.1.2.1',
        ]);
        await explicitOf(parts[0]!.body);
      }
      const single = await fetch(instance, { headers: { ...auth, Accept: 'application/dicom' } });
      expect(single.headers.get('content-type')).toBe(
        'application/dicom; transfer-syntax=1.2.840.10008.1.2.1',
      );
      const converted = Buffer.from(await single.arrayBuffer());
      await explicitOf(converted);
      // Element for element what dcmtk's own conversion gives (dcmconv +ti, then +te), sequence lengths aside.
      const dump = async (file: string) =>
        (await dcmtk('dcmdump', ['-q', '-M', '+L', file])).stdout
          .split('\n')
          .filter((l) => !l.startsWith('(0002'))
          .map((l) =>
            l
              .replace(/#.*/, '')
              .replace(/\((Sequence|Item) with (un)?defined length/, '($1')
              .replace(/ for re-encod[a-z.]*\)/, ')')
              .trimEnd(),
          );
      await writeFile(join(work, 'converted.dcm'), converted);
      expect((await dcmtk('dcmconv', ['+ti', f, join(work, 'implicit-ref.dcm')])).code).toBe(0);
      expect(
        (await dcmtk('dcmconv', ['+te', join(work, 'implicit-ref.dcm'), join(work, 'explicit-ref.dcm')]))
          .code,
      ).toBe(0);
      const ours = await dump(join(work, 'converted.dcm'));
      expect(ours.length).toBeGreaterThan(30);
      expect(ours).toEqual(await dump(join(work, 'explicit-ref.dcm')));
      // Asked for by name, implicit VR comes as stored.
      const asStored = await fetch(instance, {
        headers: { ...auth, Accept: 'application/dicom; transfer-syntax=1.2.840.10008.1.2' },
      });
      const stored = await parsePart10(Buffer.from(await asStored.arrayBuffer()));
      expect(stored.transferSyntaxUid).toBe('1.2.840.10008.1.2');
      const uri = `${s.url}/wado?requestType=WADO&contentType=application/dicom&studyUID=${ids.studyUid}&seriesUID=${ids.seriesUid}&objectUID=${ids.sopInstanceUid}`;
      await explicitOf(Buffer.from(await (await fetch(uri, { headers: auth })).arrayBuffer()));
      const jpeg = await fetch(`${uri}&transferSyntax=1.2.840.10008.1.2.4.50`, { headers: auth });
      expect(jpeg.status).toBe(406);
    });

    it('sends an object stored in Implicit VR Little Endian to a C-MOVE destination taking explicit VR alone, converted', async () => {
      // A storescp whose association profile (dcmtk's -xf configuration) takes CT Image Storage in Explicit VR
      // Little Endian only. Until 5 Dec 2026 the sub-operation failed: Custos offered the stored syntax alone.
      const ids = { studyUid: uid(54), seriesUid: uid(55), sopInstanceUid: uid(56) };
      const original = makeInstance({ ...ids, patientId: 'PID-IMPL-MOVE', rows: 16, columns: 16 });
      const f = join(work, 'implicit-move.dcm');
      await writeFile(f, original);
      const sent = await dcmtk('storescu', [...scu, '-xi', '127.0.0.1', port, f]);
      expect(sent.code, sent.stderr).toBe(0);
      const [row] = await storedInstances(s, 'sop_instance_uid', ids.sopInstanceUid);
      expect(row?.transfer_syntax_uid).toBe('1.2.840.10008.1.2');
      const cfg = join(work, 'explicit-only.cfg');
      await writeFile(
        cfg,
        [
          '[[TransferSyntaxes]]',
          '[ExplicitLE]',
          'TransferSyntax1 = LittleEndianExplicit',
          '[[PresentationContexts]]',
          '[CTExplicit]',
          'PresentationContext1 = CTImageStorage\\ExplicitLE',
          '[[Profiles]]',
          '[ExplicitOnly]',
          'PresentationContexts = CTExplicit',
          '',
        ].join('\n'),
      );
      const { scp, out } = await storescpDestination(
        'EXPLONLY',
        'move-explicit-',
        '-xf',
        cfg,
        'ExplicitOnly',
      );
      try {
        const r = await dcmtk('movescu', [
          ...scu,
          '-S',
          '-aem',
          'EXPLONLY',
          '127.0.0.1',
          port,
          '-k',
          'QueryRetrieveLevel=STUDY',
          '-k',
          `StudyInstanceUID=${ids.studyUid}`,
        ]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).not.toMatch(/Failed|Warning/i);
      } finally {
        await stopChild(scp);
      }
      const [name] = await readdir(out);
      const got = await parsePart10(await readFile(join(out, name!)));
      expect(got.transferSyntaxUid).toBe('1.2.840.10008.1.2.1');
      expect(JSON.stringify(datasetToJson(got.dataset))).toBe(
        JSON.stringify(datasetToJson((await parsePart10(original)).dataset)),
      );
    });

    it('warns a C-STORE sender whose data set repeats the file meta group, and keeps the header it built', async () => {
      const sop = uid(41);
      const file = makeInstance({ studyUid: uid(42), seriesUid: uid(43), sopInstanceUid: sop });
      const scuA = await associate({
        contexts: [{ abstractSyntax: CT_IMAGE, transferSyntaxes: ['1.2.840.10008.1.2.1'] }],
      });
      try {
        // The data set as such a sender puts it on the wire: its file's meta group, then the data set.
        const rsp = await storeRq(scuA, CT_IMAGE, sop, file.subarray(132));
        expect(rsp.cmd.status).toBe(0xb000);
        expect(rsp.cmd.errorComment).toMatch(/^file meta elements repeated in the data set: \(0002,0000\)/);
      } finally {
        await scuA.release();
      }
      const [row] = await storedInstances(s, 'sop_instance_uid', sop);
      expect(row?.transfer_syntax_uid).toBe('1.2.840.10008.1.2.1');
    });

    it('refuses a C-STORE whose data set is not the instance or class its command names (A900), storing nothing', async () => {
      const MR_IMAGE = '1.2.840.10008.5.1.4.1.1.4';
      const scuA = await associate({
        contexts: [
          { abstractSyntax: CT_IMAGE, transferSyntaxes: ['1.2.840.10008.1.2.1'] },
          { abstractSyntax: MR_IMAGE, transferSyntaxes: ['1.2.840.10008.1.2.1'] },
        ],
      });
      const sop = uid(44);
      const named = uid(45);
      const [studyUid, seriesUid] = [uid(46), uid(47)];
      const store = (sopClass: string, instance: string, file: Buffer) =>
        storeRq(scuA, sopClass, instance, dataSetOf(file));
      try {
        const ct = makeInstance({ studyUid, seriesUid, sopInstanceUid: sop });
        const byInstance = await store(CT_IMAGE, named, ct);
        expect(byInstance.cmd.status).toBe(0xa900);
        // An Error Comment is LO (64 characters, trailing spaces dropped): they hold the data set's UID; the
        // ledger has the whole reason.
        const reason = `SOP Instance UID differs: data set ${sop}, C-STORE request (Affected SOP Instance UID) '${named}'`;
        expect(byInstance.cmd.errorComment).toBe(reason.slice(0, 64).trimEnd());
        const byClass = await store(MR_IMAGE, sop, ct);
        expect(byClass.cmd.status).toBe(0xa900);
        expect(byClass.cmd.errorComment).toMatch(
          /^SOP Class UID differs: data set 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2, C-ST/,
        );
        // The association goes on: the same object under its own UIDs is stored.
        expect((await store(CT_IMAGE, sop, ct)).cmd.status).toBe(0);
      } finally {
        await scuA.release();
      }
      expect(await storedInstances(s, 'sop_instance_uid', [named])).toHaveLength(0);
      expect(await storedInstances(s, 'sop_instance_uid', sop)).toHaveLength(1);
      const wado = await fetch(`${s.dicomweb}/studies/${studyUid}/series/${seriesUid}/instances/${sop}`, {
        headers: {
          Authorization: `Bearer ${s.token}`,
          Accept: 'multipart/related; type="application/dicom"',
        },
      });
      const [part] = await multipartParts(wado);
      expect(getString((await parsePart10(part!.body)).fileMeta, Tags.MediaStorageSOPInstanceUID)).toBe(sop);
    });

    it('refuses a C-STORE whose pixel data is not encoded as its context transfer syntax says (A900)', async () => {
      const RLE = '1.2.840.10008.1.2.5';
      const scuA = await associate({
        contexts: [{ abstractSyntax: CT_IMAGE, transferSyntaxes: [RLE] }],
      });
      const sop = uid(48);
      // An uncompressed data set (explicit VR little endian encoding, native pixel data) on an RLE context.
      const file = makeInstance({ studyUid: uid(49), seriesUid: uid(50), sopInstanceUid: sop });
      try {
        expect(scuA.context(CT_IMAGE)?.transferSyntax).toBe(RLE);
        const rsp = await storeRq(scuA, CT_IMAGE, sop, dataSetOf(file));
        expect(rsp.cmd.status).toBe(0xa900);
        // The Error Comment (LO) holds 64 characters of the reason.
        expect(rsp.cmd.errorComment).toBe('native (7FE0,0010) PixelData under 1.2.840.10008.1.2.5, which en');
      } finally {
        await scuA.release();
      }
      expect(await storedInstances(s, 'sop_instance_uid', sop)).toHaveLength(0);
    });

    it('says why a C-GET sends nothing to a requestor that took no SCP role (A702 with an Error Comment)', async () => {
      const GET = '1.2.840.10008.5.1.4.1.2.2.3';
      const EXPLICIT = '1.2.840.10008.1.2.1';
      const [own, ownSeries] = [uid(52), uid(53)];
      const stored = await postStow(
        s,
        [54, 55, 56].map((n) =>
          makeInstance({ studyUid: own, seriesUid: ownSeries, sopInstanceUid: uid(n) }),
        ),
      );
      expect(stored.status).toBe(200);
      // The storage context is proposed, but without SCP/SCU Role Selection: Custos may not store over it.
      const scuA = await associate({
        contexts: [
          { abstractSyntax: GET, transferSyntaxes: [EXPLICIT] },
          { abstractSyntax: CT_IMAGE, transferSyntaxes: [EXPLICIT] },
        ],
      });
      try {
        const rsp = await seriesGetRq(scuA, own, ownSeries);
        expect(rsp.cmd.status).toBe(0xa702);
        expect(rsp.cmd.failed).toBe(3);
        expect(rsp.cmd.errorComment).toBe(
          'no SCP role for 1.2.840.10008.5.1.4.1.1.2: the C-GET requestor took none (SCP/SCU Role Selection'.slice(
            0,
            64,
          ),
        );
      } finally {
        await scuA.release();
      }
      const [failure] = await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['record'])
        .where('action', '=', 'view-pixels')
        .where('outcome', '=', 'failure')
        .orderBy('seq', 'desc')
        .limit(1)
        .execute();
      expect(JSON.parse(failure!.record)).toMatchObject({
        detail: {
          unsent: 3,
          reason: expect.stringMatching(
            /^no SCP role for 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2: the C-GET requestor took none \(SCP\/SCU Role Selection/,
          ),
        },
      });
    });

    it('says which class a C-GET requestor proposed no storage context for, and sends it the others', async () => {
      const GET = '1.2.840.10008.5.1.4.1.2.2.3';
      const EXPLICIT = '1.2.840.10008.1.2.1';
      const [own, ownSeries] = [uid(57), uid(58)];
      const stored = await postStow(s, [
        makeInstance({ studyUid: own, seriesUid: ownSeries, sopInstanceUid: uid(59) }),
        makeInstance({ studyUid: own, seriesUid: ownSeries, sopInstanceUid: uid(59), sopClassUid: MR_IMAGE }),
      ]);
      expect([200, 202]).toContain(stored.status);
      expect(await storedInstances(s, 'study_uid', own)).toHaveLength(2);
      // A storage context, with the SCP role, for CT alone: the MR image has nowhere to go.
      const received: string[] = [];
      const scuA: Awaited<ReturnType<typeof associate>> = await associate({
        contexts: [
          { abstractSyntax: GET, transferSyntaxes: [EXPLICIT] },
          { abstractSyntax: CT_IMAGE, transferSyntaxes: [EXPLICIT] },
        ],
        roles: [{ sopClassUid: CT_IMAGE, scu: false, scp: true }],
        onRequest: (ctxId, cmd) => {
          received.push(cmd.affectedSopClassUid!);
          void answerStored(scuA, ctxId, cmd);
        },
      });
      try {
        const rsp = await seriesGetRq(scuA, own, ownSeries);
        // PS3.4 C.4.3.3.1: some sub-operations failed, some completed.
        expect(rsp.cmd.status).toBe(0xb000);
        expect([rsp.cmd.completed, rsp.cmd.failed]).toEqual([1, 1]);
        expect(rsp.cmd.errorComment).toBe(
          `no context for ${MR_IMAGE}: the C-GET requestor has no presentation context accepted`.slice(0, 64),
        );
      } finally {
        await scuA.release();
      }
      expect(received).toEqual([CT_IMAGE]);
    });

    it('answers a C-STORE or C-FIND request that declares no data set (C000), and goes on', async () => {
      const FIND = '1.2.840.10008.5.1.4.1.2.2.1';
      const scuA = await associate({
        contexts: [
          { abstractSyntax: CT_IMAGE, transferSyntaxes: ['1.2.840.10008.1.2.1'] },
          { abstractSyntax: FIND, transferSyntaxes: ['1.2.840.10008.1.2.1'] },
          { abstractSyntax: VERIFICATION, transferSyntaxes: ['1.2.840.10008.1.2.1'] },
        ],
      });
      try {
        const store = await storeRq(scuA, CT_IMAGE, uid(51));
        expect(store.cmd.status).toBe(0xc000);
        expect(store.cmd.errorComment).toBe(
          'the C-STORE-RQ has no data set (Command Data Set Type 0101), which it must carry'.slice(0, 64),
        );
        const find = await scuA.request(scuA.context(FIND)!.id, {
          commandField: 0x0020,
          messageId: scuA.conn.messageId(),
          affectedSopClassUid: FIND,
          priority: 0,
          commandDataSetType: 0x0101,
        });
        expect(find.cmd.status).toBe(0xc000);
        // The association goes on.
        const echo = await scuA.request(scuA.context(VERIFICATION)!.id, {
          commandField: 0x0030,
          messageId: scuA.conn.messageId(),
          affectedSopClassUid: '1.2.840.10008.1.1',
          commandDataSetType: 0x0101,
        });
        expect(echo.cmd.status).toBe(0);
      } finally {
        await scuA.release();
      }
    });

    it('refuses a request on a presentation context negotiated for another SOP class or service (0x0122), and goes on', async () => {
      // Until 6 Dec 2026 each of these was carried out: the context's SOP class was never compared.
      const { encodeDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      const STUDY_FIND = '1.2.840.10008.5.1.4.1.2.2.1';
      const STUDY_MOVE = '1.2.840.10008.5.1.4.1.2.2.2';
      const PATIENT_FIND = '1.2.840.10008.5.1.4.1.2.1.1';
      const scuA = await associate({
        contexts: [STUDY_FIND, STUDY_MOVE, CT_IMAGE, VERIFICATION].map((abstractSyntax) => ({
          abstractSyntax,
          transferSyntaxes: ['1.2.840.10008.1.2.1'],
        })),
      });
      const ident = encodeDataset(
        [
          { tag: 0x00080052, vr: 'CS', value: 'STUDY' },
          { tag: 0x0020000d, vr: 'UI', value: study },
        ],
        '1.2.840.10008.1.2.1',
      );
      const rq = (on: string, commandField: number, sopClass: string, data?: Buffer) =>
        scuA.request(
          scuA.context(on)!.id,
          {
            commandField,
            messageId: scuA.conn.messageId(),
            affectedSopClassUid: sopClass,
            priority: 0,
            commandDataSetType: data ? 0 : 0x0101,
            ...(commandField === 0x0021 ? { moveDestination: 'TESTSCU' } : {}),
          },
          data,
        );
      try {
        const moveOnFind = await rq(STUDY_FIND, 0x0021, STUDY_FIND, ident);
        expect(moveOnFind.cmd).toMatchObject({
          commandField: 0x8021,
          status: 0x0122,
          errorComment: `a C-MOVE-RQ on a context for ${STUDY_FIND}`,
        });
        const findOnMove = await rq(STUDY_MOVE, 0x0020, STUDY_MOVE, ident);
        expect(findOnMove.cmd).toMatchObject({ commandField: 0x8020, status: 0x0122 });
        const patientRootOnStudyRoot = await rq(STUDY_FIND, 0x0020, PATIENT_FIND, ident);
        expect(patientRootOnStudyRoot.cmd).toMatchObject({
          status: 0x0122,
          errorComment: `SOP class ${PATIENT_FIND} is not the context's`,
        });
        const echoOnCt = await rq(CT_IMAGE, 0x0030, VERIFICATION);
        expect(echoOnCt.cmd).toMatchObject({ commandField: 0x8030, status: 0x0122 });
        // The association goes on: each request on its own context is answered.
        expect((await rq(STUDY_FIND, 0x0020, STUDY_FIND, ident)).cmd.status).toBe(0);
        expect((await rq(VERIFICATION, 0x0030, VERIFICATION)).cmd.status).toBe(0);
      } finally {
        await scuA.release();
      }
    });

    it('aborts on a C-STORE-RQ without Message ID or Affected SOP Class UID, says a missing instance UID is missing, refuses a C-ECHO-RQ with a data set', async () => {
      const { encodeDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      const sop = uid(63);
      const data = dataSetOf(makeInstance({ studyUid: uid(61), seriesUid: uid(62), sopInstanceUid: sop }));
      const contexts = [CT_IMAGE, VERIFICATION].map((abstractSyntax) => ({
        abstractSyntax,
        transferSyntaxes: ['1.2.840.10008.1.2.1'],
      }));
      // Type 1 command elements (PS3.7 Table 9.3-1): dcmtk's DIMSE layer cannot parse such a command and its SCPs
      // abort the association. Until 6 Dec 2026 Custos stored the object.
      for (const omit of ['messageId', 'affectedSopClassUid'] as const) {
        const scuA = await associate({ contexts });
        const cmd: Command = {
          commandField: 0x0001,
          messageId: 77,
          affectedSopClassUid: CT_IMAGE,
          affectedSopInstanceUid: sop,
          priority: 0,
          commandDataSetType: 0,
        };
        delete cmd[omit];
        const r = await scuA.request(scuA.context(CT_IMAGE)!.id, cmd, data);
        expect(r.cmd.commandField, omit).toBe(0xffff); // no response: the association ended ...
        expect(scuA.conn.endedBy, omit).toBe('CUSTOS aborted the association'); // ... by an A-ABORT
        await scuA.release();
      }
      expect(await storedInstances(s, 'sop_instance_uid', sop)).toEqual([]);
      const scuA = await associate({ contexts });
      try {
        const noInstance = await scuA.request(
          scuA.context(CT_IMAGE)!.id,
          {
            commandField: 0x0001,
            messageId: scuA.conn.messageId(),
            affectedSopClassUid: CT_IMAGE,
            priority: 0,
            commandDataSetType: 0,
          },
          data,
        );
        expect(noInstance.cmd).toMatchObject({
          status: 0xa900,
          errorComment: 'the Affected SOP Instance UID (0000,1000) is missing',
        });
        // A C-ECHO-RQ carries no data set: refused before any success (until 6 Dec 2026 answered 0000, then the
        // association aborted when its data set came), its data set read and dropped, and the association goes on.
        const echo = (data?: Buffer) =>
          scuA.request(
            scuA.context(VERIFICATION)!.id,
            {
              commandField: 0x0030,
              messageId: scuA.conn.messageId(),
              affectedSopClassUid: VERIFICATION,
              commandDataSetType: data ? 0 : 0x0101,
            },
            data,
          );
        const withData = await echo(
          encodeDataset([{ tag: 0x00100020, vr: 'LO', value: 'X' }], '1.2.840.10008.1.2.1'),
        );
        expect(withData.cmd).toMatchObject({ commandField: 0x8030, status: 0x0212 });
        expect((await echo()).cmd.status).toBe(0);
      } finally {
        await scuA.release();
      }
      expect(await storedInstances(s, 'sop_instance_uid', sop)).toEqual([]);
    });

    it('records each association it rejects in the ledger, and aborts one that proposes a context ID twice', async () => {
      const { encodeAssociateRq } = await import('../src/transports/dimse/pdu.js');
      const answer = (rq: Buffer) =>
        new Promise<Buffer>((resolve) => {
          const c = connect(Number(port), '127.0.0.1');
          const got: Buffer[] = [];
          c.on('data', (d: Buffer) => got.push(d));
          c.on('close', () => resolve(Buffer.concat(got)));
          c.on('error', () => undefined);
          c.write(rq);
        });
      const echoContext = [{ id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: ['1.2.840.10008.1.2'] }];
      const v2 = encodeAssociateRq('CUSTOS', 'REJVERSION', echoContext, 16384);
      v2.writeUInt16BE(0x0002, 6);
      expect([...(await answer(v2)).subarray(0, 10)]).toEqual([0x03, 0, 0, 0, 0, 4, 0, 1, 2, 2]);
      const none = encodeAssociateRq('CUSTOS', 'REJNOCONTEXT', [], 16384);
      expect([...(await answer(none)).subarray(0, 10)]).toEqual([0x03, 0, 0, 0, 0, 4, 0, 1, 1, 1]);
      const otherContext = encodeAssociateRq('CUSTOS', 'REJAPPCONTEXT', echoContext, 16384);
      otherContext.write('2', otherContext.indexOf('1.2.840.10008.3.1.1.1') + 20, 'latin1');
      expect([...(await answer(otherContext)).subarray(0, 10)]).toEqual([0x03, 0, 0, 0, 0, 4, 0, 1, 1, 2]);
      // A maximum PDU length of 6 leaves no room for a byte of data after a PDV item's header.
      const tiny = encodeAssociateRq('CUSTOS', 'REJTINYPDU', echoContext, 6);
      expect([...(await answer(tiny)).subarray(0, 10)]).toEqual([0x03, 0, 0, 0, 0, 4, 0, 1, 1, 1]);
      // Until 6 Dec 2026 the first three were refused without a record, as no other refusal is.
      for (const [actor, reason] of [
        ['REJVERSION', 'protocol version 1 is not offered (PS3.8 §9.3.2)'],
        ['REJNOCONTEXT', 'no presentation context proposed'],
        [
          'REJAPPCONTEXT',
          "application context '1.2.840.10008.3.1.1.2' is not the DICOM one (1.2.840.10008.3.1.1.1)",
        ],
        ['REJTINYPDU', 'maximum PDU length 6 leaves no room for data (0, or more than 6)'],
      ] as const) {
        const rows = await s.app.index.db
          .selectFrom('audit_ledger')
          .select(['outcome', 'record'])
          .where('action', '=', 'dicom-associate')
          .where('actor', '=', actor)
          .execute();
        expect(rows, actor).toHaveLength(1);
        expect(rows[0]!.outcome).toBe('denied');
        expect(JSON.parse(rows[0]!.record)).toMatchObject({ policy: 'builtin:dicom-ul', detail: { reason } });
      }
      // Two contexts with one ID (PS3.8 §9.3.2.2): an A-ABORT, reason 6, as for an even ID (until 6 Dec 2026 both
      // were accepted, the A-ASSOCIATE-AC naming ID 1 twice).
      const twice = encodeAssociateRq(
        'CUSTOS',
        'TESTSCU',
        [...echoContext, { id: 1, abstractSyntax: CT_IMAGE, transferSyntaxes: ['1.2.840.10008.1.2'] }],
        16384,
      );
      expect([...(await answer(twice)).subarray(0, 10)]).toEqual([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6]);
    });

    it("sends no PDU larger than a peer's small maximum PDU length, as SCP and as requestor", async () => {
      const { encodeAssociateAc, encodeAssociateRq, decodePdu, pdvHeader } =
        await import('../src/transports/dimse/pdu.js');
      const { encodeCommand, decodeCommand } = await import('../src/transports/dimse/command.js');
      const { RawPeer } = await import('./support/raw-scu.js');
      const echoRq = (messageId: number) =>
        encodeCommand({
          affectedSopClassUid: VERIFICATION,
          commandField: 0x0030,
          messageId,
          commandDataSetType: 0x0101,
        });
      // Custos as SCP, to a requestor that takes PDUs of 20 bytes at most (until 6 Dec 2026 it got 70-byte ones).
      const peer = await RawPeer.connect(Number(port));
      peer.socket.write(
        encodeAssociateRq(
          'CUSTOS',
          'TESTSCU',
          [{ id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: ['1.2.840.10008.1.2'] }],
          20,
        ),
      );
      expect((await peer.next())?.type).toBe(0x02);
      const rq = echoRq(5);
      peer.socket.write(Buffer.concat([pdvHeader(1, true, true, rq.length), rq]));
      const rsp = (await peer.message())!;
      expect(decodeCommand(rsp.command)).toMatchObject({
        commandField: 0x8030,
        messageIdBeingRespondedTo: 5,
      });
      expect(rsp.pduLengths.length).toBeGreaterThan(1);
      expect(Math.max(...rsp.pduLengths)).toBeLessThanOrEqual(20);
      peer.socket.destroy();
      // Custos as requestor (as to a C-MOVE destination), to an acceptor that takes 20 bytes, or 6.
      const seen: number[] = [];
      const accepted: Socket[] = [];
      const acceptor = createServer((c) => {
        accepted.push(c);
        void (async () => {
          const p = new RawPeer(c);
          const first = (await p.next())!;
          const assoc = decodePdu(first.type, first.body);
          if (assoc.type !== 'associate-rq') return;
          const max = assoc.calledAe === 'TINY' ? 20 : 6;
          c.write(
            encodeAssociateAc(
              assoc,
              assoc.contexts.map((x) => ({ id: x.id, result: 0, transferSyntax: x.transferSyntaxes[0]! })),
              max,
              [],
            ),
          );
          const m = await p.message();
          if (!m) return;
          seen.push(...m.pduLengths);
          const answer = encodeCommand({
            affectedSopClassUid: VERIFICATION,
            commandField: 0x8030,
            messageIdBeingRespondedTo: decodeCommand(m.command).messageId!,
            commandDataSetType: 0x0101,
            status: 0,
          });
          c.write(Buffer.concat([pdvHeader(m.contextId, true, true, answer.length), answer]));
          // Answers the A-RELEASE-RQ.
          await p.message();
        })();
      });
      await new Promise<void>((r) => acceptor.listen(0, '127.0.0.1', r));
      const call = (calledAe: string) =>
        openScuAssociation({
          host: '127.0.0.1',
          port: (acceptor.address() as { port: number }).port,
          calledAe,
          callingAe: 'CUSTOS',
          timeoutMs: 5000,
          contexts: [{ abstractSyntax: VERIFICATION, transferSyntaxes: ['1.2.840.10008.1.2'] }],
        });
      try {
        const scuA = await call('TINY');
        const id = scuA.conn.messageId();
        const r = await scuA.request(scuA.context(VERIFICATION)!.id, {
          affectedSopClassUid: VERIFICATION,
          commandField: 0x0030,
          messageId: id,
          commandDataSetType: 0x0101,
        });
        expect(r.cmd.status).toBe(0);
        expect(seen.length).toBeGreaterThan(1);
        expect(Math.max(...seen)).toBeLessThanOrEqual(20);
        await scuA.release();
        await expect(call('TOOTINY')).rejects.toThrow(
          'TOOTINY accepted with a maximum PDU length of 6, which leaves no room for data',
        );
      } finally {
        for (const c of accepted) c.destroy();
        await new Promise((r) => acceptor.close(r));
      }
    });

    it('aborts the association to a C-MOVE destination that answers with an unknown Message ID, and says so', async () => {
      await storeTestStudy();
      // Until 6 Dec 2026 such an answer was ignored, and each C-STORE waited for dicom.responseTimeoutMs.
      const { encodeAssociateAc, decodePdu, pdvHeader } = await import('../src/transports/dimse/pdu.js');
      const { encodeCommand, decodeCommand } = await import('../src/transports/dimse/command.js');
      const { RawPeer } = await import('./support/raw-scu.js');
      const dest = createServer((c) => {
        void (async () => {
          const p = new RawPeer(c);
          const first = await p.next();
          if (!first) return;
          const assoc = decodePdu(first.type, first.body);
          if (assoc.type !== 'associate-rq') return;
          c.write(
            encodeAssociateAc(
              assoc,
              assoc.contexts.map((x) => ({ id: x.id, result: 0, transferSyntax: x.transferSyntaxes[0]! })),
              65536,
              [],
            ),
          );
          for (let m = await p.message(); m; m = await p.message()) {
            const rq = decodeCommand(m.command);
            const answer = encodeCommand({
              affectedSopClassUid: rq.affectedSopClassUid!,
              commandField: 0x8001,
              messageIdBeingRespondedTo: (rq.messageId! + 100) & 0xffff,
              commandDataSetType: 0x0101,
              status: 0,
              affectedSopInstanceUid: rq.affectedSopInstanceUid!,
            });
            c.write(Buffer.concat([pdvHeader(m.contextId, true, true, answer.length), answer]));
          }
        })();
      });
      await new Promise<void>((r) => dest.listen(0, '127.0.0.1', r));
      try {
        await s.app.aes.add(admin, {
          title: 'WRONGIDDEST',
          host: '127.0.0.1',
          port: (dest.address() as { port: number }).port,
        });
        const r = await moveStudy('WRONGIDDEST', '-d');
        expect(r.stderr).toMatch(/Failed Suboperations +: 3/);
        const comment = /\(0000,0902\) LO \[([^\]]*)\]/.exec(r.stderr)?.[1] ?? '';
        expect(comment).toMatch(/^WRONGIDDEST: a response with an unknown Message ID \(\d+\)/);
      } finally {
        await new Promise((r) => dest.close(r));
      }
    });

    /** A C-MOVE or C-GET of the test study (Study Root, STUDY level) on a fresh association of Custos's requestor. */
    const retrieveStudy = async (
      kind: 'move' | 'get',
      onPending: (scuA: Awaited<ReturnType<typeof associate>>) => void,
      onStore?: (scuA: Awaited<ReturnType<typeof associate>>, stores: number) => void,
      destination = 'SLEEPYDEST',
    ) => {
      const { encodeDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      const sopClass = kind === 'move' ? '1.2.840.10008.5.1.4.1.2.2.2' : '1.2.840.10008.5.1.4.1.2.2.3';
      let stores = 0;
      const scuA: Awaited<ReturnType<typeof associate>> = await associate({
        contexts: [sopClass, CT_IMAGE].map((abstractSyntax) => ({
          abstractSyntax,
          transferSyntaxes: ['1.2.840.10008.1.2.1'],
        })),
        roles: [{ sopClassUid: CT_IMAGE, scu: false, scp: true }],
        onRequest: (contextId, cmd) => {
          // A C-GET's sub-operation: answered success.
          void answerStored(scuA, contextId, cmd);
          onStore?.(scuA, ++stores);
        },
      });
      const messageId = scuA.conn.messageId();
      let pending = 0;
      const final = scuA.conn.awaitResponse(messageId, () => {
        if (++pending === 1) onPending(scuA);
      });
      await scuA.conn.send(
        scuA.context(sopClass)!.id,
        {
          commandField: kind === 'move' ? 0x0021 : 0x0010,
          messageId,
          affectedSopClassUid: sopClass,
          priority: 0,
          commandDataSetType: 0,
          ...(kind === 'move' ? { moveDestination: destination } : {}),
        },
        encodeDataset(
          [
            { tag: 0x00080052, vr: 'CS', value: 'STUDY' },
            { tag: 0x0020000d, vr: 'UI', value: study },
          ],
          '1.2.840.10008.1.2.1',
        ),
      );
      return { scuA, final };
    };
    /** The last failure record of a C-MOVE or C-GET (its DIMSE service), once one newer than `afterSeq` is written. */
    const retrieveFailure = async (service: 'c-move' | 'c-get', afterSeq: number) => {
      for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
        const row = await s.app.index.db
          .selectFrom('audit_ledger')
          .select(['seq', 'record'])
          .where('action', '=', 'view-pixels')
          .where('outcome', '=', 'failure')
          .where('seq', '>', afterSeq)
          .orderBy('seq', 'desc')
          .executeTakeFirst();
        const record = row
          ? (JSON.parse(row.record) as { channel?: string; detail: Record<string, unknown> })
          : undefined;
        if (record?.channel === 'dimse' && record.detail.service === service) return record.detail;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no ${service} failure record`);
    };
    const lastSeq = async () =>
      Number(
        (
          await s.app.index.db
            .selectFrom('audit_ledger')
            .select((eb) => eb.fn.max('seq').as('m'))
            .executeTakeFirstOrThrow()
        ).m,
      );

    it('starts no further C-MOVE sub-operation once the requestor aborted, and records what was sent', async () => {
      await storeTestStudy();
      // storescp holds each C-STORE-RSP for a second (--sleep-after: once per object; --sleep-during sleeps at each
      // progress step): the A-ABORT comes while the second object is in flight. Until 6 Dec 2026 the C-MOVE went on
      // to send all three to a destination nobody would be told about.
      const { scp, out } = await storescpDestination('SLEEPYDEST', 'move-abort-', '--sleep-after', '1');
      try {
        const { encodeAbort } = await import('../src/transports/dimse/pdu.js');
        const since = await lastSeq();
        const { final } = await retrieveStudy('move', (scuA) => scuA.conn.socket.end(encodeAbort(0, 0)));
        expect((await final).cmd.commandField).toBe(0xffff); // no final response: the requestor is gone
        const detail = await retrieveFailure('c-move', since);
        expect(detail).toMatchObject({
          destination: 'SLEEPYDEST',
          reason: expect.stringMatching(/^the requestor aborted the association: [12] of 3 sent$/),
        });
        expect(Number(detail.sent) + Number(detail.unsent)).toBe(3);
        expect(detail.unsent).toBeGreaterThan(0);
        expect(String(detail.reason)).toBe(
          `the requestor aborted the association: ${String(detail.sent)} of 3 sent`,
        );
        // What the destination got is what the record says was sent.
        expect((await readdir(out)).length).toBe(detail.sent);
      } finally {
        await stopChild(scp);
      }
    });

    it('answers an A-RELEASE-RQ during a C-MOVE or C-GET after its final response, having started no further sub-operation', async () => {
      await storeTestStudy();
      const { scp, out } = await storescpDestination('RELEASEDEST', 'move-release-', '--sleep-after', '1');
      try {
        // C-MOVE: until 6 Dec 2026 the A-RELEASE-RP went at once, the final response never, and the sub-operations
        // went on after the requestor had gone.
        const events: string[] = [];
        let released: Promise<void> | undefined;
        const move = await retrieveStudy(
          'move',
          (scuA) => {
            released = scuA.release().then(() => void events.push('A-RELEASE-RP'));
          },
          undefined,
          'RELEASEDEST',
        );
        const final = await move.final;
        events.push('final C-MOVE-RSP');
        await released;
        expect(events).toEqual(['final C-MOVE-RSP', 'A-RELEASE-RP']);
        expect(final.cmd).toMatchObject({
          commandField: 0x8021,
          status: 0xb000,
          errorComment: expect.stringMatching(/^the requestor released the association: [12] of 3 sent$/),
        });
        expect(Number(final.cmd.completed) + Number(final.cmd.failed)).toBe(3);
        expect((await readdir(out)).length).toBe(final.cmd.completed);
        // C-GET: the same, and the ledger says the requestor released the association (until 6 Dec 2026 'the peer
        // closed the association before the data set ended').
        const since = await lastSeq();
        let getReleased: Promise<void> | undefined;
        const get = await retrieveStudy(
          'get',
          () => undefined,
          (scuA, stores) => {
            if (stores === 1) getReleased = scuA.release();
          },
        );
        const getFinal = await get.final;
        await getReleased;
        expect(getFinal.cmd).toMatchObject({
          commandField: 0x8010,
          errorComment: expect.stringMatching(/^the requestor released the association: [12] of 3 sent$/),
        });
        expect((await retrieveFailure('c-get', since)).reason).toBe(getFinal.cmd.errorComment);
      } finally {
        await stopChild(scp);
      }
    });

    it('counts a C-STORE answered 0x0001, 0x0107 or 0x0116 as a warning sub-operation, not a failed one', async () => {
      // PS3.7 Table C-1: these are warnings (the object was stored); until 7 Dec 2026 only Bxxx was, and the three
      // objects were failed sub-operations (0xA702), listed in (0008,0058) and recorded as never sent.
      const { encodeDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      const GET = '1.2.840.10008.5.1.4.1.2.2.3';
      const warnings = [0x0001, 0x0107, 0x0116];
      const answered: number[] = [];
      const ownStudy = uid(42);
      const ownSeries = uid(43);
      const dir = await mkdtemp(join(work, 'get-warn-'));
      const own: string[] = [];
      for (let i = 0; i < 3; i++) {
        own.push(join(dir, `w${i}.dcm`));
        await writeFile(
          own[i]!,
          makeInstance({
            studyUid: ownStudy,
            seriesUid: ownSeries,
            sopInstanceUid: uid(44),
            rows: 8,
            columns: 8,
          }),
        );
      }
      expect((await dcmtk('storescu', [...scu, '127.0.0.1', port, ...own])).code).toBe(0);
      const since = await lastSeq();
      const scuA: Awaited<ReturnType<typeof associate>> = await associate({
        contexts: [GET, CT_IMAGE].map((abstractSyntax) => ({
          abstractSyntax,
          transferSyntaxes: ['1.2.840.10008.1.2.1'],
        })),
        roles: [{ sopClassUid: CT_IMAGE, scu: false, scp: true }],
        onRequest: (contextId, cmd) => {
          const status = warnings[answered.length % warnings.length]!;
          answered.push(status);
          void scuA.conn.send(contextId, {
            commandField: 0x8001,
            messageIdBeingRespondedTo: cmd.messageId!,
            affectedSopClassUid: cmd.affectedSopClassUid!,
            affectedSopInstanceUid: cmd.affectedSopInstanceUid!,
            commandDataSetType: 0x0101,
            status,
          });
        },
      });
      try {
        const rsp = await scuA.request(
          scuA.context(GET)!.id,
          {
            commandField: 0x0010,
            messageId: scuA.conn.messageId(),
            affectedSopClassUid: GET,
            priority: 0,
            commandDataSetType: 0,
          },
          encodeDataset(
            [
              { tag: 0x00080052, vr: 'CS', value: 'STUDY' },
              { tag: 0x0020000d, vr: 'UI', value: ownStudy },
            ],
            '1.2.840.10008.1.2.1',
          ),
        );
        expect(answered).toEqual(warnings);
        expect(rsp.cmd).toMatchObject({
          commandField: 0x8010,
          status: 0xb000,
          completed: 0,
          warning: 3,
          failed: 0,
        });
        expect(rsp.data).toBeUndefined();
      } finally {
        await scuA.release();
      }
      // Nothing unsent to record: the ledger holds no failure record of this C-GET.
      const failures = await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['record'])
        .where('action', '=', 'view-pixels')
        .where('outcome', '=', 'failure')
        .where('seq', '>', since)
        .execute();
      expect(failures.filter((f) => f.record.includes('"service":"c-get"'))).toEqual([]);
    });

    it('reports storage commitment on the same association while it is open (N-ACTION, N-EVENT-REPORT)', async () => {
      const { encodeDataset, parseDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      /** A storage commitment request (N-ACTION) for these CT instances under this Transaction UID. */
      const commitRq = (
        a: Awaited<ReturnType<typeof associate>>,
        transactionUid: string,
        instances: string[],
      ) =>
        nAction(
          a,
          encodeDataset(
            [
              { tag: 0x00081195, vr: 'UI', value: transactionUid },
              {
                tag: 0x00081199,
                vr: 'SQ',
                value: instances.map((sop) => [
                  { tag: 0x00081150, vr: 'UI', value: CT_IMAGE },
                  { tag: 0x00081155, vr: 'UI', value: sop },
                ]),
              },
            ],
            a.context(COMMIT)!.transferSyntax,
          ),
        );
      let event:
        ((e: { cmd: { eventTypeId?: number }; data: Buffer; ctx: number; id: number }) => void) | undefined;
      const reported = new Promise<{ cmd: { eventTypeId?: number }; data: Buffer; ctx: number; id: number }>(
        (r) => (event = r),
      );
      const scuA = await associate({
        contexts: [{ abstractSyntax: COMMIT, transferSyntaxes: ['1.2.840.10008.1.2'] }],
        onRequest: (ctx, cmd, data) => event!({ cmd, data: data!, ctx, id: cmd.messageId! }),
      });
      try {
        const ctx = scuA.context(COMMIT)!;
        const missing = uid(40);
        const rsp = await commitRq(scuA, '2.25.777', [sops[0]!, missing]);
        expect(rsp.cmd.status).toBe(0);
        const ev = await reported;
        expect(ev.cmd.eventTypeId).toBe(2);
        const ds = await parseDataset(ev.data, ctx.transferSyntax);
        const seqUids = (tag: number) => {
          const el = ds.get(tag);
          return el?.kind === 'sequence'
            ? el.items.map((i) => {
                const u = i.get(0x00081155);
                return u?.kind === 'text' ? u.values[0] : undefined;
              })
            : [];
        };
        expect(seqUids(0x00081199)).toEqual([sops[0]]);
        expect(seqUids(0x00081198)).toEqual([missing]);
        await answerReport(scuA, ev);
      } finally {
        await scuA.release();
      }
      // A requestor that never answers its report: after dicom.responseTimeoutMs (3 s here) the association is
      // aborted, and the ledger says the report was not delivered (until 6 Dec 2026 the association was held for
      // good, and the record, written before the report went, said success).
      const silent = await associate({
        contexts: [{ abstractSyntax: COMMIT, transferSyntaxes: ['1.2.840.10008.1.2'] }],
        onRequest: () => undefined,
      });
      const silentClosed = new Promise((r) => silent.conn.socket.once('close', r));
      const silentTx = '2.25.779';
      const accepted = await commitRq(silent, silentTx, [sops[0]!]);
      expect(accepted.cmd.status).toBe(0);
      const closedInTime = await Promise.race([
        silentClosed.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 10_000)),
      ]);
      silent.conn.socket.destroy();
      expect(closedInTime).toBe(true);
      let record: { outcome: string; record: string } | undefined;
      for (let i = 0; i < 50 && !record; i++) {
        record = await s.app.index.db
          .selectFrom('audit_ledger')
          .select(['outcome', 'record'])
          .where('action', '=', 'storage-commit')
          .where('record', 'like', `%${silentTx}%`)
          .executeTakeFirst();
        if (!record) await new Promise((r) => setTimeout(r, 100));
      }
      expect(record?.outcome).toBe('failure');
      expect(record?.record).toContain('"report":"not delivered"');
      expect(record?.record).toContain('no N-EVENT-REPORT response within 3000 ms');
      // An AE that may not store is not told what is stored: 0x0124 and no report (until 5 Dec 2026 any
      // registered AE could learn whether any SOP Instance UID was in the archive, and its class).
      const noRole = await associate({
        callingAe: 'NOROLE',
        contexts: [{ abstractSyntax: COMMIT, transferSyntaxes: ['1.2.840.10008.1.2'] }],
        onRequest: () => {
          throw new Error('no report is sent to an AE that may not store');
        },
      });
      try {
        const rsp = await commitRq(noRole, '2.25.778', [sops[0]!]);
        expect(rsp.cmd.status).toBe(0x0124);
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        await noRole.release();
      }
    });

    /** A storage commitment N-ACTION-RQ on `scuA`'s commitment context, with this data set. */
    const COMMIT = '1.2.840.10008.1.20.1';
    const nAction = (scuA: Awaited<ReturnType<typeof associate>>, data: Buffer) =>
      scuA.request(
        scuA.context(COMMIT)!.id,
        {
          commandField: 0x0130,
          messageId: scuA.conn.messageId(),
          requestedSopClassUid: COMMIT,
          requestedSopInstanceUid: '1.2.840.10008.1.20.1.1',
          actionTypeId: 1,
          commandDataSetType: 0,
        },
        data,
      );
    /** The requestor's answer (N-EVENT-REPORT-RSP, success unless told) to a storage commitment report. */
    const answerReport = (
      scuA: Awaited<ReturnType<typeof associate>>,
      ev: { ctx: number; id: number },
      status = 0,
      eventTypeId = 2,
    ) =>
      scuA.conn.send(ev.ctx, {
        affectedSopClassUid: COMMIT,
        commandField: 0x8100,
        messageIdBeingRespondedTo: ev.id,
        commandDataSetType: 0x0101,
        status,
        affectedSopInstanceUid: '1.2.840.10008.1.20.1.1',
        eventTypeId,
      });
    /** The Referenced SOP Instance UIDs and Failure Reasons of a report's Failed SOP Sequence. */
    const failedOf = async (data: Buffer, ts: string) => {
      const { parseDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      const el = (await parseDataset(data, ts)).get(0x00081198);
      return el?.kind === 'sequence'
        ? el.items.map((i) => {
            const u = i.get(0x00081155);
            const r = i.get(0x00081197);
            return {
              uid: u?.kind === 'text' ? u.values[0] : undefined,
              reason: r?.kind === 'numbers' ? r.values[0] : r,
            };
          })
        : [];
    };

    it('commits to 10,000 references (a data set over 1 MiB), and answers one over 16 MiB with 0x0213, going on', async () => {
      const { encodeDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      const reports: { data: Buffer; ctx: number; id: number }[] = [];
      let reported: (() => void) | undefined;
      const scuA = await associate({
        contexts: [{ abstractSyntax: COMMIT, transferSyntaxes: ['1.2.840.10008.1.2'] }],
        onRequest: (ctx, cmd, data) => {
          reports.push({ data: data!, ctx, id: cmd.messageId! });
          reported?.();
        },
      });
      const answer = async () => {
        if (!reports.length) await new Promise<void>((r) => (reported = r));
        const ev = reports.shift()!;
        await answerReport(scuA, ev);
        return ev;
      };
      try {
        const ts = scuA.context(COMMIT)!.transferSyntax;
        // 64-character UIDs, as a large CT or tomosynthesis study may have: until 6 Dec 2026 anything over 1 MiB
        // (some 9,200 of them) was aborted (A-ABORT, source 2, reason 6) instead of answered.
        const many = Array.from({ length: 10_000 }, (_, i) => `2.25.${String(i).padStart(58, '9')}`);
        const big = encodeDataset(
          [
            { tag: 0x00081195, vr: 'UI', value: '2.25.7791' },
            {
              tag: 0x00081199,
              vr: 'SQ',
              value: many.map((sop) => [
                { tag: 0x00081150, vr: 'UI', value: CT_IMAGE },
                { tag: 0x00081155, vr: 'UI', value: sop },
              ]),
            },
          ],
          ts,
        );
        expect(big.length).toBeGreaterThan(1024 * 1024);
        expect((await nAction(scuA, big)).cmd.status).toBe(0);
        const failed = await failedOf((await answer()).data, ts);
        expect(failed).toHaveLength(10_000);
        expect(failed.every((f) => f.reason === 0x0112)).toBe(true);
        // Over the limit: the rest is read and dropped, the request answered, and the association goes on.
        const huge = await nAction(scuA, Buffer.alloc(16 * 1024 * 1024 + 2));
        expect(huge.cmd.status).toBe(0x0213);
        expect(huge.cmd.errorComment).toMatch(
          /^data set of 16777218 bytes, over the N-ACTION limit of 16 MiB/,
        );
        const small = encodeDataset(
          [
            { tag: 0x00081195, vr: 'UI', value: '2.25.780' },
            {
              tag: 0x00081199,
              vr: 'SQ',
              value: [
                [
                  { tag: 0x00081150, vr: 'UI', value: CT_IMAGE },
                  { tag: 0x00081155, vr: 'UI', value: sops[0]! },
                ],
              ],
            },
          ],
          ts,
        );
        expect((await nAction(scuA, small)).cmd.status).toBe(0);
        await answer();
      } finally {
        await scuA.release();
      }
      // A C-FIND identifier over 1 MiB: 0xA700 (out of resources) rather than an A-ABORT, and the association goes on.
      const finder = await associate({
        contexts: [
          { abstractSyntax: '1.2.840.10008.5.1.4.1.2.2.1', transferSyntaxes: ['1.2.840.10008.1.2'] },
        ],
      });
      try {
        const find = (data: Buffer) =>
          finder.request(
            finder.context('1.2.840.10008.5.1.4.1.2.2.1')!.id,
            {
              commandField: 0x0020,
              messageId: finder.conn.messageId(),
              affectedSopClassUid: '1.2.840.10008.5.1.4.1.2.2.1',
              priority: 0,
              commandDataSetType: 0,
            },
            data,
          );
        const tooBig = await find(Buffer.alloc(1024 * 1024 + 2));
        expect(tooBig.cmd.status).toBe(0xa700);
        expect(tooBig.cmd.errorComment).toContain('over the C-FIND limit of 1 MiB');
        const study = await find(
          encodeDataset(
            [
              { tag: 0x00080052, vr: 'CS', value: 'STUDY' },
              { tag: 0x0020000d, vr: 'UI', value: '' },
            ],
            '1.2.840.10008.1.2',
          ),
        );
        expect(study.cmd.status).toBe(0);
      } finally {
        await finder.release();
      }
    });

    it('gives each storage commitment failure its reason: 0x0122 for a class that is not stored, 0x0121 for no value, 0x0115 for a Transaction UID that is no UID', async () => {
      const { encodeDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      let reported: ((e: { data: Buffer; ctx: number; id: number }) => void) | undefined;
      const report = new Promise<{ data: Buffer; ctx: number; id: number }>((r) => (reported = r));
      const scuA = await associate({
        contexts: [{ abstractSyntax: COMMIT, transferSyntaxes: ['1.2.840.10008.1.2'] }],
        onRequest: (ctx, cmd, data) => reported!({ data: data!, ctx, id: cmd.messageId! }),
      });
      try {
        const ts = scuA.context(COMMIT)!.transferSyntax;
        const request = (tx: string, items: WriteElement[][]) =>
          nAction(
            scuA,
            encodeDataset(
              [
                { tag: 0x00081195, vr: 'UI', value: tx },
                { tag: 0x00081199, vr: 'SQ', value: items },
              ],
              ts,
            ),
          );
        const ref = (sopClass: string, sop: string): WriteElement[] => [
          { tag: 0x00081150, vr: 'UI', value: sopClass },
          { tag: 0x00081155, vr: 'UI', value: sop },
        ];
        // Present but empty: a missing value (0x0120, missing attribute, until 6 Dec 2026).
        const empty = await request('2.25.781', []);
        expect(empty.cmd.status).toBe(0x0121);
        // An item without its (Type 1) Instance UID: the request is refused, rather than the item reported failed
        // with empty UIDs (as a class/instance conflict, until 6 Dec 2026).
        const noUid = await request('2.25.782', [ref(CT_IMAGE, sops[0]!), ref(CT_IMAGE, '')]);
        expect(noUid.cmd.status).toBe(0x0121);
        expect(noUid.cmd.errorComment).toBe('Referenced SOP item 2: no SOP Class or Instance UID');
        // A Transaction UID that is no UID: 0x0115 (Invalid Argument Value) naming it, and no report (until 7 Dec
        // 2026 it was accepted, 0x0000, and reported back as given). The first report below is the next request's.
        const notUid = await request('1.2.840.abc', [ref(CT_IMAGE, sops[0]!)]);
        expect(notUid.cmd.status).toBe(0x0115);
        expect(notUid.cmd.errorComment).toBe("Transaction UID (0008,1195) is not a valid UID: '1.2.840.abc'");
        const tooLong = await request(`2.25.${'1'.repeat(60)}`, [ref(CT_IMAGE, sops[0]!)]);
        expect(tooLong.cmd.status).toBe(0x0115);
        // Verification is not a storage class: 0x0122 (0x0119 until 6 Dec 2026).
        const verification = uid(41);
        const ok = await request('2.25.783', [
          ref('1.2.840.10008.1.1', verification),
          ref(CT_IMAGE, sops[0]!),
        ]);
        expect(ok.cmd.status).toBe(0);
        const ev = await report;
        expect(await failedOf(ev.data, ts)).toEqual([{ uid: verification, reason: 0x0122 }]);
        await answerReport(scuA, ev);
      } finally {
        await scuA.release();
      }
    });

    it('reports every reference failed with 0x0131 when a Transaction UID is used again for another request, and answers a retry of the same one again', async () => {
      const { encodeDataset, parseDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      /** An association for `callingAe` whose reports arrive in order, and a way to take (and answer) the next. */
      const requestor = async (callingAe: string) => {
        const reports: { cmd: { eventTypeId?: number }; data: Buffer; ctx: number; id: number }[] = [];
        let reported: (() => void) | undefined;
        const scuA = await associate({
          callingAe,
          contexts: [{ abstractSyntax: COMMIT, transferSyntaxes: ['1.2.840.10008.1.2'] }],
          onRequest: (ctx, cmd, data) => {
            reports.push({ cmd, data: data!, ctx, id: cmd.messageId! });
            reported?.();
          },
        });
        const ts = scuA.context(COMMIT)!.transferSyntax;
        const commit = async (tx: string, instances: string[]) => {
          const rsp = await nAction(
            scuA,
            encodeDataset(
              [
                { tag: 0x00081195, vr: 'UI', value: tx },
                {
                  tag: 0x00081199,
                  vr: 'SQ',
                  value: instances.map((sop) => [
                    { tag: 0x00081150, vr: 'UI', value: CT_IMAGE },
                    { tag: 0x00081155, vr: 'UI', value: sop },
                  ]),
                },
              ],
              ts,
            ),
          );
          expect(rsp.cmd.status).toBe(0);
          if (!reports.length) await new Promise<void>((r) => (reported = r));
          const ev = reports.shift()!;
          await answerReport(scuA, ev, 0, ev.cmd.eventTypeId);
          const ds = await parseDataset(ev.data, ts);
          const committed = ds.get(0x00081199);
          const tx2 = ds.get(0x00081195);
          return {
            eventTypeId: ev.cmd.eventTypeId,
            transactionUid: tx2?.kind === 'text' ? tx2.values[0] : undefined,
            committed:
              committed?.kind === 'sequence'
                ? committed.items.map((i) => {
                    const u = i.get(0x00081155);
                    return u?.kind === 'text' ? u.values[0] : undefined;
                  })
                : [],
            failed: await failedOf(ev.data, ts),
          };
        };
        return { commit, release: () => scuA.release() };
      };
      const tx = '2.25.7950';
      const modality = await requestor('TESTSCU');
      try {
        expect(await modality.commit(tx, [sops[0]!])).toEqual({
          eventTypeId: 1,
          transactionUid: tx,
          committed: [sops[0]],
          failed: [],
        });
        // The same request again (its report lost, say): answered again, as the first.
        expect(await modality.commit(tx, [sops[0]!])).toEqual({
          eventTypeId: 1,
          transactionUid: tx,
          committed: [sops[0]],
          failed: [],
        });
        // The same UID for another request: nothing committed under it, every reference failed with 0131H
        // (PS3.3 C.14.1.1, Duplicate transaction UID). Until 7 Dec 2026 it was committed as a new request.
        expect(await modality.commit(tx, [sops[0]!, sops[1]!])).toEqual({
          eventTypeId: 2,
          transactionUid: tx,
          committed: [],
          failed: [
            { uid: sops[0], reason: 0x0131 },
            { uid: sops[1], reason: 0x0131 },
          ],
        });
      } finally {
        await modality.release();
      }
      // Another AE using the UID, even for the same references, is not the transaction's requestor either.
      const other = await requestor('TSSCU');
      try {
        expect(await other.commit(tx, [sops[0]!])).toEqual({
          eventTypeId: 2,
          transactionUid: tx,
          committed: [],
          failed: [{ uid: sops[0], reason: 0x0131 }],
        });
      } finally {
        await other.release();
      }
      // Each is recorded once its report was answered, which the requestor does just before this reads.
      let ofTx: Awaited<ReturnType<typeof s.app.auditStore.search>> = [];
      for (let i = 0; i < 50 && ofTx.length < 4; i++) {
        if (i) await new Promise((r) => setTimeout(r, 100));
        const records = await s.app.auditStore.search({ action: ['storage-commit'], limit: 50 });
        ofTx = records.filter((r) => JSON.stringify(r.objects).includes(tx)).reverse();
      }
      expect(ofTx.map((r) => [r.outcome, r.detail?.transaction])).toEqual([
        ['success', undefined],
        ['success', 'retry'],
        ['failure', 'duplicate'],
        ['failure', 'duplicate'],
      ]);
      expect(ofTx[3]?.detail).toMatchObject({ firstCallingAe: 'TESTSCU' });
    });

    it('counts a storage commitment report answered with a warning as delivered, one answered with a failure as not', async () => {
      const { encodeDataset } = await import('../src/transports/dimse/dimse-dataset.js');
      const reports: { ctx: number; id: number }[] = [];
      let reported: (() => void) | undefined;
      const scuA = await associate({
        contexts: [{ abstractSyntax: COMMIT, transferSyntaxes: ['1.2.840.10008.1.2'] }],
        onRequest: (ctx, cmd) => {
          reports.push({ ctx, id: cmd.messageId! });
          reported?.();
        },
      });
      const recordOf = async (tx: string) => {
        for (let i = 0; i < 50; i++) {
          const row = await s.app.index.db
            .selectFrom('audit_ledger')
            .select(['outcome', 'record'])
            .where('action', '=', 'storage-commit')
            .where('record', 'like', `%${tx}%`)
            .executeTakeFirst();
          if (row) return row;
          await new Promise((r) => setTimeout(r, 100));
        }
        return undefined;
      };
      try {
        const ts = scuA.context(COMMIT)!.transferSyntax;
        // PS3.7 Table C-1: Bxxx, 0001, 0107 and 0116 are warnings, the report taken; 0110 is a failure. Until 7 Dec
        // 2026 anything but 0000 recorded the report as not delivered and the commitment as a failure.
        for (const [tx, status, delivered] of [
          ['2.25.7901', 0xb000, true],
          ['2.25.7902', 0x0001, true],
          ['2.25.7903', 0x0110, false],
        ] as const) {
          const rsp = await nAction(
            scuA,
            encodeDataset(
              [
                { tag: 0x00081195, vr: 'UI', value: tx },
                {
                  tag: 0x00081199,
                  vr: 'SQ',
                  value: [
                    [
                      { tag: 0x00081150, vr: 'UI', value: CT_IMAGE },
                      { tag: 0x00081155, vr: 'UI', value: sops[0]! },
                    ],
                  ],
                },
              ],
              ts,
            ),
          );
          expect(rsp.cmd.status).toBe(0);
          if (!reports.length) await new Promise<void>((r) => (reported = r));
          await answerReport(scuA, reports.shift()!, status, 1);
          const hex = `0x${status.toString(16).toUpperCase().padStart(4, '0')}`;
          const record = await recordOf(tx);
          if (delivered) {
            expect(record?.outcome, record?.record).toBe('success');
            expect(record?.record).toContain(`"status":"${hex}"`);
            expect(record?.record).toContain(`"report":"delivered"`);
          } else {
            expect(record?.outcome).toBe('failure');
            expect(record?.record).toContain('"report":"not delivered"');
            expect(record?.record).toContain(`the requestor answered the report ${hex}`);
          }
        }
      } finally {
        await scuA.release();
      }
    });

    it('takes 10 concurrent storescu associations', async () => {
      const st = uid(7);
      const dir = await mkdtemp(join(work, 'conc-'));
      const runs = [];
      for (let i = 0; i < 10; i++) {
        const f = join(dir, `c${i}.dcm`);
        await writeFile(
          f,
          makeInstance({ studyUid: st, seriesUid: uid(8), sopInstanceUid: uid(9), rows: 128, columns: 128 }),
        );
        runs.push(dcmtk('storescu', [...scu, '127.0.0.1', port, f]));
      }
      const results = await Promise.all(runs);
      for (const r of results) expect(r.code, r.stderr).toBe(0);
      const n = await storedInstances(s, 'study_uid', st);
      expect(n).toHaveLength(10);
    });

    it('stores every accepted transfer syntax as received (native, deflated, JPEG, JPEG-LS, JPEG 2000, RLE)', async () => {
      // storescu's option that proposes each transfer syntax (it proposes uncompressed ones only by default).
      const proposal: Record<string, string> = {
        '1.2.840.10008.1.2': '-xi',
        '1.2.840.10008.1.2.1.99': '-xd',
        '1.2.840.10008.1.2.4.50': '-xy',
        '1.2.840.10008.1.2.4.51': '-xx',
        '1.2.840.10008.1.2.4.70': '-xs',
        '1.2.840.10008.1.2.4.80': '-xt',
        '1.2.840.10008.1.2.4.81': '-xu',
        '1.2.840.10008.1.2.4.90': '-xv',
        '1.2.840.10008.1.2.4.91': '-xw',
        '1.2.840.10008.1.2.5': '-xr',
      };
      const syntaxes = Object.keys(proposal);
      const st = uid(20);
      const dir = await mkdtemp(join(work, 'ts-'));
      const expected = new Map<string, { ts: string; dataset: Buffer }>();
      for (const [i, ts] of syntaxes.entries()) {
        const sop = uid(21);
        const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
        const els: WriteElement[] = [
          { tag: t(0x0008, 0x0016), vr: 'UI', value: CT_IMAGE },
          { tag: t(0x0008, 0x0018), vr: 'UI', value: sop },
          { tag: t(0x0008, 0x0060), vr: 'CS', value: 'CT' },
          { tag: t(0x0010, 0x0020), vr: 'LO', value: 'PID-TS' },
          { tag: t(0x0020, 0x000d), vr: 'UI', value: st },
          { tag: t(0x0020, 0x000e), vr: 'UI', value: uid(22) },
          { tag: t(0x0028, 0x0002), vr: 'US', value: 1 },
          { tag: t(0x0028, 0x0004), vr: 'CS', value: 'MONOCHROME2' },
          { tag: t(0x0028, 0x0010), vr: 'US', value: 16 },
          { tag: t(0x0028, 0x0011), vr: 'US', value: 16 },
          { tag: t(0x0028, 0x0100), vr: 'US', value: 8 },
          { tag: t(0x0028, 0x0101), vr: 'US', value: 8 },
          { tag: t(0x0028, 0x0102), vr: 'US', value: 7 },
          { tag: t(0x0028, 0x0103), vr: 'US', value: 0 },
        ];
        const native = ts === '1.2.840.10008.1.2' || ts === '1.2.840.10008.1.2.1.99';
        if (native) els.push({ tag: t(0x7fe0, 0x0010), vr: 'OW', value: Buffer.alloc(256, i) });
        const bytes = writePart10(els, {
          transferSyntaxUid: ts,
          ...(native
            ? {}
            : { encapsulatedPixelData: { fragments: [Buffer.alloc(200, i + 1), Buffer.alloc(57, 9)] } }),
        });
        const f = join(dir, `${i}.dcm`);
        await writeFile(f, bytes);
        expected.set(sop, { ts, dataset: bytes.subarray(132 + 12 + bytes.readUInt32LE(140)) });
        const r = await dcmtk('storescu', [
          '-aet',
          'TSSCU',
          '-aec',
          'CUSTOS',
          '-R',
          proposal[ts]!,
          '127.0.0.1',
          port,
          f,
        ]);
        expect(r.code, `${ts}: ${r.stderr}`).toBe(0);
        expect(r.stderr, ts).not.toMatch(/convert/);
      }
      const rows = await storedInstances(s, 'study_uid', st);
      expect(rows).toHaveLength(syntaxes.length);
      for (const row of rows) {
        const want = expected.get(row.sop_instance_uid)!;
        expect(row.transfer_syntax_uid).toBe(want.ts);
        const [ref] = await s.app.retrieve.open(
          admin,
          { studyUid: st, sopInstanceUid: row.sop_instance_uid },
          'view-pixels',
          'test',
        );
        const chunks: Buffer[] = [];
        for await (const c of s.app.retrieve.stream(ref!)) chunks.push(c);
        const stored = Buffer.concat(chunks);
        const got = stored.subarray(ref!.bulk.datasetStart);
        // dcmtk re-deflates what it sends; the deflated data set is stored as received, so compare inflated.
        const plain = (b: Buffer) => (want.ts === '1.2.840.10008.1.2.1.99' ? inflateRawSync(b) : b);
        expect(plain(got).equals(plain(want.dataset)), want.ts).toBe(true);
      }
    });

    it('aborts a connection that sends no A-ASSOCIATE-RQ within ARTIM, and an idle association', async () => {
      const waitClose = (write?: Buffer) =>
        new Promise<{ bytes: Buffer; ms: number }>((resolve) => {
          const t0 = performance.now();
          const c = connect(Number(port), '127.0.0.1');
          const got: Buffer[] = [];
          c.on('data', (d: Buffer) => got.push(d));
          c.on('close', () => resolve({ bytes: Buffer.concat(got), ms: performance.now() - t0 }));
          c.on('error', () => undefined);
          if (write) c.write(write);
        });
      const silent = await waitClose();
      expect(silent.bytes[0]).toBe(0x07);
      expect(silent.ms).toBeGreaterThan(900);
      const { encodeAssociateRq } = await import('../src/transports/dimse/pdu.js');
      const idle = await waitClose(
        encodeAssociateRq(
          'CUSTOS',
          'TESTSCU',
          [{ id: 1, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2'] }],
          16384,
        ),
      );
      expect(idle.bytes[0]).toBe(0x02); // A-ASSOCIATE-AC, then ...
      expect(idle.bytes.at(-10)).toBe(0x07); // ... A-ABORT after the idle timeout
      expect(idle.ms).toBeGreaterThan(1900);
    });

    it('aborts an association whose peer stalls in the middle of a C-STORE, and stores nothing', async () => {
      const before = await countRows(s, 'instances');
      const { rawAssociateAndCutStore } = await import('./support/raw-scu.js');
      const t0 = performance.now();
      const sent = await rawAssociateAndCutStore(
        Number(port),
        'TESTSCU',
        'CUSTOS',
        makeInstance({
          studyUid: uid(13),
          seriesUid: uid(14),
          sopInstanceUid: uid(15),
          rows: 256,
          columns: 256,
        }),
        { stall: true },
      );
      expect(sent[0]).toBe(0x07); // A-ABORT after the idle timeout
      expect(performance.now() - t0).toBeGreaterThan(1900);
      expect(await countRows(s, 'instances')).toBe(before);
    });

    it('aborts on a malformed PDU and still answers C-ECHO', async () => {
      const reply = await new Promise<Buffer>((resolve) => {
        const c = connect(Number(port), '127.0.0.1');
        const got: Buffer[] = [];
        c.on('data', (d: Buffer) => got.push(d));
        c.on('close', () => resolve(Buffer.concat(got)));
        c.on('error', () => undefined);
        c.write(Buffer.from([0x09, 0, 0, 0, 0, 4, 1, 2, 3, 4]));
      });
      expect(reply[0]).toBe(0x07); // A-ABORT
      const r = await dcmtk('echoscu', [...scu, '127.0.0.1', port]);
      expect(r.code, r.stderr).toBe(0);
      // An A-ASSOCIATE-RQ that proposes no presentation context (PS3.8 §9.3.2 asks for one or more): rejected
      // permanently (A-ASSOCIATE-RJ, result 1), where it was accepted until 5 Dec 2026.
      const { encodeAssociateRq } = await import('../src/transports/dimse/pdu.js');
      const rj = await new Promise<Buffer>((resolve) => {
        const c = connect(Number(port), '127.0.0.1');
        const got: Buffer[] = [];
        c.on('data', (d: Buffer) => got.push(d));
        c.on('close', () => resolve(Buffer.concat(got)));
        c.on('error', () => undefined);
        c.write(encodeAssociateRq('CUSTOS', 'TESTSCU', [], 16384, []));
      });
      expect(rj[0]).toBe(0x03); // A-ASSOCIATE-RJ
      expect(rj[7]).toBe(1); // rejected-permanent
      // A requestor that does not offer protocol version 1 (bit 0 of the version): A-ASSOCIATE-RJ, source 2
      // (ACSE), reason 2, protocol-version-not-supported (PS3.8 §9.3.2, Table 9-21); it was an A-ABORT until 5
      // Dec 2026.
      const v2 = encodeAssociateRq(
        'CUSTOS',
        'TESTSCU',
        [{ id: 1, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2'] }],
        16384,
        [],
      );
      v2.writeUInt16BE(0x0002, 6);
      const versionRj = await new Promise<Buffer>((resolve) => {
        const c = connect(Number(port), '127.0.0.1');
        const got: Buffer[] = [];
        c.on('data', (d: Buffer) => got.push(d));
        c.on('close', () => resolve(Buffer.concat(got)));
        c.on('error', () => undefined);
        c.write(v2);
      });
      expect([...versionRj.subarray(0, 10)]).toEqual([0x03, 0, 0, 0, 0, 4, 0, 1, 2, 2]);
    });

    it('leaves nothing stored when the peer disconnects in the middle of a C-STORE', async () => {
      const before = await countRows(s, 'instances');
      const blobsBefore = (await blobFiles(join(s.dataDir, 'blobs'))).length;
      const { rawAssociateAndCutStore } = await import('./support/raw-scu.js');
      await rawAssociateAndCutStore(
        Number(port),
        'TESTSCU',
        'CUSTOS',
        makeInstance({
          studyUid: uid(10),
          seriesUid: uid(11),
          sopInstanceUid: uid(12),
          rows: 512,
          columns: 512,
        }),
      );
      await new Promise((r) => setTimeout(r, 300));
      expect(await countRows(s, 'instances')).toBe(before);
      expect((await blobFiles(join(s.dataDir, 'blobs'))).length).toBe(blobsBefore);
      const r = await dcmtk('echoscu', [...scu, '127.0.0.1', port]);
      expect(r.code).toBe(0);
      expect(s.unexpected).toEqual([]);
    });
  });
}

for (const backend of backends()) {
  describe(`C-STORE with dicom.storeAck 'received' (${backend})`, () => {
    it('answers once each object is received and validated; every object is committed and audited after', async () => {
      const s = await startTestServer(backend, { dicom: { storeAck: 'received' } });
      const work = await mkdtemp(join(tmpdir(), 'custos-dimse-ack-'));
      try {
        await s.app.aes.add(admin, { title: 'ACKSCU', host: '127.0.0.1', port: 104, user: 'admin' });
        const study = uid(30);
        const files: string[] = [];
        for (let i = 0; i < 5; i++) {
          const f = join(work, `${i}.dcm`);
          await writeFile(
            f,
            makeInstance({
              studyUid: study,
              seriesUid: uid(31),
              sopInstanceUid: uid(32),
              rows: 128,
              columns: 128,
            }),
          );
          files.push(f);
        }
        const bad = join(work, 'bad.dcm');
        await writeFile(
          bad,
          makeInstance({ studyUid: 'not a uid', seriesUid: uid(33), sopInstanceUid: uid(34) }),
        );
        const held = join(work, 'held.dcm');
        await writeFile(
          held,
          makeInstance({
            studyUid: uid(35),
            seriesUid: uid(36),
            sopInstanceUid: uid(37),
            patientName: 'Doe\0^Jo',
          }),
        );
        const r = await dcmtk('storescu', [
          '-v',
          '-aet',
          'ACKSCU',
          '-aec',
          'CUSTOS',
          '127.0.0.1',
          String(s.dicomPort),
          ...files,
          held,
          bad, // last: storescu stops at a failure
        ]);
        // Validation still happens before the answer: the bad object is refused with its precise status, the
        // one held for the data steward answered B007.
        expect(r.stderr).toMatch(/Store Response \(Error: DataSetDoesNotMatchSOPClass\)|0xa900/i);
        expect((r.stderr.match(/Store Response \(Success\)/g) ?? []).length).toBe(5);
        expect(r.stderr).toMatch(/Store Response \(Warning: DataSetDoesNotMatchSOPClass\)/);
        // The commits run after the answers: wait (up to 10 s) until the five stored objects, the held one and
        // every ledger record are there, then check each exactly.
        const observe = async () => ({
          stored: (await storedInstances(s, 'study_uid', study)).length,
          audit: await s.app.index.db
            .selectFrom('audit_ledger')
            .select('outcome')
            .where('action', '=', 'store')
            .where('actor', '=', 'ACKSCU')
            .execute(),
          quarantine: await s.app.index.db.selectFrom('quarantine').select('sop_instance_uid').execute(),
        });
        let seen = await observe();
        for (let i = 0; i < 200; i++) {
          if (seen.stored >= 5 && seen.quarantine.length >= 1 && seen.audit.length >= 6) break;
          await new Promise((res) => setTimeout(res, 50));
          seen = await observe();
        }
        expect(seen.stored).toBe(5);
        expect(seen.audit.filter((a) => a.outcome === 'success')).toHaveLength(5);
        expect(seen.audit.filter((a) => a.outcome === 'failure')).toHaveLength(1);
        expect(seen.quarantine).toHaveLength(1);
      } finally {
        await s.stop();
        await rm(work, { recursive: true, force: true });
      }
    });
  });
}

for (const backend of backends()) {
  describe(`C-FIND with many matches (${backend})`, () => {
    it('answers 150 IMAGE-level matches (several write batches) each exactly once, at a 4 KiB peer PDU', async () => {
      const s = await startTestServer(backend);
      const work = await mkdtemp(join(tmpdir(), 'custos-dimse-find-'));
      try {
        await s.app.aes.add(admin, { title: 'FINDSCU', host: '127.0.0.1', port: 104, user: 'admin' });
        const study = uid(40);
        const series = uid(41);
        const sops: string[] = [];
        const files: string[] = [];
        for (let i = 0; i < 150; i++) {
          const sop = uid(42);
          sops.push(sop);
          const f = join(work, `${i}.dcm`);
          await writeFile(
            f,
            makeInstance({
              studyUid: study,
              seriesUid: series,
              sopInstanceUid: sop,
              patientId: 'PID-MANY',
              instanceNumber: i + 1,
            }),
          );
          files.push(f);
        }
        const stored = await dcmtk('storescu', [
          '-aet',
          'FINDSCU',
          '-aec',
          'CUSTOS',
          '127.0.0.1',
          String(s.dicomPort),
          ...files,
        ]);
        expect(stored.code, stored.stderr).toBe(0);
        const r = await findscuWith(
          s.dicomPort,
          'FINDSCU',
          [
            'QueryRetrieveLevel=IMAGE',
            `StudyInstanceUID=${study}`,
            `SeriesInstanceUID=${series}`,
            'SOPInstanceUID',
            'InstanceNumber',
          ],
          { flags: ['--max-pdu', '4096'] },
        );
        expect(r.code, r.stderr).toBe(0);
        expect((r.stderr.match(/Find Response: \d+ \(Pending\)/g) ?? []).length).toBe(150);
        expect(r.stderr).toMatch(/Final Find Response \(Success\)/);
        for (const sop of sops) expect(r.stderr.split(sop).length - 1, sop).toBe(1);
        expect(s.unexpected).toEqual([]);
      } finally {
        await s.stop();
        await rm(work, { recursive: true, force: true });
      }
    });
  });
}
