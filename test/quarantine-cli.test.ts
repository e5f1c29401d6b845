import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { dropPostgresSchema } from '../src/adapters/sql/open-index-db.js';
import { backends, postgresUrl } from './support/backends.js';
import { captureIO } from './support/cli-io.js';
import { makeInstance, uid } from './support/fixtures.js';

const MODALITY = 0x00080060;

/** `custos quarantine` as a data steward runs it, on an archive of its own (docs/cli.md). */
describe.each(backends())('custos quarantine from the command line, on %s', (backend) => {
  let cwd: string;
  let env: Record<string, string>;
  let schema: string | undefined;
  const run = async (args: string[]) => {
    const io = captureIO(cwd);
    io.env = env;
    const code = await main([...args, '--data', 'd'], io);
    return { code, out: io.stdout, err: io.stderr };
  };
  const sop = uid(3);
  const held = makeInstance({
    studyUid: uid(1),
    seriesUid: uid(2),
    sopInstanceUid: sop,
    patientId: 'QCLI-1',
    omit: [MODALITY],
  });

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'custos-quarantine-cli-'));
    schema = backend === 'postgres' ? `custos_test_${randomBytes(6).toString('hex')}` : undefined;
    env = schema ? { CUSTOS_DATABASE_URL: postgresUrl!, CUSTOS_DATABASE_SCHEMA: schema } : {};
    const src = join(cwd, 'incoming');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'held1.dcm'), held);
    const imported = await run(['import', src]);
    expect(imported.code, imported.err).toBe(0);
    const added = await run(['user', 'add', 'steward', '--role', 'data-steward']);
    expect(added.code, added.err).toBe(0);
  });
  afterAll(async () => {
    if (schema) await dropPostgresSchema(postgresUrl!, schema);
    await rm(cwd, { recursive: true, force: true });
  });

  it('refuses to release an entry whose stored bytes are damaged with exit status 1, naming why', async () => {
    const list = await run(['quarantine', 'list', '--as', 'steward', '--json']);
    const { entries } = JSON.parse(list.out) as { entries: { id: string }[] };
    expect(entries).toHaveLength(1);
    const id = entries[0]!.id;
    // The archive holds this one object: damage its stored bytes near the end.
    const objects = join(cwd, 'd', 'blobs', 'objects');
    const files = (await readdir(objects, { recursive: true, withFileTypes: true })).filter((f) =>
      f.isFile(),
    );
    expect(files).toHaveLength(1);
    const file = join(files[0]!.parentPath, files[0]!.name);
    const bytes = await readFile(file);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0x40;
    await writeFile(file, bytes);

    expect((await run(['quarantine', 'correct', '--as', 'steward', id, 'Modality=CT'])).code).toBe(0);
    const release = await run(['quarantine', 'release', '--as', 'steward', id]);
    expect(release.code).toBe(1);
    expect(release.out).toBe('');
    expect(release.err).toBe(
      `custos: quarantine entry ${id} (instance ${sop}) is not released: its stored bytes are damaged or missing; restore them from backup (docs/fixity.md)\n`,
    );
  });

  it('documents exit status 1 for a refused release in its help', async () => {
    const help = await run(['quarantine', 'release', '--help']);
    expect((help.out + help.err).replace(/\s+/g, ' ')).toMatch(
      /exit 1, nothing released, if still invalid or its stored bytes are damaged/,
    );
  });
});
