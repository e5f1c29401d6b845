import type { Insertable, Kysely } from 'kysely';
import type { DatabaseSchema } from '../../src/ports/database.js';

/** A patient with nothing but its ID (`db` may be a transaction); its new primary key. */
export function insertPatient(db: Kysely<DatabaseSchema>, patientId: string) {
  return db
    .insertInto('patients')
    .values({
      patient_id: patientId,
      issuer: '',
      patient_name: '',
      patient_name_norm: '',
      birth_date: '',
      sex: '',
      created_at: new Date().toISOString(),
    })
    .returning('pk')
    .executeTakeFirstOrThrow();
}

/**
 * An order as the HL7 feed records one (ORM^O01), for tests that need "a known order"; `fields` replace the
 * columns given here. Its primary key.
 */
export async function insertOrder(
  db: Kysely<DatabaseSchema>,
  accession: string,
  patientId = 'ORDER-PATIENT',
  fields: Partial<Insertable<DatabaseSchema['orders']>> = {},
) {
  const now = new Date().toISOString();
  const patient =
    (await db.selectFrom('patients').select('pk').where('patient_id', '=', patientId).executeTakeFirst()) ??
    (await insertPatient(db, patientId));
  return db
    .insertInto('orders')
    .values({
      order_key: `test:${accession}`,
      placer_order_number: `PL-${accession}`,
      filler_order_number: '',
      accession_number: accession,
      patient_pk: patient.pk,
      ordering_physician_id: '',
      ordering_physician_name: '',
      referring_physician_id: '',
      referring_physician_name: '',
      department: '',
      procedure_code: '',
      procedure_text: '',
      study_instance_uid: '',
      modality: '',
      order_control: 'NW',
      status: 'scheduled',
      sender: 'TEST^TEST',
      message_control_id: `test-${accession}`,
      received_at: now,
      updated_at: now,
      ...fields,
    })
    .returning('pk')
    .executeTakeFirstOrThrow();
}
