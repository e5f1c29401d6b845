import {
  Hl7Error,
  Hl7ErrorCode,
  repetitions,
  value,
  type Hl7Location,
  type Hl7Message,
  type Hl7Segment,
} from './hl7-message.js';

/**
 * What a patient or order feed message asks the archive to do, read from the message once (types at the edge):
 * the patient feed service acts on these values and never looks at HL7 again.
 */
export interface PatientIdentity {
  patientId: string;
  /** Assigning authority (CX-4, namespace id), '' when the sender gave none. */
  issuer: string;
}

/**
 * Demographics as the message gives them. HL7 distinguishes a field left empty (not sent: keep what is known,
 * v2.5.1 §2.5.3) from the null value "" (delete it): absent fields are undefined here, deleted ones ''.
 */
export interface Demographics extends PatientIdentity {
  /** PatientName as DICOM PN: family^given^middle^prefix^suffix. */
  name?: string;
  /** DICOM DA (YYYYMMDD). */
  birthDate?: string;
  /** DICOM PatientSex: M, F or O. */
  sex?: string;
}

const HL7_NULL = '""';

/**
 * A placer or filler order number (ORC-2/3, OBR-2/3). Sent as `""` it is no number: an order's key cannot be
 * deleted, and until 6 Dec 2026 the two characters became the key that every such order then shared.
 */
const orderNumber = (s: Hl7Segment, field: number) => {
  const v = value(s, field);
  return v === HL7_NULL ? '' : v;
};

export interface Physician {
  /** XCN-1, the provider's identifier; '' when the sender gave only a name. */
  id: string;
  /** DICOM PN of XCN-2 onwards. */
  name: string;
}

/**
 * An order as the message gives it. As for demographics, '' (or undefined) is a field left empty, which keeps what
 * is known of the order, and null the HL7 null "", which deletes it (v2.5.1 §2.5.3).
 */
export interface OrderCommand {
  patient: Demographics;
  orderControl: string;
  placerOrderNumber: string;
  fillerOrderNumber: string;
  accessionNumber: string | null;
  /** The order's status (orderStatus below): '' when the message leaves it as known. */
  status: string;
  procedureCode: string;
  procedureText: string;
  department: string | null;
  /**
   * Every repetition of ORC-12 (else OBR-16) and PV1-8, the first first: each physician gets a care relationship;
   * the first is the order's ordering (referring) physician. null is the HL7 null "", undefined a field left empty.
   */
  orderingPhysician: Physician[] | null | undefined;
  referringPhysician: Physician[] | null | undefined;
  /** For OMI: Study Instance UID the order system assigned (IPC-3), '' otherwise. */
  studyInstanceUid: string | null;
  modality: string | null;
}

/** Of a field and its fallback, the first that holds a value, else a delete (null) if either says so. */
function firstSaid(first: string | null, fallback: string | null): string | null {
  if (first) return first;
  if (fallback) return fallback;
  return first === null || fallback === null ? null : '';
}

/** A field's text, or null when it is the HL7 null "" (delete the value the receiver holds). */
function orderText(seg: Hl7Segment | undefined, field: number, component = 1): string | null {
  const text = value(seg, field, component);
  return text === HL7_NULL ? null : text;
}

export type FeedCommand =
  | { kind: 'patient-update'; event: string; patients: Demographics[] }
  | {
      kind: 'patient-merge';
      event: string;
      /**
       * `merged` holds every identifier of MRG-1's list (the prior patient's identifiers, v2.5.1 §3.4.9.1), the one
       * typed MR (else the first) first.
       */
      merges: { surviving: Demographics; merged: PatientIdentity[] }[];
    }
  | { kind: 'identifier-change'; event: string; changes: { to: Demographics; from: PatientIdentity }[] }
  | { kind: 'order'; event: string; orders: OrderCommand[] };

const UPDATE_EVENTS = new Set(['A01', 'A04', 'A05', 'A08', 'A28', 'A31']);
// A34 (merge patient information, patient ID only) and A40 (merge patient, patient identifier list) both merge;
// A39 (merge person) is read as A40 and A36 (patient ID and account number) as A34 when MRG-1 names the prior
// patient (readMerge). A35 (account number only) changes nothing this archive keeps (refuseAccountOnly).
const MERGE_EVENTS = new Set(['A34', 'A36', 'A39', 'A40']);
// A46 (change patient ID, withdrawn in 2.4) and A47 (change patient identifier list) rename one identifier.
const CHANGE_EVENTS = new Set(['A46', 'A47']);

