import { describe, expect, it } from 'vitest';
import { asUserId } from '../../domain/ids.js';
import { ROLES, type Principal } from '../../domain/principal.js';
import {
  ACTIONS,
  type Action,
  type PolicySetSource,
  type ResourceRef,
  type StudyFilter,
} from '../../ports/policy.js';
import { CedarPolicyDecisionPoint, CedarPolicyValidator, studyIdentityMatters } from './cedar-policy.js';

const validator = new CedarPolicyValidator();
const DEFAULT = validator.defaultPolicyText();

class MemorySource implements PolicySetSource {
  versions = [DEFAULT];
  reads = 0;
  async activeVersion() {
    this.reads++;
    return this.versions.length;
  }
  async text(v: number) {
    return this.versions[v - 1]!;
  }
}

const user = (role: string): Principal => ({
  kind: 'user',
  id: asUserId('42'),
  name: 'jdoe',
  role,
  source: 'test',
  department: 'Radiology',
  physicianName: 'Smith^John',
  physicianId: 'P123',
  projects: ['LUNG-1'],
});

const base: ResourceRef = {
  type: 'study',
  studyUid: '1.2.3',
  patientId: 'PID-1',
  department: 'Cardiology',
  classification: 'normal',
  referringPhysicianName: 'Other^Doctor',
  referringPhysicianIds: ['P999'],
  owner: 'someone-else',
  careTeam: ['7'],
  projects: ['OTHER'],
  grantees: ['8'],
};

/** Each scope a study can be in relative to the principal above. */
const SCOPES: Record<string, ResourceRef> = {
  archive: { type: 'archive' },
  none: base,
  department: { ...base, department: ' RADIOLOGY ' },
  'referring-name': { ...base, referringPhysicianName: 'SMITH^JOHN^^^' },
  'referring-id': { ...base, referringPhysicianIds: ['P999', 'P123'] },
  'care-team': { ...base, careTeam: ['7', '42'] },
  project: { ...base, projects: ['OTHER', 'LUNG-1'] },
  grant: { ...base, grantees: ['42'] },
  owner: { ...base, owner: 'jdoe' },
  'restricted-department': { ...base, department: 'Radiology', classification: 'restricted' },
  'restricted-department-grant': {
    ...base,
    department: 'Radiology',
    classification: 'restricted',
    grantees: ['42'],
  },
};
type Scope = keyof typeof SCOPES;

const READ: Action[] = ['query', 'view-metadata', 'view-pixels'];
const STEWARD: Action[] = ['query', 'view-metadata', 'correct-header', 'request-deletion'];
const NORMAL_STUDY_SCOPES: Scope[] = [
  'none',
  'department',
  'referring-name',
  'referring-id',
  'care-team',
  'project',
  'grant',
  'owner',
];
const everyStudy = (actions: Action[]) =>
  Object.fromEntries(NORMAL_STUDY_SCOPES.map((s) => [s, actions])) as Partial<Record<Scope, Action[]>>;

