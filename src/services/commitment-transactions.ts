import type { Clock } from '../ports/clock.js';
import type { IndexDb } from '../ports/database.js';

/** What a Storage Commitment request's Transaction UID is to the archive. */
export type TransactionClaim =
  /** Not seen before: the UID is now this request's. */
  | { kind: 'new' }
  /** The same caller asking for the same references again (its report may have been lost): answered again. */
  | { kind: 'retry'; firstRequestedAt: string }
  /** Already used for another request (another caller, or other references): Failure Reason 0131H. */
  | { kind: 'duplicate'; firstRequestedAt: string; firstCallingAe: string };

/**
 * The Transaction UIDs of storage commitment requests. PS3.4 J.3.3: once reported, a Transaction UID "shall not be
 * reused for other transactions", and PS3.3 C.14.1.1 gives the report's Failure Reason 0131H (Duplicate transaction
 * UID: already in use) for a request that does; until 7 Dec 2026 such a request was committed as a new one, so the
 * requestor could take the report of one transaction for another's.
 */
export class CommitmentTransactions {
  constructor(private readonly deps: { index: IndexDb; clock: Clock }) {}

  /**
   * Claim `transactionUid` for the request of `callingAe` whose references hash to `requestSha256`. Two requests
   * racing with one UID: the database's primary key lets one insert, and the other reads what it inserted.
   */
  async claim(
    transactionUid: string,
    callingAe: string,
    requestSha256: string,
    referenceCount: number,
  ): Promise<TransactionClaim> {
    const { db } = this.deps.index;
    const inserted = await db
      .insertInto('storage_commitments')
      .values({
        transaction_uid: transactionUid,
        calling_ae: callingAe,
        request_sha256: requestSha256,
        reference_count: referenceCount,
        requested_at: this.deps.clock.now().toISOString(),
      })
      .onConflict((oc) => oc.column('transaction_uid').doNothing())
      .returning('transaction_uid')
      .executeTakeFirst();
    if (inserted) return { kind: 'new' };
    const first = await db
      .selectFrom('storage_commitments')
      .select(['calling_ae', 'request_sha256', 'requested_at'])
      .where('transaction_uid', '=', transactionUid)
      .executeTakeFirstOrThrow();
    if (first.calling_ae === callingAe && first.request_sha256 === requestSha256)
      return { kind: 'retry', firstRequestedAt: first.requested_at };
    return { kind: 'duplicate', firstRequestedAt: first.requested_at, firstCallingAe: first.calling_ae };
  }
}