const missing = (segment: string, sequence: number, field: number, what: string, component?: number) =>
  new Hl7Error({
    code: Hl7ErrorCode.RequiredFieldMissing,
    message: `${segment}-${field}${component ? `.${component}` : ''} (${what}) is required and empty`,
    location: { segment, sequence, field, ...(component ? { component } : {}) },
  });

/** Read a message into the command it carries, or throw Hl7Error naming what is missing or unsupported. */
export function readFeedCommand(msg: Hl7Message): FeedCommand {
  const code = msg.messageCode;
  const event = msg.triggerEvent;
  if (code === 'ADT') {
    if (UPDATE_EVENTS.has(event)) return { kind: 'patient-update', event, patients: readPids(msg) };
    if (MERGE_EVENTS.has(event)) {
      return {
        kind: 'patient-merge',
        event,
        merges: readPidMrgPairs(msg, event === 'A40' || event === 'A39', event).map(([pid, mrg]) => ({
          surviving: pid,
          merged: mrg,
        })),
      };
    }
    if (event === 'A35')
      throw new Hl7Error({
        code: Hl7ErrorCode.UnsupportedEventCode,
        message:
          'ADT event A35 (merge patient information - account number only) merges PID-18 account numbers, which this archive does not keep: it has nothing to apply; filter A35 out of its feed',
        location: { segment: 'MSH', sequence: 1, field: 9, component: 2 },
      });
    if (CHANGE_EVENTS.has(event)) {
      return {
        kind: 'identifier-change',
        event,
        changes: readPidMrgPairs(msg, false, event).map(([pid, mrg]) => ({ to: pid, from: mrg[0]! })),
      };
    }
    throw new Hl7Error({
      code: Hl7ErrorCode.UnsupportedEventCode,
      message: `ADT event ${event} is not supported (supported: ${[...UPDATE_EVENTS, ...MERGE_EVENTS, ...CHANGE_EVENTS].join(', ')})`,
      location: { segment: 'MSH', sequence: 1, field: 9, component: 2 },
    });
  }
  if ((code === 'ORM' && event === 'O01') || (code === 'OMI' && event === 'O23')) {
    return { kind: 'order', event: `${code}^${event}`, orders: readOrders(msg) };
  }
  if (code === 'ORM' || code === 'OMI') {
    throw new Hl7Error({
      code: Hl7ErrorCode.UnsupportedEventCode,
      message: `${code} event ${event} is not supported (supported: ORM^O01, OMI^O23)`,
      location: { segment: 'MSH', sequence: 1, field: 9, component: 2 },
    });
  }
  throw new Hl7Error({
    code: Hl7ErrorCode.UnsupportedMessageType,
    message: `message type ${code}^${event} is not supported (supported: ADT, ORM^O01, OMI^O23)`,
    location: { segment: 'MSH', sequence: 1, field: 9, component: 1 },
  });
}

function readPids(msg: Hl7Message): Demographics[] {
  return [readDemographics(singlePid(msg), 1)];
}

/**
 * The one PID of a message whose structure holds exactly one (ADT_A01, ADT_A05, ADT_A30, ORM_O01, OMI_O23). A
 * second PID is a segment sequence error: applying both, or only the first, would act on a patient the
 * sender may not have meant.
 */
function singlePid(msg: Hl7Message): Hl7Segment {
  const pids = msg.all('PID');
  if (pids.length === 0) throw segmentMissing('PID', msg);
  if (pids.length > 1) throw segmentRepeated('PID', msg);
  return pids[0]!;
}

const segmentRepeated = (id: string, msg: Hl7Message) =>
  new Hl7Error({
    code: Hl7ErrorCode.SegmentSequenceError,
    message: `${msg.messageCode}^${msg.triggerEvent} holds one ${id} segment and this message has ${msg.all(id).length}; nothing of it was applied`,
    location: { segment: id, sequence: 2 },
  });

const segmentMissing = (id: string, msg: Hl7Message) =>
  new Hl7Error({
    code: Hl7ErrorCode.SegmentSequenceError,
    message: `${msg.messageCode}^${msg.triggerEvent} requires a ${id} segment and has none`,
    location: { segment: id },
  });

/**
 * Each PID with the MRG that follows it: the PATIENT group, which ADT_A39 (A39, A40) repeats and ADT_A30 (A34,
 * A36, A46, A47) holds once. A PID without its MRG is a segment sequence error, not a patient to skip. `change`
 * names the event: an identifier change (A46, A47), whose MRG-1 may hold one identifier to change
 * (refuseUnpairedPriors), or an A39, which may merge external IDs only (refuseExternalIdMerge).
 */