/** The matrix of docs/access-control.md: what each role may do in each scope; everything else is denied. */
const EXPECTED: Record<string, Partial<Record<Scope, Action[]>>> = {
  radiologist: {
    archive: ['query', 'store'],
    department: [...READ, 'print', 'export-clinical'],
    'care-team': [...READ, 'print'],
    grant: READ,
    'restricted-department-grant': [...READ, 'print', 'export-clinical'],
  },
  technologist: {
    archive: ['query', 'store'],
    department: [...READ, 'correct-header'],
    'care-team': [...READ, 'print'],
    grant: READ,
    'restricted-department-grant': [...READ, 'correct-header'],
  },
  'referring-physician': {
    archive: ['query'],
    'referring-name': [...READ, 'print', 'export-clinical'],
    'referring-id': [...READ, 'print', 'export-clinical'],
    'care-team': [...READ, 'print'],
    grant: READ,
    'restricted-department-grant': READ,
  },
  student: { archive: ['query'], grant: READ, 'restricted-department-grant': READ },
  sysadmin: { archive: ['administer'] },
  'data-owner': {
    archive: ['query', 'view-activity', 'review-break-glass', 'read-quality-kpis'],
    department: ['query', 'view-metadata', 'approve-deletion', 'read-audit'],
    owner: ['query', 'view-metadata', 'approve-deletion', 'read-audit'],
    'restricted-department-grant': ['query', 'view-metadata', 'approve-deletion', 'read-audit'],
  },
  'data-steward': {
    archive: ['query', 'store', 'correct-header', 'view-activity', 'read-quality-kpis'],
    ...everyStudy(STEWARD),
    'restricted-department-grant': STEWARD,
  },
  'data-custodian': { archive: ['administer', 'view-activity', 'read-quality-kpis'] },
  'privacy-officer': { archive: ['read-audit', 'view-activity', 'review-break-glass', 'read-quality-kpis'] },
  researcher: { project: ['export-deidentified'] },
  administrator: {
    archive: ['query', 'store', 'read-audit', 'administer', 'view-activity'],
    ...everyStudy(READ),
    'restricted-department-grant': READ,
  },
};

// Clinicians may open break-glass on any study, restricted ones included (break-glass-open).
for (const role of ['radiologist', 'technologist', 'referring-physician'])
  for (const scope of Object.keys(SCOPES) as Scope[])
    if (scope !== 'archive') EXPECTED[role]![scope] = [...(EXPECTED[role]![scope] ?? []), 'break-glass'];

describe('default Cedar policies: role x action x scope', () => {
  const pdp = new CedarPolicyDecisionPoint(new MemorySource());

  it('the shipped default policy set validates against the shipped schema', () => {
    expect(validator.validate(DEFAULT)).toEqual([]);
  });

  it('the matrix covers every shipped role', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual([...ROLES].sort());
  });

  for (const role of ROLES) {
    for (const scope of Object.keys(SCOPES) as Scope[]) {
      const allowed = EXPECTED[role]![scope] ?? [];
      it(`${role} / ${scope}: allows ${allowed.length ? allowed.join(', ') : 'nothing'}, denies the rest`, async () => {
        const got: Action[] = [];
        for (const action of ACTIONS) {
          const d = await pdp.decide(user(role), action, SCOPES[scope]!);
          if (d.allowed) got.push(action);
          expect(d.policy).not.toBe('');
        }
        expect(got.sort()).toEqual([...allowed].sort());
      });
    }
  }

  it('names the deciding policy: permit id, forbid id, or default-deny', async () => {
    const d1 = await pdp.decide(user('radiologist'), 'view-pixels', SCOPES.department!);
    expect(d1).toMatchObject({ allowed: true, policy: 'radiologist-department' });
    expect(d1.reason).toMatch(/policy version 1/);
    const d2 = await pdp.decide(user('radiologist'), 'view-pixels', SCOPES['restricted-department']!);
    expect(d2).toMatchObject({ allowed: false, policy: 'restricted-needs-grant' });
    const d3 = await pdp.decide(user('sysadmin'), 'view-pixels', SCOPES.department!);
    expect(d3).toMatchObject({ allowed: false, policy: 'default-deny' });
    expect(d3.reason).toMatch(/no policy permits view-pixels for role 'sysadmin'/);
  });

  it('denies a principal without a department the department scope, and an unknown role everything', async () => {
    const p = { ...user('radiologist'), department: null };
    expect((await pdp.decide(p, 'query', { ...base, department: null })).allowed).toBe(false);
    for (const action of ACTIONS)
      for (const scope of Object.values(SCOPES))
        expect((await pdp.decide(user('janitor'), action, scope)).allowed).toBe(false);
  });

  it('decides for AE and system principals by their role', async () => {
    const ae: Principal = { kind: 'ae', id: asUserId('CT1'), name: 'CT1', role: 'technologist', source: 'x' };
    expect((await pdp.decide(ae, 'store', { type: 'archive' })).allowed).toBe(true);
    expect((await pdp.decide(ae, 'view-pixels', SCOPES.department!)).allowed).toBe(false);
  });

  it("gives an AE bound to an account that account's grants and care team, and an unbound AE none", async () => {
    // An AE's id is its bound account's (ae-registry admit()): account 7 is on the care team of `base`, 8 holds
    // a grant on it.
    const bound = (id: string, role: string): Principal => ({
      kind: 'ae',
      id: asUserId(id),
      name: 'WS1',
      role,
      source: 'x',
    });
    expect(await pdp.decide(bound('7', 'radiologist'), 'view-pixels', base)).toMatchObject({
      allowed: true,
      policy: 'care-team',
    });
    expect(await pdp.decide(bound('8', 'student'), 'view-pixels', base)).toMatchObject({
      allowed: true,
      policy: 'granted-read',
    });
    const restricted = { ...base, classification: 'restricted' };
    expect((await pdp.decide(bound('8', 'radiologist'), 'view-pixels', restricted)).allowed).toBe(true);
    expect((await pdp.decide(bound('7', 'radiologist'), 'view-pixels', restricted)).allowed).toBe(false);
    expect(await pdp.studyFilter(bound('8', 'student'), 'query')).toEqual({ kind: 'grantee', userId: '8' });
    // Not bound (`ae:<title>`): no account, so no grant or care team can name it.
    for (const id of ['ae:7', 'ae:8'])
      expect((await pdp.decide(bound(id, 'radiologist'), 'view-pixels', base)).allowed, id).toBe(false);
  });
});

