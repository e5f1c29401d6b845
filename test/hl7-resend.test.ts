import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHl7, value } from '../src/domain/hl7/hl7-message.js';
import { mergeMessage, ormMessage, type ExampleOrder } from '../src/domain/hl7/hl7-examples.js';
import { backends } from './support/backends.js';
import { uid } from './support/fixtures.js';
import { MllpClient } from './support/mllp-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const SENDERS = ['REGADT^MCM', 'RIS^HOSP'];

function ackOf(text: string) {
  const ack = parseHl7(text);
  return { code: value(ack.segment('MSA'), 1), controlId: value(ack.segment('MSA'), 2) };
}

/** The same message as a sender writes it again: its MSH-7 (time of the message) anew. */
const resentAt = (message: string, time: string) =>
  message.replace(/^(MSH(?:\|[^|]*){5})\|[^|]*/, `$1|${time}`);

describe.each(backends())('HL7 resend of a message whose ACK was lost, on %s', (backend) => {
  let s: TestServer;
  const run = uid(1).slice(-8);
  const patient = { id: `RS-${run}`, family: 'RESEND', given: 'RUTH' };
  const order: ExampleOrder = {
    placer: `RS-P-${run}`,
    filler: `RS-F-${run}`,
    accession: `A${run}`.slice(0, 16),
    procedure: ['CT1', 'CT HEAD'],
    ordering: ['D1', 'ORDERING', 'OTTO'],
    referring: ['D2', 'REFER', 'RITA'],
  };

  beforeAll(async () => {
    s = await startTestServer(backend, { hl7: { port: 0, senders: SENDERS } });
  });
  afterAll(async () => {
    await s.stop();
  });

  const records = (action: string) =>
    s.app.auditStore
      .search({ action: [action], limit: 50 })
      .then((rs) => rs.filter((r) => JSON.stringify(r.detail).includes(run)));

  it('acknowledges a resent order as the first was and applies it once, recording the resend', async () => {
    const message = ormMessage(`ORD-${run}`, patient, order);
    // The first connection sends the order and drops before the ACK is read: the sender never saw it.
    const first = await MllpClient.connect(s.hl7Port!);
    const firstAck = ackOf(await first.send(message));
    await first.close();
    expect(firstAck).toEqual({ code: 'AA', controlId: `ORD-${run}` });

    const again = await MllpClient.connect(s.hl7Port!);
    const resentAck = ackOf(await again.send(resentAt(message, '19911231150200')));
    await again.close();
    expect(resentAck).toEqual(firstAck);

    expect(await records('hl7-order')).toHaveLength(1);
    const resend = (await records('hl7-message')).filter((r) => r.detail?.controlId === `ORD-${run}`);
    expect(resend).toHaveLength(1);
    expect(resend[0]).toMatchObject({ outcome: 'success', channel: 'hl7' });
    expect(resend[0]!.detail).toMatchObject({ duplicate: true, sender: 'RIS^HOSP', messageType: 'ORM^O01' });
  });

  it('does not merge again on a resent A40', async () => {
    const client = await MllpClient.connect(s.hl7Port!);
    const survivor = { id: `RS-S-${run}`, family: 'SURVIVE', given: 'SAM' };
    const merge = mergeMessage(`MRG-${run}`, survivor, `RS-M-${run}`);
    expect(ackOf(await client.send(merge)).code).toBe('AA');
    expect(ackOf(await client.send(merge))).toEqual({ code: 'AA', controlId: `MRG-${run}` });
    await client.close();
    const merges = await s.app.index.db
      .selectFrom('patient_merges')
      .select('pk')
      .where('prior_patient_id', '=', `RS-M-${run}`)
      .execute();
    expect(merges).toHaveLength(1);
    expect(await records('hl7-patient-merge')).toHaveLength(1);
  });

  it('applies another message sent under a control id used before, and says the id was reused', async () => {
    const client = await MllpClient.connect(s.hl7Port!);
    const cancel = ormMessage(`ORD-${run}`, patient, order).replace('ORC|NW|', 'ORC|CA|');
    expect(ackOf(await client.send(cancel))).toEqual({ code: 'AA', controlId: `ORD-${run}` });
    await client.close();
    const orders = await records('hl7-order');
    expect(orders).toHaveLength(2);
    expect(orders[0]!.detail).toMatchObject({
      status: 'cancelled',
      controlIdReused: { messageType: 'ORM^O01' },
    });
    const stored = await s.app.index.db
      .selectFrom('orders')
      .select('status')
      .where('placer_order_number', '=', order.placer)
      .execute();
    expect(stored).toEqual([{ status: 'cancelled' }]);
  });
});