function readPidMrgPairs(
  msg: Hl7Message,
  repeating: boolean,
  change?: string,
): [Demographics, PatientIdentity[]][] {
  if (!repeating) {
    if (msg.all('PID').length > 1) throw segmentRepeated('PID', msg);
    if (msg.all('MRG').length > 1) throw segmentRepeated('MRG', msg);
  }
  const out: [Demographics, PatientIdentity[]][] = [];
  let pid: Hl7Segment | undefined;
  let pidSeq = 0;
  let mrgSeq = 0;
  for (const s of msg.segments) {
    if (s.id === 'PID') {
      if (pid) throw pidWithoutMrg(pidSeq);
      pid = s;
      pidSeq++;
    } else if (s.id === 'MRG') {
      mrgSeq++;
      if (!pid)
        throw new Hl7Error({
          code: Hl7ErrorCode.SegmentSequenceError,
          message: 'an MRG segment must follow the PID of the surviving patient',
          location: { segment: 'MRG', sequence: mrgSeq },
        });
      if (change === 'A46') refuseExternalIdChange(msg, s, mrgSeq);
      if (change === 'A39') refuseExternalIdMerge(s, mrgSeq);
      const merged = readIdentifierList(s, 1, 'MRG', mrgSeq, 'prior patient identifier list');
      if (change && CHANGE_EVENTS.has(change)) refuseUnpairedPriors(pid, s, mrgSeq, change);
      out.push([readDemographics(pid, pidSeq), merged]);
      pid = undefined;
    }
  }
  if (out.length === 0) {
    if (pidSeq === 0) throw segmentMissing('PID', msg);
    throw segmentMissing('MRG', msg);
  }
  if (pid) throw pidWithoutMrg(pidSeq);
  return out;
}

/**
 * A46/A47 change one identifier: the incorrect source identifier in MRG-1 becomes the correct target identifier in
 * PID-3, a tightly coupled pair (v2.5.1 §3.3.47), read as the MR (else first) repetition of each. Unlike an A40's,
 * the other repetitions of MRG-1 cannot be applied: the message says nothing they become. A repetition PID-3 sends
 * unchanged (an identifier the patient keeps) or one repeating the changed identifier says nothing more; any other
 * is refused (102, naming it) rather than ignored, as it was until 7 Dec 2026.
 */
function refuseUnpairedPriors(pid: Hl7Segment, mrg: Hl7Segment, seq: number, event: string) {
  const ids = (seg: Hl7Segment, field: number) =>
    repetitions(seg, field).map((r) => ({
      patientId: r[0]?.[0] ?? '',
      issuer: assigningAuthority(r),
      mr: r[4]?.[0] === 'MR',
    }));
  const same = (a: { patientId: string; issuer: string }, b: { patientId: string; issuer: string }) =>
    a.patientId === b.patientId && a.issuer === b.issuer;
  const kept = ids(pid, 3);
  const priors = ids(mrg, 1);
  const changed = priors.find((r) => r.mr) ?? priors[0];
  priors.forEach((prior, n) => {
    if (!changed || same(prior, changed) || kept.some((k) => same(k, prior))) return;
    throw new Hl7Error({
      code: Hl7ErrorCode.DataTypeError,
      message: `MRG-1[${n + 1}] (prior patient identifier list) names ${prior.patientId}${prior.issuer ? ` (${prior.issuer})` : ''}, which PID-3 does not keep: an ${event} changes one identifier, MRG-1's ${changed.patientId} into PID-3's; send the others unchanged in PID-3, or merge with A40`,
      location: { segment: 'MRG', sequence: seq, field: 1, repetition: n + 1 },
    });
  });
}

/**
 * HL7 v2.3 and v2.3.1 define A46 (change patient ID) on PID-2, the external patient ID: the incorrect one in MRG-4
 * (prior patient ID) becomes the correct one in PID-2, and MRG-1 and PID-3 need not be sent (v2.3 §3.2.46; A47
 * changes PID-3, from MRG-1). Custos keys patients by PID-3 and keeps no external ID, so such a message, with MRG-4
 * and no MRG-1, has nothing here to change: it is rejected, AR/201, saying so, rather than applied to a patient
 * whose PID-3 happens to equal an external ID. Until 7 Dec 2026 it was AE/101 for an empty MRG-1, which did not say
 * why. An A46 of these versions that sends MRG-1 is read as an A47 is, as A46 of any later version.
 */
function refuseExternalIdChange(msg: Hl7Message, mrg: Hl7Segment, seq: number): void {
  if (!/^2\.3(\.1)?$/.test(msg.version)) return;
  const valued = (field: number) => repetitions(mrg, field).some((r) => (r[0]?.[0] ?? '') !== '');
  if (valued(1) || !valued(4)) return;
  throw new Hl7Error({
    code: Hl7ErrorCode.UnsupportedEventCode,
    message: `a v${msg.version} A46 changes PID-2, the external patient ID (MRG-4 to PID-2), which this archive does not keep: it keys patients by PID-3; send an A47 (MRG-1 to PID-3) to change the patient identifier`,
    location: { segment: 'MRG', sequence: seq, field: 4 },
  });
}

