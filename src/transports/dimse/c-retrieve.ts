/**
 * C-MOVE / C-GET identifiers (PS3.4 C.4.2.1.4, C.4.3.1.3): unique keys down to the retrieve level, resolved
 * through the one RetrieveService, which decides per study and records the access before any byte leaves.
 */
import { CustosError } from '../../domain/errors.js';
import type { Principal } from '../../domain/principal.js';
import { isValidUid } from '../../domain/ids.js';
import { parseQidoQuery } from '../../domain/qido-query.js';
import type { Dataset } from '../../dicom/dataset.js';
import { Tags } from '../../dicom/tags.js';
import { allPages } from '../../services/query-service.js';
import type { InstanceRef, RetrieveScope } from '../../services/retrieve-service.js';
import { badIdentifier, queryLevel } from './c-find.js';
import { Sop } from './sop-classes.js';
import type { DimseServices } from './dimse-services.js';

function uids(ds: Dataset, tag: number, name: string): string[] {
  const el = ds.get(tag);
  const values = el?.kind === 'text' ? el.values.map((v) => v.trim()).filter(Boolean) : [];
  for (const v of values) if (!isValidUid(v)) throw badIdentifier(`${name} '${v}' is not a valid UID`);
  // A UID listed twice (`A\A`) names one object: until 7 Dec 2026 it was sent once per listing, and counted so.
  return [...new Set(values)];
}

export interface ResolvedRetrieve {
  /** The instances to send (damaged ones included, marked). */
  refs: InstanceRef[];
  /**
   * Study Instance UIDs refused while others go: not readable by the principal or not in the archive, which
   * answer alike. Each is one failed sub-operation (PS3.4 C.4.2.3.1), its refusal recorded by the access gate.
   */
  refusedStudies: string[];
}

export async function resolveRetrieve(
  s: DimseServices,
  principal: Principal,
  model: string,
  ds: Dataset,
  what: 'c-move' | 'c-get',
  detail: Record<string, unknown>,
): Promise<ResolvedRetrieve> {
  const level = queryLevel(ds, model, { patientRetrieve: true });
  const studies = uids(ds, Tags.StudyInstanceUID, 'StudyInstanceUID');
  const series = uids(ds, Tags.SeriesInstanceUID, 'SeriesInstanceUID');
  const instances = uids(ds, Tags.SOPInstanceUID, 'SOPInstanceUID');
  const scopes: RetrieveScope[] = [];
  const pidEl = ds.get(Tags.PatientID);
  const pid = pidEl?.kind === 'text' ? (pidEl.values[0] ?? '').trim() : '';
  // PS3.4 C.4.2.2.1: in the Patient Root model the Patient ID is the unique key of the level above the study, so a
  // STUDY, SERIES or IMAGE retrieve names the study within that patient; a study of another patient matches
  // nothing. Until 7 Dec 2026 the Patient ID was ignored below the PATIENT level, and a request naming patient A
  // and a study of patient B retrieved B's study. A request that leaves it out (PS3.4 asks for it; some SCUs do not
  // send it) still retrieves the study whoever its patient is.
  const withinPatient =
    level !== 'PATIENT' && pid && (model === Sop.PatientRootMove || model === Sop.PatientRootGet)
      ? { patientId: pid }
      : {};
  if (withinPatient.patientId && /[*?]/.test(pid))
    throw badIdentifier(
      `Patient ID (0010,0020) '${pid}' is a unique key of a retrieve: one value, not a wildcard`,
    );
  if (level === 'PATIENT') {
    if (!pid) throw badIdentifier('a PATIENT-level retrieve needs Patient ID (0010,0020)');
    // A unique key is matched as one value (PS3.4 C.4.2.2.1): `PatientID=*` would otherwise move every patient
    // the caller may see.
    const issuerEl = ds.get(Tags.IssuerOfPatientID);
    const issuer = issuerEl?.kind === 'text' ? (issuerEl.values[0] ?? '').trim() : '';
    for (const [name, v] of [
      ['Patient ID (0010,0020)', pid],
      ['Issuer of Patient ID (0010,0021)', issuer],
    ] as const)
      if (/[*?]/.test(v))
        throw badIdentifier(`${name} '${v}' is a unique key of a retrieve: one value, not a wildcard`);
    const q = parseQidoQuery(
      new URLSearchParams([
        ['PatientID', pid],
        ...(issuer ? ([['IssuerOfPatientID', issuer]] as [string, string][]) : []),
      ]),
      'study',
    );
    // Every study of the patient, page after page (limits.maxQueryResults), as C-FIND answers them.
    const pages = allPages((from) => s.deps.query.search(principal, { ...q, offset: 0 }, '', from));
    for await (const studies of pages)
      for (const st of studies) scopes.push({ studyUid: String(st['0020000D']?.Value?.[0]) });
  } else if (level === 'STUDY') {
    if (!studies.length) throw badIdentifier('a STUDY-level retrieve needs Study Instance UID (0020,000D)');
    for (const st of studies) scopes.push({ studyUid: st, ...withinPatient });
  } else if (level === 'SERIES') {
    if (studies.length !== 1 || !series.length)
      throw badIdentifier('a SERIES-level retrieve needs one Study Instance UID and Series Instance UIDs');
    for (const se of series) scopes.push({ studyUid: studies[0]!, seriesUid: se, ...withinPatient });
  } else {
    if (studies.length !== 1 || series.length !== 1 || !instances.length)
      throw badIdentifier('an IMAGE-level retrieve needs one Study, one Series and SOP Instance UIDs');
    for (const i of instances)
      scopes.push({ studyUid: studies[0]!, seriesUid: series[0]!, sopInstanceUid: i, ...withinPatient });
  }
  const refs: InstanceRef[] = [];
  /** Studies refused (not readable by this principal, or not in the archive: the two answer alike). */
  const refused = new Map<string, CustosError>();
  for (const scope of scopes) {
    // A SERIES or IMAGE retrieve names one study: refused once, it is refused for each of its scopes.
    if (refused.has(scope.studyUid)) continue;
    try {
      // An instance found damaged is a failed sub-operation of its own; the others still go.
      refs.push(
        ...(await s.deps.retrieve.open(principal, scope, 'view-pixels', what, detail, {
          damagedAsFailed: true,
        })),
      );
    } catch (err) {
      // Matches nothing (zero sub-operations): an unknown UID for a principal allowed every study, a study of
      // another patient, a series or instance not in the study.
      if (err instanceof CustosError && err.code === 'wado.not-found') continue;
      // A refused study (already recorded as denied in the ledger) does not hold back the others listed with it:
      // a PACS prefetch list with one stale UID moves the rest. Until 7 Dec 2026 one such UID refused the whole
      // request (0x0124) and nothing was sent.
      if (err instanceof CustosError && err.code === 'access.denied') {
        refused.set(scope.studyUid, err);
        continue;
      }
      throw err;
    }
  }
  // Nothing to send and something refused: the answer one refused UID gets (0x0124), whatever else was listed.
  const [firstRefusal] = refused.values();
  if (firstRefusal && refs.length === 0) throw firstRefusal;
  return { refs, refusedStudies: [...refused.keys()] };
}
