// Why the SQLite index did not open, said as it is: a wrong key only when SQLite found no database in the file,
// a data directory that cannot be written when that is the cause (until 5 Dec 2026 both suggested a wrong key).
// The read-only case bind-mounts the directory read-only, which needs root, as CI has.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteHandle } from '../src/adapters/sql/sqlite-handle.js';

describe('opening the SQLite index', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-sqlite-open-'));
  const data = join(dir, 'data');
  const readOnly = join(dir, 'ro');
  mkdirSync(data);
  mkdirSync(readOnly);
  const key = randomBytes(32);
  const db = openSqliteHandle(join(data, 'index.sqlite'), key);
  db.exec('create table t (x integer)');
  db.close();
  afterAll(() => {
    execFileSync('umount', [readOnly], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('suggests a wrong key when the file holds no database under this key', () => {
    expect(() => openSqliteHandle(join(data, 'index.sqlite'), randomBytes(32))).toThrow(
      /: file is not a database \(wrong key-encryption key for this data directory\?\)$/,
    );
  });

  it('names a data directory it cannot write, not the key', () => {
    execFileSync('mount', ['--bind', data, readOnly]);
    execFileSync('mount', ['-o', 'remount,ro,bind', readOnly]);
    expect(() => openSqliteHandle(join(readOnly, 'index.sqlite'), key)).toThrow(
      `cannot open the index database at ${join(readOnly, 'index.sqlite')}: unable to open database file (the data directory ${readOnly} cannot be written (EROFS): the index writes its write-ahead log beside the database)`,
    );
  });
});
