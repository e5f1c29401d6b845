// Custos's association requestor (C-MOVE destinations, C-GET's storage commitment reports, the benchmark's client)
// when the acceptor releases the association (PS3.8 §9.2, Sta6 to Sta8 and Sta13: AR-2, AR-4): it answers with an
// A-RELEASE-RP. Until 6 Dec 2026 it dropped the connection without one. No dcmtk tool or Orthanc releases as an
// acceptor, so the acceptor here is a raw one.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodePdu,
  encodeAssociateAc,
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

  it('answers an A-RELEASE-RQ with an A-RELEASE-RP, and what waited fails naming the release', async () => {
    const opening = openScuAssociation({
      host: '127.0.0.1',
      port,
      calledAe: 'RELEASER',
      callingAe: 'CUSTOS',
      timeoutMs: 5000,
      contexts: [{ abstractSyntax: Sop.Verification, transferSyntaxes: ['1.2.840.10008.1.2'] }],
    });
    while (peers.length === 0) await new Promise((r) => setImmediate(r));
    const acceptor = peers[0]!;
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
    const scu = await opening;
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
});
