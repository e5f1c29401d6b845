// Issue 3: the AE registry in the admin API: administrators only, problem+json errors, changes audited.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { startTestServer, type TestServer } from './support/test-server.js';

for (const backend of backends()) {
  describe(`admin API: /api/admin/aes (${backend})`, () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startTestServer(backend);
    });
    afterAll(async () => {
      await s.stop();
    });
    const call = (method: string, path: string, body?: unknown, token = s.token) =>
      fetch(`${s.url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });

    it('registers, lists and removes AEs, and records each change', async () => {
      const created = await call('POST', '/api/admin/aes', {
        title: 'PACS1',
        host: '127.0.0.1',
        port: 4242,
        user: 'admin',
      });
      expect(created.status).toBe(201);
      expect(await created.json()).toMatchObject({
        title: 'PACS1',
        host: '127.0.0.1',
        port: 4242,
        user: 'admin',
        certSha256: null,
      });
      const list = await call('GET', '/api/admin/aes');
      expect((await list.json()) as unknown[]).toHaveLength(1);
      expect((await call('DELETE', '/api/admin/aes/PACS1')).status).toBe(204);
      expect((await (await call('GET', '/api/admin/aes')).json()) as unknown[]).toEqual([]);
      const audit = await s.app.index.db
        .selectFrom('audit_ledger')
        .select('action')
        .where('action', 'in', ['ae-add', 'ae-remove'])
        .execute();
      expect(audit.map((a) => a.action)).toEqual(['ae-add', 'ae-remove']);
    });

    it('takes a host name or an address as the host, and nothing else', async () => {
      for (const [i, host] of [
        'pacs.example.org',
        'PACS-1',
        '127.0.0.1',
        '::1',
        'fe80::1',
        'ct.',
      ].entries()) {
        const ok = await call('POST', '/api/admin/aes', { title: `GOODHOST${i}`, host, port: 104 });
        expect(ok.status, `${host}: ${await ok.clone().text()}`).toBe(201);
      }
      for (const host of [
        'h\u0000x',
        'a/b?c#d',
        '-oProxyCommand=x',
        'a b',
        '',
        'x'.repeat(64),
        '999.1.1.1',
        'a..b',
      ]) {
        const bad = await call('POST', '/api/admin/aes', { title: 'BADHOST', host, port: 104 });
        expect(bad.status, JSON.stringify(host)).toBe(400);
        expect(((await bad.json()) as { code: string }).code).toBe('ae.bad-host');
      }
      const list = (await (await call('GET', '/api/admin/aes')).json()) as { title: string }[];
      expect(list.map((e) => e.title)).not.toContain('BADHOST');
    });

    it('finds a title to remove as it was added: trimmed', async () => {
      expect((await call('POST', '/api/admin/aes', { title: ' T5 ', host: 'h', port: 104 })).status).toBe(
        201,
      );
      expect((await call('DELETE', '/api/admin/aes/%20T5%20')).status).toBe(204);
      expect((await call('DELETE', '/api/admin/aes/T5')).status).toBe(404);
    });

    it('binds an AE to an account named in any letter case (account names are case-insensitive)', async () => {
      const res = await call('POST', '/api/admin/aes', {
        title: 'UPPER',
        host: 'h',
        port: 104,
        user: 'ADMIN',
      });
      expect(res.status, await res.clone().text()).toBe(201);
      expect(await res.json()).toMatchObject({ title: 'UPPER', user: 'admin' });
    });

    it('answers problem+json for bad input, a duplicate title and an unknown one', async () => {
      const bad = await call('POST', '/api/admin/aes', { title: 'X', host: 'h', port: 'eleven' });
      expect(bad.status).toBe(400);
      expect(bad.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const badPort = await call('POST', '/api/admin/aes', { title: 'X', host: 'h', port: 70000 });
      expect(badPort.status).toBe(400);
      expect(((await badPort.json()) as { detail: string }).detail).toMatch(/port must be 1\.\.65535/);
      expect((await call('POST', '/api/admin/aes', { title: 'DUP', host: 'h', port: 1 })).status).toBe(201);
      const dup = await call('POST', '/api/admin/aes', { title: 'DUP', host: 'h', port: 1 });
      expect(dup.status).toBe(409);
      const missing = await call('DELETE', '/api/admin/aes/NOPE');
      expect(missing.status).toBe(404);
      expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    });
  });
}
