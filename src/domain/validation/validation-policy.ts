import type { Defect } from './validate-header.js';

/**
 * What happens to an object with defects, by strictness level (docs/validation.md):
 *
 * - strict: every defect rejects the object (the sender must fix and resend), except an AccessionNumber with
 *   no matching order (quarantined) and an unknown SOP class (a warning).
 * - standard (default): missing or empty Type 1 or 1C (condition met), and any defect of a patient identity
 *   attribute, quarantine; Type 2/2C, value defects and anything missing inside a sequence item are warnings.
 * - a header whose patient name, birth date or sex disagree with the patient index: quarantined under strict,
 *   a warning otherwise.
 * - native pixel data shorter than Rows, Columns, Samples per Pixel, Bits Allocated and Number of Frames describe:
 *   rejected under strict, quarantined under standard, a warning under lenient.
 * - lenient: everything is a warning, except a study filed under another patient (always quarantined: an
 *   archive never mixes two patients' images in one study).
 */
export type ValidationLevel = 'strict' | 'standard' | 'lenient';
export const VALIDATION_LEVELS: readonly ValidationLevel[] = ['strict', 'standard', 'lenient'];

export type Disposition = 'reject' | 'quarantine' | 'warn';
export type ValidationOutcome = 'accepted' | 'warning' | 'quarantined' | 'rejected';

/** Attributes that say whose images these are: a defect here may file a study under the wrong patient. */
const IDENTITY_TAGS = new Set(['00100010', '00100020', '00100021']);

export function dispositionOf(level: ValidationLevel, d: Defect): Disposition {
  if (d.kind === 'study-patient-conflict') return level === 'strict' ? 'reject' : 'quarantine';
  if (d.kind === 'unknown-sop-class') return 'warn';
  // The patient index (HL7 ADT) knows this patient with other demographics: served headers follow the index
  // anyway, so a warning, except under strict where a data steward looks first.
  if (d.kind === 'patient-index-mismatch') return level === 'strict' ? 'quarantine' : 'warn';
  if (d.kind === 'unknown-accession') return level === 'lenient' ? 'warn' : 'quarantine';
  // Pixels missing from the object: the data steward sees it before a reader does.
  if (d.kind === 'pixel-data-short')
    return level === 'strict' ? 'reject' : level === 'lenient' ? 'warn' : 'quarantine';
  if (level === 'strict') return 'reject';
  if (level === 'lenient') return 'warn';
  // Inside a sequence item (tag is a dotted path) a missing attribute is a warning: the object's identity and
  // pixels do not depend on it, and the item usually sits in a Type 3 sequence.
  if (d.tag?.includes('.')) return 'warn';
  if (
    d.kind === 'type1-missing' ||
    d.kind === 'type1-empty' ||
    d.kind === 'type1c-missing' ||
    d.kind === 'type1c-empty'
  )
    return 'quarantine';
  return d.tag !== undefined && IDENTITY_TAGS.has(d.tag) ? 'quarantine' : 'warn';
}

export interface ClassifiedDefect extends Defect {
  disposition: Disposition;
}

export interface ValidationDecision {
  outcome: ValidationOutcome;
  defects: ClassifiedDefect[];
}

export function decide(level: ValidationLevel, defects: Defect[]): ValidationDecision {
  const classified = defects.map((d) => ({ ...d, disposition: dispositionOf(level, d) }));
  const has = (x: Disposition) => classified.some((d) => d.disposition === x);
  const outcome: ValidationOutcome = has('reject')
    ? 'rejected'
    : has('quarantine')
      ? 'quarantined'
      : classified.length
        ? 'warning'
        : 'accepted';
  return { outcome, defects: classified };
}

/** Resolve the level for one object: the sending AE's own setting, then the channel's, then the default. */
export function levelFor(
  settings: {
    default: ValidationLevel;
    byAe: Partial<Record<string, ValidationLevel>>;
    byChannel: Partial<Record<string, ValidationLevel>>;
  },
  sender: { aeTitle?: string; channel: string },
): ValidationLevel {
  return (
    (sender.aeTitle !== undefined ? settings.byAe[sender.aeTitle] : undefined) ??
    settings.byChannel[sender.channel] ??
    settings.default
  );
}