describe('break-glass in the default policies', () => {
  const pdp = new CedarPolicyDecisionPoint(new MemorySource());
  const withWindow = (role: string, ...studies: string[]): Principal => ({
    ...user(role),
    breakGlassStudies: studies,
  });

  it('an open window permits reading that study only, by break-glass-read, restricted or not', async () => {
    for (const action of READ) {
      const d = await pdp.decide(withWindow('radiologist', '1.2.3'), action, base);
      expect(d).toMatchObject({ allowed: true, policy: 'break-glass-read' });
      const r = await pdp.decide(withWindow('radiologist', '1.2.3'), action, {
        ...base,
        classification: 'restricted',
      });
      expect(r).toMatchObject({ allowed: true, policy: 'break-glass-read' });
      const other = await pdp.decide(withWindow('radiologist', '1.2.3'), action, {
        ...base,
        studyUid: '1.2.4',
      });
      expect(other).toMatchObject({ allowed: false, policy: 'default-deny' });
    }
    for (const action of ['print', 'export-clinical', 'correct-header', 'request-deletion'] as Action[])
      expect((await pdp.decide(withWindow('radiologist', '1.2.3'), action, base)).allowed).toBe(false);
  });

  it('narrows lists to the window studies besides the role scope', async () => {
    const f = await pdp.studyFilter(withWindow('radiologist', '1.2.3', '1.2.9'), 'query');
    expect(f.kind === 'or' && f.of).toEqual(
      expect.arrayContaining([{ kind: 'study', uids: ['1.2.3', '1.2.9'] }]),
    );
    expect(admits(f, base)).toBe(true);
    expect(admits(f, { ...base, studyUid: '1.2.4' })).toBe(false);
    // No window: the break-glass policy adds nothing to the list scope.
    expect(await pdp.studyFilter(user('student'), 'query')).toEqual({ kind: 'grantee', userId: '42' });
  });
});

