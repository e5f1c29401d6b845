import { sql, type RawBuilder } from 'kysely';
import type { ListSort } from '../domain/list-sort.js';
import type { IndexDb } from '../ports/database.js';

/** The columns the quarantine queue sorts by (the console's column ids). */
export const QUARANTINE_SORT_KEYS = ['Received', 'PatientID', 'Channel', 'Sender'] as const;
export type QuarantineSortKey = (typeof QUARANTINE_SORT_KEYS)[number];
export type QuarantineSort = ListSort<QuarantineSortKey>;

/**
 * ORDER BY terms of the quarantine queue in the order asked: text compared by its bytes (the same order on both
 * dialects), the entry's id last so that equal values keep one order from page to page.
 */
export function quarantineOrder(index: IndexDb, sort: QuarantineSort): RawBuilder<unknown>[] {
  const dir = sort.desc ? sql`desc` : sql`asc`;
  const column: Record<QuarantineSortKey, string> = {
    Received: 'created_at',
    PatientID: 'patient_id',
    Channel: 'channel',
    Sender: 'sender',
  };
  return [sql`${index.bytewise(column[sort.key])} ${dir}`, sql`${sql.ref('id')}`];
}
