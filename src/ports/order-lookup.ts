/**
 * Whether an AccessionNumber matches a known order (issue 6: HL7 ORM/OMI orders feed the `orders` table).
 * 'unknown' while Custos knows no orders at all (no order feed yet): the check is then skipped, not failed.
 */
export type AccessionCheck = 'known' | 'not-found' | 'unknown';

export interface OrderLookup {
  checkAccession(accessionNumber: string): Promise<AccessionCheck>;
}
