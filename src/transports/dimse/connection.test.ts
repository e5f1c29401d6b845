// Receiving DIMSE messages: commands decoded from the PDVs as they lie, answers taken without a promise per PDU,
// and a streaming consumer's back-pressure still holding the reader.
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Cmd, decodeCommand, encodeCommand, type Command } from './command.js';
import { DataQueue, DimseConnection, type DataSink } from './connection.js';
import { decodePdu, PduError, pdvHeader, PduType, type Pdv } from './pdu.js';

const FIND = '1.2.840.10008.5.1.4.1.2.2.1';

/** The PDVs of one P-DATA-TF PDU holding these items, as decodePdu reads them off the wire. */
function pdvsOf(items: { command: boolean; last: boolean; data: Buffer }[]): Pdv[] {
  const body = Buffer.concat(
    items.flatMap((i) => [pdvHeader(1, i.command, i.last, i.data.length).subarray(6), i.data]),
  );
  const pdu = decodePdu(PduType.PData, body);
  if (pdu.type !== 'p-data') throw new Error('not P-DATA');
  return pdu.pdvs;
}

/** The connection's receiving half alone: nothing is written in these tests. */
const connection = (sink?: DataSink) => new DimseConnection({} as Socket, { command: () => sink }, 0);

describe('DimseConnection.receive', () => {
  it('takes 1,000 pending C-FIND answers and the final response without a promise for any PDU', async () => {
    const conn = connection();
    const pending = encodeCommand({
      affectedSopClassUid: FIND,
      commandField: Cmd.CFindRsp,
      messageIdBeingRespondedTo: 7,
      commandDataSetType: 0,
      status: 0xff00,
    });
    const seen: number[] = [];
    const waitingFor = conn.awaitResponse(7, (c) => seen.push(c.status!));
    for (let i = 0; i < 1000; i++) {
      const identifier = Buffer.from(`answer ${i}`.padEnd(40, ' '), 'latin1');
      const room = conn.receive(
        pdvsOf([
          { command: true, last: true, data: pending },
          { command: false, last: true, data: identifier },
        ]),
        (id) => id === 1,
      );
      expect(room).toBeUndefined();
    }
    const final = encodeCommand({
      affectedSopClassUid: FIND,
      commandField: Cmd.CFindRsp,
      messageIdBeingRespondedTo: 7,
      commandDataSetType: 0x0101,
      status: 0,
    });
    expect(conn.receive(pdvsOf([{ command: true, last: true, data: final }]), () => true)).toBeUndefined();
    expect(seen).toHaveLength(1000);
    expect(seen.every((s) => s === 0xff00)).toBe(true);
    expect((await waitingFor).cmd.status).toBe(0);
  });

  it('makes the reader wait while a streaming consumer is full, and hands it every byte and then the end', async () => {
    const queue = new DataQueue(1000);
    const conn = connection({ kind: 'stream', queue });
    const store = encodeCommand({
      affectedSopClassUid: '1.2.840.10008.5.1.4.1.1.7',
      commandField: Cmd.CStoreRq,
      messageId: 1,
      priority: 0,
      commandDataSetType: 0,
      affectedSopInstanceUid: '1.2.3',
    });
    const part = (n: number, last: boolean) => ({ command: false, last, data: Buffer.alloc(600, n) });
    expect(conn.receive(pdvsOf([{ command: true, last: true, data: store }]), () => true)).toBeUndefined();
    // 600 bytes: below the high water, taken at once.
    expect(conn.receive(pdvsOf([part(1, false)]), () => true)).toBeUndefined();
    // 1,200 bytes queued: the reader must wait; the last item of the same PDU waits with it.
    const room = conn.receive(pdvsOf([part(2, false), part(3, true)]), () => true);
    expect(room).toBeInstanceOf(Promise);
    let resumed = false;
    void room!.then(() => (resumed = true));
    await new Promise((r) => setImmediate(r));
    expect(resumed).toBe(false);
    const got: Buffer[] = [];
    for await (const b of queue) got.push(b);
    await room;
    expect(resumed).toBe(true);
    expect(Buffer.concat(got)).toEqual(
      Buffer.concat([Buffer.alloc(600, 1), Buffer.alloc(600, 2), Buffer.alloc(600, 3)]),
    );
  });

  it('refuses a PDV on a context that was not accepted, as a PduError thrown at once', () => {
    const conn = connection();
    const cmd = encodeCommand({ commandField: Cmd.CEchoRq, messageId: 1, commandDataSetType: 0x0101 });
    expect(() => conn.receive(pdvsOf([{ command: true, last: true, data: cmd }]), () => false)).toThrow(
      PduError,
    );
  });
});

describe('decodeCommand', () => {
  it('reads every field of a command set where it lies: US, UI and LO text with their padding, AT', () => {
    const sent: Command = {
      affectedSopClassUid: '1.2.840.10008.5.1.4.1.1.2', // odd length: padded with a NUL on the wire
      commandField: Cmd.CStoreRsp,
      messageIdBeingRespondedTo: 300,
      commandDataSetType: 0x0101,
      status: 0xa900,
      offendingElement: [0x00100020, 0x0020000d],
      errorComment: 'Patient ID missing', // even length
      affectedSopInstanceUid: '1.2.3.4',
    };
    expect(decodeCommand(encodeCommand(sent))).toEqual(sent);
  });

  it.each([
    ['Command Field', 0x0100, 1],
    ['Status', 0x0900, 0],
  ])(
    'rejects a %s (a US) shorter than two bytes as a PduError, not by reading past it',
    (_what, element, len) => {
      const good = encodeCommand({ commandField: Cmd.CEchoRq, messageId: 1, commandDataSetType: 0x0101 });
      const el = Buffer.alloc(8 + len, 0);
      el.writeUInt16LE(0, 0);
      el.writeUInt16LE(element, 2);
      el.writeUInt32LE(len, 4);
      // The short element first, so that bytes of the next element follow it.
      const b = Buffer.concat([el, good]);
      expect(() => decodeCommand(b)).toThrow(PduError);
      expect(() => decodeCommand(b)).toThrow(/too short/);
    },
  );
});
