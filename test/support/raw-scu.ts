// A deliberately misbehaving SCU for robustness tests: associates, starts a C-STORE, then vanishes.
import { connect, type Socket } from 'node:net';
import { encodeCommand } from '../../src/transports/dimse/command.js';
import { encodeAssociateRq, pdvHeader, PduFramer } from '../../src/transports/dimse/pdu.js';

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

/**
 * A raw DICOM upper-layer peer on a socket, for protocol details no real tool produces: reads whole PDUs (type and
 * body, as received) in order; `next()` is undefined once the connection has closed.
 */
export class RawPeer {
  private readonly framer = new PduFramer(1 << 30);
  private readonly pdus: { type: number; body: Buffer }[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.framer.push(d);
      for (let p = this.framer.next(); p; p = this.framer.next()) this.pdus.push(p);
      this.wake?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  static async connect(port: number): Promise<RawPeer> {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawPeer(socket);
  }

  async next(): Promise<{ type: number; body: Buffer } | undefined> {
    for (;;) {
      const p = this.pdus.shift();
      if (p) return p;
      if (this.ended) return undefined;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  /** Every PDU up to the end of the connection. */
  async rest(): Promise<{ type: number; body: Buffer }[]> {
    const out: { type: number; body: Buffer }[] = [];
    for (let p = await this.next(); p; p = await this.next()) out.push(p);
    return out;
  }

  /**
   * The next whole DIMSE message (command, and data set if any) from the PDVs of P-DATA-TF PDUs, with the length of
   * each PDU it came in; undefined when the peer released (answered with an A-RELEASE-RP), aborted or closed.
   */
  async message(): Promise<
    { contextId: number; command: Buffer; data?: Buffer; pduLengths: number[] } | undefined
  > {
    const command: Buffer[] = [];
    const data: Buffer[] = [];
    const pduLengths: number[] = [];
    let commandDone = false;
    let hasData = false;
    let contextId = 0;
    for (;;) {
      const p = await this.next();
      if (p?.type === 0x05) this.socket.end(Buffer.from([0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0]));
      if (p?.type !== 0x04) return undefined;
      pduLengths.push(p.body.length);
      for (let o = 0; o < p.body.length;) {
        const len = p.body.readUInt32BE(o);
        contextId = p.body[o + 4]!;
        const mch = p.body[o + 5]!;
        const value = p.body.subarray(o + 6, o + 4 + len);
        o += 4 + len;
        if (mch & 1) {
          command.push(value);
          if (mch & 2) {
            commandDone = true;
            const cmd = Buffer.concat(command);
            // Command Data Set Type (0000,0800) is US, value 0101 for none.
            const at = cmd.indexOf(Buffer.from([0, 0, 0, 8, 2, 0, 0, 0]));
            hasData = at >= 0 && cmd.readUInt16LE(at + 8) !== 0x0101;
          }
        } else {
          data.push(value);
          if (mch & 2)
            return { contextId, command: Buffer.concat(command), data: Buffer.concat(data), pduLengths };
        }
      }
      if (commandDone && !hasData) return { contextId, command: Buffer.concat(command), pduLengths };
    }
  }
}

/** A RawPeer associated with Custos on loopback `port` as `calling`, with these contexts proposed (IDs 1, 3, …). */
export async function rawAssociated(
  port: number,
  calling: string,
  contexts: { abstractSyntax: string; transferSyntaxes: string[] }[],
): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  peer.socket.write(
    encodeAssociateRq(
      'CUSTOS',
      calling,
      contexts.map((c, i) => ({ id: i * 2 + 1, ...c })),
      65536,
    ),
  );
  const ac = await peer.next();
  if (ac?.type !== 0x02) throw new Error(`expected A-ASSOCIATE-AC, got PDU type ${ac?.type}`);
  return peer;
}

/** One DIMSE message on presentation context `contextId`: its command, then its data set, each as one PDU. */
export function rawMessage(contextId: number, command: Buffer, data?: Buffer): Buffer {
  const parts = [pdvHeader(contextId, true, true, command.length), command];
  if (data) parts.push(pdvHeader(contextId, false, true, data.length), data);
  return Buffer.concat(parts);
}
