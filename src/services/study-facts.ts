import { sql } from 'kysely';
import type { Clock } from '../ports/clock.js';
import type { IndexDb } from '../ports/database.js';
import type { ResourceRef } from '../ports/policy.js';

/** The study columns a decision needs, as the query and retrieve services select them. */
export interface StudyFactsRow {
  study_uid: string;
  patient_id: string;
  department: string | null;
  classification: string;
  owner: string | null;
  referring_physician_name: string;
  referring_physician_ids: string;
}

/** Columns to select (with studies as `st` and patients as `p`) to fill a StudyFactsRow. */
export const STUDY_FACT_COLUMNS = [
  'st.study_uid',
  'p.patient_id',
  'st.department',
  'st.classification',
  'st.owner',
  'st.referring_physician_name',
  'st.referring_physician_ids',
] as const;

const BATCH = 500;

/**
 * The facts policies scope a study by, from the index: its own columns plus the relationships kept beside it
 * (care team, research projects, unexpired grants, care relationships from orders). Loaded for many studies at
 * once so that a QIDO page costs a query per relationship, not one per row, and none for a relationship no study
 * has.
 */
export class StudyFacts {
  constructor(
    private readonly index: IndexDb,
    private readonly clock: Clock,
  ) {}

  async resources(rows: readonly StudyFactsRow[]): Promise<Map<string, ResourceRef>> {
    const byUid = new Map<string, StudyFactsRow>();
    for (const r of rows) byUid.set(r.study_uid, r);
    const uids = [...byUid.keys()];
    const careTeam = new Map<string, string[]>();
    const projects = new Map<string, string[]>();
    const grantees = new Map<string, string[]>();
    const add = (m: Map<string, string[]>, k: string, v: string) => {
      const list = m.get(k);
      if (list) list.push(v);
      else m.set(k, [v]);
    };
    const now = this.clock.now().toISOString();
    // Which relationship tables hold anything at all (one query): an archive without care teams, projects, grants
    // or order feeds then costs no query per page for them.
    const held = uids.length ? await this.heldRelations() : undefined;
    for (let i = 0; held && i < uids.length; i += BATCH) {
      const chunk = uids.slice(i, i + BATCH);
      const none = Promise.resolve([] as { study_uid: string; user_pk: number }[]);
      const [team, proj, grants, ordered] = await Promise.all([
        held.careTeam
          ? this.index.db
              .selectFrom('care_team')
              .select(['study_uid', 'user_pk'])
              .where('study_uid', 'in', chunk)
              .execute()
          : none,
        held.projects
          ? this.index.db
              .selectFrom('study_projects')
              .select(['study_uid', 'project'])
              .where('study_uid', 'in', chunk)
              .execute()
          : Promise.resolve([] as { study_uid: string; project: string }[]),
        held.grants
          ? this.index.db
              .selectFrom('study_grants')
              .select(['study_uid', 'user_pk'])
              .where('study_uid', 'in', chunk)
              .where('expires_at', '>', now)
              .execute()
          : none,
        // Care relationships from HL7 orders (ORM/OMI): the ordering or referring physician of an order for the
        // study's patient, linked to the account that carries that physician identifier.
        held.careRelationships
          ? this.index.db
              .selectFrom('studies as st')
              .innerJoin('care_relationships as cr', 'cr.patient_pk', 'st.patient_pk')
              .innerJoin('users as u', 'u.physician_id', 'cr.physician_id')
              .select(['st.study_uid', 'u.pk as user_pk'])
              .where('st.study_uid', 'in', chunk)
              .where('cr.physician_id', '!=', '')
              .where('u.active', '=', 1)
              .execute()
          : none,
      ]);
      for (const t of [...team, ...ordered]) add(careTeam, t.study_uid, String(t.user_pk));
      for (const p of proj) add(projects, p.study_uid, p.project);
      for (const g of grants) add(grantees, g.study_uid, String(g.user_pk));
    }
    const out = new Map<string, ResourceRef>();
    for (const [uid, r] of byUid) {
      out.set(uid, {
        type: 'study',
        studyUid: uid,
        patientId: r.patient_id,
        department: r.department,
        classification: r.classification,
        owner: r.owner,
        referringPhysicianName: r.referring_physician_name,
        referringPhysicianIds: r.referring_physician_ids ? r.referring_physician_ids.split('\\') : [],
        careTeam: careTeam.get(uid) ?? [],
        projects: projects.get(uid) ?? [],
        grantees: grantees.get(uid) ?? [],
      });
    }
    return out;
  }

  private async heldRelations(): Promise<{
    careTeam: boolean;
    projects: boolean;
    grants: boolean;
    careRelationships: boolean;
  }> {
    const { rows } = await sql<{ ct: unknown; sp: unknown; sg: unknown; cr: unknown }>`select
        exists (select 1 from care_team) as ct,
        exists (select 1 from study_projects) as sp,
        exists (select 1 from study_grants) as sg,
        exists (select 1 from care_relationships) as cr`.execute(this.index.db);
    const r = rows[0]!;
    // SQLite answers 1/0, PostgreSQL true/false.
    const yes = (v: unknown) => v === true || Number(v) === 1;
    return { careTeam: yes(r.ct), projects: yes(r.sp), grants: yes(r.sg), careRelationships: yes(r.cr) };
  }

  async resource(row: StudyFactsRow): Promise<ResourceRef> {
    return (await this.resources([row])).get(row.study_uid)!;
  }
}
