// C-CANCEL of a C-FIND whose answers are still going out (PS3.4 C.4.1.2.3, PS3.7 §9.3.2.3): the pending answers
// stop and the final response says Cancel (0xFE00). Until 6 Dec 2026 a peer that read as fast as Custos wrote got
// every answer of a 500-study query and a final Success: between two batches of answers the socket's writes
// resolved at once, and the C-CANCEL waiting in it was not read until the last.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { Tags } from '../src/dicom/tags.js';
import { Cmd, decodeCommand, encodeCommand, NO_DATASET } from '../src/transports/dimse/command.js';
import { encodeDataset } from '../src/transports/dimse/dimse-dataset.js';
import { encodeReleaseRq } from '../src/transports/dimse/pdu.js';
import { Sop } from '../src/transports/dimse/sop-classes.js';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { rawAssociated, rawMessage } from './support/raw-scu.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const STUDIES = 500;
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

describe.each(backends())('C-CANCEL of a C-FIND with answers still flowing, on %s', (backend) => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'CANCELSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    const parts = Array.from({ length: STUDIES }, () =>
      makeInstance({
        studyUid: uid(1),
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
    // The association goes on: it is released normally.
    peer.socket.write(encodeReleaseRq());
    expect((await peer.next())?.type).toBe(0x06);
    peer.socket.destroy();
  });
});
