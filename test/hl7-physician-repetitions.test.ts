import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ormMessage, type ExampleOrder } from '../src/domain/hl7/hl7-examples.js';
import { backends } from './support/backends.js';
import { uid } from './support/fixtures.js';
import { MllpClient } from './support/mllp-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { ackOf } from './support/hl7-ack.js';

describe.each(backends())('HL7 orders naming several physicians in a field, on %s', (backend) => {
  let s: TestServer;
  let client: MllpClient;
  const run = uid(1).slice(-8);
  const patient = { id: `PR-${run}`, family: 'REPEAT', given: 'RITA' };
  const order: ExampleOrder = {
    placer: `PR-P-${run}`,
    filler: `PR-F-${run}`,
    accession: `PR${run}`,
    procedure: ['CT1', 'CT HEAD'],
    ordering: [`O1-${run}`, 'ORDERING', 'OTTO'],
    referring: [`R1-${run}`, 'REFER', 'RITA'],
  };
  // PV1-8 and ORC-12 with a second repetition: a second referring doctor and a second ordering provider.
  const withSecond = (message: string, referring: string, ordering: string) =>
    message
      .replace(`|${order.referring.join('^')}|`, `|${order.referring.join('^')}~${referring}|`)
      .replace(/^(ORC(?:\|[^|\r]*){11})\|([^|\r]*)/m, `$1|$2~${ordering}`);

  beforeAll(async () => {
    s = await startTestServer(backend, { hl7: { port: 0, senders: ['RIS^HOSP'] } });
    client = await MllpClient.connect(s.hl7Port!);
  });
  afterAll(async () => {
    await client.close();
    await s.stop();
  });

  const relationships = () =>
    s.app.index.db
      .selectFrom('care_relationships')
      .select(['physician_id', 'physician_name', 'relationship'])
      .where('physician_id', 'like', `%-${run}`)
      .orderBy('physician_id')
      .execute();

  it('gives every repetition of PV1-8 and ORC-12 a care relationship with the patient', async () => {
    const message = withSecond(
      ormMessage(`PR-1-${run}`, patient, order),
      `R2-${run}^SECOND^SAM`,
      `O2-${run}^OTHER^OLGA`,
    );
    expect(ackOf(await client.send(message)).code).toBe('AA');
    expect(await relationships()).toEqual([
      { physician_id: `O1-${run}`, physician_name: 'ORDERING^OTTO', relationship: 'ordering' },
      { physician_id: `O2-${run}`, physician_name: 'OTHER^OLGA', relationship: 'ordering' },
      { physician_id: `R1-${run}`, physician_name: 'REFER^RITA', relationship: 'referring' },
      { physician_id: `R2-${run}`, physician_name: 'SECOND^SAM', relationship: 'referring' },
    ]);
    // The order keeps the first of each as its ordering and referring physician.
    const stored = await s.app.index.db
      .selectFrom('orders')
      .select(['ordering_physician_id', 'referring_physician_id'])
      .where('placer_order_number', '=', order.placer)
      .executeTakeFirstOrThrow();
    expect(stored).toEqual({ ordering_physician_id: `O1-${run}`, referring_physician_id: `R1-${run}` });
    const [record] = await s.app.auditStore.search({ action: ['hl7-order'], limit: 1 });
    expect(record!.detail).toMatchObject({
      referringPhysicians: [`R1-${run}`, `R2-${run}`],
      orderingPhysicians: [`O1-${run}`, `O2-${run}`],
    });
  });

  it('ends the relationship of a repetition an update no longer sends', async () => {
    const message = withSecond(
      ormMessage(`PR-2-${run}`, patient, order),
      `R3-${run}^THIRD^TOM`,
      `O1-${run}^ORDERING^OTTO`,
    );
    expect(ackOf(await client.send(message)).code).toBe('AA');
    expect((await relationships()).map((r) => r.physician_id)).toEqual([
      `O1-${run}`,
      `R1-${run}`,
      `R3-${run}`,
    ]);
  });

  it('refuses a later repetition DICOM cannot hold, naming it, and applies nothing', async () => {
    const message = withSecond(
      ormMessage(`PR-3-${run}`, patient, order),
      `R4-${run}^BACK\\E\\SLASH^BO`,
      `O1-${run}^ORDERING^OTTO`,
    );
    const ack = ackOf(await client.send(message));
    expect(ack).toMatchObject({ code: 'AE', errorCode: '102', errorLocation: 'PV1^1^8^2^2' });
    expect(ack.userMessage).toMatch(/^PV1-8\[2\]\.2 \(referring doctor\) holds a backslash/);
    expect((await relationships()).map((r) => r.physician_id)).toEqual([
      `O1-${run}`,
      `R1-${run}`,
      `R3-${run}`,
    ]);
  });
});
