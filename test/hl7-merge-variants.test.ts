import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage, ormMessage } from '../src/domain/hl7/hl7-examples.js';
import { backends } from './support/backends.js';
import { uid } from './support/fixtures.js';
import { MllpClient } from './support/mllp-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { ackOf } from './support/hl7-ack.js';

const ADT = 'ADT1^GOOD HEALTH HOSPITAL';

/** An ADT merge variant (ADT_A39 for A39, ADT_A30 for A35/A36): PID the surviving patient, MRG as given. */
const variant = (event: string, controlId: string, survivor: string, mrg: string) =>
  [
    `MSH|^~\\&|ADT1|GOOD HEALTH HOSPITAL|CUSTOS|RADIOLOGY|20261207080000||ADT^${event}^${event === 'A39' ? 'ADT_A39' : 'ADT_A30'}|${controlId}|P|2.5.1`,
    `EVN|${event}|20261207080000`,
    `PID|||${survivor}^^^GHH^MR||SURVIVOR^SUE||19700101|F`,
    `MRG|${mrg}`,
  ].join('\r') + '\r';

describe.each(backends())('HL7 merge variants A39, A36 and A35, on %s', (backend) => {
  let s: TestServer;
  let client: MllpClient;
  const run = uid(1).slice(-8);
  let control = 0;
  const next = () => `MV-${run}-${++control}`;

  beforeAll(async () => {
    s = await startTestServer(backend, { hl7: { port: 0, senders: [ADT, 'RIS^HOSP'] } });
    client = await MllpClient.connect(s.hl7Port!);
  });
  afterAll(async () => {
    await client.close();
    await s.stop();
  });

  const patient = (id: string) => ({ id, authority: 'GHH', family: 'PATIENT', given: id });
  /** Patient of an order for `priorId`, placed after the merge: the patient its care relationships are with. */
  const orderPatient = async (priorId: string) => {
    const placer = `ORD-${priorId}`;
    const orm = ormMessage(
      next(),
      { ...patient(priorId), authority: 'GHH' },
      {
        placer,
        filler: `${placer}-F`,
        accession: '',
        procedure: ['CT1', 'CT HEAD'],
        ordering: [`D-${run}`, 'ORDERING', 'OTTO'],
        referring: [`R-${run}`, 'REFER', 'RITA'],
      },
    );
    expect(ackOf(await client.send(orm)).code).toBe('AA');
    const row = await s.app.index.db
      .selectFrom('orders')
      .innerJoin('patients', 'patients.pk', 'orders.patient_pk')
      .select('patients.patient_id')
      .where('placer_order_number', '=', placer)
      .executeTakeFirstOrThrow();
    return row.patient_id;
  };
  const merges = (priorId: string) =>
    s.app.index.db
      .selectFrom('patient_merges')
      .select(['event', 'prior_patient_id'])
      .where('prior_patient_id', '=', priorId)
      .execute();

  for (const event of ['A39', 'A36']) {
    it(`merges with ${event} naming the prior patient in MRG-1, as ${event === 'A39' ? 'A40' : 'A34'} does`, async () => {
      const survivor = `${event}-S-${run}`;
      const prior = `${event}-P-${run}`;
      for (const id of [survivor, prior])
        expect(ackOf(await client.send(adtMessage('A08', next(), patient(id), ADT))).code).toBe('AA');
      const ack = ackOf(await client.send(variant(event, next(), survivor, `${prior}^^^GHH^MR`)));
      expect(ack).toMatchObject({ code: 'AA' });
      expect(await merges(prior)).toEqual([{ event, prior_patient_id: prior }]);
      const [record] = await s.app.auditStore.search({ action: ['hl7-patient-merge'], limit: 1 });
      expect(record!.detail).toMatchObject({ event, merged: { patientId: prior }, mergedKnown: true });
      // The merge is followed: what comes later for the prior patient is filed under the survivor.
      expect(await orderPatient(prior)).toBe(survivor);
    });
  }

  it('rejects an A39 that merges external IDs only (MRG-4, no MRG-1), naming MRG-4, and applies nothing', async () => {
    const survivor = `XS-${run}`;
    const ack = ackOf(await client.send(variant('A39', next(), survivor, `|||EXT-${run}`)));
    expect(ack).toMatchObject({ code: 'AR', errorCode: '201', errorLocation: 'MRG^1^4^1' });
    expect(ack.userMessage).toMatch(/merges PID-2 external patient IDs \(MRG-4 into PID-2\)/);
    const rows = await s.app.index.db
      .selectFrom('patients')
      .select('pk')
      .where('patient_id', '=', survivor)
      .execute();
    expect(rows).toEqual([]);
  });

  it('rejects an A35 (account number only), saying the archive keeps no account numbers', async () => {
    const ack = ackOf(await client.send(variant('A35', next(), `AC-${run}`, `||ACCT-${run}`)));
    expect(ack).toMatchObject({ code: 'AR', errorCode: '201' });
    expect(ack.userMessage).toMatch(/A35 .*account numbers, which this archive does not keep/);
  });
});
