// The acceptor's handling of association PDUs a real requestor may send: a large A-ASSOCIATE-RQ (many presentation
// contexts), one with items of types it does not know, and an A-RELEASE-RQ in the middle of a data set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { Cmd, decodeCommand, encodeCommand, NO_DATASET } from '../src/transports/dimse/command.js';
import { encodeAssociateRq, encodeReleaseRq, pdvHeader } from '../src/transports/dimse/pdu.js';
import { Sop } from '../src/transports/dimse/sop-classes.js';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { rawAssociated, rawMessage, RawPeer } from './support/raw-scu.js';
import { startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';

/** An A-ASSOCIATE-RQ of 127 contexts (the most PS3.8 allows: odd IDs 1 to 253) with `syntaxes` each. */
function bigRequest(calling: string, syntaxes: number): Buffer {
  const ts = [
    '1.2.840.10008.1.2.1',
    ...Array.from({ length: syntaxes - 1 }, (_, j) => `1.2.840.10008.1.2.4.${j + 50}`),
  ];
  return encodeAssociateRq(
    'CUSTOS',
    calling,
    Array.from({ length: 127 }, (_, i) => ({
      id: i * 2 + 1,
      abstractSyntax: i === 0 ? Sop.Verification : CT,
      transferSyntaxes: i === 0 ? ['1.2.840.10008.1.2'] : ts,
    })),
    65536,
  );
}

/** A variable item or sub-item (PS3.8 §9.3.2): type, reserved byte, 16-bit length, value. */
const item = (type: number, value: Buffer) => {
  const h = Buffer.from([type, 0, 0, 0]);
  h.writeUInt16BE(value.length, 2);
  return Buffer.concat([h, value]);
};

/**
 * `rq` (an A-ASSOCIATE-RQ whose last item is its User Information) with `top` items put before that item and `user`
 * sub-items added at the end of it.
 */
function withItems(rq: Buffer, top: Buffer[], user: Buffer[]): Buffer {
  let o = 6 + 68;
  while (rq[o] !== 0x50) o += 4 + rq.readUInt16BE(o + 2);
  const userInfo = rq.subarray(o + 4, o + 4 + rq.readUInt16BE(o + 2));
  const body = Buffer.concat([rq.subarray(6, o), ...top, item(0x50, Buffer.concat([userInfo, ...user]))]);
  const header = Buffer.from([0x01, 0, 0, 0, 0, 0]);
  header.writeUInt32BE(body.length, 2);
  return Buffer.concat([header, body]);
}

describe.each(backends())('A-ASSOCIATE-RQ and release handling, on %s', (backend) => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'ASSOCSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
  });
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  it('accepts an A-ASSOCIATE-RQ of up to 1 MiB and aborts a larger one', async () => {
    // 127 contexts of 30 transfer syntaxes: about 100 KiB, over the 64 KiB that was the limit until 6 Dec 2026.
    const large = bigRequest('ASSOCSCU', 30);
    expect(large.length).toBeGreaterThan(64 * 1024);
    expect(large.length).toBeLessThan(1024 * 1024);
    const peer = await RawPeer.connect(s.dicomPort!);
    peer.socket.write(large);
    const ac = await peer.next();
    expect(ac?.type).toBe(0x02);
    peer.socket.destroy();
    // 127 of 400: about 1.3 MiB.
    const tooLarge = bigRequest('ASSOCSCU', 400);
    expect(tooLarge.length).toBeGreaterThan(1024 * 1024);
    const refused = await RawPeer.connect(s.dicomPort!);
    refused.socket.write(tooLarge);
    const abort = await refused.next();
    // A-ABORT, source 2 (service provider), reason 6 (invalid PDU parameter value).
    expect(abort?.type).toBe(0x07);
    expect([abort!.body[2], abort!.body[3]]).toEqual([2, 6]);
    refused.socket.destroy();
  });

  it('ignores items and user information sub-items of types it does not know (PS3.8 §9.3.1) and accepts', async () => {
    const rq = withItems(
      encodeAssociateRq(
        'CUSTOS',
        'ASSOCSCU',
        [{ id: 1, abstractSyntax: Sop.Verification, transferSyntaxes: ['1.2.840.10008.1.2'] }],
        65536,
      ),
      // Types no edition of PS3.8 defines, at the top level of the variable items…
      [item(0x60, Buffer.from('later')), item(0xff, Buffer.alloc(0))],
      // …and in the User Information item.
      [item(0x5f, Buffer.from([1, 2, 3, 4]))],
    );
    const peer = await RawPeer.connect(s.dicomPort!);
    peer.socket.write(rq);
    // Until 7 Dec 2026: an A-ABORT (0x07), reason 'unexpected PDU parameter'.
    const ac = await peer.next();
    expect(ac?.type).toBe(0x02);
    // The association works: a C-ECHO on its context is answered with Success.
    const echo = encodeCommand({
      affectedSopClassUid: Sop.Verification,
      commandField: Cmd.CEchoRq,
      messageId: 1,
      commandDataSetType: NO_DATASET,
    });
    peer.socket.write(rawMessage(1, echo));
    const rsp = await peer.message();
    expect(decodeCommand(rsp!.command)).toMatchObject({ commandField: Cmd.CEchoRsp, status: 0 });
    peer.socket.write(encodeReleaseRq());
    expect((await peer.next())?.type).toBe(0x06);
    peer.socket.destroy();
  });

  it('aborts, and stores nothing, when the A-RELEASE-RQ comes in the middle of a C-STORE data set', async () => {
    const sop = uid(3);
    const part10 = makeInstance({
      studyUid: uid(1),
      seriesUid: uid(2),
      sopInstanceUid: sop,
      rows: 256,
      columns: 256,
    });
    const metaLength = part10.readUInt32LE(132 + 8);
    const dataset = part10.subarray(132 + 12 + metaLength);
    const peer = await rawAssociated(s.dicomPort!, 'ASSOCSCU', [
      { abstractSyntax: CT, transferSyntaxes: ['1.2.840.10008.1.2.1'] },
    ]);
    const store = encodeCommand({
      affectedSopClassUid: CT,
      commandField: 0x0001,
      messageId: 1,
      priority: 0,
      commandDataSetType: 0,
      affectedSopInstanceUid: sop,
    });
    peer.socket.write(Buffer.concat([pdvHeader(1, true, true, store.length), store]));
    // Half of the data set, in fragments none of which is the last, then the release.
    const half = dataset.subarray(0, dataset.length >> 1);
    for (let o = 0; o < half.length; o += 16384) {
      const piece = half.subarray(o, o + 16384);
      peer.socket.write(Buffer.concat([pdvHeader(1, false, false, piece.length), piece]));
    }
    peer.socket.write(encodeReleaseRq());
    // Until 6 Dec 2026 the release waited for the rest of the data set, until the idle timeout (5 minutes).
    const answer = await peer.next();
    expect(answer?.type).toBe(0x07);
    // Source 2 (service provider), reason 2 (unexpected PDU).
    expect([answer!.body[2], answer!.body[3]]).toEqual([2, 2]);
    expect(await peer.next()).toBeUndefined();
    const stored = await s.app.index.db
      .selectFrom('instances')
      .select('sop_instance_uid')
      .where('sop_instance_uid', '=', sop)
      .execute();
    expect(stored).toEqual([]);
  }, 30_000);
});
