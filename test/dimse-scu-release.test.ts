// Custos's association requestor (C-MOVE destinations, C-GET's storage commitment reports, the benchmark's client)
// when the acceptor releases the association (PS3.8 §9.2, Sta6 to Sta8 and Sta13: AR-2, AR-4): it answers with an
// A-RELEASE-RP. Until 6 Dec 2026 it dropped the connection without one. When the acceptor's A-RELEASE-RQ crosses
// Custos's own (a release collision, PS3.8 §7.2), it answers and then waits for the acceptor's A-RELEASE-RP before
// closing. No dcmtk tool or Orthanc releases as an acceptor, so the acceptor here is a raw one.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodePdu,
  encodeAssociateAc,
  encodeReleaseRp,
  encodeReleaseRq,
  type AssociateRq,
} from '../src/transports/dimse/pdu.js';
import { openScuAssociation } from '../src/transports/dimse/scu-association.js';
import { Sop } from '../src/transports/dimse/sop-classes.js';
import { RawPeer } from './support/raw-scu.js';

describe('the association requestor when the acceptor releases', () => {
  let server: Server;
  let port = 0;
  const peers: RawPeer[] = [];

  beforeAll(async () => {
    server = createServer();
    server.on('connection', (socket: Socket) => peers.push(new RawPeer(socket)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const p of peers) p.socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** An association of Custos's to the raw acceptor, accepted with every context proposed. */
  async function associated(calledAe: string) {
    const known = peers.length;
    const opening = openScuAssociation({
      host: '127.0.0.1',
      port,
      calledAe,
      callingAe: 'CUSTOS',
      timeoutMs: 30_000,
      contexts: [{ abstractSyntax: Sop.Verification, transferSyntaxes: ['1.2.840.10008.1.2'] }],
    });
    while (peers.length === known) await new Promise((r) => setImmediate(r));
    const acceptor = peers[known]!;
    const rqPdu = await acceptor.next();
    expect(rqPdu?.type).toBe(0x01);
    const rq = decodePdu(rqPdu!.type, rqPdu!.body) as AssociateRq;
    acceptor.socket.write(
      encodeAssociateAc(
        rq,
        rq.contexts.map((c) => ({ id: c.id, result: 0, transferSyntax: c.transferSyntaxes[0]! })),
        65536,
        [],
      ),
    );
    return { scu: await opening, acceptor };
  }

  it('answers an A-RELEASE-RQ with an A-RELEASE-RP, and what waited fails naming the release', async () => {
    const { scu, acceptor } = await associated('RELEASER');
    // A C-ECHO that the acceptor will not answer: it releases instead.
    const messageId = scu.conn.messageId();
    const echo = scu.request(scu.context(Sop.Verification)!.id, {
      affectedSopClassUid: Sop.Verification,
      commandField: 0x0030,
      messageId,
      commandDataSetType: 0x0101,
    });
    expect((await acceptor.next())?.type).toBe(0x04);
    acceptor.socket.write(encodeReleaseRq());
    expect((await acceptor.next())?.type).toBe(0x06);
    // Then the requestor closes the connection.
    expect(await acceptor.next()).toBeUndefined();
    const answer = await echo;
    expect(answer.cmd.status).toBe(0xa702);
    expect(scu.conn.endedBy).toBe('RELEASER released the association');
  });

  it('follows the requestor side of a release collision: its A-RELEASE-RP first, then closes on the acceptor’s', async () => {
    // PS3.8 §9.2: Custos (Sta7, its A-RELEASE-RQ sent) receives the acceptor's A-RELEASE-RQ (AR-8: Sta9), answers it
    // with an A-RELEASE-RP (AR-9: Sta11) and closes the connection once the acceptor's A-RELEASE-RP has come (AR-3).
    // The acceptor, meanwhile, waits for Custos's A-RELEASE-RP (Sta10) before sending its own (Sta12, AR-4): a
    // connection closed before then is, to it, an A-P-ABORT (AA-4). Until 7 Dec 2026 Custos closed the connection
    // right after its A-RELEASE-RP, without reading the acceptor's.
    const { scu, acceptor } = await associated('COLLIDER');
    let released = false;
    const releasing = scu.release().then(() => (released = true));
    expect((await acceptor.next())?.type).toBe(0x05);
    acceptor.socket.write(encodeReleaseRq());
    expect((await acceptor.next())?.type).toBe(0x06);
    // The acceptor's user takes a moment to answer the release indication (Sta12): the connection stays open for it.
    await new Promise((r) => setTimeout(r, 300));
    expect(acceptor.socket.readableEnded).toBe(false);
    expect(released).toBe(false);
    acceptor.socket.write(encodeReleaseRp());
    // Custos, having its confirmation, closes the connection: nothing else came.
    expect(await acceptor.next()).toBeUndefined();
    await releasing;
    expect(released).toBe(true);
  });
});
