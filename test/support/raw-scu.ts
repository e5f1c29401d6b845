// A deliberately misbehaving SCU for robustness tests: associates, starts a C-STORE, then vanishes.
import { connect } from 'node:net';
import { encodeCommand } from '../../src/transports/dimse/command.js';
import { encodeAssociateRq, pdvHeader } from '../../src/transports/dimse/pdu.js';

/** With `stall`, the SCU stops sending but keeps the connection open; resolves with what Custos sent then. */
export async function rawAssociateAndCutStore(
  port: number,
  calling: string,
  called: string,
  part10: Buffer,
  opts: { stall?: boolean } = {},
): Promise<Buffer> {
  const metaLength = part10.readUInt32LE(132 + 8);
  const dataset = part10.subarray(132 + 12 + metaLength);
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.write(
    encodeAssociateRq(
      called,
      calling,
      [{ id: 1, abstractSyntax: '1.2.840.10008.5.1.4.1.1.2', transferSyntaxes: ['1.2.840.10008.1.2.1'] }],
      65536,
    ),
  );
  const ac = await new Promise<Buffer>((resolve) => socket.once('data', (d: Buffer) => resolve(d)));
  if (ac[0] !== 0x02) throw new Error(`expected A-ASSOCIATE-AC, got PDU type ${ac[0]}`);
  const cmd = encodeCommand({
    affectedSopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    commandField: 0x0001,
    messageId: 1,
    priority: 0,
    commandDataSetType: 0,
    affectedSopInstanceUid: '1.2.3.4',
  });
  socket.write(Buffer.concat([pdvHeader(1, true, true, cmd.length), cmd]));
  const half = dataset.subarray(0, Math.floor(dataset.length / 2));
  for (let o = 0; o < half.length; o += 16384) {
    const piece = half.subarray(o, Math.min(o + 16384, half.length));
    socket.write(Buffer.concat([pdvHeader(1, false, false, piece.length), piece]));
  }
  if (opts.stall) {
    const got: Buffer[] = [];
    socket.on('data', (d: Buffer) => got.push(d));
    await new Promise((r) => socket.once('close', r));
    return Buffer.concat(got);
  }
  await new Promise((r) => setTimeout(r, 200));
  socket.destroy();
  return Buffer.alloc(0);
}