/**
 * A39 (merge person) merges at the person level: v2.3 to v2.5 define it on PID-2 (the external ID), from MRG-4
 * (prior patient ID), and need neither MRG-1 nor PID-3 (v2.3 §3.2.39). Senders (MPIs) that name the prior patient
 * in MRG-1 mean the merge an A40 makes, and it is applied as one. One that names only MRG-4 merges external IDs,
 * which this archive does not keep: rejected (AR/201) naming MRG-4, as a v2.3 A46 of the external ID is, rather than
 * refused for an empty MRG-1 or applied to a patient whose PID-3 happens to equal an external ID.
 */
function refuseExternalIdMerge(mrg: Hl7Segment, seq: number): void {
  const valued = (field: number) => repetitions(mrg, field).some((r) => (r[0]?.[0] ?? '') !== '');
  if (valued(1) || !valued(4)) return;
  throw new Hl7Error({
    code: Hl7ErrorCode.UnsupportedEventCode,
    message:
      'this A39 merges PID-2 external patient IDs (MRG-4 into PID-2), which this archive does not keep: it keys patients by PID-3; send the prior patient identifier in MRG-1 (or an A40) to merge the patients',
    location: { segment: 'MRG', sequence: seq, field: 4 },
  });
}

const pidWithoutMrg = (pidSeq: number) =>
  new Hl7Error({
    code: Hl7ErrorCode.SegmentSequenceError,
    message: `PID ${pidSeq} has no MRG after it: each surviving patient's PID is followed by the MRG of the patient merged into it; nothing of the message was applied`,
    location: { segment: 'PID', sequence: pidSeq },
  });

/**
 * The patient identifier of a CX list: the repetition typed MR (medical record number) when there is one, else
 * the first. DICOM PatientID is one value; other repetitions are not indexed.
 */
function readIdentifier(
  seg: Hl7Segment,
  field: number,
  id: string,
  seq: number,
  what: string,
): PatientIdentity {
  return readIdentifierList(seg, field, id, seq, what, false)[0]!;
}

/**
 * Every identifier of a CX list, the one readIdentifier chooses first, each checked as DICOM PatientID and
 * IssuerOfPatientID (a repetition after the first is named by its number: `MRG-1[2].1`); `all` false reads the
 * chosen one only. A repetition without an ID is refused (101), as is a list without any; repeated identifiers count
 * once.
 */
function readIdentifierList(
  seg: Hl7Segment,
  field: number,
  id: string,
  seq: number,
  what: string,
  all = true,
): PatientIdentity[] {
  const reps = repetitions(seg, field);
  const typedMr = reps.findIndex((r) => r[4]?.[0] === 'MR');
  const chosen = typedMr >= 0 ? typedMr : 0;
  const order = all ? [chosen, ...reps.keys()].filter((n, i) => i === 0 || n !== chosen) : [chosen];
  const out: PatientIdentity[] = [];
  for (const n of order) {
    const rep = reps[n];
    const several = all && reps.length > 1;
    // ERR-2 names the repetition read, the MR one that may not be the first (PID-3 of an A08 sending SS~MR); until
    // 7 Dec 2026 it said the first when only the chosen one was read, pointing the sender at an identifier that
    // was fine. Its number is in the words too when it is not the first.
    const repetition = reps.length > 1 ? { repetition: n + 1 } : {};
    const named = `${id}-${field}${several || n > 0 ? `[${n + 1}]` : ''}`;
    const where = { segment: id, sequence: seq, field, ...repetition };
    const patientId = rep?.[0]?.[0] ?? '';
    if (patientId === '') {
      if (!several && n === 0) {
        const empty = missing(id, seq, field, what, reps.length ? 1 : undefined);
        throw new Hl7Error({ ...empty.problem, location: { ...empty.problem.location!, ...repetition } });
      }
      throw new Hl7Error({
        code: Hl7ErrorCode.RequiredFieldMissing,
        message: `${named}.1 (${what}) is empty: each repetition names an identifier`,
        location: { ...where, component: 1 },
      });
    }
    dicomText(patientId, 'LO', `${named}.1 (${what})`, 'PatientID', { ...where, component: 1 });
    const issuer = assigningAuthority(rep);
    dicomText(issuer, 'LO', `${named}.4 (assigning authority)`, 'IssuerOfPatientID', {
      ...where,
      component: 4,
    });
    if (!out.some((o) => o.patientId === patientId && o.issuer === issuer)) out.push({ patientId, issuer });
  }
  return out;
}

