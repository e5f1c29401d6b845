// Which order statuses end the care relationships an order gave its physicians (HL7 v2.5.1 table 0038 for ORC-5,
// table 0119 for ORC-1), sent as a RIS sends them, with Debian's mllp_send, and read back as the physician would
// read the patient's studies: through QIDO-RS.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ormMessage, type ExampleOrder } from '../src/domain/hl7/hl7-examples.js';
import { backends } from './support/backends.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { ackOf } from './support/hl7-ack.js';
import { mllpSend as sendWithMllpSend } from './support/mllp-send.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const operator = {
  kind: 'system' as const,
  id: 'x' as never,
  name: 'system:test',
  role: 'administrator',
  source: 'test',
};

/** The order message with ORC-1 (order control) and ORC-5 (order status) as given. */
const withOrc = (message: string, control: string, status: string) =>
  message.replace(/^ORC\|NW\|([^|\r]*)\|([^|\r]*)\|([^|\r]*)\|SC\|/m, `ORC|${control}|$1|$2|$3|${status}|`);

describe.each(backends())('HL7 order status and the access an order gives, on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  const run = uid(1).slice(-8);
  const patientId = `OS-${run}`;
  const patient = { id: patientId, family: 'STATUS', given: 'OTTO', authority: 'XYZ' };
  const study = uid(2);
  const accounts = new Set<string>();

  /** Sends `message` with mllp_send (python3-hl7) and returns its ACK's MSA-1. */
  const mllpSend = async (message: string) => {
    const acks = await sendWithMllpSend(dir, s.hl7Port!, message);
    expect(acks).toHaveLength(1);
    return ackOf(acks[0]!).code;
  };

  /** The studies of the patient that `physicianId`'s account finds with QIDO-RS. */
  const sees = async (physicianId: string) => {
    const username = `os-${physicianId.toLowerCase()}-${run}`;
    if (!accounts.has(username)) {
      await s.app.accounts.add(operator, { username, role: 'referring-physician', physicianId });
      accounts.add(username);
    }
    const { token } = await s.app.auth.createToken(operator, username);
    const res = await fetch(`${s.dicomweb}/studies?PatientID=${patientId}`, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/dicom+json' },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    return ((await res.json()) as { '0020000D': { Value: string[] } }[]).map((r) => r['0020000D'].Value[0]);
  };

  const order = (n: number, ordering: string, referring: string): ExampleOrder => ({
    placer: `OS${n}-P-${run}`,
    filler: `OS${n}-F-${run}`,
    accession: `OS${n}${run}`,
    procedure: ['CT1', 'CT HEAD'],
    ordering: [ordering, 'ORDERING', 'OTTO'],
    referring: [referring, 'REFER', 'RITA'],
  });

  beforeAll(async () => {
    expect(existsSync('/usr/bin/mllp_send'), 'install the Debian package python3-hl7 for mllp_send').toBe(
      true,
    );
    dir = await mkdtemp(join(tmpdir(), 'custos-hl7-status-'));
    s = await startTestServer(backend, { hl7: { port: 0, senders: ['RIS^HOSP'] } });
    const { body, contentType } = stowBody([
      {
        bytes: makeInstance({
          studyUid: study,
          seriesUid: uid(3),
          sopInstanceUid: uid(4),
          accessionNumber: '',
          patientId,
        }),
      },
    ]);
    const stow = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    expect(stow.status, await stow.text()).toBe(200);
  });
  afterAll(async () => {
    await s?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps the access of a completed order (ORC-5 CM) and ends that of a discontinued one (ORC-5 DC)', async () => {
    const o = order(1, `DO-${run}`.slice(0, 16), `DR-${run}`.slice(0, 16));
    expect(await mllpSend(ormMessage(`OS1-NW-${run}`, patient, o))).toBe('AA');
    expect(await sees(o.ordering[0])).toEqual([study]);
    expect(await sees(o.referring[0])).toEqual([study]);

    // The RIS says the order is completed (ORC-1 SC, status changed): its physicians still need its results.
    expect(await mllpSend(withOrc(ormMessage(`OS1-CM-${run}`, patient, o), 'SC', 'CM'))).toBe('AA');
    expect(await sees(o.ordering[0])).toEqual([study]);
    expect(await sees(o.referring[0])).toEqual([study]);

    // Then that it is discontinued (ORC-5 DC, table 0038): as ORC-1 DC does, that ends the order's relationships.
    expect(await mllpSend(withOrc(ormMessage(`OS1-DC-${run}`, patient, o), 'SC', 'DC'))).toBe('AA');
    expect(await sees(o.ordering[0])).toEqual([]);
    expect(await sees(o.referring[0])).toEqual([]);
    const [record] = await s.app.auditStore.search({ action: ['hl7-order'], patientId, limit: 1 });
    expect(record?.detail).toMatchObject({
      status: 'discontinued',
      relationshipsEnded: [
        { relationship: 'ordering', physicianId: o.ordering[0] },
        { relationship: 'referring', physicianId: o.referring[0] },
      ],
    });

    // A later status that puts the order back in progress gives the access again.
    expect(await mllpSend(withOrc(ormMessage(`OS1-IP-${run}`, patient, o), 'SC', 'IP'))).toBe('AA');
    expect(await sees(o.ordering[0])).toEqual([study]);
  });

  it('ends the access of an order the filler discontinued as requested (ORC-1 DR), and not of one it could not (UD)', async () => {
    const o = order(2, `EO-${run}`.slice(0, 16), `ER-${run}`.slice(0, 16));
    expect(await mllpSend(ormMessage(`OS2-NW-${run}`, patient, o))).toBe('AA');
    expect(await sees(o.ordering[0])).toEqual([study]);

    // Unable to discontinue (UD): the order goes on.
    expect(await mllpSend(withOrc(ormMessage(`OS2-UD-${run}`, patient, o), 'UD', 'IP'))).toBe('AA');
    expect(await sees(o.ordering[0])).toEqual([study]);

    // Discontinued as requested (DR), the filler's answer to the placer's DC, ORC-5 left as the RIS last had it.
    expect(await mllpSend(withOrc(ormMessage(`OS2-DR-${run}`, patient, o), 'DR', 'IP'))).toBe('AA');
    expect(await sees(o.ordering[0])).toEqual([]);
    expect(await sees(o.referring[0])).toEqual([]);
    const stored = await s.app.index.db
      .selectFrom('orders')
      .select(['status', 'order_control'])
      .where('placer_order_number', '=', o.placer)
      .executeTakeFirstOrThrow();
    expect(stored).toEqual({ status: 'cancelled', order_control: 'DR' });
  });

  it('keeps the status known when ORC-5 is left empty (a change order does not reinstate a cancelled order), and refuses one outside table 0038', async () => {
    const o = order(3, `FO-${run}`.slice(0, 16), `FR-${run}`.slice(0, 16));
    expect(await mllpSend(ormMessage(`OS3-NW-${run}`, patient, o))).toBe('AA');
    expect(await mllpSend(withOrc(ormMessage(`OS3-CA-${run}`, patient, o), 'CA', 'CA'))).toBe('AA');
    expect(await sees(o.ordering[0])).toEqual([]);

    // A change order (XO) with ORC-5 empty: until 7 Dec 2026 the order became `scheduled` again, and its
    // physicians read the patient's studies once more.
    expect(await mllpSend(withOrc(ormMessage(`OS3-XO-${run}`, patient, o), 'XO', ''))).toBe('AA');
    expect(await sees(o.ordering[0])).toEqual([]);
    expect(await sees(o.referring[0])).toEqual([]);
    const status = () =>
      s.app.index.db
        .selectFrom('orders')
        .select('status')
        .where('placer_order_number', '=', o.placer)
        .executeTakeFirstOrThrow();
    expect(await status()).toEqual({ status: 'cancelled' });

    // A status HL7 table 0038 does not have is refused (AE, 103 on ORC-5), and the order is left as it was.
    const bad = await sendWithMllpSend(
      dir,
      s.hl7Port!,
      withOrc(ormMessage(`OS3-ZZ-${run}`, patient, o), 'SC', 'ZZ'),
    );
    expect(ackOf(bad[0]!)).toMatchObject({ code: 'AE', errorCode: '103', errorLocation: 'ORC^1^5^1' });
    expect(await status()).toEqual({ status: 'cancelled' });
    expect(await sees(o.ordering[0])).toEqual([]);
  });
});
