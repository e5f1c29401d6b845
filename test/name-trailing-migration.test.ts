// Migration 0017-name-trailing-delimiters: a name stored with trailing empty components or groups (DOE^JOHN^^^)
// before 7 Dec 2026 gets the matching form names get now, without them, on every backend.
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { indexOfItsOwn, insertNames } from './support/migration-index.js';

describe.each(backends())('migration 0017-name-trailing-delimiters on %s', (backend) => {
  const { open } = indexOfItsOwn(backend, 'nametrail');

  it('leaves trailing empty components and groups out of the stored matching form', async () => {
    let index = await open();
    // An index as it was before the migration: the matching form kept the trailing delimiters.
    await insertNames(
      index,
      [
        ['P1', 'DOE^JOHN^^^', 'DOE^JOHN^^^'],
        ['P2', 'Yamada^Tarou^^=山田^太郎==', 'YAMADA^TAROU^^=山田^太郎=='],
        ['P3', 'Roe^Jane', 'ROE^JANE'],
        ['P4', 'Moe^^Max', 'MOE^^MAX'],
      ],
      'P1',
      ['House^Gregory^^^', 'HOUSE^GREGORY^^^'],
    );
    await sql`delete from custos_migrations where name = '0017-name-trailing-delimiters'`.execute(index.db);
    await index.close();

    index = await open();
    try {
      const norms = await index.db
        .selectFrom('patients')
        .select(['patient_id', 'patient_name', 'patient_name_norm'])
        .orderBy('patient_id')
        .execute();
      expect(norms).toEqual([
        { patient_id: 'P1', patient_name: 'DOE^JOHN^^^', patient_name_norm: 'DOE^JOHN' },
        {
          patient_id: 'P2',
          patient_name: 'Yamada^Tarou^^=山田^太郎==',
          patient_name_norm: 'YAMADA^TAROU=山田^太郎',
        },
        { patient_id: 'P3', patient_name: 'Roe^Jane', patient_name_norm: 'ROE^JANE' },
        // An empty component inside the name stays: only trailing ones may be left out.
        { patient_id: 'P4', patient_name: 'Moe^^Max', patient_name_norm: 'MOE^^MAX' },
      ]);
      const study = await index.db
        .selectFrom('studies')
        .select('referring_physician_norm')
        .executeTakeFirstOrThrow();
      expect(study.referring_physician_norm).toBe('HOUSE^GREGORY');
    } finally {
      await index.close();
    }
  });
});
