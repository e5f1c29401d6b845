// SOP Class Extended Negotiation of relational-queries (PS3.4 C.5.1.1), and a C-FIND without the unique keys of the
// levels above its own (PS3.4 C.4.1.2.1) with and without it: dcmtk's findscu offers no extended negotiation; the
// negotiation itself is sent by a raw requestor.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { Tags } from '../src/dicom/tags.js';
import { Cmd, decodeCommand, encodeCommand } from '../src/transports/dimse/command.js';
import { encodeDataset } from '../src/transports/dimse/dimse-dataset.js';
import { decodePdu, encodeAssociateRq } from '../src/transports/dimse/pdu.js';
import { Sop } from '../src/transports/dimse/sop-classes.js';
import { backends } from './support/backends.js';
import { findscuTo, storescuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { rawMessage, RawPeer } from './support/raw-scu.js';
import { startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';

describe.each(backends())(
  'relational-queries negotiation and C-FIND without upper keys, on %s',
  (backend) => {
    let s: TestServer;
    let work: string;
    const study = uid(1);
    const series = uid(2);

    beforeAll(async () => {
      s = await startTestServer(backend);
      work = await mkdtemp(join(tmpdir(), 'custos-relational-'));
      await s.app.aes.add(systemPrincipal('test'), {
        title: 'RELSCU',
        host: '127.0.0.1',
        port: 104,
        user: 'admin',
      });
      const f = join(work, 'in.dcm');
      await writeFile(
        f,
        makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: uid(3), patientId: 'PID-REL' }),
      );
      const r = await storescuTo(s.dicomPort, 'RELSCU', [f]);
      expect(r.code, r.stderr).toBe(0);
    });
    afterAll(async () => {
      expect(await stopThenCleanUp(s)).toEqual([]);
      await rm(work, { recursive: true, force: true });
    });

    const findscu = (...keys: string[]) => findscuTo(s.dicomPort, 'RELSCU', ...keys);

    it('answers a SERIES or IMAGE query without the unique keys above it, relational-queries negotiated or not', async () => {
      // dcmtk's findscu negotiates nothing: PS3.4 C.4.1.2.1 asks it for the upper keys, and does not bid Custos refuse.
      for (const keys of [
        ['QueryRetrieveLevel=SERIES', `SeriesInstanceUID=${series}`, 'StudyInstanceUID'],
        ['QueryRetrieveLevel=SERIES', 'Modality=CT', 'SeriesInstanceUID'],
        ['QueryRetrieveLevel=IMAGE', `StudyInstanceUID=${study}`, 'SeriesInstanceUID', 'SOPInstanceUID'],
      ]) {
        const r = await findscu(...keys);
        expect(r.stderr, keys.join(' ')).toMatch(/Find Response: 1 \(Pending\)/);
        expect(r.stderr).toMatch(new RegExp(series.replace(/\./g, '\\.')));
        expect(r.stderr).toMatch(/Final Find Response \(Success\)/);
      }
    });

    it('accepts relational-queries when asked, and then answers a query without the upper keys', async () => {
      const peer = await RawPeer.connect(s.dicomPort!);
      // Relational-queries asked for, with combined date-time matching too (which Custos does not perform).
      peer.socket.write(
        encodeAssociateRq(
          'CUSTOS',
          'RELSCU',
          [{ id: 1, abstractSyntax: Sop.StudyRootFind, transferSyntaxes: [EXPLICIT_LE] }],
          65536,
          [],
          [
            { sopClassUid: Sop.StudyRootFind, info: Buffer.from([1, 1]) },
            // A retrieve class: relational-retrieve is not supported, so it is not answered.
            { sopClassUid: Sop.StudyRootMove, info: Buffer.from([1]) },
          ],
        ),
      );
      const ac = await peer.next();
      expect(ac?.type).toBe(0x02);
      const decoded = decodePdu(ac!.type, ac!.body);
      if (decoded.type !== 'associate-ac') throw new Error('no A-ASSOCIATE-AC');
      // Until 7 Dec 2026 the A-ASSOCIATE-AC answered no extended negotiation at all.
      expect(decoded.user.extended?.map((e) => [e.sopClassUid, [...e.info]])).toEqual([
        [Sop.StudyRootFind, [1, 0]],
      ]);
      const identifier = encodeDataset(
        [
          { tag: 0x00080052, vr: 'CS', value: 'SERIES' },
          { tag: Tags.SeriesInstanceUID, vr: 'UI', value: series },
          { tag: Tags.StudyInstanceUID, vr: 'UI', value: '' },
        ],
        EXPLICIT_LE,
      );
      const cmd = encodeCommand({
        affectedSopClassUid: Sop.StudyRootFind,
        commandField: Cmd.CFindRq,
        messageId: 1,
        priority: 0,
        commandDataSetType: 0,
      });
      peer.socket.write(rawMessage(1, cmd, identifier));
      const pending = await peer.message();
      expect(decodeCommand(pending!.command).status).toBe(0xff00);
      expect(pending!.data!.includes(Buffer.from(study))).toBe(true);
      const final = await peer.message();
      expect(decodeCommand(final!.command).status).toBe(0x0000);
      peer.socket.destroy();
    });
  },
);
