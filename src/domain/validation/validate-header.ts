import type { Dataset, Element } from '../../dicom/dataset.js';
import { lookupTag, tagForKeyword } from '../../dicom/dictionary.js';
import { Tags, tagToHex } from '../../dicom/tags.js';
import {
  evaluate,
  describeCondition,
  parseConditionText,
  shortPixelData,
  type Condition,
} from './conditions.js';
import { IOD_MODULES_DATA, MODULE_CONDITIONS } from './iod-modules-data.js';
import {
  MODULE_BY_ID,
  type ConditionalAttribute,
  type ModuleRequirement,
  type SequenceRequirement,
} from './module-requirements.js';
import { checkValue, checkVm } from './vr-rules.js';

export type DefectKind =
  | 'type1-missing'
  | 'type1-empty'
  | 'type2-missing'
  | 'type1c-missing'
  | 'type1c-empty'
  | 'type2c-missing'
  | 'invalid-value'
  | 'invalid-vm'
  | 'unknown-sop-class'
  | 'study-patient-conflict'
  | 'patient-index-mismatch'
  | 'unknown-accession'
  | 'pixel-data-short';

/** One thing wrong with a header. `attribute` is '(gggg,eeee) Keyword', with a path for nested elements. */
export interface Defect {
  kind: DefectKind;
  /** 'GGGGEEEE' of the attribute (dotted path inside sequences); absent for object-level defects. */
  tag?: string;
  attribute?: string;
  /** The module whose table requires the attribute (requirement defects only). */
  module?: string;
  message: string;
}

interface IodEntry {
  iod: string;
  modules: { id: string; usage: 'M' | 'C' | 'U' }[];
}

let iods: Map<string, IodEntry> | undefined;
function iodFor(sopClassUid: string): IodEntry | undefined {
  if (!iods) {
    iods = new Map();
    for (const line of IOD_MODULES_DATA.split('\n')) {
      const [uid, iod, mods] = line.split('|') as [string, string, string];
      iods.set(uid, {
        iod,
        modules: mods.split(',').map((m) => {
          const [id, usage] = m.split(':') as [string, 'M' | 'C' | 'U'];
          return { id, usage };
        }),
      });
    }
  }
  return iods.get(sopClassUid);
}

/** Modules every composite IOD has, checked when the SOP class is unknown. */
const COMPOSITE_BASELINE = ['patient', 'general-study', 'sop-common'];

/** '(0010,0020) PatientID' */
export function attributeLabel(tag: number): string {
  const hex = tagToHex(tag);
  const kw = lookupTag(tag)?.keyword;
  return `(${hex.slice(0, 4)},${hex.slice(4)})${kw ? ` ${kw}` : ''}`;
}

function isEmpty(e: Element): boolean {
  switch (e.kind) {
    case 'text':
      return e.values.every((v) => v === '');
    case 'numbers':
    case 'bigints':
    case 'tags':
      return e.values.length === 0;
    case 'bytes':
      return e.data.length === 0;
    case 'bulk':
      return e.length === 0;
    case 'sequence':
      return e.items.length === 0;
    case 'encapsulated':
      return e.fragments.length === 0;
  }
}

const moduleConditions = new Map<string, Condition | null>();
/** The Annex A condition of a conditional module of an IOD, parsed once; null when it is not mechanical. */
export function moduleCondition(iod: string, moduleId: string): Condition | null {
  const key = `${iod}|${moduleId}`;
  if (!moduleConditions.has(key)) {
    const text = MODULE_CONDITIONS[iod]?.[moduleId];
    moduleConditions.set(key, (text && parseConditionText(text)) || null);
  }
  return moduleConditions.get(key)!;
}

/** The modules of the object's IOD that apply to this dataset (PS3.3 Annex A via ciod_to_modules.json). */
export function applicableModules(ds: Dataset, sopClassUid: string): ModuleRequirement[] {
  const entry = iodFor(sopClassUid);
  const ids = entry
    ? entry.modules
        .filter((m) => {
          const req = MODULE_BY_ID.get(m.id);
          if (!req) return false;
          if (m.usage === 'M') return true;
          // A conditional module whose Annex A condition is mechanical and holds is required.
          if (m.usage === 'C') {
            const when = moduleCondition(entry.iod, m.id);
            if (when && evaluate(ds, when)) return true;
          }
          if (req.appliesWhen && evaluate(ds, req.appliesWhen)) return true;
          // Otherwise conditional and user modules are checked when the object carries them (a key attribute).
          return (req.keys ?? []).some((k) => {
            const t = tagForKeyword(k);
            return t !== undefined && ds.has(t);
          });
        })
        .map((m) => m.id)
    : COMPOSITE_BASELINE;
  return ids.map((id) => MODULE_BY_ID.get(id)!).filter(Boolean);
}