/**
 * The issuer of a CX: its assigning authority (CX-4, an HD) by namespace ID (HD-1), else by universal ID (HD-2, an
 * OID as IHE profiles send `&1.2.3&ISO`): two authorities named by universal ID alone are two issuers. Until 7 Dec
 * 2026 only HD-1 was read, so such identifiers had no issuer, and the patients of two authorities sharing an ID
 * were taken for one (a message about one changed the other).
 */
function assigningAuthority(rep: string[][] | undefined): string {
  const hd = rep?.[3];
  return hd?.[0] || hd?.[1] || '';
}

/** Control characters: DICOM LO and PN allow none but ESC (for ISO 2022, which decoded text no longer needs). */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Refuse (102) a text the DICOM attribute it becomes cannot hold as it is (PS3.5 §6.2): a backslash, which
 * DICOM reads as a value delimiter, a control character, or more than 64 characters (LO; PN per component
 * group) or 16 (SH). The HL7 text is unescaped already, so \E\ in the message is a backslash here.
 */
function dicomText(
  text: string,
  vr: 'LO' | 'PN' | 'SH',
  field: string,
  attribute: string,
  location: Hl7Location,
) {
  const refuse = (why: string) =>
    new Hl7Error({
      code: Hl7ErrorCode.DataTypeError,
      message: `${field} ${why}, which DICOM ${attribute} (${vr}) cannot hold; nothing of the message was applied`,
      location,
    });
  if (text.includes('\\')) throw refuse('holds a backslash (the DICOM value delimiter)');
  const control = CONTROL.exec(text);
  if (control)
    throw refuse(`holds the control character U+${control[0].charCodeAt(0).toString(16).padStart(4, '0')}`);
  const max = vr === 'SH' ? 16 : 64;
  if ([...text].length > max)
    throw refuse(`is ${[...text].length} characters${vr === 'PN' ? ' as a name' : ''}, more than the ${max}`);
}

/** A person name field of the message, and the DICOM PN attribute it becomes. */
interface NameField {
  /** 'PID-5', 'PV1-8', … */
  field: string;
  what: string;
  attribute: string;
  location: Hl7Location;
}

/**
 * A name (XPN from `offset` 0, XCN from 1, after its id) as DICOM PN: no component may hold a PN delimiter (^ or
 * =) or text dicomText refuses, and the whole name is at most 64 characters. Components are named by their
 * number in the HL7 field (PID-5.1 is the family name, PV1-8.2 too).
 */
function checkPersonName(rep: string[][], offset: number, name: string, f: NameField): void {
  for (let n = offset + 1; n <= offset + 5; n++) {
    const part = rep[n - 1]?.[0] ?? '';
    const where = { ...f.location, component: n };
    const delimiter = /[\^=]/.exec(part);
    if (delimiter)
      throw new Hl7Error({
        code: Hl7ErrorCode.DataTypeError,
        message: `${f.field}.${n} (${f.what}) holds '${delimiter[0]}', a DICOM PN delimiter, which DICOM ${f.attribute} (PN) cannot hold in a name part; nothing of the message was applied`,
        location: where,
      });
    dicomText(part, 'PN', `${f.field}.${n} (${f.what})`, f.attribute, where);
  }
  dicomText(name, 'PN', `${f.field} (${f.what})`, f.attribute, f.location);
}

function readDemographics(pid: Hl7Segment, seq: number): Demographics {
  // PID-2 (external id) was where older senders put the patient id; v2.5.1 keeps it in PID-3.
  const identity = readIdentifier(pid, 3, 'PID', seq, 'patient identifier list');
  const out: Demographics = { ...identity };
  const rawName = value(pid, 5);
  if (rawName === HL7_NULL) out.name = '';
  else if (rawName !== '' || repetitions(pid, 5).length > 0) {
    const rep = repetitions(pid, 5)[0] ?? [];
    out.name = personName(rep, 0);
    checkPersonName(rep, 0, out.name, {
      field: 'PID-5',
      what: 'patient name',
      attribute: 'PatientName',
      location: { segment: 'PID', sequence: seq, field: 5 },
    });
  }
  const rawDate = value(pid, 7);
  if (rawDate === HL7_NULL) out.birthDate = '';
  else if (rawDate !== '') out.birthDate = readDate(rawDate, { segment: 'PID', sequence: seq, field: 7 });
  const rawSex = value(pid, 8);
  if (rawSex === HL7_NULL) out.sex = '';
  else if (rawSex !== '') out.sex = readSex(rawSex, seq);
  return out;
}

