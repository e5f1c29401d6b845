// Migration 0023-hl7-discontinued-orders-and-applied-at: the care relationships an order discontinued before 7 Dec
// 2026 (ORC-5 DC, or ORC-1 DR) still gave its physicians end with the upgrade; those of orders completed or live
// stay, on every backend.
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { insertOrder } from './support/orders.js';
import { indexOfItsOwn } from './support/migration-index.js';

const MIGRATION = '0023-hl7-discontinued-orders-and-applied-at';

describe.each(backends())(`migration ${MIGRATION} on %s`, (backend) => {
  const { open } = indexOfItsOwn(backend, 'discrel');

  it('ends the care relationships of discontinued orders and keeps those of completed and live ones', async () => {
    let index = await open();
    // An index as it was before the migration: a discontinued order kept the relationships it gave.
    const now = '2026-12-01T00:00:00Z';
    const { pk: patientPk } = await index.db
      .insertInto('patients')
      .values({ patient_id: 'P1', created_at: now } as never)
      .returning('pk')
      .executeTakeFirstOrThrow();
    const order = async (placer: string, control: string, status: string, physician: string) => {
      const { pk } = await insertOrder(index.db, placer, 'P1', {
        order_key: placer,
        placer_order_number: placer,
        accession_number: '',
        ordering_physician_id: physician,
        order_control: control,
        status,
        sender: 'RIS^HOSP',
        message_control_id: placer,
        received_at: now,
        updated_at: now,
      });
      await index.db
        .insertInto('care_relationships')
        .values({
          patient_pk: patientPk,
          physician_id: physician,
          physician_name: '',
          relationship: 'ordering',
          order_pk: pk,
          created_at: now,
        })
        .execute();
    };
    await order('DISCONTINUED', 'SC', 'discontinued', 'DR-DC');
    await order('DISCONTINUED-AS-REQUESTED', 'DR', 'in-progress', 'DR-DR');
    await order('COMPLETED', 'SC', 'completed', 'DR-CM');
    await order('LIVE', 'NW', 'scheduled', 'DR-SC');
    await sql`delete from custos_migrations where name = ${MIGRATION}`.execute(index.db);
    await index.close();

    index = await open();
    try {
      const held = await index.db
        .selectFrom('care_relationships')
        .select(['physician_id', 'relationship'])
        .orderBy('physician_id')
        .execute();
      expect(held).toEqual([
        { physician_id: 'DR-CM', relationship: 'ordering' },
        { physician_id: 'DR-SC', relationship: 'ordering' },
      ]);
      const statuses = await index.db
        .selectFrom('orders')
        .select(['placer_order_number', 'status'])
        .orderBy('placer_order_number')
        .execute();
      expect(statuses).toEqual([
        { placer_order_number: 'COMPLETED', status: 'completed' },
        { placer_order_number: 'DISCONTINUED', status: 'discontinued' },
        { placer_order_number: 'DISCONTINUED-AS-REQUESTED', status: 'cancelled' },
        { placer_order_number: 'LIVE', status: 'scheduled' },
      ]);
    } finally {
      await index.close();
    }
  });
});
