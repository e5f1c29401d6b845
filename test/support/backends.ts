/**
 * The backends every integration test runs against: SQLite always, PostgreSQL too when
 * CUSTOS_TEST_DATABASE_URL is set (CI sets it). Each test server gets its own schema, dropped afterwards.
 */
export type Backend = 'sqlite' | 'postgres';

export const postgresUrl = process.env.CUSTOS_TEST_DATABASE_URL;

export function backends(): Backend[] {
  return postgresUrl ? ['sqlite', 'postgres'] : ['sqlite'];
}
