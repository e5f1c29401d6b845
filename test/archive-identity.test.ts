// An archive is its index, its key-encryption keyfile and its blob tree together (src/app/archive-identity.ts).
// Each of these was once an operator's mistake away from losing stored objects: a PostgreSQL index whose keyfile
// went missing got a new key without a word, a data directory pointed at another index got an empty one that
// `fixity orphans --remove` then emptied the blob tree against, and a mistyped --data became a new archive.
// Runs on every backend.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { dropPostgresSchema } from '../src/adapters/sql/open-index-db.js';
import { backends, postgresUrl } from './support/backends.js';
import { captureIO } from './support/cli-io.js';
import { makeInstance, uid } from './support/fixtures.js';

describe.each(backends())('the archive identity on %s', (backend) => {
  let cwd: string;
  const schemas: string[] = [];
  const newSchema = () => {
    const schema = `custos_identity_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    return schema;
  };
  const mainSchema = newSchema();
  const envFor = (schema: string): NodeJS.ProcessEnv =>
    backend === 'postgres' ? { CUSTOS_DATABASE_URL: postgresUrl, CUSTOS_DATABASE_SCHEMA: schema } : {};
  const run = async (args: string[], env = envFor(mainSchema)) => {
    const io = Object.assign(captureIO(cwd), { env });
    const code = await main(args, io);
    return { code, out: io.stdout, err: io.stderr };
  };
  const objects = async (dir: string) => {
    const shards = await readdir(join(dir, 'blobs', 'objects')).catch(() => [] as string[]);
    let n = 0;
    for (const s of shards) n += (await readdir(join(dir, 'blobs', 'objects', s))).length;
    return n;
  };

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'custos-identity-'));
    const src = join(cwd, 'src');
    await mkdir(src);
    for (let i = 0; i < 3; i++)
      await writeFile(
        join(src, `${i}.dcm`),
        makeInstance({
          studyUid: uid(1),
          seriesUid: uid(2),
          sopInstanceUid: uid(10 + i),
          patientId: 'PAT-ID',
        }),
      );
    // `custos import` may make a new archive, as `custos serve` does.
    const imported = await run(['import', src, '--data', 'd']);
    expect(imported.code, imported.err).toBe(0);
    expect(await objects(join(cwd, 'd'))).toBe(3);
  });
  afterAll(async () => {
    if (backend === 'postgres')
      for (const schema of schemas) await dropPostgresSchema(postgresUrl!, schema).catch(() => undefined);
    await rm(cwd, { recursive: true, force: true });
  });

  it('refuses a mistyped --data for the one-shot commands, and creates nothing there', async () => {
    for (const args of [
      ['user', 'list'],
      ['token', 'create', '--user', 'admin'],
      ['audit', 'verify'],
      ['fixity', 'orphans', '--remove'],
    ]) {
      const r = await run([...args, '--data', 'typo'], envFor(newSchema()));
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(/typo holds no archive yet.*`custos serve --data .*typo` initialises one/);
      expect(r.out).not.toMatch(/one-time password/);
      expect(existsSync(join(cwd, 'typo', 'keys')), args.join(' ')).toBe(false);
    }
    expect((await run(['user', 'list', '--data', 'd'])).code).toBe(0);
  });

  it('refuses to open an index whose keyfile is missing, on either backend, and makes no new key', async () => {
    const keyfile = join(cwd, 'd', 'keys', 'kek.json');
    await rename(keyfile, `${keyfile}.away`);
    try {
      for (const args of [
        ['user', 'list'],
        ['fixity', 'run'],
      ]) {
        const r = await run([...args, '--data', 'd']);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.err).toMatch(
          /(has an index|holds an archive) but the key-encryption keyfile .*kek\.json is missing: restore/,
        );
      }
      expect(existsSync(keyfile)).toBe(false);
    } finally {
      await rename(`${keyfile}.away`, keyfile);
    }
    const r = await run(['fixity', 'run', '--data', 'd']);
    expect(r.code, r.err).toBe(0);
  });

  it('refuses a data directory whose blobs belong to another index, and removes none of them', async () => {
    // A copy of the data directory pointed at another index: another PostgreSQL schema, or (SQLite) its index
    // file gone. Until 5 Dec 2026 it got a new, empty index, and `fixity orphans --remove` deleted every object.
    await cp(join(cwd, 'd'), join(cwd, 'copy'), { recursive: true });
    if (backend === 'sqlite') await rm(join(cwd, 'copy', 'index.sqlite'));
    const other = envFor(newSchema());
    const r = await run(['fixity', 'orphans', '--remove', '--min-age-hours', '0', '--data', 'copy'], other);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      backend === 'sqlite'
        ? /copy holds archive [0-9a-f-]{36}, but its index .*index\.sqlite is missing: restore it/
        : /copy holds archive [0-9a-f-]{36}, but the index .* holds no archive: it is not this directory's index/,
    );
    expect(await objects(join(cwd, 'copy'))).toBe(3);
    // Not by serve's first start either.
    const serve = await run(['serve', '--data', 'copy', '--http-port', '0', '--dicom-port', '0'], other);
    expect(serve.code).toBe(2);
    expect(serve.err).toMatch(
      /holds no archive: it is not this directory's index|index\.sqlite is missing: restore it/,
    );
    expect(serve.out).not.toMatch(/one-time password/);
  });

  it('says the database URL is missing when a PostgreSQL archive is opened without one', async () => {
    // With SQLite, the same directory with its index file gone: the advice names both possibilities.
    const dir = backend === 'postgres' ? 'd' : 'd-no-index';
    if (backend === 'sqlite') {
      await cp(join(cwd, 'd'), join(cwd, dir), { recursive: true });
      await rm(join(cwd, dir, 'index.sqlite'));
    }
    const r = await run(['user', 'list', '--data', dir], {});
    expect(r.code).toBe(2);
    // Until 6 Dec 2026 a PostgreSQL archive was told to restore an index.sqlite it never had.
    expect(r.err).toMatch(
      backend === 'postgres'
        ? /\/d holds archive [0-9a-f-]{36}, whose index is in PostgreSQL, but no database URL is set: set CUSTOS_DATABASE_URL/
        : /d-no-index holds archive [0-9a-f-]{36}, but its index .*index\.sqlite is missing: restore it \(from a backup\), or, if this archive's index is in PostgreSQL, set CUSTOS_DATABASE_URL/,
    );
    expect(existsSync(join(cwd, dir, 'index.sqlite'))).toBe(false);
    expect((await run(['user', 'list', '--data', 'd'])).code).toBe(0);
  });

  it("refuses another archive's keyfile", async () => {
    await run(['import', join(cwd, 'src'), '--data', 'second'], envFor(newSchema()));
    const copy = join(cwd, 'd-wrong-key');
    await cp(join(cwd, 'd'), copy, { recursive: true });
    await cp(join(cwd, 'second', 'keys', 'kek.json'), join(copy, 'keys', 'kek.json'));
    const r = await run(['user', 'list', '--data', 'd-wrong-key']);
    expect(r.code).toBe(2);
    // SQLite's index is encrypted under the keyfile and does not open; PostgreSQL's identity row says whose key it is.
    expect(r.err).toMatch(
      backend === 'sqlite'
        ? /cannot open the index database/
        : /the key-encryption keyfile of .*d-wrong-key is not the key of the index/,
    );
  });

  it('refuses to open a ledger with signed records when the audit signing key is missing', async () => {
    const key = join(cwd, 'd', 'keys', 'audit-signing.pem');
    await rename(key, `${key}.away`);
    try {
      const r = await run(['audit', 'verify', '--data', 'd']);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(
        /holds signed records but the audit signing key .*audit-signing\.pem is missing: restore it/,
      );
      expect(existsSync(key)).toBe(false);
    } finally {
      await rename(`${key}.away`, key);
    }
    const verified = await run(['audit', 'verify', '--data', 'd']);
    expect(verified.code, verified.err).toBe(0);
  });
});
