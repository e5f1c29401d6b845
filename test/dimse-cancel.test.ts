// C-CANCEL of a C-FIND whose answers are still going out (PS3.4 C.4.1.2.3, PS3.7 §9.3.2.3): the pending answers
// stop and the final response says Cancel (0xFE00); the ledger says how many went (and, for a C-MOVE, which
// objects did not). Until 6 Dec 2026 a peer that read as fast as Custos wrote got
// every answer of a 500-study query and a final Success: between two batches of answers the socket's writes
// resolved at once, and the C-CANCEL waiting in it was not read until the last.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { Tags } from '../src/dicom/tags.js';
import { Cmd, decodeCommand, encodeCommand, NO_DATASET } from '../src/transports/dimse/command.js';
import { encodeDataset } from '../src/transports/dimse/dimse-dataset.js';
import { encodeReleaseRq } from '../src/transports/dimse/pdu.js';
import { Sop } from '../src/transports/dimse/sop-classes.js';
import { backends } from './support/backends.js';
import { dcmtk, freePort, spawnDcmtk, stopChild } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { rawAssociated, rawMessage } from './support/raw-scu.js';
import {
  ledgerHead,
  ledgerSince,
  postStow,
  startTestServer,
  stopThenCleanUp,
  type TestServer,
} from './support/test-server.js';

const STUDIES = 500;
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