describe('remembered decisions shared by studies with the same facts', () => {
  const memoSize = (pdp: CedarPolicyDecisionPoint) =>
    (pdp as unknown as { memo: Map<string, unknown> }).memo.size;
  const dept = SCOPES.department!;

  it('the shipped policies name no study except in the break-glass check', () => {
    expect(studyIdentityMatters({ all: DEFAULT })).toBe(false);
    for (const cond of [
      'resource.uid == "1.2.3"',
      'resource == Custos::Study::"1.2.3"',
      'resource in [Custos::Study::"1.2.3"]',
      'resource["uid"] == "1.2.3"',
      'principal.breakGlassStudies.contains(resource.uid) || resource.uid like "1.2.*"',
    ])
      expect(
        studyIdentityMatters({ p: `forbid (principal, action, resource) when { ${cond} };` }),
        cond,
      ).toBe(true);
  });

  it('answers many studies with the same facts from one entry, unless the principal holds a window', async () => {
    const pdp = new CedarPolicyDecisionPoint(new MemorySource());
    for (let i = 0; i < 50; i++) {
      const d = await pdp.decide(user('radiologist'), 'query', { ...dept, studyUid: `1.2.${i}` });
      expect(d.allowed).toBe(true);
    }
    expect(memoSize(pdp)).toBe(1);
    const glass = { ...user('radiologist'), breakGlassStudies: ['1.2.3'] };
    expect((await pdp.decide(glass, 'query', { ...base, studyUid: '1.2.3' })).allowed).toBe(true);
    expect((await pdp.decide(glass, 'query', { ...base, studyUid: '1.2.4' })).allowed).toBe(false);
    expect(memoSize(pdp)).toBe(3);
  });

  it('decideEach answers a page of studies in order, as evaluating each alone would', async () => {
    const page: ResourceRef[] = [
      ...Object.values(SCOPES),
      { ...dept, studyUid: '9.1' },
      { ...base, classification: 'restricted' },
      { ...dept, classification: 'restricted', studyUid: '9.2' },
    ];
    for (const role of ['radiologist', 'referring-physician', 'student', 'researcher']) {
      for (const principal of [user(role), { ...user(role), breakGlassStudies: ['1.2.3'] }]) {
        // Memoisation off: every study evaluated by Cedar on its own.
        const one = new CedarPolicyDecisionPoint(new MemorySource(), { memoSize: 0 });
        const each = await new CedarPolicyDecisionPoint(new MemorySource()).decideEach(
          principal,
          'query',
          page,
        );
        const singly = [];
        for (const r of page) singly.push(await one.decide(principal, 'query', r));
        expect(each, role).toEqual(singly);
      }
    }
    // Not every answer is the same: the check compares allows with denies.
    const pdp = new CedarPolicyDecisionPoint(new MemorySource());
    const answers = (await pdp.decideEach(user('radiologist'), 'query', page)).map((d) => d.allowed);
    expect(answers).toContain(true);
    expect(answers).toContain(false);
  });

  it('keeps decisions per study when a policy names a study', async () => {
    const src = new MemorySource();
    src.versions = [
      `${DEFAULT}\n@id("not-this-one")\nforbid (principal, action, resource is Custos::Study) when { resource.uid == "1.2.3" };\n`,
    ];
    const pdp = new CedarPolicyDecisionPoint(src);
    expect(
      (await pdp.decide(user('radiologist'), 'view-pixels', { ...dept, studyUid: '1.2.4' })).allowed,
    ).toBe(true);
    expect(
      await pdp.decide(user('radiologist'), 'view-pixels', { ...dept, studyUid: '1.2.3' }),
    ).toMatchObject({
      allowed: false,
      policy: 'not-this-one',
    });
  });
});

describe('Cedar decision point: versions', () => {
  it('reads the active version at most once per refresh interval and picks up a new one', async () => {
    const src = new MemorySource();
    const pdp = new CedarPolicyDecisionPoint(src, { refreshMs: 60_000 });
    const admin = user('sysadmin');
    expect((await pdp.decide(admin, 'administer', { type: 'archive' })).allowed).toBe(true);
    for (let i = 0; i < 50; i++) await pdp.decide(admin, 'administer', { type: 'archive' });
    expect(src.reads).toBe(1);
    src.versions.push(DEFAULT.replace(/@id\("archive-administer"\)[\s\S]*?\};/, ''));
    expect((await pdp.decide(admin, 'administer', { type: 'archive' })).allowed).toBe(true);
    pdp.invalidate();
    const d = await pdp.decide(admin, 'administer', { type: 'archive' });
    expect(d).toMatchObject({ allowed: false, policy: 'default-deny' });
    expect(d.reason).toMatch(/policy version 2/);
  });
});

