// An order message holds one OBR per ORC (ORM_O01, OMI_O23): a RIS that requests two procedures sends two orders,
// each its ORC and OBR. A second OBR under one ORC is refused whole, sent with Debian's mllp_send.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { uid } from './support/fixtures.js';
import { mllpSend } from './support/mllp-send.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { ackOf } from './support/hl7-ack.js';

describe.each(backends())('HL7 orders of several procedures, on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  const run = uid(1).slice(-8);
  const header = (control: string) =>
    [
      `MSH|^~\\&|RIS|HOSP|CUSTOS|RADIOLOGY|20261207120000||ORM^O01^ORM_O01|${control}|P|2.5.1`,
      `PID|1||OB-${run}^^^HOSP^MR||PROCEDURE^PAULA||19700101|F`,
      'PV1||O|RAD^^^HOSP||||D1^DOC^ONE',
    ].join('\r');
  const orc = (n: number) => `ORC|NW|P${n}-${run}^OE|F${n}-${run}^RIS||SC||||20261207120000|||D1^DOC^ONE`;
  const obr = (n: number, placer: number, code: string, text: string) =>
    `OBR|${n}|P${placer}-${run}^OE|F${placer}-${run}^RIS|${code}^${text}^C4||||||||||||D1^DOC^ONE||A${placer}${run}`;
  const orders = () =>
    s.app.index.db
      .selectFrom('orders')
      .select(['placer_order_number', 'accession_number', 'procedure_code', 'procedure_text'])
      .where('placer_order_number', 'like', `%-${run}`)
      .orderBy('placer_order_number')
      .execute();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-hl7-obr-'));
    s = await startTestServer(backend, { hl7: { port: 0, senders: ['RIS^HOSP'] } });
  });
  afterAll(async () => {
    await s?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a second OBR under one ORC with AE/100 and applies nothing of the message', async () => {
    const message = [
      header(`OB1-${run}`),
      orc(1),
      obr(1, 1, 'CT1', 'CT HEAD'),
      obr(2, 1, 'MR1', 'MR KNEE'),
    ].join('\r');
    const acks = await mllpSend(dir, s.hl7Port!, `${message}\r`);
    expect(acks).toHaveLength(1);
    const ack = ackOf(acks[0]!);
    expect(ack).toMatchObject({ code: 'AE', errorCode: '100', errorLocation: 'OBR^2' });
    expect(ack.userMessage).toMatch(
      /OBR 2 follows OBR 1 in the order of ORC 1: ORM\^O01 holds one OBR per ORC/,
    );
    expect(await orders()).toEqual([]);
    const [record] = await s.app.auditStore.search({ action: ['hl7-message'], limit: 20 });
    expect(record).toMatchObject({ outcome: 'failure' });
    expect(record?.detail).toMatchObject({ controlId: `OB1-${run}`, hl7Error: 100 });
  });

  it('applies each ORC with its OBR as an order of its own', async () => {
    const message = [
      header(`OB2-${run}`),
      orc(2),
      obr(1, 2, 'CT1', 'CT HEAD'),
      orc(3),
      obr(1, 3, 'MR1', 'MR KNEE'),
    ].join('\r');
    const acks = await mllpSend(dir, s.hl7Port!, `${message}\r`);
    expect(acks.map((a) => ackOf(a).code)).toEqual(['AA']);
    const applied = (await orders()).filter((o) => o.placer_order_number !== `P1-${run}`);
    expect(applied).toEqual([
      {
        placer_order_number: `P2-${run}`,
        accession_number: `A2${run}`,
        procedure_code: 'CT1',
        procedure_text: 'CT HEAD',
      },
      {
        placer_order_number: `P3-${run}`,
        accession_number: `A3${run}`,
        procedure_code: 'MR1',
        procedure_text: 'MR KNEE',
      },
    ]);
  });
});
