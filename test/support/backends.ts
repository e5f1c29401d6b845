import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dropPostgresSchema } from '../../src/adapters/sql/open-index-db.js';

/**
 * The backends every integration test runs against: SQLite always, PostgreSQL too when
 * CUSTOS_TEST_DATABASE_URL is set (CI sets it). Each test server gets its own schema, dropped afterwards.
 */
export type Backend = 'sqlite' | 'postgres';

export const postgresUrl = process.env.CUSTOS_TEST_DATABASE_URL;

export function backends(): Backend[] {
  return postgresUrl ? ['sqlite', 'postgres'] : ['sqlite'];
}

/**
 * The database of the `custos` processes a test runs itself (CLI commands, `serve` in a child process): nothing
 * on SQLite (the index is in the data directory); on PostgreSQL a schema of its own for each name (one name per
 * data directory), given as CUSTOS_DATABASE_URL and CUSTOS_DATABASE_SCHEMA. `drop()` removes every schema
 * handed out.
 */
export function cliDatabases(backend: Backend): {
  env(name: string): Record<string, string>;
  /** Names the database in `dataDir`/custos.json, which every process started with `--data dataDir` reads. */
  configure(dataDir: string, name: string): Promise<void>;
  drop(): Promise<void>;
} {
  const run = randomBytes(3).toString('hex');
  const schemas = new Set<string>();
  const schemaFor = (name: string): string | undefined => {
    if (backend === 'sqlite') return undefined;
    const schema = `cli_${name.toLowerCase().replace(/[^a-z0-9]/g, '_')}_${process.pid}_${run}`;
    schemas.add(schema);
    return schema;
  };
  return {
    env(name): Record<string, string> {
      const schema = schemaFor(name);
      return schema ? { CUSTOS_DATABASE_URL: postgresUrl!, CUSTOS_DATABASE_SCHEMA: schema } : {};
    },
    async configure(dataDir, name) {
      const schema = schemaFor(name);
      if (!schema) return;
      await mkdir(dataDir, { recursive: true });
      await writeFile(
        join(dataDir, 'custos.json'),
        JSON.stringify({ database: { url: postgresUrl, schema } }),
      );
    },
    async drop() {
      for (const schema of schemas) await dropPostgresSchema(postgresUrl!, schema);
    },
  };
}
