// The prune of hl7_applied_messages (resend detection, docs/hl7.md) runs in a feed message's transaction, under the
// ledger's write lock: its query plan, on each backend, reads the old rows by the index on applied_at rather than
// scanning a week of messages. The plan is asserted, not a timing.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompiledQuery, sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { dropPostgresSchema, openIndexDb } from '../src/adapters/sql/open-index-db.js';
import type { IndexDb } from '../src/ports/database.js';
import { pruneAppliedMessages } from '../src/services/patient-feed.js';
import { backends, postgresUrl } from './support/backends.js';

const ROWS = 20_000;
const DAY = 86_400_000;

describe.each(backends())('the prune of hl7_applied_messages on %s', (backend) => {
  const schema = `prune_${randomBytes(6).toString('hex')}`;
  let dir: string | undefined;
  let index: IndexDb | undefined;
  afterAll(async () => {
    await index?.close();
    if (backend === 'postgres') await dropPostgresSchema(postgresUrl!, schema);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads the messages older than the resend window by the index on applied_at', async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-prune-'));
    index =
      backend === 'sqlite'
        ? await openIndexDb({ kind: 'sqlite', path: join(dir, 'i.sqlite'), key: randomBytes(32) })
        : await openIndexDb({ kind: 'postgres', url: postgresUrl!, schema });
    const db = index.db;
    // A week of a feed's messages, and an hour's worth past the window: what the hourly prune meets.
    const now = Date.parse('2026-12-07T12:00:00Z');
    const rows = Array.from({ length: ROWS }, (_, i) => ({
      sender: 'RIS^HOSP',
      control_id: `M${i}`,
      message_type: 'ORM^O01',
      digest: i.toString(16).padStart(64, '0'),
      applied_at: new Date(now - 7 * DAY - 3_600_000 + (i * (7 * DAY + 3_600_000)) / ROWS).toISOString(),
    }));
    for (let i = 0; i < rows.length; i += 1000)
      await db
        .insertInto('hl7_applied_messages')
        .values(rows.slice(i, i + 1000))
        .execute();
    await sql`analyze`.execute(db);

    const windowStart = new Date(now - 7 * DAY).toISOString();
    const prune = pruneAppliedMessages(db, windowStart).compile();
    const explain = backend === 'sqlite' ? 'explain query plan ' : 'explain ';
    const plan = await db.executeQuery<Record<string, unknown>>(
      CompiledQuery.raw(explain + prune.sql, [...prune.parameters]),
    );
    const text = plan.rows.map((r) => String(r.detail ?? r['QUERY PLAN'])).join('\n');
    expect(text).toContain('hl7_applied_messages_applied_at');
    if (backend === 'sqlite') expect(text).toMatch(/SEARCH hl7_applied_messages USING (COVERING )?INDEX/);
    else expect(text).not.toMatch(/Seq Scan/);

    const { numDeletedRows } = await pruneAppliedMessages(db, windowStart).executeTakeFirst();
    expect(Number(numDeletedRows)).toBe(rows.filter((r) => r.applied_at < windowStart).length);
  });
});