/**
 * XPN/XCN → DICOM PN. HL7 orders family, given, second, suffix, prefix; DICOM orders family, given, middle,
 * prefix, suffix (PS3.5 §6.2.1.1). `offset` skips XCN-1 (the id).
 */
function personName(rep: string[][] | undefined, offset: number): string {
  if (!rep) return '';
  const c = (n: number) => rep[offset + n - 1]?.[0] ?? '';
  // XPN-1 is FN (family name) whose first subcomponent is the surname.
  const family = rep[offset]?.[0] ?? '';
  const parts = [family, c(2), c(3), c(5), c(4)];
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.join('^');
}

function readDate(raw: string, location: { segment: string; sequence: number; field: number }): string {
  const wrong = dtmProblem(raw);
  if (wrong)
    throw new Hl7Error({
      code: Hl7ErrorCode.DataTypeError,
      message: `${location.segment}-${location.field} '${raw}' is not an HL7 date/time (DTM, YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]): ${wrong}`,
      location,
    });
  // DICOM DA holds a full date only; a partial HL7 date (year or year and month) cannot be represented.
  return raw.length >= 8 ? raw.slice(0, 8) : '';
}

const DTM =
  /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.\d{1,4})?)?)?)?)?)?(?:[+-](\d{2})(\d{2}))?$/;

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Why `raw` is not a DTM (v2.5.1 §2.A.22), or undefined when it is one: its form, then each part's range. */
function dtmProblem(raw: string): string | undefined {
  const m = DTM.exec(raw);
  if (!m) return 'it does not have that form';
  const [, year, month, day, hour, minute, second, zoneHours, zoneMinutes] = m;
  const n = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const mo = n(month);
  if (mo !== undefined && (mo < 1 || mo > 12)) return `there is no month ${month}`;
  const d = n(day);
  if (d !== undefined && (d < 1 || d > daysIn(Number(year), mo!)))
    return `${year}-${month} has no day ${day}`;
  if ((n(hour) ?? 0) > 23) return `there is no hour ${hour}`;
  if ((n(minute) ?? 0) > 59) return `there is no minute ${minute}`;
  if ((n(second) ?? 0) > 59) return `there is no second ${second}`;
  if ((n(zoneHours) ?? 0) > 14 || (n(zoneMinutes) ?? 0) > 59)
    return `${raw.slice(-5)} is not a time zone offset`;
  return undefined;
}

/** HL7 table 0001 (administrative sex) → DICOM PatientSex (M, F, O). */
function readSex(raw: string, seq: number): string {
  switch (raw) {
    case 'U':
      return '';
    case 'M':
    case 'F':
    case 'O':
      return raw;
    case 'A':
    case 'N':
      return 'O';
    default:
      throw new Hl7Error({
        code: Hl7ErrorCode.TableValueNotFound,
        message: `PID-8 (administrative sex) '${raw}' is not in HL7 table 0001 (F, M, O, U, A, N)`,
        location: { segment: 'PID', sequence: seq, field: 8 },
      });
  }
}

/** What a DICOM value of a coded VR may be (PS3.5 §6.2): its longest length and its characters. */
const CODED: Record<'UI' | 'CS', { max: number; holds: (text: string) => boolean; says: string }> = {
  UI: {
    max: 64,
    holds: (t) => /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(t),
    says: 'digits in dot-separated components',
  },
  CS: {
    max: 16,
    holds: (t) => /^[A-Z0-9 _]*$/.test(t),
    says: 'upper-case letters, digits, space and underscore',
  },
};

/**
 * An order field that becomes a DICOM attribute of a coded VR (an accession number SH, a Study Instance UID UI, a
 * modality CS): refused (102) when that attribute cannot hold it, an SH by dicomText's rules for text, a UI or CS by
 * its length and characters. Until 6 Dec 2026 such a value was stored, and an accession number of more than 16
 * characters then matched no image's.
 */
function orderCode(
  seg: Hl7Segment,
  sequence: number,
  field: number,
  vr: 'SH' | 'UI' | 'CS',
  attribute: string,
): string | null {
  const text = orderText(seg, field);
  if (!text) return text;
  const location = { segment: seg.id, sequence, field };
  if (vr === 'SH') {
    dicomText(text, vr, `${seg.id}-${field}`, attribute, location);
    return text;
  }
  const { max, holds, says } = CODED[vr];
  const why =
    [...text].length > max
      ? `is ${[...text].length} characters, more than the ${max}`
      : holds(text)
        ? undefined
        : `holds '${text.slice(0, 64)}', where only ${says} may stand`;
  if (why)
    throw new Hl7Error({
      code: Hl7ErrorCode.DataTypeError,
      message: `${seg.id}-${field} ${why}, which DICOM ${attribute} (${vr}) cannot hold; nothing of the message was applied`,
      location,
    });
  return text;
}

