import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll } from 'vitest';
import { dropPostgresSchema, openIndexDb } from '../../src/adapters/sql/open-index-db.js';
import type { IndexDb } from '../../src/ports/database.js';
import { postgresUrl, type Backend } from './backends.js';

/**
 * An index of a migration test's own on `backend`: an encrypted SQLite file in a temporary directory, or a
 * PostgreSQL schema named after `label`. `open()` opens it (again), running the migrations not yet run; the test
 * closes what it opened. Both are removed after the tests of the describe block that called this.
 */
export function indexOfItsOwn(backend: Backend, label: string) {
  const schema = `${label}_${randomBytes(6).toString('hex')}`;
  const key = randomBytes(32);
  let dir: string | undefined;
  afterAll(async () => {
    if (backend === 'postgres') await dropPostgresSchema(postgresUrl!, schema);
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    open: async () => {
      if (backend === 'postgres') return openIndexDb({ kind: 'postgres', url: postgresUrl!, schema });
      dir ??= await mkdtemp(join(tmpdir(), `custos-${label}-`));
      return openIndexDb({ kind: 'sqlite', path: join(dir, 'i.sqlite'), key });
    },
  };
}

/**
 * Names as an older index held them, for the name migrations' tests: each patient `[id, name, matching form]`,
 * and one study of the patient `studyOf` whose referring physician is `referring` (`[name, matching form]`).
 */
export async function insertNames(
  index: IndexDb,
  patients: string[][],
  studyOf: string,
  referring: [string, string],
): Promise<void> {
  const now = '2026-12-01T00:00:00Z';
  for (const [id, name, norm] of patients)
    await sql`insert into patients (patient_id, patient_name, patient_name_norm, created_at)
              values (${id}, ${name}, ${norm}, ${now})`.execute(index.db);
  const { pk } = await index.db
    .selectFrom('patients')
    .select('pk')
    .where('patient_id', '=', studyOf)
    .executeTakeFirstOrThrow();
  await sql`insert into studies
              (study_uid, patient_pk, referring_physician_name, referring_physician_norm, attrs_json, created_at,
               updated_at)
            values ('1.2.3', ${pk}, ${referring[0]}, ${referring[1]}, '{}', ${now}, ${now})`.execute(
    index.db,
  );
}