describe.each(backends())('C-CANCEL of a C-FIND or C-MOVE with answers still flowing, on %s', (backend) => {
  let s: TestServer;
  let firstStudy: string;

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'CANCELSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    firstStudy = uid(1);
    const parts = Array.from({ length: STUDIES }, (_, i) =>
      makeInstance({
        studyUid: i === 0 ? firstStudy : uid(1),
        seriesUid: uid(2),
        sopInstanceUid: uid(3),
        patientId: 'PID-CANCEL',
        patientName: 'Cancel^Carl',
      }),
    );
    for (let i = 0; i < STUDIES; i += 100)
      expect((await postStow(s, parts.slice(i, i + 100))).status).toBe(200);
  }, 180_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  it('stops the pending answers and ends with 0xFE00 when the C-CANCEL comes after the first answer', async () => {
    const peer = await rawAssociated(s.dicomPort!, 'CANCELSCU', [
      { abstractSyntax: Sop.StudyRootFind, transferSyntaxes: [EXPLICIT_LE] },
    ]);
    const find = encodeCommand({
      affectedSopClassUid: Sop.StudyRootFind,
      commandField: Cmd.CFindRq,
      messageId: 7,
      priority: 0,
      commandDataSetType: 0,
    });
    const identifier = encodeDataset(
      [
        // Query/Retrieve Level
        { tag: 0x00080052, vr: 'CS', value: 'STUDY' },
        { tag: Tags.PatientID, vr: 'LO', value: 'PID-CANCEL' },
        { tag: Tags.StudyInstanceUID, vr: 'UI', value: '' },
      ],
      EXPLICIT_LE,
    );
    const before = await ledgerHead(s);
    peer.socket.write(rawMessage(1, find, identifier));
    const first = await peer.message();
    expect(decodeCommand(first!.command).status).toBe(0xff00);
    // As findscu --cancel 1 does: the C-CANCEL-RQ goes once the first pending answer is in.
    const cancel = encodeCommand({
      commandField: Cmd.CCancelRq,
      messageIdBeingRespondedTo: 7,
      commandDataSetType: NO_DATASET,
    });
    peer.socket.write(rawMessage(1, cancel));
    let pending = 1;
    let final: number | undefined;
    for (let m = await peer.message(); m; m = await peer.message()) {
      const cmd = decodeCommand(m.command);
      expect(cmd.messageIdBeingRespondedTo).toBe(7);
      if (cmd.status === 0xff00) pending++;
      else {
        final = cmd.status;
        break;
      }
    }
    expect(final).toBe(0xfe00);
    expect(pending).toBeLessThan(STUDIES);
    // The page read (all 500 matches) was recorded as answered before its answers went; a second record says how
    // many actually went before the C-CANCEL. Until 7 Dec 2026 the 500 stood alone.
    const queries = (await ledgerSince(s, before)).filter((r) => r.action === 'query');
    expect(queries.map((q) => q.outcome)).toEqual(['success', 'failure']);
    expect((queries[0]!.objects as { count: number }).count).toBe(STUDIES);
    expect((queries[1]!.objects as { count: number }).count).toBe(pending);
    expect(queries[1]!.detail).toMatchObject({
      answered: pending,
      unanswered: 'dimse.cancelled',
      reason: `cancelled by the requestor (C-CANCEL) after ${pending} answers`,
    });
    // The association goes on: it is released normally.
    peer.socket.write(encodeReleaseRq());
    expect((await peer.next())?.type).toBe(0x06);
    peer.socket.destroy();
  });
  // PS3.7 §9.1.2.1.1: no two outstanding operations share a Message ID, so an SCU may use one again once the last
  // operation with it has ended; pynetdicom's send_c_find/send_c_move/send_c_get default to Message ID 1 for each.
  // Until 7 Dec 2026 a C-CANCEL was remembered for the rest of the association, so every later C-FIND, C-MOVE or
  // C-GET with that Message ID was cancelled before its first answer (0xFE00, nothing found); so was one after a
  // C-CANCEL that came too late, once the final response had gone.
  it("answers a later C-FIND that uses a cancelled request's Message ID again", async () => {
    const peer = await rawAssociated(s.dicomPort!, 'CANCELSCU', [
      { abstractSyntax: Sop.StudyRootFind, transferSyntaxes: [EXPLICIT_LE] },
    ]);
    const find = encodeCommand({
      affectedSopClassUid: Sop.StudyRootFind,
      commandField: Cmd.CFindRq,
      messageId: 1,
      priority: 0,
      commandDataSetType: 0,
    });
    const cancel = rawMessage(
      1,
      encodeCommand({
        commandField: Cmd.CCancelRq,
        messageIdBeingRespondedTo: 1,
        commandDataSetType: NO_DATASET,
      }),
    );
    const query = (keys: { tag: number; vr: string; value: string }[]) =>
      rawMessage(
        1,
        find,
        encodeDataset([{ tag: 0x00080052, vr: 'CS', value: 'STUDY' }, ...keys], EXPLICIT_LE),
      );
    /** Every response to the request in flight: the Study Instance UIDs answered, and the final status. */
    const answers = async () => {
      let pending = 0;
      for (let m = await peer.message(); m; m = await peer.message()) {
        const cmd = decodeCommand(m.command);
        if (cmd.status !== 0xff00) return { pending, final: cmd.status };
        pending++;
      }
      throw new Error('the association ended');
    };
    // The first query is cancelled after its first answer, as findscu --cancel 1 does.
    peer.socket.write(
      query([
        { tag: Tags.PatientID, vr: 'LO', value: 'PID-CANCEL' },
        { tag: Tags.StudyInstanceUID, vr: 'UI', value: '' },
      ]),
    );
    expect(decodeCommand((await peer.message())!.command).status).toBe(0xff00);
    peer.socket.write(cancel);
    expect((await answers()).final).toBe(0xfe00);
    // The next, with Message ID 1 again, is a request of its own.
    peer.socket.write(query([{ tag: Tags.StudyInstanceUID, vr: 'UI', value: firstStudy }]));
    expect(await answers()).toEqual({ pending: 1, final: 0x0000 });
    // A C-CANCEL that comes after the final response names no operation in progress and is ignored: the
    // request after it is answered in full.
    peer.socket.write(cancel);
    peer.socket.write(query([{ tag: Tags.StudyInstanceUID, vr: 'UI', value: firstStudy }]));
    expect(await answers()).toEqual({ pending: 1, final: 0x0000 });
    peer.socket.write(encodeReleaseRq());
    expect((await peer.next())?.type).toBe(0x06);
    peer.socket.destroy();
  });
  it('records the objects a C-CANCEL of a C-MOVE left unsent, and how many went', async () => {
    const out = await mkdtemp(join(tmpdir(), 'custos-cancel-move-'));
    const port = await freePort();
    await s.app.aes.add(systemPrincipal('test'), { title: 'CANCELDEST', host: '127.0.0.1', port });
    const scp = spawnDcmtk('storescp', ['-aet', 'CANCELDEST', '-od', out, String(port)]);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const before = await ledgerHead(s);
      // movescu --cancel 1: the C-CANCEL-RQ goes once the first pending response (one object sent) is in.
      const r = await dcmtk('movescu', [
        '-v',
        '-aet',
        'CANCELSCU',
        '-aec',
        'CUSTOS',
        '-P',
        '-aem',
        'CANCELDEST',
        '--cancel',
        '1',
        '127.0.0.1',
        String(s.dicomPort),
        ...['QueryRetrieveLevel=PATIENT', 'PatientID=PID-CANCEL'].flatMap((k) => ['-k', k]),
      ]);
      expect(r.stderr).toMatch(/Move Response.*\(Cancel/);
      const received = (await readdir(out)).length;
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThan(STUDIES);
      const records = (await ledgerSince(s, before)).filter((x) => x.action === 'view-pixels');
      // The decision to send all 500 (one record per study), then one record of what did not go: neither failed nor
      // sent, cancelled.
      const failures = records.filter((x) => x.outcome === 'failure');
      expect(records.length - failures.length).toBe(STUDIES);
      expect(failures).toHaveLength(1);
      expect(failures[0]!.objects).toMatchObject({ count: STUDIES - received });
      expect(failures[0]!.detail).toMatchObject({
        destination: 'CANCELDEST',
        sent: received,
        unsent: STUDIES - received,
        cancelled: STUDIES - received,
        reason: `cancelled by the requestor (C-CANCEL): ${received} of ${STUDIES} sent`,
      });
    } finally {
      await stopChild(scp);
      await rm(out, { recursive: true, force: true });
    }
  });
});