describe('Cedar policy validation', () => {
  it('reports a parse error with line and column', () => {
    const text = '@id("a")\npermit (principal, action, resource)\nwhen { principal.uid == };\n';
    const [p, ...rest] = validator.validate(text);
    expect(rest).toEqual([]);
    expect(p).toMatchObject({ line: 3, column: 25 });
    expect(p!.message).toMatch(/unexpected token/);
  });

  it('reports a schema violation with the policy id, line and column', () => {
    const text = DEFAULT.replace(
      'when { resource.projects.containsAny(principal.projects) }',
      'when { resource.projcts.containsAny(principal.projects) }',
    );
    const problems = validator.validate(text);
    expect(problems).toHaveLength(1);
    const line = text.split('\n').findIndex((l) => l.includes('resource.projcts')) + 1;
    expect(problems[0]).toMatchObject({ policyId: 'researcher-project', line });
    expect(problems[0]!.message).toMatch(/attribute `projcts` on entity type `Custos::Study` not found/);
    expect(problems[0]!.message).toMatch(/'researcher-project'/);
  });

  it('refuses an unknown action and an unknown entity type', () => {
    const text = '@id("x")\npermit (principal, action == Custos::Action::"delete-everything", resource);\n';
    expect(validator.validate(text)[0]).toMatchObject({ line: 2 });
    const t2 = '@id("y")\npermit (principal in Custos::Group::"x", action, resource);\n';
    expect(validator.validate(t2).length).toBeGreaterThan(0);
  });

  it('requires a unique @id on every policy', () => {
    const text = '@id("a")\npermit (principal, action, resource);\n\npermit (principal, action, resource);\n';
    expect(validator.validate(text)).toEqual([
      expect.objectContaining({ line: 4, column: 1, message: expect.stringMatching(/@id/) }),
    ]);
    const dup =
      '@id("a")\npermit (principal, action, resource);\n@id("a")\nforbid (principal, action, resource);\n';
    expect(validator.validate(dup)).toEqual([
      expect.objectContaining({ line: 3, policyId: 'a', message: "duplicate policy id 'a'" }),
    ]);
  });
});

/** What the SQL of QueryService.scopePredicate computes, over a ResourceRef. */
function admits(f: StudyFilter, r: ResourceRef): boolean {
  switch (f.kind) {
    case 'all':
      return true;
    case 'none':
      return false;
    case 'and':
      return f.of.every((x) => admits(x, r));
    case 'or':
      return f.of.some((x) => admits(x, r));
    case 'department':
      return (r.department ?? '').trim().toLowerCase() === f.value;
    case 'classification':
      return r.classification === f.value;
    case 'owner':
      return r.owner === f.value;
    case 'referring-name':
      return f.familyNames.some((n) => (r.referringPhysicianName ?? '').toUpperCase().includes(n));
    case 'referring-id':
      return f.ids.some((id) => (r.referringPhysicianIds ?? []).join('\\').includes(id));
    case 'care-team':
      return (r.careTeam ?? []).includes(f.userId);
    case 'grantee':
      return (r.grantees ?? []).includes(f.userId);
    case 'project':
      return f.projects.some((p) => (r.projects ?? []).includes(p));
    case 'study':
      return f.uids.includes(r.studyUid ?? '');
  }
}

