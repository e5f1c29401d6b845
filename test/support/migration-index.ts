import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { dropPostgresSchema, openIndexDb } from '../../src/adapters/sql/open-index-db.js';
import { postgresUrl, type Backend } from './backends.js';

/**
 * An index of a migration test's own on `backend`: an encrypted SQLite file in a temporary directory, or a
 * PostgreSQL schema named after `label`. `open()` opens it (again), running the migrations not yet run; the test
 * closes what it opened. Both are removed after the tests of the describe block that called this.
 */
export function indexOfItsOwn(backend: Backend, label: string) {
  const schema = `${label}_${randomBytes(6).toString('hex')}`;
  const key = randomBytes(32);
  let dir: string | undefined;
  afterAll(async () => {
    if (backend === 'postgres') await dropPostgresSchema(postgresUrl!, schema);
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    open: async () => {
      if (backend === 'postgres') return openIndexDb({ kind: 'postgres', url: postgresUrl!, schema });
      dir ??= await mkdtemp(join(tmpdir(), `custos-${label}-`));
      return openIndexDb({ kind: 'sqlite', path: join(dir, 'i.sqlite'), key });
    },
  };
}
