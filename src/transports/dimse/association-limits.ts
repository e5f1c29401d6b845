/**
 * How many associations the DIMSE listeners hold at once, in all and per calling AE title (dicom.maxAssociations,
 * dicom.maxAssociationsPerAe): one more is rejected as transient, local limit exceeded (PS3.8 Table 9-21), so the
 * requestor tries again later, and a single modality stuck in a retry loop cannot take every slot.
 */
export class AssociationLimits {
  private total = 0;
  private readonly byAe = new Map<string, number>();

  constructor(
    readonly maxAssociations: number,
    readonly maxAssociationsPerAe: number,
  ) {}

  /** A slot for an association from `callingAe`, to be given back with `release()` once; or why there is none. */
  take(callingAe: string): { release: () => void } | { refused: string } {
    if (this.total >= this.maxAssociations)
      return { refused: `${this.total} associations are open, the most dicom.maxAssociations allows` };
    const mine = this.byAe.get(callingAe) ?? 0;
    if (mine >= this.maxAssociationsPerAe)
      return {
        refused: `'${callingAe}' has ${mine} associations open, the most dicom.maxAssociationsPerAe allows`,
      };
    this.total++;
    this.byAe.set(callingAe, mine + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.byAe.get(callingAe) ?? 1) - 1;
        if (left > 0) this.byAe.set(callingAe, left);
        else this.byAe.delete(callingAe);
      },
    };
  }
}
