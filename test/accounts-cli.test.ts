// The operator's user administration commands (docs/accounts.md, docs/cli.md), on SQLite: they act through
// the same UserAdminService as the HTTP routes, which test/accounts.test.ts runs on every backend.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { loadConfig } from '../src/app/config.js';
import { withApp } from '../src/app/custos-app.js';
import { captureIO } from './support/cli-io.js';

describe('custos user deactivate | activate | unlock | reset-password | reset-mfa', () => {
  let cwd: string;
  const run = async (...args: string[]) => {
    const o = captureIO(cwd);
    const code = await main([...args, '--data', 'd'], o);
    return { code, out: o.stdout, err: o.stderr };
  };
  const inApp = <T>(fn: Parameters<typeof withApp<T>>[1]) =>
    withApp(loadConfig({ env: {}, cwd, flags: { dataDir: join(cwd, 'd') } }), fn, () => undefined);

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'custos-accounts-cli-'));
    // The first start (`custos serve`) initialises the archive; the one-shot commands refuse a directory without one.
    await withApp(
      loadConfig({ env: {}, cwd, flags: { dataDir: join(cwd, 'd') } }),
      async () => undefined,
      () => undefined,
      { initialise: true },
    );
  });
  afterAll(() => rm(cwd, { recursive: true, force: true }));

  it('deactivates (ending tokens), activates, resets the password and MFA, unlocks; each recorded', async () => {
    const added = await run('user', 'add', 'tech9', '--role', 'technologist');
    expect(added.code).toBe(0);
    const oneTime = added.out.trim();
    const token = (await run('token', 'create', '--user', 'tech9')).out.trim();
    expect(token).toMatch(/^cst_/);

    expect((await run('user', 'deactivate', 'tech9')).code).toBe(0);
    await inApp(async (app) => {
      await expect(app.auth.authenticateBearer(`Bearer ${token}`, 'test')).rejects.toMatchObject({
        code: 'auth.unauthenticated',
      });
      await expect(app.auth.login('tech9', oneTime, 'test')).rejects.toMatchObject({
        code: 'auth.unauthenticated',
      });
    });
    expect((await run('user', 'activate', 'tech9')).code).toBe(0);

    const reset = await run('user', 'reset-password', 'tech9');
    expect(reset.code).toBe(0);
    const fresh = reset.out.trim();
    expect(fresh).toMatch(/^[A-Za-z0-9_-]{20}$/);
    await inApp(async (app) => {
      await expect(app.auth.login('tech9', oneTime, 'test')).rejects.toMatchObject({
        code: 'auth.unauthenticated',
      });
      const l = await app.auth.login('tech9', fresh, 'test');
      expect(l.mustChangePassword).toBe(true);
      for (let i = 0; i < 5; i++) await app.auth.login('tech9', 'wrong', 'test').catch(() => undefined);
      await expect(app.auth.login('tech9', fresh, 'test')).rejects.toMatchObject({ code: 'auth.locked' });
    });
    expect((await run('user', 'unlock', 'tech9')).code).toBe(0);
    expect((await run('user', 'reset-mfa', 'tech9')).code).toBe(0);
    const unknown = await run('user', 'unlock', 'nobody');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/no account named 'nobody'/);

    await inApp(async (app) => {
      expect((await app.auth.login('tech9', fresh, 'test')).username).toBe('tech9');
      const records = await app.auditStore.search({
        action: ['account-change', 'mfa'],
        order: 'asc',
        limit: 100,
      });
      expect(
        records
          .filter((r) => r.objects?.user === 'tech9')
          .map((r) => [
            r.actor.name,
            r.policy,
            r.detail?.change ?? (r.detail?.active === false ? 'deactivate' : 'activate'),
          ]),
        // The local operator, not a Cedar decision (docs/access-control.md): until 7 Dec 2026 'archive-administer'.
      ).toEqual([
        ['system:cli', 'builtin:local-operator', 'deactivate'],
        ['system:cli', 'builtin:local-operator', 'activate'],
        ['system:cli', 'builtin:local-operator', 'password-reset'],
        ['system:lockout', 'builtin:lockout', 'lock'],
        ['system:cli', 'builtin:local-operator', 'unlock'],
        ['system:cli', 'builtin:local-operator', 'mfa-reset'],
      ]);
    });
  });

  it('refuses a second account whose name differs only in letter case, naming the existing one', async () => {
    expect((await run('user', 'add', 'JSmith', '--role', 'student')).code).toBe(0);
    // Until 6 Dec 2026 this made a second account, 'jsmith', beside 'JSmith'.
    const again = await run('user', 'add', 'jsmith', '--role', 'student');
    expect(again.code).toBe(2);
    expect(again.err).toBe(
      "custos: an account named 'JSmith' already exists; account names are case-insensitive, so 'jsmith' would name the same person\n",
    );
    await inApp(async (app) => {
      const named = (await app.accounts.list()).filter((u) => u.username.toLowerCase() === 'jsmith');
      expect(named.map((u) => u.username)).toEqual(['JSmith']);
    });
  });

  it('token create takes whole days from 1 to 3650 and a name of printable characters, as the HTTP API does', async () => {
    expect((await run('user', 'add', 'svc-ris', '--role', 'technologist')).code).toBe(0);
    // Until 6 Dec 2026 the CLI took up to 36500 days (the API 3650), and a name with a newline was stored.
    for (const days of ['0', '1.5', '3651', '36500']) {
      const r = await run('token', 'create', '--user', 'svc-ris', '--days', days);
      expect(r.code, days).toBe(2);
      expect(r.err).toContain(
        `option '--days <n>' argument '${days}' is invalid. expected a whole number of days from 1 to 3650.`,
      );
      expect(r.out).toBe('');
    }
    const newline = await run('token', 'create', '--user', 'svc-ris', '--name', 'nightly\nexport');
    expect(newline.code).toBe(2);
    expect(newline.err).toContain(
      'expected a label of 1-100 printable characters (no control characters or line breaks); got U+000A at character 8.',
    );
    const long = await run('token', 'create', '--user', 'svc-ris', '--name', 'x'.repeat(101));
    expect([long.code, long.err.includes('got 101 characters')]).toEqual([2, true]);
    const ok = await run('token', 'create', '--user', 'svc-ris', '--name', 'ris-feed', '--days', '3650');
    expect(ok.code, ok.err).toBe(0);
    await inApp(async (app) => {
      const tokens = await app.auth.listTokens('svc-ris');
      expect(tokens.map((t) => t.name)).toEqual(['ris-feed']);
    });
  });
});
