import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type CliIO } from '../src/app/cli.js';
import { loadConfig } from '../src/app/config.js';
import { withApp } from '../src/app/custos-app.js';
import { DEFAULT_POLICY_FILE } from '../src/adapters/policy/cedar-policy.js';
import { dropPostgresSchema } from '../src/adapters/sql/open-index-db.js';
import { backends, postgresUrl } from './support/backends.js';

describe.each(backends())('custos policy and user commands on %s', (backend) => {
  let cwd: string;
  const schema = `custos_cli_${randomBytes(6).toString('hex')}`;
  const env: NodeJS.ProcessEnv =
    backend === 'postgres' ? { CUSTOS_DATABASE_URL: postgresUrl, CUSTOS_DATABASE_SCHEMA: schema } : {};
  const io = () => {
    const o = {
      stdout: '',
      stderr: '',
      out: (s: string) => void (o.stdout += s),
      err: (s: string) => void (o.stderr += s),
      env,
      cwd,
      stopSignal: () => new Promise<string>(() => undefined),
      isTTY: false,
    };
    return o satisfies CliIO;
  };
  const run = async (...args: string[]) => {
    const o = io();
    const code = await main([...args, ...(['validate'].includes(args[1]!) ? [] : ['--data', 'd'])], o);
    return { code, out: o.stdout, err: o.stderr };
  };
  const ledger = () =>
    withApp(
      loadConfig({ env, cwd, flags: { dataDir: join(cwd, 'd') } }),
      async (app) =>
        (await app.auditStore.search({ action: ['policy-apply'], order: 'asc', limit: 100 })).map((r) => ({
          action: r.action,
          outcome: r.outcome,
          policy: r.policy,
          objects_json: JSON.stringify(r.objects ?? {}),
        })),
      () => undefined,
    );

  let defaultText: string;
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'custos-policy-cli-'));
    defaultText = await readFile(DEFAULT_POLICY_FILE, 'utf8');
    // The first start (`custos serve`) initialises the archive; the one-shot commands refuse a directory without one.
    await withApp(
      loadConfig({ env, cwd, flags: { dataDir: join(cwd, 'd') } }),
      async () => undefined,
      () => undefined,
      { initialise: true },
    );
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
    if (backend === 'postgres') await dropPostgresSchema(postgresUrl!, schema);
  });

  it('first start installs the shipped default policy set as version 1, audited', async () => {
    const shown = await run('policy', 'show');
    expect(shown.code).toBe(0);
    expect(shown.out).toBe(defaultText);
    expect(shown.err).toMatch(
      /policy version 1, applied .* by system:first-start: shipped default policy set/,
    );
    const applied = await ledger();
    expect(applied).toHaveLength(1);
    expect(applied[0]).toMatchObject({ outcome: 'success', policy: 'builtin:local-operator' });
    expect(JSON.parse(applied[0]!.objects_json)).toMatchObject({ version: 1 });
  });

  it('validate accepts the shipped default', async () => {
    await writeFile(join(cwd, 'good.cedar'), defaultText);
    const r = await run('policy', 'validate', 'good.cedar');
    expect(r).toMatchObject({ code: 0, err: 'good.cedar: valid\n' });
  });

  it('validate names the file, line and column of a syntax error', async () => {
    await writeFile(
      join(cwd, 'syntax.cedar'),
      '@id("x")\npermit (principal, action, resource)\nwhen { principal.uid == };\n',
    );
    const r = await run('policy', 'validate', 'syntax.cedar');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^syntax\.cedar:3:25: .*unexpected token `}`/);
  });

  it('validate names the policy, line and column of a schema violation', async () => {
    const bad = defaultText.replace('resource.owner == principal.name', 'resource.owner == principal.nam');
    await writeFile(join(cwd, 'schema.cedar'), bad);
    const line =
      bad.split('\n').findIndex((l) => l.includes('principal.nam\n') || l.endsWith('principal.nam')) + 1;
    const col = bad.split('\n')[line - 1]!.indexOf('principal.nam') + 1;
    const r = await run('policy', 'validate', 'schema.cedar');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      new RegExp(
        `^schema\\.cedar:${line}:${col}: \\[data-owner-department\\] .*attribute \`nam\` on entity type \`Custos::User\` not found`,
      ),
    );
  });

  it('apply refuses an invalid file with the same precise error and applies nothing', async () => {
    const r = await run('policy', 'apply', 'schema.cedar', '--comment', 'typo');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/nothing was applied/);
    expect(r.err).toMatch(/schema\.cedar:\d+:\d+: \[data-owner-department\]/);
    const list = await run('policy', 'show', '--list');
    expect(list.out.trim().split('\n')).toHaveLength(2);
    expect(await ledger()).toHaveLength(1);
  });

  it('refuses a policy id the ledger uses for other deciders (default-deny, n/a, builtin:…) or as a separator', async () => {
    const extra = (id: string) =>
      `${defaultText}\n@id("${id}")\npermit (principal, action == Custos::Action::"read-audit", resource is Custos::Archive)\nwhen { principal in Custos::Role::"student" };\n`;
    const line = defaultText.split('\n').length + 1;
    for (const [id, why] of [
      ['default-deny', /policy id 'default-deny' is reserved/],
      ['n/a', /policy id 'n\/a' is reserved/],
      ['builtin:local-operator', /may not contain a colon/],
      ['archive-query,break-glass-read', /may not contain a comma/],
    ] as const) {
      await writeFile(join(cwd, 'reserved.cedar'), extra(id));
      const v = await run('policy', 'validate', 'reserved.cedar');
      expect(v.code, id).toBe(1);
      expect(v.err, id).toMatch(new RegExp(`^reserved\\.cedar:${line}:1: \\[`));
      expect(v.err, id).toMatch(why);
      // A student allowed to read the ledger would otherwise be recorded as allowed by 'default-deny' or a
      // built-in rule: apply refuses it and changes nothing.
      const a = await run('policy', 'apply', 'reserved.cedar', '--comment', 'reserved id');
      expect(a.code, id).toBe(2);
      expect(a.err, id).toMatch(/nothing was applied/);
      expect((await run('policy', 'show', '--list')).out.trim().split('\n'), id).toHaveLength(2);
    }
    expect(await ledger()).toHaveLength(1);
  });

  it('diff shows the change against the active version; apply stores a new version, keeps the old, audits', async () => {
    const edited = defaultText.replace(
      /@id\("archive-read-audit"\)[\s\S]*?\};\n/,
      '@id("archive-read-audit")\npermit (principal, action == Custos::Action::"read-audit", resource is Custos::Archive)\nwhen { principal in Custos::Role::"privacy-officer" };\n',
    );
    await writeFile(join(cwd, 'edited.cedar'), edited);
    const same = await run('policy', 'diff', 'good.cedar');
    expect(same).toMatchObject({ code: 0, out: '' });
    expect(same.err).toMatch(/same as the active version 1/);
    const d = await run('policy', 'diff', 'edited.cedar');
    expect(d.code).toBe(0);
    expect(d.out).toMatch(/^--- version 1\n\+\+\+ edited\.cedar\n@@ -\d+,\d+ \+\d+,\d+ @@\n/);
    expect(d.out).toContain(
      '-  principal in [Custos::Role::"privacy-officer", Custos::Role::"administrator"]\n',
    );
    expect(d.out).toContain('+when { principal in Custos::Role::"privacy-officer" };\n');

    const a = await run(
      'policy',
      'apply',
      'edited.cedar',
      '--comment',
      'administrator no longer reads the audit',
    );
    expect(a.code).toBe(0);
    expect(a.err).toMatch(/applied edited\.cedar as policy version 2 \(sha256 [0-9a-f]{64}\)/);
    expect((await run('policy', 'show')).out).toBe(edited);
    expect((await run('policy', 'show', '--version', '1')).out).toBe(defaultText);
    const list = await run('policy', 'show', '--list');
    expect(list.out).toMatch(/^2 .* system:cli .* administrator no longer reads the audit$/m);
    const applied = await ledger();
    expect(applied.map((e) => JSON.parse(e.objects_json))).toEqual([
      expect.objectContaining({ version: 1 }),
      expect.objectContaining({ version: 2, comment: 'administrator no longer reads the audit' }),
    ]);
    const again = await run('policy', 'apply', 'edited.cedar');
    expect(again.err).toMatch(/same as the active version 2; nothing applied/);
    expect((await run('policy', 'show', '--version', '3')).err).toMatch(/there is no policy version 3/);
  });

  it('the stored versions cannot be rewritten or removed', async () => {
    await withApp(
      loadConfig({ env, cwd, flags: { dataDir: join(cwd, 'd') } }),
      async (app) => {
        await expect(
          app.index.db.updateTable('policy_versions').set({ text: 'x' }).where('version', '=', 1).execute(),
        ).rejects.toThrow(/append-only/);
        await expect(app.index.db.deleteFrom('policy_versions').execute()).rejects.toThrow(/append-only/);
      },
      () => undefined,
    );
  });

  it('user add prints a one-time password once; user list shows role, department and physician identity', async () => {
    const r = await run(
      'user',
      'add',
      'jsmith',
      '--role',
      'referring-physician',
      '--physician-name',
      'Smith^John',
      '--physician-id',
      'NPI-1234',
    );
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^[A-Za-z0-9_-]{20}\n$/);
    const r2 = await run('user', 'add', 'rad1', '--role', 'radiologist', '--department', 'Radiology');
    expect(r2.code).toBe(0);
    const list = await run('user', 'list');
    expect(list.out).toMatch(/^jsmith +referring-physician +- +Smith\^John +NPI-1234 +- +active$/m);
    expect(list.out).toMatch(/^rad1 +radiologist +Radiology +- +- +- +active$/m);
    expect(list.out).not.toContain(r.out.trim());
    const login = await withApp(
      loadConfig({ env, cwd, flags: { dataDir: join(cwd, 'd') } }),
      (app) => app.auth.login('jsmith', r.out.trim(), 'test'),
      () => undefined,
    );
    expect(login.token).toMatch(/^cst_/);
  });

  it('user add refuses an unknown role and a second account with the same name', async () => {
    const bad = await run('user', 'add', 'x', '--role', 'superuser');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/unknown role 'superuser': one of radiologist, technologist/);
    const dup = await run('user', 'add', 'rad1', '--role', 'student');
    expect(dup.code).toBe(2);
    expect(dup.err).toMatch(/an account named 'rad1' already exists/);
  });
});
