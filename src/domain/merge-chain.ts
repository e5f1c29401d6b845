/**
 * The ADT events that merge one patient into another (patient_merges.event), which the walk along merges follows:
 * A40 (merge patient identifier list), A34 (patient ID only), and, read as those are, A39 (merge person) and A36
 * (patient ID and account number) when they name the prior patient in MRG-1 (docs/hl7.md). An identifier change
 * (A47, A46) is recorded there too, and is no merge to follow.
 */
export const MERGE_EVENTS: readonly string[] = ['A40', 'A34', 'A39', 'A36'];

/** One recorded merge (A40/A34) of a patient: into which patient, and the merge's order (its patient_merges pk). */
export interface MergeStep {
  survivor: number;
  order: number;
}

export interface MergeChain {
  /** The patient the chain ends at: where objects for the starting patient belong. */
  survivor: number;
  /** Every patient visited, the start first. */
  path: number[];
  /** Whether the merges loop (A into B, then B into A): made before cyclic merges were refused, or by a race. */
  loop: boolean;
  /** The patients that form the loop, in the walk's order (empty without one), for the alert that reports it. */
  cycle: number[];
  /** The orders (patient_merges pks) of the merges that form the loop (empty without one): which loop it is. */
  cycleMerges: number[];
}

/**
 * Follow the merges from `start` (each patient's latest merge, as `mergedInto` reads it) to the surviving patient.
 * The walk visits each patient once, so it ends on any data. A loop has no end, so its survivor is the one the
 * newest merge in the loop named: the sender's latest word, and the same patient whichever of the loop's patients
 * the walk started from (following a fixed number of hops would stop wherever that count fell).
 */
export async function followMerges(
  start: number,
  mergedInto: (pk: number) => Promise<MergeStep | undefined>,
): Promise<MergeChain> {
  const path = [start];
  const steps: MergeStep[] = [];
  for (;;) {
    const pk = path[path.length - 1]!;
    const step = await mergedInto(pk);
    if (!step || step.survivor === pk) return { survivor: pk, path, loop: false, cycle: [], cycleMerges: [] };
    const seenAt = path.indexOf(step.survivor);
    if (seenAt >= 0) {
      const loop = [...steps.slice(seenAt), step];
      const newest = loop.reduce((a, b) => (b.order > a.order ? b : a));
      return {
        survivor: newest.survivor,
        path,
        loop: true,
        cycle: path.slice(seenAt),
        cycleMerges: loop.map((s) => s.order),
      };
    }
    steps.push(step);
    path.push(step.survivor);
  }
}
