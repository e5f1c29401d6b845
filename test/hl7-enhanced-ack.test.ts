import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHl7 } from '../src/domain/hl7/hl7-message.js';
import { adtMessage } from '../src/domain/hl7/hl7-examples.js';
import { backends } from './support/backends.js';
import { uid } from './support/fixtures.js';
import { MllpClient } from './support/mllp-client.js';
import { mllpFrame } from '../src/transports/hl7/mllp-decoder.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { ackOf } from './support/hl7-ack.js';

const ADT = 'ADT1^GOOD HEALTH HOSPITAL';

/** An ADT^A08 asking for enhanced acknowledgment: MSH-15 (accept ack type) and MSH-16 (application ack type). */
const enhanced = (message: string, accept: string, application: string) =>
  message.replace('|P|2.5.1\r', `|P|2.5.1|||${accept}|${application}\r`);

describe.each(backends())('HL7 enhanced acknowledgment mode (MSH-15, MSH-16), on %s', (backend) => {
  let s: TestServer;
  let client: MllpClient;
  const run = uid(1).slice(-8);
  let control = 0;
  const next = () => `EA-${run}-${++control}`;
  const a08 = (id: string) =>
    adtMessage('A08', next(), { id: `EA-${id}-${run}`, family: 'ENHANCED', given: id }, ADT);

  beforeAll(async () => {
    s = await startTestServer(backend, { hl7: { port: 0, senders: [ADT] } });
    client = await MllpClient.connect(s.hl7Port!);
  });
  afterAll(async () => {
    await client.close();
    await s.stop();
  });

  const patient = (id: string) =>
    s.app.index.db
      .selectFrom('patients')
      .select('patient_name')
      .where('patient_id', '=', `EA-${id}-${run}`)
      .execute();

  it('answers AL/AL with a commit accept (CA) and then the application ack (AA), neither asking for an ack back', async () => {
    const message = enhanced(a08('AL'), 'AL', 'AL');
    const id = parseHl7(message).controlId;
    const accept = ackOf(await client.send(message));
    const application = ackOf(await client.next());
    expect(accept).toMatchObject({
      code: 'CA',
      controlId: id,
      acceptAckType: 'NE',
      applicationAckType: 'NE',
    });
    expect(accept.errorCode).toBe('');
    expect(application).toMatchObject({ code: 'AA', controlId: id, acceptAckType: 'NE' });
    expect(await patient('AL')).toEqual([{ patient_name: 'ENHANCED^AL^^^III' }]);
  });

  it('sends nothing for NE/ER when the message is applied, and the next message gets the next reply', async () => {
    const silent = enhanced(a08('NE'), 'NE', 'ER');
    const after = a08('ORIG');
    client.write(mllpFrame(silent));
    const second = await client.send(after);
    expect(ackOf(second)).toMatchObject({ code: 'AA', controlId: parseHl7(after).controlId });
    expect(await patient('NE')).toEqual([{ patient_name: 'ENHANCED^NE^^^III' }]);
  });

  it('sends the application error (AE) that ER asks for, after the accept ack', async () => {
    const noId = enhanced(a08('ER'), 'AL', 'ER').replace(/PID\|1\|\|[^|]*\|/, 'PID|1|||');
    expect(ackOf(await client.send(noId))).toMatchObject({ code: 'CA' });
    expect(ackOf(await client.next())).toMatchObject({ code: 'AE', errorCode: '101' });
  });

  it('rejects an unsupported event with a commit reject (CR) and no application ack', async () => {
    const zzz = enhanced(a08('CR'), 'ER', 'AL').replace('ADT^A08^ADT_A01', 'ADT^A99^ADT_A01');
    expect(ackOf(await client.send(zzz))).toMatchObject({ code: 'CR', errorCode: '201' });
    // The next reply on the connection belongs to the next message: no AR followed the CR.
    const after = a08('AFTER');
    expect(ackOf(await client.send(after))).toMatchObject({
      code: 'AA',
      controlId: parseHl7(after).controlId,
    });
  });
});
