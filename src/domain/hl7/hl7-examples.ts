/**
 * Messages shaped like the HL7 v2.5.1 specification's examples (Chapter 2 §2.A, Chapter 3 §3.5 ADT A01/A04/
 * A08/A40/A47, Chapter 4 ORM^O01, and OMI^O23 as IHE Radiology RAD-4 sends it), with identifiers that tests can
 * vary. Used by the parser's unit tests and by the MLLP integration tests.
 */
export interface ExamplePatient {
  id: string;
  authority?: string;
  family: string;
  given: string;
  middle?: string;
  birth?: string;
  sex?: string;
}

const cr = (segments: string[]) => segments.map((s) => `${s}\r`).join('');
const pid = (p: ExamplePatient) =>
  `PID|1||${p.id}^^^${p.authority ?? 'GOOD HEALTH HOSPITAL'}^MR~123456789^^^USSSA^SS||${p.family}^${p.given}^${p.middle ?? ''}^III||${p.birth ?? '19610615'}|${p.sex ?? 'M'}||C|2222 HOME STREET^^GREENSBORO^NC^27401-1020|GL|(555) 555-2004|(555)555-2004||S||PATID12345001^2^M10^ADT1^AN^A|444333333|987654^NC`;

/** ADT^A01 / A04 / A08 (Chapter 3 §3.5.1 and the Chapter 2 example message). */
export function adtMessage(
  event: 'A01' | 'A04' | 'A08',
  controlId: string,
  p: ExamplePatient,
  sender = 'ADT1^GOOD HEALTH HOSPITAL',
): string {
  const [app, fac] = sender.split('^');
  return cr([
    `MSH|^~\\&|${app}|${fac}|CUSTOS|RADIOLOGY|20080818112600||ADT^${event}^ADT_A01|${controlId}|P|2.5.1`,
    `EVN|${event}|200808181123`,
    pid(p),
    'NK1|1|NUCLEAR^NELDA^W|SPO^SPOUSE||||NK^NEXT OF KIN',
    'PV1|1|I|2000^2012^01||||004777^ATTEND^AARON^A|||SUR||||ADM|A0',
  ]);
}

/** ADT^A40 merge (Chapter 3 §3.6.2.1.2): PID is the surviving patient, MRG-1 the identifier merged into it. */
export function mergeMessage(
  controlId: string,
  surviving: ExamplePatient,
  mergedId: string,
  sender = 'REGADT^MCM',
): string {
  const [app, fac] = sender.split('^');
  return cr([
    `MSH|^~\\&|${app}|${fac}|CUSTOS|RADIOLOGY|20030105153000||ADT^A40^ADT_A39|${controlId}|P|2.5.1`,
    'EVN|A40|200301051530',
    `PID|||${surviving.id}^^^${surviving.authority ?? 'XYZ'}^MR||${surviving.family}^${surviving.given}||${surviving.birth ?? ''}|${surviving.sex ?? ''}`,
    `MRG|${mergedId}^^^${surviving.authority ?? 'XYZ'}^MR`,
  ]);
}

/** ADT^A47 change patient identifier list (Chapter 3 §3.6.2.1.8): MRG-1 is renamed to PID-3. */
export function changeIdMessage(
  controlId: string,
  to: ExamplePatient,
  fromId: string,
  sender = 'REGADT^MCM',
): string {
  const [app, fac] = sender.split('^');
  return cr([
    `MSH|^~\\&|${app}|${fac}|CUSTOS|RADIOLOGY|19990105153000||ADT^A47^ADT_A30|${controlId}|P|2.5.1`,
    'EVN|A47|199901051530',
    `PID|||${to.id}^^^${to.authority ?? 'XYZ'}^MR||${to.family}^${to.given}`,
    `MRG|${fromId}^^^${to.authority ?? 'XYZ'}^MR`,
  ]);
}

export interface ExampleOrder {
  placer: string;
  filler: string;
  accession: string;
  procedure: [string, string];
  ordering: [string, string, string];
  referring: [string, string, string];
  service?: string;
}

/** ORM^O01 new order (Chapter 4 §4.5 example shape; accession in OBR-18 as IHE SWF uses it). */
export function ormMessage(
  controlId: string,
  p: ExamplePatient,
  o: ExampleOrder,
  sender = 'RIS^HOSP',
): string {
  const [app, fac] = sender.split('^');
  const obr = Array.from({ length: 25 }, () => '');
  obr[1] = '1';
  obr[2] = `${o.placer}^OE`;
  obr[3] = `${o.filler}^RIS`;
  obr[4] = `${o.procedure[0]}^${o.procedure[1]}^C4`;
  obr[16] = o.ordering.join('^');
  obr[18] = o.accession;
  obr[24] = 'RAD';
  return cr([
    `MSH|^~\\&|${app}|${fac}|CUSTOS|RADIOLOGY|19911231150100||ORM^O01^ORM_O01|${controlId}|P|2.5.1`,
    `PID|||${p.id}^^^${p.authority ?? 'MCM'}^MR||${p.family}^${p.given}^${p.middle ?? ''}||${p.birth ?? '19620320'}|${p.sex ?? 'F'}`,
    `PV1||O|RAD^^^HOSP||||${o.ordering.join('^')}|${o.referring.join('^')}||${o.service ?? 'RAD'}`,
    `ORC|NW|${o.placer}^OE|${o.filler}^RIS||SC||||199112311501|||${o.ordering.join('^')}`,
    `OBR${obr
      .slice(1)
      .map((f) => `|${f}`)
      .join('')}`,
  ]);
}

/** OMI^O23 imaging order (v2.5.1 §4.4.7 / IHE RAD-4): ORC, TQ1, OBR, IPC with accession and Study Instance UID. */
export function omiMessage(
  controlId: string,
  p: ExamplePatient,
  o: ExampleOrder & { studyUid: string; modality: string },
  sender = 'RIS^HOSP',
): string {
  const [app, fac] = sender.split('^');
  return cr([
    `MSH|^~\\&|${app}|${fac}|CUSTOS|RADIOLOGY|20061010120000||OMI^O23^OMI_O23|${controlId}|P|2.5.1`,
    `PID|1||${p.id}^^^${p.authority ?? 'HOSP'}^MR||${p.family}^${p.given}||${p.birth ?? '19600101'}|${p.sex ?? 'M'}`,
    `PV1|1|O|RAD^^^HOSP||||1234^ATTEND^ALAN|${o.referring.join('^')}||${o.service ?? 'RAD'}`,
    `ORC|NW|${o.placer}^RIS|${o.filler}^RIS||SC||||20061010120000|||${o.ordering.join('^')}`,
    'TQ1|||||||20061010130000',
    `OBR|1|${o.placer}^RIS|${o.filler}^RIS|${o.procedure[0]}^${o.procedure[1]}^L`,
    `IPC|${o.accession}^RIS|RP001|${o.studyUid}|SPS001|${o.modality}`,
  ]);
}
