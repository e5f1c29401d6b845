/**
 * C-FIND (PS3.4 C.4.1) for Patient Root and Study Root: the identifier becomes a QIDO query, run by the one
 * QueryService (same SQL narrowing, same per-row decision, same audit record); each match goes back as a
 * pending response holding exactly the requested keys.
 */
import { CustosError, DicomStatus } from '../../domain/errors.js';
import {
  PATIENT_MODULE_TAGS,
  PATIENT_STUDY_TAGS,
  SERIES_DEFAULT_RETURN,
  SERIES_TAGS,
  STUDY_DEFAULT_RETURN,
  type DicomJsonObject,
} from '../../domain/dicom-levels.js';
import { matchKeyLevel, parseQidoQuery, takesValueList, type QidoLevel } from '../../domain/qido-query.js';
import { textDecoding, writableCharacterSet } from '../../dicom/charset.js';
import type { Dataset, Element } from '../../dicom/dataset.js';
import { lookupTag } from '../../dicom/dictionary.js';
import { inCharacterSet, inUtf8, type WriteElement } from '../../dicom/part10-writer.js';
import { isPrivateCreatorTag, isPrivateDataTag, Tags, tagToHex } from '../../dicom/tags.js';
import { allPages } from '../../services/query-service.js';
import { Cmd, encodeCommand, type Command } from './command.js';
import { encodeDataset, jsonToElements } from './dimse-dataset.js';
import type { DimseServices } from './dimse-services.js';
import type { NegotiatedContext, ScpAssociation } from './scp-association.js';
import { Sop } from './sop-classes.js';

export const QUERY_RETRIEVE_LEVEL = 0x00080052;
const RETRIEVE_AE_TITLE = 0x00080054;

export type DimseLevel = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';

const PATIENT_KEYS = new Set([
  'PatientName',
  'PatientID',
  'IssuerOfPatientID',
  'PatientBirthDate',
  'PatientSex',
]);
/** Attributes computed per patient (PS3.4 C.6.1.1.2). */
const NUMBER_OF_PATIENT_RELATED_STUDIES = 0x00201200;
const NUMBER_OF_PATIENT_RELATED_SERIES = 0x00201202;
const NUMBER_OF_PATIENT_RELATED_INSTANCES = 0x00201204;
/** A study row's attributes a PATIENT-level answer is grouped and counted by. */
const ISSUER_OF_PATIENT_ID = '00100021';
const STUDY_SERIES_COUNT = '00201206';
const STUDY_INSTANCE_COUNT = '00201208';

export const badIdentifier = (message: string) =>
  new CustosError({
    code: 'dimse.bad-identifier',
    message,
    dicomStatus: DicomStatus.DataSetDoesNotMatchSopClass,
  });

/**
 * PS3.4 C.4.1.1.3.1: the Query/Retrieve Level and whether the information model allows it. With
 * `patientRetrieve`, a Study Root C-MOVE or C-GET may name the PATIENT level (the patient's every study): Orthanc
 * 1.10 retrieves a patient that way, and Orthanc as an SCP takes it; the Study Root C-FIND still has no PATIENT
 * level.
 */
export function queryLevel(ds: Dataset, model: string, opts: { patientRetrieve?: boolean } = {}): DimseLevel {
  const el = ds.get(QUERY_RETRIEVE_LEVEL);
  const level = el?.kind === 'text' ? (el.values[0] ?? '').trim().toUpperCase() : '';
  if (!['PATIENT', 'STUDY', 'SERIES', 'IMAGE'].includes(level))
    throw badIdentifier(
      `Query/Retrieve Level (0008,0052) '${level}' must be PATIENT, STUDY, SERIES or IMAGE`,
    );
  const studyRoot = model === Sop.StudyRootFind || model === Sop.StudyRootMove || model === Sop.StudyRootGet;
  if (studyRoot && level === 'PATIENT' && !opts.patientRetrieve)
    throw badIdentifier('the Study Root model has no PATIENT level');
  return level as DimseLevel;
}

function textOf(el: Element): string | undefined {
  if (el.kind === 'text') return el.values.join('\\');
  if (el.kind === 'numbers' || el.kind === 'bigints') return el.values.map(String).join('\\');
  return undefined;
}