describe.each(backends())('HL7 resend window (hl7.resendWindowDays), on %s', (backend) => {
  let s: TestServer;
  const run = uid(2).slice(-8);
  const patient = { id: `RW-${run}`, family: 'WINDOW', given: 'WANDA' };
  const orderOf = (n: number): ExampleOrder => ({
    placer: `RW-P${n}-${run}`,
    filler: `RW-F${n}-${run}`,
    accession: `W${n}${run}`.slice(0, 16),
    procedure: ['CT1', 'CT HEAD'],
    ordering: ['D1', 'ORDERING', 'OTTO'],
    referring: ['D2', 'REFER', 'RITA'],
  });
  const start = Date.parse('2026-11-01T08:00:00Z');
  let at = start;
  const days = (n: number) => (at = start + n * 86_400_000);

  beforeAll(async () => {
    s = await startTestServer(backend, {
      hl7: { port: 0, senders: SENDERS },
      clock: { now: () => new Date(at) },
    });
  });
  afterAll(async () => {
    await s.stop();
  });

  const send = async (message: string) => {
    const client = await MllpClient.connect(s.hl7Port!);
    const ack = ackOf(await client.send(message));
    await client.close();
    return ack;
  };
  const remembered = () =>
    s.app.index.db
      .selectFrom('hl7_applied_messages')
      .select('control_id')
      .where('control_id', 'like', `%${run}`)
      .orderBy('control_id')
      .execute()
      .then((rows) => rows.map((r) => r.control_id));
  const resends = (controlId: string) =>
    s.app.auditStore
      .search({ action: ['hl7-message'], limit: 50 })
      .then((rs) => rs.filter((r) => r.detail?.controlId === controlId && r.detail?.duplicate === true));
  const orders = (n: number) =>
    s.app.auditStore
      .search({ action: ['hl7-order'], limit: 50 })
      .then((rs) => rs.filter((r) => JSON.stringify(r.detail).includes(orderOf(n).placer)));

  it('prunes messages older than the window and still takes a resend within it as a duplicate', async () => {
    const first = ormMessage(`W1-${run}`, patient, orderOf(1));
    const second = ormMessage(`W2-${run}`, patient, orderOf(2));
    const third = ormMessage(`W3-${run}`, patient, orderOf(3));
    expect(await send(first)).toEqual({ code: 'AA', controlId: `W1-${run}` });
    days(2);
    expect(await send(second)).toEqual({ code: 'AA', controlId: `W2-${run}` });
    // Two days on, the first is within the default 7-day window: its resend is a duplicate.
    expect(await send(resentAt(first, '20261103080000'))).toEqual({ code: 'AA', controlId: `W1-${run}` });
    expect(await resends(`W1-${run}`)).toHaveLength(1);
    expect(await orders(1)).toHaveLength(1);

    // Eight days after the first (six after the second), a message applied prunes the first, not the second.
    days(8);
    expect(await send(third)).toEqual({ code: 'AA', controlId: `W3-${run}` });
    expect(await remembered()).toEqual([`W2-${run}`, `W3-${run}`]);
    expect(await send(resentAt(second, '20261109080000'))).toEqual({ code: 'AA', controlId: `W2-${run}` });
    expect(await resends(`W2-${run}`)).toHaveLength(1);
    expect(await orders(2)).toHaveLength(1);
  });
});
