// The console's own admin API (docs/console.md): study browser, study page, activity figures, the OpenAPI
// description held to the router, and the static console files served beside the APIs.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ACCOUNTS, demoBanner, seedDemo, type DemoSeed } from '../src/app/demo.js';
import { OPENAPI, openApiPath } from '../src/transports/admin/openapi.js';
import { buildRouter } from '../src/transports/server/routes.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { quarantineOne, startTestServer, type TestServer } from './support/test-server.js';

for (const backend of backends()) {
  describe(`console API (${backend})`, () => {
    let s: TestServer;
    let seed: DemoSeed;
    let consoleDir: string;
    const tokens = new Map<string, string>();

    beforeAll(async () => {
      consoleDir = await mkdtemp(join(tmpdir(), 'custos-console-files-'));
      await mkdir(join(consoleDir, 'assets'));
      await writeFile(join(consoleDir, 'index.html'), '<!doctype html><title>Custos</title>');
      await writeFile(join(consoleDir, 'assets', 'app-1a2b3c.js'), 'console.log(1)');
      s = await startTestServer(backend, {
        configure: (c) => ({ ...c, http: { ...c.http, consoleDir } }),
      });
      seed = await seedDemo(s.app);
      // Tokens issued to each account (as `custos token create` does): this suite is about what each role gets.
      for (const a of seed.accounts)
        tokens.set(a.role, (await s.app.auth.createToken(systemPrincipal('test'), a.username)).token);
    }, 120_000);
    afterAll(async () => {
      await s?.stop();
      await rm(consoleDir, { recursive: true, force: true });
    });

    const get = (role: string, path: string) =>
      fetch(`${s.url}${path}`, { headers: { Authorization: `Bearer ${tokens.get(role)}` } });

    interface Listed {
      studies: { studyUid: string; department: string | null; classification: string; status: string }[];
      more: boolean;
    }

    it('seeds one account per role and synthetic studies through the ingest pipeline, one quarantined', () => {
      expect(seed.accounts.map((a) => a.role).sort()).toEqual(DEMO_ACCOUNTS.map((a) => a.role).sort());
      expect(seed.stored).toBe(36);
      expect(seed.quarantined).toBe(2);
      // The roles that must use a second factor get an enrolled TOTP secret; the others do not.
      expect(seed.accounts.find((a) => a.role === 'radiologist')!.totpSecret).toMatch(/^[A-Z2-7]{32}$/);
      expect(seed.accounts.find((a) => a.role === 'data-steward')!.totpSecret).toBeUndefined();
    });

    it('seeds once: a second --demo start changes nothing and says so', async () => {
      const again = await seedDemo(s.app);
      expect(again).toEqual({ accounts: [], stored: 0, quarantined: 0 });
      expect(demoBanner(again, s.url)).toMatch(/already seeded/);
      expect(demoBanner(seed, s.url)).toContain('steward.kim');
    });

    it('lists every study for the data steward, with governance columns', async () => {
      const res = await get('data-steward', '/api/studies?limit=100');
      expect(res.status).toBe(200);
      // Patient data from the API is never kept by a browser's or a proxy's cache, nor sniffed as another type.
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      const body = (await res.json()) as Listed;
      expect(body.studies).toHaveLength(12);
      expect(body.more).toBe(false);
      expect(body.studies[0]).toMatchObject({ classification: 'normal', status: 'active' });
      expect(new Set(body.studies.map((x) => x.department))).toEqual(new Set(['Radiology', 'Cardiology']));
    });

    it("narrows the radiologist to the department's studies and the referring physician to his patients", async () => {
      const rad = (await (await get('radiologist', '/api/studies?limit=100')).json()) as Listed;
      expect(rad.studies).toHaveLength(9);
      expect(rad.studies.every((x) => x.department === 'Radiology')).toBe(true);
      const ref = (await (await get('referring-physician', '/api/studies?limit=100')).json()) as Listed;
      expect(ref.studies).toHaveLength(4);
    });

    it('matches like QIDO and pages over what the caller may see', async () => {
      const mr = (await (await get('data-steward', '/api/studies?ModalitiesInStudy=MR')).json()) as Listed;
      expect(mr.studies).toHaveLength(4);
      const page = (await (await get('radiologist', '/api/studies?limit=5&offset=5')).json()) as Listed;
      expect(page.studies).toHaveLength(4);
      const first = (await (await get('radiologist', '/api/studies?limit=5')).json()) as Listed;
      expect(first.more).toBe(true);
      const bad = await get('data-steward', '/api/studies?StudyDate=yesterday');
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { code: string }).code).toBe('qido.bad-parameter');
      const unknown = await get('data-steward', '/api/studies?Foo=1');
      expect(unknown.status).toBe(400);
      expect(((await unknown.json()) as { detail: string }).detail).toMatch(/Foo: unknown parameter/);
    });

    it('sorts the study list on the server, so that each page continues the order of the one before', async () => {
      interface Sorted {
        studies: { studyUid: string; patientName: string; studyDate: string; numInstances: number }[];
        more: boolean;
      }
      const list = async (query: string) => {
        const res = await get('data-steward', `/api/studies?${query}`);
        expect(res.status).toBe(200);
        return (await res.json()) as Sorted;
      };
      const bytes = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
      for (const [query, compare] of [
        ['sort=PatientName', (a, b) => bytes(a.patientName.toUpperCase(), b.patientName.toUpperCase())],
        ['sort=StudyDate&dir=desc', (a, b) => bytes(b.studyDate, a.studyDate)],
        ['sort=NumberOfStudyRelatedInstances&dir=desc', (a, b) => b.numInstances - a.numInstances],
      ] as [string, (a: Sorted['studies'][0], b: Sorted['studies'][0]) => number][]) {
        const all = (await list(`${query}&limit=100`)).studies;
        expect(all).toHaveLength(12);
        // In the order asked, equal values by Study Instance UID.
        expect(all).toEqual([...all].sort((a, b) => compare(a, b) || bytes(a.studyUid, b.studyUid)));
        const pages: string[] = [];
        for (let offset = 0, more = true; more; offset += 5) {
          const page = await list(`${query}&limit=5&offset=${offset}`);
          pages.push(...page.studies.map((x) => x.studyUid));
          more = page.more;
        }
        expect(pages, query).toEqual(all.map((x) => x.studyUid));
      }
      // The seeded names are not in study-date order: sorting by them is not the default order by another name.
      const byName = (await list('sort=PatientName&limit=100')).studies.map((x) => x.studyUid);
      const byDefault = (await list('limit=100')).studies.map((x) => x.studyUid);
      expect(byName).not.toEqual(byDefault);

      for (const [query, parameter] of [
        ['sort=patient_name', 'sort'],
        ['sort=StudyDate&dir=up', 'dir'],
        ['dir=desc', 'dir'],
      ]) {
        const res = await get('data-steward', `/api/studies?${query}`);
        expect(res.status, query).toBe(400);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(await res.json()).toMatchObject({ code: 'studies.bad-parameter', parameter });
      }
    });

    it('refuses the study browser to a role no policy lets query, and records the refusal', async () => {
      const res = await get('privacy-officer', '/api/studies');
      expect(res.status).toBe(403);
      const denied = await s.app.auditStore.search({
        actor: 'privacy.weber',
        outcome: 'denied',
        action: ['query'],
        limit: 5,
      });
      expect(denied.length).toBeGreaterThan(0);
    });

    it('shows a study page by what each role may see: metadata, access history, or a refusal', async () => {
      const all = (await (await get('data-steward', '/api/studies?limit=100')).json()) as Listed;
      const radiology = all.studies.find((x) => x.department === 'Radiology')!.studyUid;
      const cardiology = all.studies.find((x) => x.department === 'Cardiology')!.studyUid;

      const rad = await get('radiologist', `/api/studies/${radiology}`);
      expect(rad.status).toBe(200);
      const radPage = (await rad.json()) as {
        study: { patientName?: string };
        series: unknown[] | null;
        accessHistory: unknown;
        permissions: { viewMetadata: boolean; readAudit: boolean };
      };
      expect(radPage.series!.length).toBeGreaterThan(0);
      expect(radPage.study.patientName).toBeTruthy();
      expect(radPage.accessHistory).toBeNull();
      expect(radPage.permissions).toEqual({ viewMetadata: true, readAudit: false });

      expect((await get('radiologist', `/api/studies/${cardiology}`)).status).toBe(403);

      const po = (await (await get('privacy-officer', `/api/studies/${radiology}`)).json()) as {
        study: { patientName?: string };
        series: unknown;
        accessHistory: { records: { actor: string; action: string }[] };
      };
      expect(po.series).toBeNull();
      expect(po.study.patientName).toBeUndefined();
      // The radiologist's read above is in the study's own history.
      expect(po.accessHistory.records).toEqual(
        expect.arrayContaining([expect.objectContaining({ actor: 'rad.rossi', action: 'view-metadata' })]),
      );

      const owner = (await (await get('data-owner', `/api/studies/${radiology}`)).json()) as {
        accessHistory: { records: unknown[] } | null;
      };
      expect(owner.accessHistory?.records.length).toBeGreaterThan(0);
      expect((await get('data-owner', `/api/studies/${cardiology}`)).status).toBe(403);

      // An unknown study: 404 to whoever reads the ledger archive-wide (they see every study's page) or may read
      // every study, restricted ones included; the same 403 as a forbidden one to anyone else, the data steward
      // too (refused restricted studies; until 6 Dec 2026 it got 404 here, and 403 for a restricted study).
      expect((await get('privacy-officer', '/api/studies/1.2.3.4.5.6')).status).toBe(404);
      expect((await get('data-steward', '/api/studies/1.2.3.4.5.6')).status).toBe(403);
      const guessed = await get('radiologist', '/api/studies/1.2.3.4.5.6');
      expect(guessed.status).toBe(403);
      expect(((await guessed.json()) as { code: string }).code).toBe('access.denied');
    });

    it('counts ingest, refusals and break-glass per day for governance roles only', async () => {
      const res = await get('data-steward', '/api/kpis/activity');
      expect(res.status).toBe(200);
      const a = (await res.json()) as {
        byDay: { day: string; ingested: number; denied: number }[];
        totals: { ingested: number; denied: number; breakGlass: number };
      };
      expect(a.byDay).toHaveLength(30);
      expect(a.totals.ingested).toBe(seed.stored);
      expect(a.totals.denied).toBeGreaterThanOrEqual(3);
      expect((await get('radiologist', '/api/kpis/activity')).status).toBe(403);
      const bad = await get('privacy-officer', '/api/kpis/activity?from=2026-02-01&to=2026-01-01');
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { code: string }).code).toBe('kpi.bad-range');
      // A day that does not exist: until 7 Dec 2026 answered 200 with byDay [2026-02-30] alone, so 1 and 2 March
      // and what they counted were left out of a range that claimed to cover them.
      const noSuchDay = await get('privacy-officer', '/api/kpis/activity?from=2026-02-30&to=2026-03-02');
      expect(noSuchDay.status).toBe(400);
      expect(await noSuchDay.json()).toMatchObject({
        code: 'kpi.bad-range',
        parameter: 'from',
        detail: "from: '2026-02-30' is not a date (YYYY-MM-DD)",
      });
    });

    it('describes every /api route of the router in the OpenAPI description, and nothing it lacks', async () => {
      const routes = buildRouter(s.app)
        .routes()
        .filter((r) => r.path.startsWith('/api/') || r.path === '/api');
      const described = OPENAPI.paths as Record<string, Record<string, { 'x-custos-pending'?: string }>>;
      for (const r of routes)
        expect(
          described[openApiPath(r.path)]?.[r.method.toLowerCase()],
          `${r.method} ${r.path}`,
        ).toBeDefined();
      const routed = new Set(routes.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)}`));
      for (const [path, ops] of Object.entries(described))
        for (const [method, o] of Object.entries(ops))
          if (!o['x-custos-pending'])
            expect(routed.has(`${method} ${path}`), `${method} ${path} is described but not routed`).toBe(
              true,
            );
      const served = await fetch(`${s.url}/api/openapi.json`);
      expect(served.status).toBe(200);
      expect(served.headers.get('cache-control')).toBe('no-store');
      // DICOMweb answers are not sniffed either, and no cache may keep them (each view is decided and recorded).
      const dicomweb = await get('data-steward', '/dicom-web/studies?limit=1');
      expect(dicomweb.status).toBe(200);
      expect(dicomweb.headers.get('x-content-type-options')).toBe('nosniff');
      expect(dicomweb.headers.get('cache-control')).toBe('no-store');
      expect(((await served.json()) as { openapi: string }).openapi).toBe('3.1.0');
    });

    it('serves the console with its headers, client routes, and leaves API 404s alone', async () => {
      const index = await fetch(`${s.url}/`);
      expect(index.status).toBe(200);
      expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(index.headers.get('content-security-policy')).toMatch(/^default-src 'self'/);
      expect(index.headers.get('cache-control')).toMatch(/no-cache/);
      const route = await fetch(`${s.url}/studies/1.2.3`);
      expect(route.status).toBe(200);
      expect(await route.text()).toContain('<title>Custos</title>');
      const asset = await fetch(`${s.url}/assets/app-1a2b3c.js`);
      expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect((await fetch(`${s.url}/assets/missing.js`)).status).toBe(404);
      // An escaped traversal never leaves the console directory.
      expect((await fetch(`${s.url}/..%2f..%2f..%2fetc%2fhostname`)).status).toBe(404);
      expect(await (await fetch(`${s.url}/%2e%2e/%2e%2e/etc/hostname`)).text()).toContain(
        '<title>Custos</title>',
      );
      const api = await fetch(`${s.url}/api/nothing-here`);
      expect(api.status).toBe(404);
      expect(api.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    });

    it("answers another method than GET or HEAD on the console's pages with 405 and Allow, OPTIONS with 204", async () => {
      // Until 7 Dec 2026 a 404 'no resource at /studies/1.2.3', for a page a GET is served.
      for (const path of ['/studies/1.2.3', '/assets/app-1a2b3c.js', '/']) {
        const post = await fetch(`${s.url}${path}`, { method: 'POST', body: 'x' });
        expect(post.status).toBe(405);
        expect(post.headers.get('allow')).toBe('GET, HEAD');
        expect(await post.json()).toMatchObject({
          code: 'http.method-not-allowed',
          detail: `POST is not allowed on ${path}: the console's pages take GET and HEAD`,
        });
        const options = await fetch(`${s.url}${path}`, { method: 'OPTIONS' });
        expect(options.status).toBe(204);
        expect(options.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
      }
      // What is not there stays a 404, whatever the method.
      expect((await fetch(`${s.url}/assets/missing.js`, { method: 'DELETE' })).status).toBe(404);
    });

    // Last: it adds to the quarantine, which the activity figures above count.
    it('pages the quarantine queue in the order asked, over all its pages', async () => {
      for (const n of [7, 3, 9, 1, 5, 8, 2]) await quarantineOne(s, `QP-${n}`);
      interface Page {
        entries: { id: string; patientId: string; createdAt: string }[];
        total: number;
        next: { offset: number; limit: number } | null;
      }
      const list = async (query: string) => {
        const res = await get('data-steward', `/api/quarantine?${query}`);
        expect(res.status).toBe(200);
        return (await res.json()) as Page;
      };
      const total = seed.quarantined + 7;
      for (const order of ['', 'sort=PatientID&dir=asc&', 'sort=PatientID&dir=desc&', 'sort=Received&']) {
        const all = await list(`${order}limit=1000`);
        expect(all.total).toBe(total);
        expect(all.next).toBeNull();
        const paged: Page['entries'] = [];
        for (let offset = 0; ;) {
          const page = await list(`${order}limit=4&offset=${offset}`);
          expect(page.total).toBe(total);
          paged.push(...page.entries);
          if (!page.next) break;
          expect(page.next).toEqual({ offset: offset + 4, limit: 4 });
          offset = page.next.offset;
        }
        expect(paged.map((e) => e.id)).toEqual(all.entries.map((e) => e.id));
        const keys = all.entries.map((e) => (order.includes('PatientID') ? e.patientId : e.createdAt));
        const ascending = [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        expect(keys).toEqual(
          order.includes('asc') || order === 'sort=Received&' ? ascending : ascending.reverse(),
        );
      }
      expect((await list('sort=PatientID&limit=1000')).entries.map((e) => e.patientId).slice(-7)).toEqual(
        [1, 2, 3, 5, 7, 8, 9].map((n) => `QP-${n}`),
      );
      for (const bad of ['sort=Reasons', 'dir=desc', 'sort=PatientID&dir=up']) {
        const res = await get('data-steward', `/api/quarantine?${bad}`);
        expect(res.status).toBe(400);
        expect(((await res.json()) as { code: string }).code).toBe('quarantine.bad-request');
      }
    });

    it('offers a next audit page only when a record lies beyond: no empty page when the pages fill exactly', async () => {
      interface Page {
        records: { seq: number }[];
        next: { before?: number; after?: number } | null;
      }
      const steward = seed.accounts.find((a) => a.role === 'data-steward')!.username;
      const records = async (query: string) => {
        const res = await get('privacy-officer', `/api/audit/records?user=${steward}&${query}`);
        expect(res.status).toBe(200);
        return (await res.json()) as Page;
      };
      // Some records of the steward's (each listing of the quarantine is one), which do not change while the
      // privacy officer reads them.
      for (let i = 0; i < 6; i++)
        expect((await get('data-steward', '/api/quarantine?limit=1')).status).toBe(200);
      const all = (await records('limit=1000')).records.map((r) => r.seq);
      expect(all.length).toBeGreaterThanOrEqual(4);
      expect(all).toEqual([...all].sort((a, b) => b - a));
      // Exactly one page's worth: nothing older, and nothing newer than the newest.
      expect((await records(`limit=${all.length}`)).next).toBeNull();
      // Two pages (filled exactly when the count is even): newest first, then older, then back up to the newest.
      const n = Math.floor(all.length / 2);
      const top = await records(`limit=${all.length - n}`);
      expect(top.next).toEqual({ before: all[all.length - n - 1] });
      const older = await records(`limit=${all.length - n}&before=${top.next!.before}`);
      expect(older.records.map((r) => r.seq)).toEqual(all.slice(all.length - n));
      expect(older.next).toBeNull();
      const oldest = all[all.length - 1]!;
      const newer = await records(`limit=${all.length - 1}&after=${oldest}`);
      expect(newer.records.map((r) => r.seq)).toEqual(all.slice(0, -1).reverse());
      expect(newer.next).toBeNull();
      const partway = await records(`limit=1&after=${oldest}`);
      expect(partway.next).toEqual({ after: all[all.length - 2] });
    });
  });
}
