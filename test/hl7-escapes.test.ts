import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage, ormMessage, type ExampleOrder } from '../src/domain/hl7/hl7-examples.js';
import { backends } from './support/backends.js';
import { uid } from './support/fixtures.js';
import { MllpClient } from './support/mllp-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { ackOf } from './support/hl7-ack.js';

describe.each(backends())('HL7 escape sequences in text fields, on %s', (backend) => {
  let s: TestServer;
  let client: MllpClient;
  const run = uid(1).slice(-8);
  const order = (placer: string, text: string): ExampleOrder => ({
    placer,
    filler: `${placer}-F`,
    accession: `E${placer.slice(-8)}`,
    procedure: ['CT1', text],
    ordering: ['D1', 'ORDERING', 'OTTO'],
    referring: ['D2', 'REFER', 'RITA'],
  });
  const patient = { id: `ES-${run}`, family: 'ESCAPE', given: 'EMMA' };

  beforeAll(async () => {
    s = await startTestServer(backend, {
      hl7: { port: 0, senders: ['RIS^HOSP', 'ADT1^GOOD HEALTH HOSPITAL'] },
    });
    client = await MllpClient.connect(s.hl7Port!);
  });
  afterAll(async () => {
    await client.close();
    await s.stop();
  });

  const procedureText = async (placer: string) =>
    (
      await s.app.index.db
        .selectFrom('orders')
        .select('procedure_text')
        .where('placer_order_number', '=', placer)
        .executeTakeFirstOrThrow()
    ).procedure_text;

  it('keeps the words either side of a formatted line break (\\.br\\) apart', async () => {
    const placer = `ES-1-${run}`;
    const ack = ackOf(
      await client.send(ormMessage(`ES-1-${run}`, patient, order(placer, 'CT HEAD\\.br\\W/O CONTRAST'))),
    );
    expect(ack.code).toBe('AA');
    expect(await procedureText(placer)).toBe('CT HEAD\nW/O CONTRAST');
  });

  it('resolves the delimiter, hexadecimal and highlighting escapes as v2.5.1 §2.7 defines them', async () => {
    const placer = `ES-2-${run}`;
    const text = 'A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F \\X4F4B\\ \\H\\BOLD\\N\\ \\.sk2\\X\\.sp2\\Y\\.in+2\\Z';
    expect(ackOf(await client.send(ormMessage(`ES-2-${run}`, patient, order(placer, text)))).code).toBe('AA');
    expect(await procedureText(placer)).toBe('A|B^C&D~E\\F OK BOLD   X\n\nYZ');
  });

  it('refuses a patient name holding a line break, which DICOM PatientName cannot hold', async () => {
    const message = adtMessage('A08', `ES-3-${run}`, {
      id: `ES-N-${run}`,
      family: 'LINE\\.br\\BREAK',
      given: 'LOU',
    });
    const ack = ackOf(await client.send(message));
    expect(ack).toMatchObject({ code: 'AE', errorCode: '102' });
    expect(ack.userMessage).toMatch(/^PID-5\.1 \(patient name\) holds the control character U\+000a/);
    const rows = await s.app.index.db
      .selectFrom('patients')
      .select('pk')
      .where('patient_id', '=', `ES-N-${run}`)
      .execute();
    expect(rows).toEqual([]);
  });
});
