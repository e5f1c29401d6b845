import { sql, type Kysely } from 'kysely';
import type { DatabaseSchema } from '../ports/database.js';

/**
 * The stored name of the account `name` names. Account names are case-insensitive (docs/accounts.md), so 'RAD1'
 * names the account 'rad1': this is the account with exactly that name, else the one account whose name equals it
 * ignoring letter case. Undefined when there is none, or only several that differ by case (pairs made before
 * 6 Dec 2026, which no lookup may guess between). Until 6 Dec 2026 every lookup by name compared case-sensitively,
 * so an AE could not be bound to 'RAD1', nor a DIMSE user identity 'ADMIN' sign in, while 'RAD1' could not be created
 * next to 'rad1' either.
 */
export async function storedAccountName(
  db: Kysely<DatabaseSchema>,
  name: string,
): Promise<string | undefined> {
  const rows = await db
    .selectFrom('users')
    .select('username')
    .where(sql<string>`lower(username)`, '=', name.toLowerCase())
    .limit(3)
    .execute();
  if (rows.some((r) => r.username === name)) return name;
  return rows.length === 1 ? rows[0]!.username : undefined;
}

/** The stored name for `name`, or `name` itself when no account answers to it (the lookup then finds nothing). */
export const accountName = async (db: Kysely<DatabaseSchema>, name: string): Promise<string> =>
  (await storedAccountName(db, name)) ?? name;