const QIDO_LEVEL: Record<DimseLevel, QidoLevel> = {
  PATIENT: 'study',
  STUDY: 'study',
  SERIES: 'series',
  IMAGE: 'instance',
};
const LEVEL_RANK: Record<DimseLevel, number> = { PATIENT: 0, STUDY: 1, SERIES: 2, IMAGE: 3 };
const RANK_OF_QIDO: Record<QidoLevel, number> = { study: 1, series: 2, instance: 3 };

export async function cFind(
  s: DimseServices,
  a: ScpAssociation,
  ctx: NegotiatedContext,
  cmd: Command,
  ds: Dataset,
): Promise<void> {
  const level = queryLevel(ds, ctx.abstractSyntax);
  const params = new URLSearchParams();
  const requested: { tag: number; vr: string; itemKeys?: { tag: number; vr: string }[] }[] = [];
  const include: string[] = [];
  /** A key given a value that Custos does not match on (it is matched universally): PS3.4 Table C.4-1's 0xFF01. */
  let unmatched = false;
  for (const [tag, el] of ds) {
    if (tag === Tags.SpecificCharacterSet || tag === QUERY_RETRIEVE_LEVEL || tag >>> 16 === 0x0002) continue;
    // A sequence return key with an item of keys asks for those attributes of each item; an empty one (or none),
    // for the items whole (PS3.4 C.2.2.1.3). Until 5 Dec 2026 every item came whole either way.
    const first = el.kind === 'sequence' ? el.items[0] : undefined;
    const itemKeys = first?.size ? [...first].map(([t, e]) => ({ tag: t, vr: e.vr })) : undefined;
    requested.push({ tag, vr: el.vr, ...(itemKeys ? { itemKeys } : {}) });
    const keyword = lookupTag(tag)?.keyword;
    const value = textOf(el);
    if (tag !== RETRIEVE_AE_TITLE && asksToMatch(tag, el) && (!keyword || el.kind === 'sequence'))
      unmatched = true;
    // Return keys that are no matching key (sequences, private tags, any attribute the query does not match on)
    // are asked of the query as includefield, so that their values come back; until 5 Dec 2026 sequences and
    // private tags came back at zero length, as if the object had no value.
    if ((!keyword || el.kind === 'sequence') && tag !== RETRIEVE_AE_TITLE) include.push(tagToHex(tag));
    if (!keyword || el.kind === 'sequence' || tag === RETRIEVE_AE_TITLE) continue;
    if (level === 'PATIENT' && !PATIENT_KEYS.has(keyword)) {
      // A study, series or image matching key has no place here. Any other key is a return key: its value comes
      // back where the patient has one, and a value given for it is matched universally (PS3.4 C.6.1.1.2 makes
      // the other patient attributes optional keys, which an SCP that does not match on one treats as return keys).
      // Until 6 Dec 2026 such a key came back at zero length, and with a value was refused with 0xA900.
      if (value && keyRank(keyword) !== undefined)
        throw badIdentifier(`${keyword} cannot be matched at the PATIENT level`);
      if (asksToMatch(tag, el)) unmatched = true;
      include.push(tagToHex(tag));
      continue;
    }
    const keyLevel = keyRank(keyword);
    if (level !== 'PATIENT' && keyLevel !== undefined && keyLevel > LEVEL_RANK[level]) {
      if (value) throw badIdentifier(`${keyword} cannot be matched at the ${level} level`);
      continue;
    }
    if (keyLevel !== undefined && value) {
      // Several values are matched as a list where QIDO-RS takes one (UIDs, PS3.4 C.2.2.2.2; modalities); for any
      // other key PS3.4 C.2.2.2.8 leaves them undefined without the extended negotiation Custos does not offer, so
      // they are refused naming the key. Until 6 Dec 2026 'A\B' became the literal 'A,B' (no match) or a refusal
      // that did not say why.
      if (value.includes('\\') && !takesValueList(keyword))
        throw badIdentifier(`${keyword}: one value only (no multiple value matching)`);
      // Bytes the query's character set does not define were read as U+FFFD (src/dicom/charset.ts): matched so, the
      // value would find nothing, and say nothing of why. Until 7 Dec 2026 it did (Latin-1 'Gö*' sent as ISO_IR 192).
      if (value.includes('\ufffd')) throw badIdentifier(`${keyword}: bytes not defined in ${charsetOf(ds)}`);
      // Under a term Custos does not know, characters outside ASCII were read as ISO 8859-1, a guess: matched so, the
      // value would most likely find nothing, and say nothing of why. Until 7 Dec 2026 it did ('UTF-8', say).
      if (NOT_ASCII.test(value) && textDecoding(charsetValues(ds)).unknown)
        throw badIdentifier(
          `${keyword}: Specific Character Set '${charsetOf(ds)}' names no character set Custos knows, so its characters outside ASCII cannot be read`,
        );
      params.append(keyword, value.replace(/\\/g, ','));
    } else {
      if (asksToMatch(tag, el)) unmatched = true;
      include.push(tagToHex(tag));
    }
  }
  // PS3.4 C.4.1.1.3.2: an SCP without Storage Media File-Set ID and UID names where each match can be retrieved
  // from in every answer, Retrieve AE Title (0008,0054), whether or not the request asked for it. Until 7 Dec
  // 2026 only an answer to a request holding the key had it.
  if (!requested.some((r) => r.tag === RETRIEVE_AE_TITLE))
    requested.push({ tag: RETRIEVE_AE_TITLE, vr: 'AE' });
  // Patients are told apart by Patient ID and Issuer: the Issuer is asked for whether or not it was requested
  // (until 6 Dec 2026 two patients with one Patient ID and two Issuers were one answer unless it was).
  if (level === 'PATIENT') include.push(ISSUER_OF_PATIENT_ID);
  // PS3.5 §7.8.1: a private data element of the query names its block by the creator the query reserves for it,
  // (gggg,00xx); the stored object may hold that creator's block elsewhere. Mapped per instance, from all of its
  // attributes (IMAGE level: the other levels keep no private attributes). Until 7 Dec 2026 the raw tag was read,
  // so (0009,0010)=ACME with (0009,1001) was answered another creator's (0009,1001).
  const creators = privateCreators(ds);
  const mapsPrivate =
    level === 'IMAGE' && requested.some((r) => isPrivateDataTag(r.tag) && creators.has(privateBlock(r.tag)));
  if (mapsPrivate) include.push('all');
  if (include.length) params.set('includefield', include.join(','));
  let query;
  try {
    query = parseQidoQuery(params, QIDO_LEVEL[level]);
  } catch (err) {
    throw badIdentifier((err as Error).message);
  }
  // PS3.4 C.4.1.1.3.2: an answer is written in the query's character set where Custos can write that set and every
  // value of the answer fits it (the single-byte sets, UTF-8, the default repertoire), so that a requestor reading
  // only its own set (Latin-1, Cyrillic, ...) reads it right; any other answer is written in UTF-8, as that section
  // allows ("The SCP may return responses with a different Specific Character Set"). Until 8 Dec 2026 every answer
  // was written in UTF-8, which a requestor that queried in ISO_IR 100 and knows no UTF-8 showed as 'MÃ¼ller'.
  const answerSet = writableCharacterSet(charsetValues(ds));
  const encodeAnswer = (elements: WriteElement[]): Buffer => {
    if (answerSet !== undefined)
      try {
        return encodeDataset(inCharacterSet(elements, answerSet), ctx.transferSyntax, {
          singleByteSets: true,
        });
      } catch (err) {
        if (!(err instanceof CustosError && err.code === 'dicom.not-encodable')) throw err;
      }
    return encodeDataset(inUtf8(elements), ctx.transferSyntax);
  };
  const identifier = (row: DicomJsonObject): Buffer => {
    const elements: WriteElement[] = [{ tag: QUERY_RETRIEVE_LEVEL, vr: 'CS', value: level }];
    const have = new Map(jsonToElements(row).map((e) => [e.tag, e]));
    const storedBlocks = mapsPrivate ? blocksByCreator(have) : undefined;
    for (const r of requested) {
      if (r.tag === Tags.TimezoneOffsetFromUTC) continue;
      if (r.tag === RETRIEVE_AE_TITLE) elements.push({ tag: r.tag, vr: 'AE', value: s.deps.aeTitle });
      else if (storedBlocks && isPrivateCreatorTag(r.tag) && creators.has(privateBlock(r.tag)))
        // The query's reservation is answered as asked: its elements below are that creator's, wherever stored.
        elements.push({ tag: r.tag, vr: 'LO', value: creators.get(privateBlock(r.tag))! });
      else {
        const creator =
          storedBlocks && isPrivateDataTag(r.tag) ? creators.get(privateBlock(r.tag)) : undefined;
        const storedBlock =
          creator !== undefined ? storedBlocks!.get(`${r.tag >>> 16}|${creator}`) : undefined;
        const found =
          creator === undefined
            ? have.get(r.tag)
            : storedBlock === undefined
              ? undefined
              : withTag(
                  have.get((((r.tag >>> 16) << 16) | (storedBlock << 8) | (r.tag & 0xff)) >>> 0),
                  r.tag,
                );
        // An attribute this level does not keep (a sequence or private tag of the instances, asked of a study) is
        // left out, as PS3.4 C.4.1.1.3.2 has an unsupported optional key: zero length would say the object has
        // no value (until 5 Dec 2026 it did).
        if (!found && !keptAt(level, r.tag)) continue;
        if (found && r.itemKeys && Array.isArray(found.value))
          elements.push({
            ...found,
            value: (found.value as WriteElement[][]).map((item) => itemWith(item, r.itemKeys!)),
          });
        else elements.push(found ?? emptyElement(r));
      }
    }
    // PS3.4 C.4.1.1.3.2: Timezone Offset From UTC is in an answer whose dates and times are in the time zone it
    // names, and only then: never at zero length, whether or not the request asked for it. Until 7 Dec 2026 it came
    // when asked for, at zero length where the object has none, and never when not asked for, so the stored
    // object's times read as the requestor's local ones.
    const timezone = have.get(Tags.TimezoneOffsetFromUTC);
    if (timezone && hasValue(timezone) && elements.some((e) => TIME_VRS.has(e.vr) && hasValue(e)))
      elements.push(timezone);
    // Every item that names its own character set is written in the answer's: its text comes decoded from the index
    // (until 6 Dec 2026 such an item, ISO_IR 144 with Cyrillic text, failed the C-FIND with 0xC000).
    return encodeAnswer(elements);
  };
  // Every pending answer carries the same command set (PS3.7 §9.3.2.2): encoded once per query.
  const pending = encodeCommand({
    affectedSopClassUid: ctx.abstractSyntax,
    commandField: Cmd.CFindRsp,
    messageIdBeingRespondedTo: cmd.messageId ?? 0,
    commandDataSetType: 0x0000,
    // PS3.4 Table C.4-1: 0xFF01 when a key was given a value Custos does not match on (an optional key it matches
    // universally, which QIDO-RS says in a Warning header). Until 7 Dec 2026 such answers went as 0xFF00, which
    // says every key was matched as asked.
    status: unmatched ? 0xff01 : 0xff00,
  });
  /** Matches sent as pending responses, for the record of a query that fails part way. */
  let answered = 0;
  /** Sends answers as pending responses; false when the SCU cancelled (the final response is then owed). */
  const send = async (answers: Buffer[]): Promise<boolean> => {
    let batch: { command: Buffer; data: Buffer }[] = [];
    for (const data of answers) {
      if (a.isCancelled(cmd.messageId ?? -1)) return false;
      batch.push({ command: pending, data });
      // 64 answers per socket write. Between batches the event loop takes a turn, so that a C-CANCEL the peer sent
      // is read: until 6 Dec 2026 a write the socket took at once resolved without one, and a reader as fast as
      // findscu got all 500 answers of a 500-study query and a final Success for its C-CANCEL after the fifth.
      if (batch.length >= 64) {
        await a.conn!.sendBatch(ctx.id, batch);
        answered += batch.length;
        batch = [];
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    if (batch.length) await a.conn!.sendBatch(ctx.id, batch);
    answered += batch.length;
    return true;
  };
  const principal = a.principalFor('c-find');
  let complete: boolean;
  try {
    complete = await answerAll();
  } catch (err) {
    // Each page read was recorded as answered (QueryService) before its answers went. Until 6 Dec 2026 the ledger
    // kept those success records and nothing else: a C-FIND that failed part way (a page that could not be read
    // or encoded, a requestor that aborted) looked answered. A refusal by the decision point is recorded as such.
    if (!(err instanceof CustosError && err.code === 'access.denied'))
      await s.deps.query.recordUnanswered(
        principal,
        query,
        answered,
        err,
        a.leaving ? `${a.leaving} after ${answered} answers` : undefined,
      );
    throw err;
  }
  if (!complete) {
    // The pages read were recorded as answered in full; a C-CANCEL stopped the answers short of that, so a second
    // record says how many went (PS3.4 C.4.1.2.3). Until 7 Dec 2026 the success records stood alone, counting
    // matches never sent.
    await s.deps.query.recordUnanswered(
      principal,
      query,
      answered,
      new CustosError({
        code: 'dimse.cancelled',
        message: `cancelled by the requestor (C-CANCEL) after ${answered} answers`,
        dicomStatus: 0xfe00,
      }),
    );
    await a.respond(ctx.id, cmd, Cmd.CFindRsp, 0xfe00);
    return;
  }
  await a.respond(ctx.id, cmd, Cmd.CFindRsp, 0);

  /** Every match answered, page after page; false when the SCU cancelled. */
  async function answerAll(): Promise<boolean> {
    // A C-FIND answers every match (PS3.4 C.4.1.3.1). Where QIDO-RS stops at its page size
    // (limits.maxQueryResults) and says so in a Warning header, C-FIND has no such status: it goes on page after
    // page, each recorded like a QIDO-RS page.
    if (level === 'PATIENT') {
      const patients = new PatientGroups();
      const pages = allPages((from) => s.deps.query.search(principal, { ...query!, offset: 0 }, '', from));
      for await (const studies of pages) patients.add(studies);
      return send(patients.rows().map(identifier));
    }
    // Everything an identifier depends on besides its row, so that QueryService remembers it per study with it.
    const variant = [
      level,
      `charset ${answerSet ?? 'ISO_IR 192'}`,
      ...[...creators].map(([block, creator]) => `creator ${block}:${creator}`),
      ctx.transferSyntax,
      s.deps.aeTitle,
      ...requested.map(
        (r) => `${r.tag}:${r.vr}${r.itemKeys ? `(${r.itemKeys.map((k) => k.tag).join(',')})` : ''}`,
      ),
    ];
    const pages = allPages((from) =>
      s.deps.query.searchEncoded(principal, { ...query!, offset: 0 }, variant.join(' '), identifier, from),
    );
    for await (const answers of pages) if (!(await send(answers))) return false;
    return true;
  }
}

/** The VRs of dates and times, which Timezone Offset From UTC (0008,0201) applies to (PS3.3 C.12.1.1.8). */
const TIME_VRS = new Set(['DA', 'TM', 'DT']);

/** Whether an element of an answer has a value (not zero length, nor only empty values). */
function hasValue(el: WriteElement): boolean {
  const v = el.value;
  if (Array.isArray(v)) return v.some((x) => x !== '' && x !== null && x !== undefined);
  return v !== '' && v !== null && v !== undefined;
}

/** The identifier's Specific Character Set values (none: the default repertoire). */
function charsetValues(ds: Dataset): string[] | undefined {
  const el = ds.get(Tags.SpecificCharacterSet);
  return el?.kind === 'text' ? el.values : undefined;
}

/** The identifier's Specific Character Set as given, or the default repertoire's name. */
function charsetOf(ds: Dataset): string {
  return charsetValues(ds)?.join('\\') || 'ISO_IR 6';
}

const NOT_ASCII = /[\u0080-\uffff]/;

/**
 * Whether a key asks to be matched: it has a value other than universal matching (zero length, or `*` alone: PS3.4
 * C.2.2.2.3, C.2.2.2.4), or, for a sequence, an item holding such a key (C.2.2.2.6). A private creator's value only
 * names its block of the keys (PS3.5 §7.8.1), and is no matching.
 */
function asksToMatch(tag: number, el: Element): boolean {
  if (el.kind === 'sequence') return el.items.some((item) => [...item].some(([t, e]) => asksToMatch(t, e)));
  if (isPrivateCreatorTag(tag)) return false;
  const value = textOf(el);
  return value !== undefined && value.trim() !== '' && !/^\*+$/.test(value.trim());
}

const PATIENT_KEPT = new Set(PATIENT_MODULE_TAGS);
// SOPClassesInStudy (0008,0062) is computed from the study's instances whenever asked for.
const STUDY_KEPT = new Set([...PATIENT_STUDY_TAGS, ...STUDY_DEFAULT_RETURN, '00080062']);
const SERIES_KEPT = new Set([...STUDY_KEPT, ...SERIES_TAGS, ...SERIES_DEFAULT_RETURN]);

/**
 * Whether the index keeps this attribute for matches at this level, so that its absence means the object has no
 * value: a patient keeps the patient module attributes, a study those and the study modules', a series those and
 * its own, an image every attribute of the instance. Matching keys are kept at their levels too.
 */
function keptAt(level: DimseLevel, tag: number): boolean {
  if (level === 'IMAGE') return true;
  const hex = tagToHex(tag);
  if (level === 'PATIENT') return PATIENT_KEPT.has(hex);
  if ((level === 'SERIES' ? SERIES_KEPT : STUDY_KEPT).has(hex)) return true;
  const keyword = lookupTag(tag)?.keyword;
  const rank = keyword ? keyRank(keyword) : undefined;
  return rank !== undefined && rank <= LEVEL_RANK[level];
}

/** The block a private element belongs to, with its group: (gggg,00xx) and (gggg,xxyy) both give gggg and xx. */
const privateBlock = (tag: number) =>
  (((tag >>> 16) << 8) | (isPrivateCreatorTag(tag) ? tag & 0xff : (tag >>> 8) & 0xff)) >>> 0;

/** The creators a query reserves, by block. */
function privateCreators(ds: Dataset): Map<number, string> {
  const out = new Map<number, string>();
  for (const [tag, el] of ds) {
    if (!isPrivateCreatorTag(tag)) continue;
    const value = el.kind === 'text' ? (el.values[0] ?? '').trim() : '';
    if (value) out.set(privateBlock(tag), value);
  }
  return out;
}

/** Where a stored object keeps each creator's block: `group|creator` to its block number. */
function blocksByCreator(have: Map<number, WriteElement>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [tag, el] of have) {
    if (!isPrivateCreatorTag(tag)) continue;
    const value = Array.isArray(el.value) ? String(el.value[0] ?? '') : String(el.value ?? '');
    const key = `${tag >>> 16}|${value.trim()}`;
    if (!out.has(key)) out.set(key, tag & 0xff);
  }
  return out;
}

const withTag = (el: WriteElement | undefined, tag: number) => (el ? { ...el, tag } : undefined);

/** An item of a sequence return key: the attributes asked for, each as stored or empty (zero length). */
function itemWith(item: WriteElement[], keys: { tag: number; vr: string }[]): WriteElement[] {
  const have = new Map(item.map((e) => [e.tag, e]));
  return keys.map((k) => have.get(k.tag) ?? emptyElement(k));
}

/** A key the matched object has no value for: zero length, of its VR (a sequence without items). */
function emptyElement(key: { tag: number; vr: string }): WriteElement {
  return { tag: key.tag, vr: key.vr, value: key.vr === 'SQ' ? [] : '' };
}

/** Rank of the level a matching key belongs to (1 study, 2 series, 3 image), if it is one QIDO matches on. */
function keyRank(keyword: string): number | undefined {
  const level = matchKeyLevel(keyword);
  return level === undefined ? undefined : RANK_OF_QIDO[level];
}

/**
 * PATIENT level: one answer per patient (Patient ID and Issuer) among the studies the caller may see, gathered
 * page by page, with the patient module attributes of its first study and its counts (PS3.4 C.6.1.1.2).
 */
class PatientGroups {
  private readonly byPatient = new Map<
    string,
    { row: DicomJsonObject; studies: number; series: number; instances: number }
  >();

  add(studies: DicomJsonObject[]): void {
    for (const st of studies) {
      const id = `${String(st['00100020']?.Value?.[0] ?? '')}|${String(st[ISSUER_OF_PATIENT_ID]?.Value?.[0] ?? '')}`;
      const series = Number(st[STUDY_SERIES_COUNT]?.Value?.[0] ?? 0);
      const instances = Number(st[STUDY_INSTANCE_COUNT]?.Value?.[0] ?? 0);
      const seen = this.byPatient.get(id);
      if (seen) {
        seen.studies++;
        seen.series += series;
        seen.instances += instances;
      } else {
        const row: DicomJsonObject = {};
        for (const [k, v] of Object.entries(st)) if (PATIENT_KEPT.has(k)) row[k] = v;
        this.byPatient.set(id, { row, studies: 1, series, instances });
      }
    }
  }

  rows(): DicomJsonObject[] {
    return [...this.byPatient.values()].map(({ row, studies, series, instances }) => ({
      ...row,
      [tagToHex(NUMBER_OF_PATIENT_RELATED_STUDIES)]: { vr: 'IS', Value: [studies] },
      [tagToHex(NUMBER_OF_PATIENT_RELATED_SERIES)]: { vr: 'IS', Value: [series] },
      [tagToHex(NUMBER_OF_PATIENT_RELATED_INSTANCES)]: { vr: 'IS', Value: [instances] },
    }));
  }
}