interface Level extends Place {
  /** Dataset the attributes are looked up in: the object, or one sequence item. */
  ds: Dataset;
  /** Where the requirement comes from: the module table, then the item's macro. */
  source: string;
}

function missingOrEmpty(ds: Dataset, tag: number, type: 1 | 2): 'missing' | 'empty' | undefined {
  const el = ds.get(tag);
  if (!el) return 'missing';
  return type === 1 && isEmpty(el) ? 'empty' : undefined;
}

/** One required attribute with its tag resolved (unknown keywords are dropped when a list is compiled). */
interface Required {
  keyword: string;
  tag: number;
  type: 1 | 2;
  condition?: ConditionalAttribute;
}

/**
 * The required attributes of a module or sequence item, tags resolved once per requirement object: validation
 * runs on every ingested object, so nothing here is rebuilt per object.
 */
const compiled = new WeakMap<object, Required[]>();
function requiredOf(req: {
  type1: readonly string[];
  type2?: readonly string[];
  conditional?: readonly ConditionalAttribute[];
}): Required[] {
  let list = compiled.get(req);
  if (!list) {
    list = [];
    const add = (keyword: string, type: 1 | 2, condition?: ConditionalAttribute) => {
      const tag = tagForKeyword(keyword);
      if (tag !== undefined) list!.push({ keyword, tag, type, ...(condition ? { condition } : {}) });
    };
    for (const k of req.type1) add(k, 1);
    for (const k of req.type2 ?? []) add(k, 2);
    for (const c of req.conditional ?? []) add(c.keyword, c.type, c);
    compiled.set(req, list);
  }
  return list;
}

