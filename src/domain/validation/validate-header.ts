import type { Dataset, Element } from '../../dicom/dataset.js';
import { lookupTag, tagForKeyword } from '../../dicom/dictionary.js';
import { Tags, tagToHex } from '../../dicom/tags.js';
import { IOD_MODULES_DATA } from './iod-modules-data.js';
import { MODULE_BY_ID, type ModuleRequirement } from './module-requirements.js';
import { checkValue, checkVm } from './vr-rules.js';

export type DefectKind =
  | 'type1-missing'
  | 'type1-empty'
  | 'type2-missing'
  | 'invalid-value'
  | 'invalid-vm'
  | 'unknown-sop-class'
  | 'study-patient-conflict'
  | 'patient-index-mismatch'
  | 'unknown-accession';

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

/** The modules of the object's IOD that apply to this dataset (PS3.3 Annex A via ciod_to_modules.json). */
export function applicableModules(ds: Dataset, sopClassUid: string): ModuleRequirement[] {
  const entry = iodFor(sopClassUid);
  const ids = entry
    ? entry.modules
        .filter((m) => {
          const req = MODULE_BY_ID.get(m.id);
          if (!req) return false;
          if (m.usage === 'M') return true;
          // Conditional and user modules: checked when the object carries them (one of their key attributes).
          return (req.keys ?? []).some((k) => {
            const t = tagForKeyword(k);
            return t !== undefined && ds.has(t);
          });
        })
        .map((m) => m.id)
    : COMPOSITE_BASELINE;
  return ids.map((id) => MODULE_BY_ID.get(id)!).filter(Boolean);
}

function requirementDefects(ds: Dataset, modules: ModuleRequirement[]): Defect[] {
  const out: Defect[] = [];
  const seen = new Set<string>();
  for (const mod of modules) {
    const name = mod.source;
    for (const [type, keywords] of [
      [1, mod.type1],
      [2, mod.type2],
    ] as const) {
      for (const kw of keywords) {
        const tag = tagForKeyword(kw);
        if (tag === undefined) continue;
        const el = ds.get(tag);
        const label = attributeLabel(tag);
        let kind: DefectKind | undefined;
        let message = '';
        if (!el) {
          kind = type === 1 ? 'type1-missing' : 'type2-missing';
          message = `${label} Type ${type} missing`;
        } else if (type === 1 && isEmpty(el)) {
          kind = 'type1-empty';
          message = `${label} Type 1 empty`;
        }
        if (!kind) continue;
        const key = `${kind}:${tag}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({
          kind,
          tag: tagToHex(tag),
          attribute: label,
          module: name,
          message: `${message} (${name})`,
        });
      }
    }
  }
  return out;
}

function valueDefects(ds: Dataset, path: string[], out: Defect[]): void {
  for (const [tag, el] of ds) {
    const group = tag >>> 16;
    if (group === 0x0002 || group % 2 === 1 || (tag & 0xffff) === 0) continue;
    const here = [...path, tagToHex(tag)];
    const label = `${path.length ? `${path.map((p) => `(${p.slice(0, 4)},${p.slice(4)})`).join('>')}>` : ''}${attributeLabel(tag)}`;
    if (el.kind === 'sequence') {
      for (const item of el.items) valueDefects(item, here, out);
      continue;
    }
    let values: string[] | undefined;
    let count: number | undefined;
    if (el.kind === 'text') {
      values = el.values;
      count = el.values.length === 1 && el.values[0] === '' ? 0 : el.values.length;
    } else if (el.kind === 'numbers' || el.kind === 'bigints' || el.kind === 'tags') {
      count = el.values.length;
    }
    if (values) {
      for (const v of values) {
        if (v === '') continue;
        const why = checkValue(el.vr, v);
        if (why) {
          out.push({
            kind: 'invalid-value',
            tag: here.join('.'),
            attribute: label,
            message: `${label} invalid ${el.vr}: ${why}`,
          });
          break;
        }
      }
    }
    const dict = lookupTag(tag);
    if (count !== undefined && count > 0 && dict && !dict.retired && !checkVm(count, dict.vm)) {
      out.push({
        kind: 'invalid-vm',
        tag: here.join('.'),
        attribute: label,
        message: `${label} has ${count} values; PS3.6 allows VM ${dict.vm}`,
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
  valueDefects(ds, [], defects);
  return { ...(entry ? { iod: entry.iod } : {}), modules: modules.map((m) => m.id), defects };
}
