// Storage commitment (PS3.4 J.3.3): a requestor that releases its association just after the N-ACTION-RSP waits
// for the report on an association of Custos's (PS3.4 J.3.3.1 lets the SCP send it on either). When the
// N-EVENT-REPORT-RQ crosses that A-RELEASE-RQ (sent on the old association before the release came, never answered
// there), the report goes again on a new association to the requestor's registered address. Until 7 Dec 2026 it was
// recorded as not delivered (`the association ended before the N-EVENT-REPORT response`) and never sent again, so
// the modality waited for its commitment until its own timeout.
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { Cmd, decodeCommand, encodeCommand } from '../src/transports/dimse/command.js';
import { encodeDataset } from '../src/transports/dimse/dimse-dataset.js';
import { decodePdu, encodeAssociateAc, encodeReleaseRq } from '../src/transports/dimse/pdu.js';
import { backends } from './support/backends.js';
import { CT_IMAGE, EXPLICIT_LE, IMPLICIT_LE, makeInstance, uid } from './support/fixtures.js';
import { RawPeer, rawAssociated, rawMessage } from './support/raw-scu.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const COMMIT = '1.2.840.10008.1.20.1';
const COMMIT_INSTANCE = '1.2.840.10008.1.20.1.1';

describe.each(backends())('storage commitment report crossing the requestor’s release, on %s', (backend) => {
  let s: TestServer;
  let acceptor: ReturnType<typeof createServer>;
  const sockets: Socket[] = [];
  /** N-EVENT-REPORT-RQs that reached the requestor's own address (a new association), as command sets. */
  const reportsOnNewAssociation: ReturnType<typeof decodeCommand>[] = [];
  const sop = uid(3);

  beforeAll(async () => {
    s = await startTestServer(backend);
    // The requestor's storage commitment SCU side, at its registered address: takes every context, answers the
    // report with success, and the release.
    acceptor = createServer((c) => {
      sockets.push(c);
      void (async () => {
        const p = new RawPeer(c);
        const first = await p.next();
        const rq = first && decodePdu(first.type, first.body);
        if (rq?.type !== 'associate-rq') return;
        c.write(
          encodeAssociateAc(
            rq,
            rq.contexts.map((x) => ({ id: x.id, result: 0, transferSyntax: x.transferSyntaxes[0]! })),
            65536,
            [{ sopClassUid: COMMIT, scu: false, scp: true }],
          ),
        );
        for (let m = await p.message(); m; m = await p.message()) {
          const cmd = decodeCommand(m.command);
          reportsOnNewAssociation.push(cmd);
          const answer = encodeCommand({
            affectedSopClassUid: COMMIT,
            commandField: Cmd.NEventReportRsp,
            messageIdBeingRespondedTo: cmd.messageId!,
            commandDataSetType: 0x0101,
            status: 0,
            affectedSopInstanceUid: COMMIT_INSTANCE,
            eventTypeId: cmd.eventTypeId!,
          });
          c.write(rawMessage(m.contextId, answer));
        }
      })();
    });
    await new Promise<void>((r) => acceptor.listen(0, '127.0.0.1', r));
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'MODALITY',
      host: '127.0.0.1',
      port: (acceptor.address() as { port: number }).port,
      user: 'admin',
    });
    const stored = makeInstance({
      studyUid: uid(1),
      seriesUid: uid(2),
      sopInstanceUid: sop,
      sopClassUid: CT_IMAGE,
    });
    expect((await postStow(s, [stored])).status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    for (const c of sockets) c.destroy();
    await new Promise((r) => acceptor.close(r));
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  it('sends the report again on a new association when the requestor released without answering it', async () => {
    const peer = await rawAssociated(s.dicomPort!, 'MODALITY', [
      { abstractSyntax: COMMIT, transferSyntaxes: [EXPLICIT_LE, IMPLICIT_LE] },
    ]);
    const transactionUid = uid(9);
    const nAction = encodeCommand({
      commandField: Cmd.NActionRq,
      messageId: 1,
      requestedSopClassUid: COMMIT,
      requestedSopInstanceUid: COMMIT_INSTANCE,
      actionTypeId: 1,
      commandDataSetType: 0,
    });
    const references = encodeDataset(
      [
        { tag: 0x00081195, vr: 'UI', value: transactionUid },
        {
          tag: 0x00081199,
          vr: 'SQ',
          value: [
            [
              { tag: 0x00081150, vr: 'UI', value: CT_IMAGE },
              { tag: 0x00081155, vr: 'UI', value: sop },
            ],
          ],
        },
      ],
      EXPLICIT_LE,
    );
    peer.socket.write(rawMessage(1, nAction, references));
    const rsp = decodeCommand((await peer.message())!.command);
    expect(rsp).toMatchObject({ commandField: Cmd.NActionRsp, status: 0 });
    // The report comes on this association; the requestor, which released at once, does not answer it here.
    const report = decodeCommand((await peer.message())!.command);
    expect(report).toMatchObject({ commandField: Cmd.NEventReportRq, eventTypeId: 1 });
    peer.socket.write(encodeReleaseRq());
    const rp = await peer.next();
    expect(rp?.type).toBe(0x06);
    peer.socket.destroy();

    // The report reaches the requestor on a new association, and the ledger says it was delivered.
    let record: { outcome: string; record: string } | undefined;
    for (let i = 0; i < 100 && !record; i++) {
      record = await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['outcome', 'record'])
        .where('action', '=', 'storage-commit')
        .where('record', 'like', `%${transactionUid}%`)
        .executeTakeFirst();
      if (!record) await new Promise((r) => setTimeout(r, 100));
    }
    expect(reportsOnNewAssociation.map((c) => c.eventTypeId)).toEqual([1]);
    expect(record?.outcome).toBe('success');
    expect(record?.record).toContain('"report":"delivered"');
  });
});
