import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp } from '../src/app/custos-app.js';
import { CedarPolicyDecisionPoint } from '../src/adapters/policy/cedar-policy.js';
import { scopePredicate } from '../src/services/query-service.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { startTestServer, type TestServer, postStow, markRestricted } from './support/test-server.js';

type Json = Record<string, { vr: string; Value?: unknown[] }>;
const t = (g: number, e: number) => ((g << 16) | e) >>> 0;

/**
 * Access control end to end through DICOMweb: accounts with roles and scopes, studies whose department,
 * referring physician and classification come from their headers and the index, decisions by the shipped
 * Cedar policies, refusals in the audit ledger with the policy that decided.
 */
describe.each(backends())('access control through DICOMweb on %s', (backend) => {
  let s: TestServer;
  const tokens: Record<string, string> = {};
  const study = {
    radiology: uid(11),
    cardiology: uid(12),
    restricted: uid(13),
    byPhysicianId: uid(14),
    careTeam: uid(15),
  };
  const sop: Record<string, string> = {};
  const series: Record<string, string> = {};
  const operator = systemPrincipal('test');

  const get = (who: string, path: string, accept = 'application/dicom+json') =>
    fetch(`${s.dicomweb}${path}`, { headers: { Authorization: `Bearer ${tokens[who]}`, Accept: accept } });
  const studiesSeenBy = async (who: string, query = '') => {
    const res = await get(who, `/studies${query}`);
    expect(res.status, await res.clone().text()).toBe(200);
    return ((await res.json()) as Json[]).map((j) => j['0020000D']!.Value![0] as string).sort();
  };
  const denials = async (who: string) =>
    (await s.app.auditStore.search({ actor: who, outcome: 'denied', order: 'asc', limit: 10_000 })).map(
      (r) => ({
        action: r.action,
        policy: r.policy,
        study_uid: r.studyUid ?? '',
        detail_json: JSON.stringify(r.detail ?? {}),
      }),
    );

  beforeAll(async () => {
    s = await startTestServer(backend);
    tokens.admin = s.token;
    const make = (
      key: keyof typeof study,
      department: string,
      referring: string,
      extra: Parameters<typeof makeInstance>[0]['extra'] = [],
    ) => {
      sop[key] = uid(20);
      series[key] = uid(30);
      return makeInstance({
        studyUid: study[key],
        seriesUid: series[key],
        sopInstanceUid: sop[key],
        patientId: `PID-${key}`,
        referringPhysician: referring,
        extra: [{ tag: t(0x0008, 0x1040), vr: 'LO', value: department }, ...extra],
      });
    };
    const stored = await postStow(s, [
      make('radiology', 'Radiology', 'SMITH^JOHN'),
      make('cardiology', 'Cardiology', 'Jones^Mary'),
      make('restricted', 'Radiology', 'SMITH^JOHN^^^'),
      make('byPhysicianId', 'Cardiology', 'Unknown^Doctor', [
        {
          tag: t(0x0008, 0x0096),
          vr: 'SQ',
          value: [
            [
              {
                tag: t(0x0040, 0x1101),
                vr: 'SQ',
                value: [
                  [
                    { tag: t(0x0008, 0x0100), vr: 'SH', value: 'NPI-555' },
                    { tag: t(0x0008, 0x0102), vr: 'SH', value: 'L' },
                    { tag: t(0x0008, 0x0104), vr: 'LO', value: 'Hospital physician id' },
                  ],
                ],
              },
            ],
          ],
        },
      ]),
      make('careTeam', 'Oncology', 'Brown^Bob'),
    ]);
    expect(stored.status, await stored.clone().text()).toBe(200);
    await markRestricted(s, study.restricted);

    const accounts: [string, string, Record<string, string>][] = [
      ['rad', 'radiologist', { department: 'radiology' }],
      ['card', 'radiologist', { department: 'Cardiology' }],
      ['refdoc', 'referring-physician', { physicianName: 'smith^john' }],
      ['refid', 'referring-physician', { physicianName: 'Other^Person', physicianId: 'NPI-555' }],
      ['sys', 'sysadmin', {}],
      ['stud', 'student', {}],
      ['onc', 'technologist', { department: 'Radiology' }],
    ];
    for (const [username, role, facts] of accounts) {
      await s.app.accounts.add(operator, { username, role, ...facts });
      tokens[username] = (await s.app.auth.createToken(operator, username)).token;
    }
    await s.app.accounts.addToCareTeam(operator, 'onc', study.careTeam, 'performing technologist');
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
  });

  it('reads department and referring physician facts from the stored headers into the index', async () => {
    const rows = await s.app.index.db
      .selectFrom('studies')
      .select(['study_uid', 'department', 'referring_physician_name', 'referring_physician_ids'])
      .execute();
    const by = new Map(rows.map((r) => [r.study_uid, r]));
    expect(by.get(study.radiology)).toMatchObject({
      department: 'Radiology',
      referring_physician_name: 'SMITH^JOHN',
    });
    expect(by.get(study.byPhysicianId)).toMatchObject({
      department: 'Cardiology',
      referring_physician_ids: 'NPI-555',
    });
  });

  it('narrows lists in SQL with the partially evaluated policies, leaving the rest to the row check', async () => {
    const pdp = new CedarPolicyDecisionPoint(s.app.policies);
    const inScope = async (who: string) => {
      const principal = await s.app.auth.authenticateBearer(`Bearer ${tokens[who]}`, 'test');
      const filter = await pdp.studyFilter(principal, 'query');
      const rows = await s.app.index.db
        .selectFrom('studies as st')
        .select('st.study_uid')
        .where(scopePredicate(filter, new Date().toISOString()))
        .execute();
      return rows.map((r) => r.study_uid).sort();
    };
    // The restricted study of the department passes the narrowing; the forbid is decided row by row.
    expect(await inScope('rad')).toEqual([study.radiology, study.restricted].sort());
    expect(await inScope('refdoc')).toEqual([study.radiology, study.restricted].sort());
    expect(await inScope('refid')).toEqual([study.byPhysicianId]);
    expect(await inScope('onc')).toEqual([study.radiology, study.restricted, study.careTeam].sort());
    expect(await inScope('sys')).toEqual([]);
    expect(await inScope('admin')).toHaveLength(5);
  });

  it('shows a radiologist only the studies of their department in QIDO (department compared case-insensitively)', async () => {
    expect(await studiesSeenBy('rad')).toEqual([study.radiology].sort());
    expect(await studiesSeenBy('card')).toEqual([study.cardiology, study.byPhysicianId].sort());
    expect(await studiesSeenBy('admin')).toEqual(
      [study.radiology, study.cardiology, study.byPhysicianId, study.careTeam].sort(),
    );
  });

  it("lets a radiologist read their department's study and refuses another department's with 403 problem+json", async () => {
    const own = await get('rad', `/studies/${study.radiology}/metadata`);
    expect(own.status).toBe(200);
    const pixels = await get(
      'rad',
      `/studies/${study.radiology}`,
      'multipart/related; type="application/dicom"',
    );
    expect(pixels.status).toBe(200);
    await pixels.arrayBuffer();
    for (const path of [
      `/studies/${study.cardiology}`,
      `/studies/${study.cardiology}/metadata`,
      `/studies/${study.cardiology}/series`,
    ]) {
      const res = await get(
        'rad',
        path,
        path.endsWith(study.cardiology)
          ? 'multipart/related; type="application/dicom"'
          : 'application/dicom+json',
      );
      if (path.endsWith('/series')) {
        // A series-level QIDO inside a forbidden study returns nothing rather than the study's series.
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual([]);
        continue;
      }
      expect(res.status, path).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = (await res.json()) as { status: number; detail: string };
      expect(problem.status).toBe(403);
      // The answer names no policy and no fact of the study (the ledger keeps the reason).
      expect(problem.detail).toMatch(/^rad may not view-\w+ this study, or it is not in the archive$/);
    }
    const wadoUri = await fetch(
      `${s.url}/wado?requestType=WADO&studyUID=${study.cardiology}&seriesUID=${series.cardiology}&objectUID=${sop.cardiology}&contentType=application/dicom`,
      { headers: { Authorization: `Bearer ${tokens.rad}` } },
    );
    expect(wadoUri.status).toBe(403);
  });

  it('shows a referring physician only the studies whose ReferringPhysicianName names them (PN rules)', async () => {
    // 'SMITH^JOHN' and 'SMITH^JOHN^^^' in the headers against the account's 'smith^john'; restricted excluded.
    expect(await studiesSeenBy('refdoc')).toEqual([study.radiology]);
    expect((await get('refdoc', `/studies/${study.radiology}/metadata`)).status).toBe(200);
    expect((await get('refdoc', `/studies/${study.cardiology}/metadata`)).status).toBe(403);
  });

  it('links a referring physician by the explicit physician identifier on the account', async () => {
    expect(await studiesSeenBy('refid')).toEqual([study.byPhysicianId]);
    expect((await get('refid', `/studies/${study.byPhysicianId}/metadata`)).status).toBe(200);
  });

  it('opens a study to its care team (the relationship HL7 orders will fill)', async () => {
    expect(await studiesSeenBy('onc')).toEqual([study.radiology, study.careTeam].sort());
    expect((await get('onc', `/studies/${study.careTeam}/metadata`)).status).toBe(200);
  });

  it('refuses a sysadmin pixels, metadata and queries: 403 with the default-deny policy in the ledger', async () => {
    const px = await get('sys', `/studies/${study.radiology}`, 'multipart/related; type="application/dicom"');
    expect(px.status).toBe(403);
    expect(px.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await get('sys', `/studies/${study.radiology}/metadata`)).status).toBe(403);
    expect(
      (
        await get(
          'sys',
          `/studies/${study.radiology}/series/${series.radiology}/instances/${sop.radiology}/frames/1`,
          'multipart/related; type="application/octet-stream"',
        )
      ).status,
    ).toBe(403);
    expect((await get('sys', '/studies')).status).toBe(403);
    const d = await denials('sys');
    expect(d.map((r) => [r.action, r.policy])).toEqual([
      ['view-pixels', 'default-deny'],
      ['view-metadata', 'default-deny'],
      ['view-pixels', 'default-deny'],
      ['query', 'default-deny'],
    ]);
    expect(d[0]!.study_uid).toBe(study.radiology);
    expect(JSON.parse(d[0]!.detail_json).reason).toMatch(/no policy permits view-pixels for role 'sysadmin'/);
  });

  it('needs an explicit grant for a restricted study, even in the department; the grant opens it until it expires', async () => {
    expect((await get('rad', `/studies/${study.restricted}/metadata`)).status).toBe(403);
    expect((await get('admin', `/studies/${study.restricted}/metadata`)).status).toBe(403);
    expect(await studiesSeenBy('rad')).not.toContain(study.restricted);
    const d = await denials('rad');
    expect(d.at(-1)).toMatchObject({
      action: 'view-metadata',
      policy: 'restricted-needs-grant',
      study_uid: study.restricted,
    });

    await s.app.accounts.grant(operator, 'rad', study.restricted, { days: 1, reason: 'tumour board' });
    expect((await get('rad', `/studies/${study.restricted}/metadata`)).status).toBe(200);
    expect(await studiesSeenBy('rad')).toEqual([study.radiology, study.restricted].sort());
    expect((await get('card', `/studies/${study.restricted}/metadata`)).status).toBe(403);
    const allowed = (
      await s.app.auditStore.search({
        actor: 'rad',
        action: ['view-metadata'],
        studyUid: study.restricted,
        outcome: 'success',
        order: 'asc',
        limit: 100,
      })
    ).map((r) => ({ policy: r.policy }));
    expect(allowed.map((r) => r.policy)).toEqual(['radiologist-department,granted-read']);

    // An expired grant opens nothing.
    await s.app.index.db
      .insertInto('study_grants')
      .values({
        user_pk: Number(
          (
            await s.app.index.db
              .selectFrom('users')
              .select('pk')
              .where('username', '=', 'stud')
              .executeTakeFirstOrThrow()
          ).pk,
        ),
        study_uid: study.radiology,
        granted_by: 'test',
        granted_at: '2020-01-01T00:00:00.000Z',
        expires_at: '2020-01-02T00:00:00.000Z',
        reason: 'expired',
      })
      .execute();
    expect((await get('stud', `/studies/${study.radiology}/metadata`)).status).toBe(403);
  });

  it('shows a student nothing without a grant, and only the granted study with one', async () => {
    expect(await studiesSeenBy('stud')).toEqual([]);
    const px = await get(
      'stud',
      `/studies/${study.cardiology}`,
      'multipart/related; type="application/dicom"',
    );
    expect(px.status).toBe(403);
    await s.app.accounts.grant(operator, 'stud', study.cardiology, { days: 1, reason: 'teaching file' });
    expect(await studiesSeenBy('stud')).toEqual([study.cardiology]);
    expect((await get('stud', `/studies/${study.cardiology}/metadata`)).status).toBe(200);
    expect((await get('stud', `/studies/${study.radiology}/metadata`)).status).toBe(403);
  });

  it('pages QIDO results over the studies the principal may see', async () => {
    const all = await studiesSeenBy('card');
    const page1 = await studiesSeenBy('card', '?limit=1');
    const page2 = await studiesSeenBy('card', '?limit=1&offset=1');
    expect(page1).toHaveLength(1);
    expect(page2).toHaveLength(1);
    expect([...page1, ...page2].sort()).toEqual(all);
    const res = await get('card', '/studies?limit=1');
    expect(res.headers.get('warning')).toBe(
      `299 ${s.dicomweb} "There are additional results that can be requested"`,
    );
  });

  it('records every denial with the deciding policy and the study', async () => {
    const rows = (await s.app.auditStore.search({ outcome: 'denied', limit: 10_000 })).map((r) => ({
      actor: r.actor.name,
      action: r.action,
      policy: r.policy,
      study_uid: r.studyUid ?? '',
    }));
    expect(rows.length).toBeGreaterThanOrEqual(10);
    for (const r of rows) {
      expect(r.policy).toMatch(/^(default-deny|restricted-needs-grant)$/);
      if (r.action !== 'query') expect(r.study_uid).not.toBe('');
    }
  });

  it('applies a new policy version to the running server at once', async () => {
    const text = (await s.app.policies.show()).text
      .replace(
        /@id\("radiologist-department"\)/,
        '@id("radiologist-department")\n@note("cardiology reads for radiology")',
      )
      .replace(
        'when { principal.department != "" && resource.department == principal.department };\n\n@id("technologist-department")',
        'when { principal.department != "" && (resource.department == principal.department || resource.department == "radiology") };\n\n@id("technologist-department")',
      );
    expect(s.app.policies.validate(text)).toEqual([]);
    const { version } = await s.app.policies.apply(operator, text, 'cover radiology');
    expect(version).toBe(2);
    expect(await studiesSeenBy('card')).toEqual(
      [study.radiology, study.cardiology, study.byPhysicianId].sort(),
    );
  });

  it('picks up a version applied by another process sharing the database (version check)', async () => {
    const other = await openApp(s.config);
    try {
      const v1 = await other.policies.show(1);
      const { version } = await other.policies.apply(operator, v1.text, 'back to the shipped default');
      expect(version).toBe(3);
    } finally {
      await other.close();
    }
    // No notification crosses processes: the decision point notices within its refresh interval (1 s).
    let seen: string[] = [];
    for (let i = 0; i < 50; i++) {
      seen = await studiesSeenBy('card');
      if (!seen.includes(study.radiology)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toEqual([study.cardiology, study.byPhysicianId].sort());
  });

  it('fills the principal of a bearer token with the account facts and research projects', async () => {
    await s.app.accounts.addToProject(operator, 'LUNG-1', { username: 'refdoc' });
    await s.app.accounts.addToProject(operator, 'LUNG-1', { studyUid: study.cardiology });
    const p = await s.app.auth.authenticateBearer(`Bearer ${tokens.refdoc}`, '127.0.0.1');
    expect(p).toMatchObject({
      role: 'referring-physician',
      physicianName: 'smith^john',
      physicianId: null,
      department: null,
      projects: ['LUNG-1'],
    });
    const facts = await s.app.index.db
      .selectFrom('study_projects')
      .select(['project', 'study_uid'])
      .execute();
    expect(facts).toEqual([{ project: 'LUNG-1', study_uid: study.cardiology }]);
  });

  it('refuses STOW-RS to a role that may not store with 403 problem+json and one denial, storing nothing', async () => {
    // Until 6 Dec 2026 the refusal came back as 409 with the body {} (no FailedSOPSequence, no problem+json).
    const fresh = uid(40);
    const { body, contentType } = stowBody([
      { bytes: makeInstance({ studyUid: fresh, seriesUid: uid(41), sopInstanceUid: uid(42) }) },
    ]);
    for (const who of ['stud', 'refdoc']) {
      const before = (await denials(who)).filter((d) => d.action === 'store').length;
      const res = await fetch(`${s.dicomweb}/studies`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${tokens[who]}`, 'Content-Type': contentType },
        body,
      });
      expect(res.status, who).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await res.json()).toMatchObject({ code: 'access.denied' });
      expect((await denials(who)).filter((d) => d.action === 'store').length, who).toBe(before + 1);
    }
    expect(await studiesSeenBy('admin', `?StudyInstanceUID=${fresh}`)).toEqual([]);
  });
});
