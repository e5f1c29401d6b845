import { randomBytes } from 'node:crypto';
import type { IndexDb } from '../ports/database.js';
import type { KeyStore } from '../ports/key-store.js';
import type { Clock } from '../ports/clock.js';
import { CustosError } from '../domain/errors.js';
import { TransactionBatcher } from './transaction-batcher.js';

/**
 * Per-study data keys (ARCHITECTURE.md invariant 4): created with the study's first object, stored wrapped by the
 * key-encryption key, and cached unwrapped in memory for a bounded number of studies.
 */
export class StudyKeyService {
  private readonly cache = new Map<string, Buffer>();
  /** Keys being created, so that concurrent first objects of a new study wait for one key, not race. */
  private readonly creating = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly index: IndexDb,
    private readonly keys: KeyStore,
    private readonly clock: Clock,
    private readonly cacheSize = 2048,
    /** A new key's row commits with whatever index writes are pending (the ingest's group commit). */
    private readonly writes = new TransactionBatcher(index.db),
  ) {}

  private context(studyUid: string) {
    return `study:${studyUid}`;
  }

  private remember(studyUid: string, key: Buffer) {
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(studyUid, key);
  }

  /** The study's data key, creating it if the study has none yet. */
  async keyForStore(studyUid: string): Promise<Buffer> {
    const cached = this.cache.get(studyUid);
    if (cached) return cached;
    let pending = this.creating.get(studyUid);
    if (!pending) {
      pending = this.loadOrCreate(studyUid).finally(() => this.creating.delete(studyUid));
      this.creating.set(studyUid, pending);
    }
    return pending;
  }

  private async loadOrCreate(studyUid: string): Promise<Buffer> {
    const existing = await this.load(studyUid);
    if (existing) return existing;
    const fresh = randomBytes(32);
    const wrapped = await this.keys.wrapKey(fresh, this.context(studyUid));
    // Two processes may race on a new study: the first insert wins and both use the stored key, read back in
    // the same transaction. The key is durable before any object is written under it.
    const row = await this.writes.run(async (trx) => {
      await trx
        .insertInto('study_keys')
        .values({
          study_uid: studyUid,
          wrapped_key: wrapped,
          kek_id: this.keys.kekId,
          created_at: this.clock.now().toISOString(),
        })
        .onConflict((oc) => oc.column('study_uid').doNothing())
        .execute();
      return trx
        .selectFrom('study_keys')
        .select(['wrapped_key'])
        .where('study_uid', '=', studyUid)
        .executeTakeFirst();
    });
    if (!row)
      throw new CustosError({
        code: 'keys.missing',
        message: `data key for a new study could not be stored`,
      });
    const key = await this.keys.unwrapKey(Buffer.from(row.wrapped_key), this.context(studyUid));
    this.remember(studyUid, key);
    return key;
  }

  /** The study's data key for reading; a missing key means the study was shredded or never existed. */
  async keyForRead(studyUid: string): Promise<Buffer> {
    const cached = this.cache.get(studyUid);
    if (cached) return cached;
    const key = await this.load(studyUid);
    if (!key) {
      throw new CustosError({
        code: 'keys.missing',
        message: `no data key for the study: its objects cannot be decrypted`,
        httpStatus: 410,
      });
    }
    return key;
  }

  private async load(studyUid: string): Promise<Buffer | undefined> {
    const row = await this.index.db
      .selectFrom('study_keys')
      .select(['wrapped_key'])
      .where('study_uid', '=', studyUid)
      .executeTakeFirst();
    if (!row) return undefined;
    const key = await this.keys.unwrapKey(Buffer.from(row.wrapped_key), this.context(studyUid));
    this.remember(studyUid, key);
    return key;
  }
}
