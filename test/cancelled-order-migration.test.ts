// Migration 0019-cancelled-order-relationships: the care relationships an order cancelled before 7 Dec 2026 still
// gave its physicians end with the upgrade; those of orders not cancelled stay, on every backend.
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { insertOrder } from './support/orders.js';
import { indexOfItsOwn } from './support/migration-index.js';

describe.each(backends())('migration 0019-cancelled-order-relationships on %s', (backend) => {
  const { open } = indexOfItsOwn(backend, 'cancrel');

  it('ends the care relationships of cancelled orders and keeps those of live ones', async () => {
    let index = await open();
    // An index as it was before the migration: a cancelled order kept the relationships it gave.
    const now = '2026-12-01T00:00:00Z';
    const { pk: patientPk } = await index.db
      .insertInto('patients')
      .values({ patient_id: 'P1', created_at: now } as never)
      .returning('pk')
      .executeTakeFirstOrThrow();
    const order = async (placer: string, status: string, physician: string) => {
      const { pk } = await insertOrder(index.db, placer, 'P1', {
        order_key: placer,
        placer_order_number: placer,
        accession_number: '',
        ordering_physician_id: physician,
        order_control: status === 'cancelled' ? 'CA' : 'NW',
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
    await order('CANCELLED', 'cancelled', 'DR-GONE');
    await order('LIVE', 'scheduled', 'DR-STAYS');
    await sql`delete from custos_migrations where name = '0019-cancelled-order-relationships'`.execute(
      index.db,
    );
    await index.close();

    index = await open();
    try {
      const held = await index.db
        .selectFrom('care_relationships')
        .select(['physician_id', 'relationship'])
        .orderBy('physician_id')
        .execute();
      expect(held).toEqual([{ physician_id: 'DR-STAYS', relationship: 'ordering' }]);
    } finally {
      await index.close();
    }
  });
});
