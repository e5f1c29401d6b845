// Issue 6: data-quality KPIs in the admin API (GET /api/quality/kpis), through the policy decision point.
// Runs on every backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { Tags } from '../src/dicom/tags.js';
import { backends } from './support/backends.js';
import { makeInstance, stowBody, uid, type FixtureSpec } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const KVP = 0x00180060;
const MODALITY = 0x00080060;
const ROLES = ['data-steward', 'data-owner', 'data-custodian', 'privacy-officer', 'radiologist'] as const;

interface Kpis {
  from: string;
  to: string;
  objects: Record<string, number>;
  headerCorrectPercent: number | null;
  quarantine: { open: number; oldestAgeHours: number | null; medianAgeHours: number | null };
  reconciliations: Record<string, number>;
  byDay: {
    day: string;
    accepted: number;
    acceptedWithWarnings: number;
    quarantined: number;
    rejected: number;
  }[];
}

describe.each(backends())('quality KPIs on %s', (backend) => {
  let s: TestServer;
  const tokens = new Map<string, string>();
  const today = new Date().toISOString().slice(0, 10);
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const spec = (over: Partial<FixtureSpec> = {}): FixtureSpec => ({
    studyUid: uid(1),
    seriesUid: uid(2),
    sopInstanceUid: uid(3),
    ...over,
  });
  const kpis = (role: string | undefined, query: string) =>
    fetch(`${s.url}/api/quality/kpis${query}`, {
      headers: role ? { Authorization: `Bearer ${tokens.get(role) ?? role}` } : {},
    });
  const steward = (path: string, body: unknown) =>
    fetch(`${s.url}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.get('data-steward')}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    s = await startTestServer(backend);
    const operator = systemPrincipal('test');
    for (const role of ROLES) {
      await s.app.accounts.add(operator, { username: role, role });
      tokens.set(role, (await s.app.auth.createToken(operator, role)).token);
    }
    const ok = makeInstance(spec());
    const held = [0, 1, 2].map(() => spec({ omit: [MODALITY] }));
    const stow = async (parts: Buffer[]) => {
      const { body, contentType } = stowBody(parts.map((bytes) => ({ bytes })));
      return fetch(`${s.dicomweb}/studies`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
        body,
      });
    };
    const res = await stow([
      ok,
      makeInstance(spec({ omit: [KVP] })), // Type 2 missing: accepted with a warning
      ...held.map((h) => makeInstance(h)), // Type 1 missing: quarantined
      makeInstance(spec({ omit: [Tags.SOPInstanceUID] })), // refused: no SOP Instance UID
    ]);
    expect(res.status).toBe(202);
    // The same object again is a duplicate, not a new arrival.
    expect((await stow([ok])).status).toBe(200);
    const list = (await (
      await fetch(`${s.url}/api/quarantine?limit=100`, {
        headers: { Authorization: `Bearer ${tokens.get('data-steward')}` },
      })
    ).json()) as { entries: { id: string; sopInstanceUid: string }[] };
    const idOf = (sop: string) => list.entries.find((e) => e.sopInstanceUid === sop)!.id;
    const first = idOf(held[0]!.sopInstanceUid);
    expect((await steward(`/api/quarantine/${first}/corrections`, { Modality: 'CT' })).status).toBe(200);
    expect((await steward(`/api/quarantine/${first}/release`, {})).status).toBe(200);
    const second = idOf(held[1]!.sopInstanceUid);
    expect((await steward(`/api/quarantine/${second}/reject`, { reason: 'test image' })).status).toBe(200);
  });
  afterAll(async () => {
    await s?.stop();
    expect(s.unexpected).toEqual([]);
  });

  it('counts arrivals by outcome, the open queue and the reconciliations, per day', async () => {
    const res = await kpis('data-steward', `?from=${yesterday}&to=${today}`);
    expect(res.status, await res.clone().text()).toBe(200);
    const k = (await res.json()) as Kpis;
    expect(k.objects).toEqual({
      total: 6,
      accepted: 1,
      acceptedWithWarnings: 1,
      quarantined: 3,
      rejected: 1,
    });
    expect(k.headerCorrectPercent).toBe(16.7);
    expect(k.quarantine.open).toBe(1);
    expect(k.quarantine.oldestAgeHours).toBeGreaterThanOrEqual(0);
    expect(k.quarantine.oldestAgeHours).toBeLessThan(1);
    expect(k.quarantine.medianAgeHours).toBe(k.quarantine.oldestAgeHours);
    expect(k.reconciliations).toEqual({
      merges: 0,
      identifierChanges: 0,
      corrections: 1,
      releases: 1,
      rejections: 1,
    });
    expect(k.byDay).toEqual([
      { day: yesterday, accepted: 0, acceptedWithWarnings: 0, quarantined: 0, rejected: 0 },
      { day: today, accepted: 1, acceptedWithWarnings: 1, quarantined: 3, rejected: 1 },
    ]);
    // A period before any arrival: nothing counted, no percentage.
    const empty = (await (await kpis('data-steward', '?from=2020-01-01&to=2020-01-02')).json()) as Kpis;
    expect(empty.objects.total).toBe(0);
    expect(empty.headerCorrectPercent).toBeNull();
  });

  it('serves the steward, owner, custodian and privacy officer; refuses and records anyone else', async () => {
    for (const role of ['data-steward', 'data-owner', 'data-custodian', 'privacy-officer'])
      expect((await kpis(role, '')).status, role).toBe(200);
    for (const role of ['radiologist', undefined]) {
      const res = await kpis(role === undefined ? undefined : role, '');
      expect(res.status).toBe(role ? 403 : 401);
    }
    const admin = await kpis(s.token, '');
    expect(admin.status).toBe(403);
    expect(await admin.json()).toMatchObject({ code: 'access.denied' });
    const denied = await s.app.auditStore.search({ action: ['read-quality-kpis'], limit: 20 });
    expect(denied.filter((r) => r.outcome === 'denied').map((r) => r.actor.name)).toEqual(
      expect.arrayContaining(['radiologist']),
    );
    expect(denied.filter((r) => r.outcome === 'success').length).toBeGreaterThanOrEqual(4);
  });

  it('answers a bad period with problem+json naming the parameter', async () => {
    for (const [query, parameter] of [
      ['?from=2026-13-01', 'from'],
      ['?from=2026-02-30', 'from'],
      [`?from=${today}&to=${yesterday}`, 'from'],
      ['?from=2020-01-01&to=2026-01-01', 'to'],
      ['?since=2026-01-01', 'since'],
    ] as const) {
      const res = await kpis('data-steward', query);
      expect(res.status, query).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      const body = (await res.json()) as { code: string; detail: string };
      expect(body.code).toBe('quality.bad-request');
      expect(body.detail).toContain(parameter);
    }
  });
});
