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
