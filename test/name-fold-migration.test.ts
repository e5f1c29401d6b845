// Migration 0014-name-fold: names folded with toUpperCase before 6 Dec 2026 are folded again, on every backend.
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { indexOfItsOwn, insertNames } from './support/migration-index.js';

describe.each(backends())('migration 0014-name-fold on %s', (backend) => {
  const { open } = indexOfItsOwn(backend, 'namefold');

  it('folds stored names again so that they match what queries fold now', async () => {
    let index = await open();
    // An index as the old fold left it: the migration not yet run, 'ß' stored as 'SS'.
    await insertNames(
      index,
      [
        ['P1', 'Weiß^Jürgen', 'WEISS^JÜRGEN'],
        ['P2', 'ﬁscher^Anna', 'FISCHER^ANNA'],
        ['P3', 'Doe^John', 'DOE^JOHN'],
      ],
      'P1',
      ['Strauß^Eva', 'STRAUSS^EVA'],
    );
    await sql`delete from custos_migrations where name = '0014-name-fold'`.execute(index.db);
    await index.close();

    index = await open();
    try {
      const norms = await index.db
        .selectFrom('patients')
        .select(['patient_id', 'patient_name_norm'])
        .orderBy('patient_id')
        .execute();
      expect(norms).toEqual([
        { patient_id: 'P1', patient_name_norm: 'WEIß^JÜRGEN' },
        { patient_id: 'P2', patient_name_norm: 'ﬁSCHER^ANNA' },
        { patient_id: 'P3', patient_name_norm: 'DOE^JOHN' },
      ]);
      const study = await index.db
        .selectFrom('studies')
        .select('referring_physician_norm')
        .executeTakeFirstOrThrow();
      expect(study.referring_physician_norm).toBe('STRAUß^EVA');
    } finally {
      await index.close();
    }
  });
});
