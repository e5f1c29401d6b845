import { sql, type RawBuilder } from 'kysely';
import type { ListSort } from '../domain/list-sort.js';
import type { IndexDb } from '../ports/database.js';

/** The columns the study browser sorts by, named as DICOM names the attributes (the console's column ids). */
export const STUDY_SORT_KEYS = [
  'PatientName',
  'PatientID',
  'StudyDate',
  'StudyDescription',
  'ModalitiesInStudy',
  'AccessionNumber',
  'Department',
  'Classification',
  'NumberOfStudyRelatedInstances',
] as const;
export type StudySortKey = (typeof STUDY_SORT_KEYS)[number];
export type StudySort = ListSort<StudySortKey>;

/**
 * ORDER BY terms of a study list in the order asked: text compared by its bytes (the same order on both dialects),
 * a patient's name case-folded as it is matched, a missing value last either way, and the Study Instance UID
 * last of all so that equal values keep one order from page to page.
 */
export function studyOrder(index: IndexDb, sort: StudySort): RawBuilder<unknown>[] {
  const dir = sort.desc ? sql`desc` : sql`asc`;
  const term = (e: RawBuilder<unknown>) => sql`${e} ${dir} nulls last`;
  const text = (column: string) => term(index.bytewise(column));
  const terms: Record<StudySortKey, RawBuilder<unknown>[]> = {
    PatientName: [text('p.patient_name_norm')],
    PatientID: [text('p.patient_id')],
    StudyDate: [text('st.study_date'), text('st.study_time')],
    StudyDescription: [text('st.study_description')],
    ModalitiesInStudy: [text('st.modalities')],
    AccessionNumber: [text('st.accession_number')],
    Department: [text('st.department')],
    Classification: [text('st.classification')],
    NumberOfStudyRelatedInstances: [term(sql`${sql.ref('st.num_instances')}`)],
  };
  return [...terms[sort.key], sql`${sql.ref('st.study_uid')}`];
}