describe('list narrowing from partial evaluation', () => {
  const pdp = new CedarPolicyDecisionPoint(new MemorySource());
  const studyScopes = Object.entries(SCOPES).filter(([, r]) => r.type === 'study');

  it('admits every study the policies allow, for every role, action and scope', async () => {
    for (const role of ROLES)
      for (const action of ACTIONS) {
        const filter = await pdp.studyFilter(user(role), action);
        for (const [scope, ref] of studyScopes) {
          if ((await pdp.decide(user(role), action, ref)).allowed)
            expect(admits(filter, ref), `${role} ${action} ${scope}: ${JSON.stringify(filter)}`).toBe(true);
        }
      }
  });

  it('narrows to the scope rules of the role', async () => {
    expect(await pdp.studyFilter(user('sysadmin'), 'query')).toEqual({ kind: 'none' });
    expect(await pdp.studyFilter(user('administrator'), 'query')).toEqual({ kind: 'all' });
    expect(await pdp.studyFilter(user('student'), 'query')).toEqual({ kind: 'grantee', userId: '42' });
    const rad = await pdp.studyFilter(user('radiologist'), 'query');
    expect(rad.kind).toBe('or');
    expect(rad.kind === 'or' && rad.of).toEqual(
      expect.arrayContaining([
        { kind: 'department', value: 'radiology' },
        { kind: 'care-team', userId: '42' },
        { kind: 'grantee', userId: '42' },
      ]),
    );
    const ref = await pdp.studyFilter(user('referring-physician'), 'view-pixels');
    expect(ref.kind === 'or' && ref.of).toEqual(
      expect.arrayContaining([
        { kind: 'referring-name', familyNames: ['SMITH'] },
        { kind: 'referring-id', ids: ['P123'] },
      ]),
    );
    // Studies the radiologist may not see are left out; the row-by-row decision remains the authority.
    expect(admits(rad, SCOPES.none!)).toBe(false);
  });
});

describe('whether an action is allowed on every study (who is told a study UID is not there)', () => {
  const READS: Action[] = ['query', 'view-metadata', 'view-pixels'];
  /** Each study fact that can make a decision differ, restricted included. */
  const anyStudy = Object.values(SCOPES)
    .filter((r) => r.type === 'study')
    .flatMap((r) => [r, { ...r, classification: 'restricted' }]);

  it('says so for no role and no reading action under the default policies: restricted studies need a grant', async () => {
    const pdp = new CedarPolicyDecisionPoint(new MemorySource());
    for (const role of ROLES)
      for (const action of READS)
        expect(await pdp.allowsEveryStudy(user(role), action), `${role} ${action}`).toBe(false);
    // The administrator and the data steward read every normal study, yet not every study.
    expect((await pdp.decide(user('administrator'), 'view-pixels', base)).allowed).toBe(true);
    expect((await pdp.decide(user('data-steward'), 'view-metadata', base)).allowed).toBe(true);
    // A clinician may open a break-glass window on any study, restricted included.
    expect(await pdp.allowsEveryStudy(user('radiologist'), 'break-glass')).toBe(true);
    expect(await pdp.allowsEveryStudy(user('student'), 'break-glass')).toBe(false);
  });

  it('agrees with the decisions: true only where every study, whatever its facts, is allowed', async () => {
    const source = new MemorySource();
    // Without the restriction the administrator reads every study, and the steward every study's metadata.
    source.versions.push(DEFAULT.replace(/@id\("restricted-needs-grant"\)[\s\S]*$/, ''));
    const pdp = new CedarPolicyDecisionPoint(source);
    for (const role of ROLES)
      for (const action of ACTIONS) {
        if (!(await pdp.allowsEveryStudy(user(role), action))) continue;
        for (const ref of anyStudy)
          expect((await pdp.decide(user(role), action, ref)).allowed, `${role} ${action}`).toBe(true);
      }
    expect(await pdp.allowsEveryStudy(user('administrator'), 'view-pixels')).toBe(true);
    expect(await pdp.allowsEveryStudy(user('data-steward'), 'view-metadata')).toBe(true);
    expect(await pdp.allowsEveryStudy(user('data-steward'), 'view-pixels')).toBe(false);
    expect(await pdp.allowsEveryStudy(user('radiologist'), 'view-pixels')).toBe(false);
    // Windows name studies: never every study.
    const windowed = { ...user('radiologist'), breakGlassStudies: ['1.2.3'] };
    expect(await pdp.allowsEveryStudy(windowed, 'view-pixels')).toBe(false);
  });
});