/**
 * An XCN (ORC-12, OBR-16, PV1-8) as the physician it names. Its name becomes a DICOM PN (ReferringPhysicianName,
 * RequestingPhysician) and is matched for the care relationships, so it is checked as PID-5 is. Its ID (XCN-1) is
 * the key of the care relationships, matched with a user's physician ID and with the code of a study's Person
 * Identification Code Sequence, which are kept joined by backslashes: it is checked as PID-3's ID is (LO: no
 * backslash, no control character, at most 64 characters). Until 6 Dec 2026 it went unchecked into the relationships.
 */
function physician(
  seg: Hl7Segment | undefined,
  sequence: number,
  field: number,
  what: string,
  attribute: string,
): Physician[] | null | undefined {
  const reps = repetitions(seg, field);
  if (reps.length === 0 || !seg) return undefined;
  const first = reps[0]!;
  if (reps.length === 1 && first.length === 1 && first[0]!.length === 1 && first[0]![0] === HL7_NULL)
    return null;
  // Every repetition names a physician of the order (XCN is repeatable in ORC-12, OBR-16 and PV1-8): until 7 Dec
  // 2026 only the first was read, and the others got no care relationship. A later one is named by its number.
  const out: Physician[] = [];
  reps.forEach((rep, n) => {
    const named = `${seg.id}-${field}${n > 0 ? `[${n + 1}]` : ''}`;
    const where = { segment: seg.id, sequence, field, ...(reps.length > 1 ? { repetition: n + 1 } : {}) };
    const id = rep[0]?.[0] ?? '';
    dicomText(id, 'LO', `${named}.1 (${what} ID)`, 'PersonIdentificationCodeSequence', {
      ...where,
      component: 1,
    });
    const name = personName(rep, 1);
    checkPersonName(rep, 1, name, { field: named, what, attribute, location: where });
    if ((id !== '' || name !== '') && !out.some((p) => p.id === id && p.name === name))
      out.push({ id, name });
  });
  return out.length === 0 ? undefined : out;
}

const ORDER_STATUS: Record<string, string> = {
  A: 'in-progress',
  CA: 'cancelled',
  CM: 'completed',
  DC: 'discontinued',
  ER: 'error',
  HD: 'on-hold',
  IP: 'in-progress',
  RP: 'replaced',
  SC: 'scheduled',
};
// ORC-1 (table 0119) that cancel or discontinue the order: the placer's requests (CA, DC) and the filler's word
// that it did (OC, OD unsolicited; CR, DR as requested). Until 7 Dec 2026 DR was missing, and an order discontinued
// as requested kept its status and its physicians' access.
const CANCELLING_CONTROLS = new Set(['CA', 'OC', 'CR', 'DC', 'OD', 'DR']);
/**
 * The order statuses (ORC-5, table 0038) under which an order gives its physicians no care relationship: cancelled
 * and discontinued, the order stopped before it was done. A completed order (CM) keeps them, its physicians need
 * its results; so do one on hold (HD), in progress (A, IP) or replaced (RP, its replacement is another order).
 */
export const ORDER_STATUSES_ENDED: ReadonlySet<string> = new Set(['cancelled', 'discontinued']);

/**
 * The status an ORC gives its order: `cancelled` for a cancelling ORC-1, else ORC-5 (table 0038), else for a new
 * order (ORC-1 NW) `scheduled`, else '' (the status known is kept, as for any field left empty; a new row is
 * `scheduled`). Until 7 Dec 2026 an empty ORC-5 made the order `scheduled` whatever the control, so a change order
 * (ORC-1 XO) that left it empty reinstated a cancelled order, and its physicians' access with it, and an ORC-5
 * outside table 0038 did the same: it is now AE 103, as PID-8's is.
 */
function orderStatus(control: string, orc5: string, seq: number): string {
  if (CANCELLING_CONTROLS.has(control)) return 'cancelled';
  if (orc5 === '') return control === 'NW' ? 'scheduled' : '';
  const status = ORDER_STATUS[orc5];
  if (status === undefined)
    throw new Hl7Error({
      code: Hl7ErrorCode.TableValueNotFound,
      message: `ORC-5 (order status) '${orc5}' is not in HL7 table 0038 (${Object.keys(ORDER_STATUS).join(', ')})`,
      location: { segment: 'ORC', sequence: seq, field: 5 },
    });
  return status;
}