function checkAttributes(
  at: Level,
  out: Defect[],
  seen: Set<string>,
  required: Required[],
  moduleName: string,
): void {
  for (const r of required) {
    if (r.condition && !evaluate(at.ds, r.condition.when)) continue;
    const problem = missingOrEmpty(at.ds, r.tag, r.type);
    if (!problem) continue;
    const c = r.condition ? 'C' : '';
    const kind = `type${r.type}${c.toLowerCase()}-${problem}` as DefectKind;
    const { tag: hex, attribute: label } = placeOf(at, r.tag, r.keyword);
    const key = `${kind}:${hex}:${at.named}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const why = r.condition ? `; ${r.condition.text} (${describeCondition(r.condition.when)})` : '';
    out.push({
      kind,
      tag: hex,
      attribute: label,
      module: moduleName,
      message: `${label} Type ${r.type}${c} ${problem} (${at.source}${why})`,
    });
  }
}

function checkSequence(
  at: Level,
  seq: SequenceRequirement,
  out: Defect[],
  seen: Set<string>,
  moduleName: string,
) {
  const tag = tagForKeyword(seq.keyword);
  const el = tag === undefined ? undefined : at.ds.get(tag);
  if (tag === undefined || el?.kind !== 'sequence') return;
  el.items.forEach((item, i) => {
    const inner: Level = {
      ds: item,
      named: `${at.named}${seq.keyword}[${i}].`,
      hexPath: at.hexPath ? `${at.hexPath}.${tagToHex(tag)}` : tagToHex(tag),
      source: `${at.source}; ${seq.macro}`,
    };
    checkAttributes(inner, out, seen, requiredOf(seq), moduleName);
    for (const nested of seq.sequences ?? []) checkSequence(inner, nested, out, seen, moduleName);
  });
}

function requirementDefects(ds: Dataset, modules: ModuleRequirement[]): Defect[] {
  const out: Defect[] = [];
  const seen = new Set<string>();
  for (const mod of modules) {
    const top: Level = { ds, named: '', hexPath: '', source: mod.source };
    checkAttributes(top, out, seen, requiredOf(mod), mod.source);
    for (const seq of mod.sequences ?? []) checkSequence(top, seq, out, seen, mod.source);
  }
  return out;
}

/**
 * Where an element sits, for a defect's `tag` and `attribute` (placeOf): the strings are built only when an
 * element has a defect, since almost none do and validation runs on every ingested object.
 */
interface Place {
  /** Dotted hex tags of the enclosing sequences. */
  hexPath: string;
  /** 'ReferencedImageSequence[0].' inside an item; '' at the top level. */
  named: string;
}

function placeOf(at: Place, tag: number, keyword: string | undefined): { tag: string; attribute: string } {
  const hex = tagToHex(tag);
  // Inside items the attribute is named by its path: 'ReferencedImageSequence[0].ReferencedSOPInstanceUID (0008,1155)'.
  const label = at.named
    ? `${at.named}${keyword ?? hex} ${attributeLabel(tag).split(' ')[0]}`
    : attributeLabel(tag);
  return { tag: at.hexPath ? `${at.hexPath}.${hex}` : hex, attribute: label };
}

function valueDefects(ds: Dataset, at: Place, out: Defect[]): void {
  for (const [tag, el] of ds) {
    const group = tag >>> 16;
    if (group === 0x0002 || group % 2 === 1 || (tag & 0xffff) === 0) continue;
    const dict = lookupTag(tag);
    if (el.kind === 'sequence') {
      const hex = tagToHex(tag);
      const kw = dict?.keyword ?? hex;
      const hexPath = at.hexPath ? `${at.hexPath}.${hex}` : hex;
      el.items.forEach((item, i) => valueDefects(item, { hexPath, named: `${at.named}${kw}[${i}].` }, out));
      continue;
    }
    let count: number | undefined;
    if (el.kind === 'text') {
      const values = el.values;
      count = values.length === 1 && values[0] === '' ? 0 : values.length;
      for (const v of values) {
        if (v === '') continue;
        const why = checkValue(el.vr, v);
        if (why) {
          const place = placeOf(at, tag, dict?.keyword);
          out.push({
            kind: 'invalid-value',
            ...place,
            message: `${place.attribute} invalid ${el.vr}: ${why}`,
          });
          break;
        }
      }
    } else if (el.kind === 'numbers' || el.kind === 'bigints' || el.kind === 'tags') {
      count = el.values.length;
    }
    if (count !== undefined && count > 0 && dict && !dict.retired && !checkVm(count, dict.vm)) {
      const place = placeOf(at, tag, dict.keyword);
      out.push({
        kind: 'invalid-vm',
        ...place,
        message: `${place.attribute} has ${count} values; PS3.6 allows VM ${dict.vm}`,
      });
    }
  }
}

export interface HeaderValidation {
  /** The IOD the SOP class uses (PS3.3 Annex A), when Custos knows the SOP class. */
  iod?: string;
  modules: string[];
  defects: Defect[];
}

/** Every defect of a parsed header: required attributes per module of its IOD, then value syntax and VM. */
export function validateHeader(ds: Dataset): HeaderValidation {
  const sopClass = ds.get(Tags.SOPClassUID);
  const sopClassUid = sopClass?.kind === 'text' ? (sopClass.values[0] ?? '') : '';
  const entry = iodFor(sopClassUid);
  const modules = applicableModules(ds, sopClassUid);
  const defects: Defect[] = [];
  if (!entry && sopClassUid) {
    defects.push({
      kind: 'unknown-sop-class',
      tag: tagToHex(Tags.SOPClassUID),
      attribute: attributeLabel(Tags.SOPClassUID),
      message: `SOP class ${sopClassUid} is not a storage SOP class Custos knows; only the modules common to all composite IODs were checked`,
    });
  }
  defects.push(...requirementDefects(ds, modules));
  valueDefects(ds, { hexPath: '', named: '' }, defects);
  const short = shortPixelData(ds);
  if (short) {
    // A viewer would show the missing frames or rows as noise, or fail; WADO-RS answers 404 for such a frame.
    const whole = Math.floor(short.holds / short.frameBytes);
    defects.push({
      kind: 'pixel-data-short',
      tag: tagToHex(Tags.PixelData),
      attribute: attributeLabel(Tags.PixelData),
      message: `${attributeLabel(Tags.PixelData)} holds ${short.holds} bytes; the Image Pixel module describes ${short.frames} frame(s) of ${short.frameBytes} bytes (${short.needs}), so ${whole < short.frames ? `only ${whole} whole frame(s)` : 'not every frame'} (PS3.5 section 8.1.1)`,
    });
  }
  return { ...(entry ? { iod: entry.iod } : {}), modules: modules.map((m) => m.id), defects };
}
