// Migration 0026-person-name-groups: the names stored before 7 Dec 2026 get their component groups in columns of
// their own, on every backend, so that `PatientName=山田*` finds them as it finds names stored after.
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { parseQidoQuery } from '../src/domain/qido-query.js';
import { matchPredicate } from '../src/services/query-service.js';
import { backends } from './support/backends.js';
import { indexOfItsOwn, insertNames } from './support/migration-index.js';

const GROUPS = ['alpha', 'ideo', 'phon'];

describe.each(backends())('migration 0026-person-name-groups on %s', (backend) => {
  const { open } = indexOfItsOwn(backend, 'pngroups');

  it('fills the component group columns of the names already stored', async () => {
    let index = await open();
    // An index as it was before the migration: no group columns.
    for (const [table, prefix] of [
      ['patients', 'patient_name'],
      ['studies', 'referring_physician'],
    ] as const)
      for (const group of GROUPS) {
        await index.db.schema.dropIndex(`${table}_${prefix}_${group}`).execute();
        await index.db.schema.alterTable(table).dropColumn(`${prefix}_${group}`).execute();
      }
    await insertNames(
      index,
      [
        ['P1', 'Yamada^Tarou=山田^太郎=やまだ^たろう', 'YAMADA^TAROU=山田^太郎=やまだ^たろう'],
        ['P2', '=山本^花子', '=山本^花子'],
        ['P3', 'Doe^John', 'DOE^JOHN'],
      ],
      'P3',
      ['Yamada^Tarou=山田^太郎', 'YAMADA^TAROU=山田^太郎'],
    );
    await sql`delete from custos_migrations where name = '0026-person-name-groups'`.execute(index.db);
    await index.close();

    index = await open();
    try {
      const rows = await index.db
        .selectFrom('patients')
        .select(['patient_id', 'patient_name_alpha', 'patient_name_ideo', 'patient_name_phon'])
        .orderBy('patient_id')
        .execute();
      expect(rows).toEqual([
        {
          patient_id: 'P1',
          patient_name_alpha: 'YAMADA^TAROU',
          patient_name_ideo: '山田^太郎',
          patient_name_phon: 'やまだ^たろう',
        },
        { patient_id: 'P2', patient_name_alpha: '', patient_name_ideo: '山本^花子', patient_name_phon: '' },
        { patient_id: 'P3', patient_name_alpha: 'DOE^JOHN', patient_name_ideo: '', patient_name_phon: '' },
      ]);
      const study = await index.db
        .selectFrom('studies')
        .select(['referring_physician_alpha', 'referring_physician_ideo', 'referring_physician_phon'])
        .executeTakeFirstOrThrow();
      expect(study).toEqual({
        referring_physician_alpha: 'YAMADA^TAROU',
        referring_physician_ideo: '山田^太郎',
        referring_physician_phon: '',
      });
      // The query service matches on them: an ideographic key finds the names stored before the migration.
      const found = async (name: string) => {
        const [match] = parseQidoQuery(new URLSearchParams({ PatientName: name }), 'study').matches;
        const rows = await index.db
          .selectFrom('patients as p')
          .select('p.patient_id')
          .where(matchPredicate(match!))
          .orderBy('p.patient_id')
          .execute();
        return rows.map((r) => r.patient_id);
      };
      expect(await found('山*')).toEqual(['P1', 'P2']);
      expect(await found('やまだ^たろう')).toEqual(['P1']);
      // A name written after the migration gets its groups from the database too.
      await sql`insert into patients (patient_id, patient_name, patient_name_norm, created_at)
                values ('P4', '山田^花子', '山田^花子', '2026-12-01T00:00:00Z')`.execute(index.db);
      expect(await found('山田*')).toEqual(['P1', 'P4']);
    } finally {
      await index.close();
    }
  });
});