/**
 * The orders of an ORM^O01 (ORM_O01: PID, PV1, then ORC with its OBR) or OMI^O23 (OMI_O23: PID, PV1, then ORC,
 * TQ1, OBR, IPC). Each ORC starts an order; the OBR and IPC after it complete it. Accession number: IPC-1 when
 * present (OMI, IHE RAD TF-2 §4.4), else OBR-18 (placer field 1), where IHE Scheduled Workflow puts it in ORM.
 */
function readOrders(msg: Hl7Message): OrderCommand[] {
  const patient = readDemographics(singlePid(msg), 1);
  const pv1 = msg.segment('PV1');
  const referring = physician(pv1, 1, 8, 'referring doctor', 'ReferringPhysicianName');
  const hospitalService = orderText(pv1, 10);
  const out: OrderCommand[] = [];
  let orc: Hl7Segment | undefined;
  let orcSeq = 0;
  let obrSeq = 0;
  let ipcSeq = 0;
  let current: OrderCommand | undefined;
  /** The OBR of the current ORC, when it came: ORM_O01 and OMI_O23 give each ORC one OBR (v2.5.1 §4.4.1, §4.4.7). */
  let currentObr = 0;
  for (const s of msg.segments) {
    if (s.id === 'ORC') {
      orc = s;
      orcSeq++;
      currentObr = 0;
      const control = value(s, 1);
      if (control === '') throw missing('ORC', orcSeq, 1, 'order control');
      current = {
        patient,
        orderControl: control,
        placerOrderNumber: orderNumber(s, 2),
        fillerOrderNumber: orderNumber(s, 3),
        accessionNumber: '',
        status: orderStatus(control, value(s, 5), orcSeq),
        procedureCode: '',
        procedureText: '',
        department: hospitalService,
        orderingPhysician: physician(s, orcSeq, 12, 'ordering provider', 'RequestingPhysician'),
        referringPhysician: referring,
        studyInstanceUid: '',
        modality: '',
      };
      out.push(current);
    } else if (s.id === 'OBR') {
      obrSeq++;
      if (!current || !orc)
        throw new Hl7Error({
          code: Hl7ErrorCode.SegmentSequenceError,
          message: 'an OBR segment must follow its ORC',
          location: { segment: 'OBR', sequence: obrSeq },
        });
      // A second OBR would replace the first's procedure while the accession number of the first stayed: until 7 Dec
      // 2026 the order was stored with the one's accession number and the other's procedure.
      if (currentObr)
        throw new Hl7Error({
          code: Hl7ErrorCode.SegmentSequenceError,
          message: `OBR ${obrSeq} follows OBR ${currentObr} in the order of ORC ${orcSeq}: ${msg.messageCode}^${msg.triggerEvent} holds one OBR per ORC, so each requested procedure is sent as an order of its own (ORC, OBR); nothing of the message was applied`,
          location: { segment: 'OBR', sequence: obrSeq },
        });
      currentObr = obrSeq;
      current.placerOrderNumber ||= orderNumber(s, 2);
      current.fillerOrderNumber ||= orderNumber(s, 3);
      current.procedureCode = value(s, 4, 1);
      current.procedureText = value(s, 4, 2);
      current.orderingPhysician ||=
        physician(s, obrSeq, 16, 'ordering provider', 'RequestingPhysician') ?? current.orderingPhysician;
      current.accessionNumber = firstSaid(
        current.accessionNumber,
        orderCode(s, obrSeq, 18, 'SH', 'AccessionNumber'),
      );
      current.department = firstSaid(current.department, orderText(s, 24));
      if (current.procedureCode === '' && current.procedureText === '')
        throw missing('OBR', obrSeq, 4, 'universal service identifier');
    } else if (s.id === 'IPC' && current) {
      ipcSeq++;
      // IPC-1 is the accession number of an imaging order; it takes precedence over OBR-18.
      if (value(s, 1) !== '') current.accessionNumber = orderCode(s, ipcSeq, 1, 'SH', 'AccessionNumber');
      current.studyInstanceUid = firstSaid(
        current.studyInstanceUid,
        orderCode(s, ipcSeq, 3, 'UI', 'StudyInstanceUID'),
      );
      current.modality = firstSaid(current.modality, orderCode(s, ipcSeq, 5, 'CS', 'Modality'));
    }
  }
  if (out.length === 0) throw segmentMissing('ORC', msg);
  out.forEach((o, i) => {
    if (o.placerOrderNumber === '' && o.fillerOrderNumber === '')
      throw missing('ORC', i + 1, 2, 'placer order number (or ORC-3 filler order number)');
  });
  return out;
}
