// An AE bound to an account decides as that account (docs/dimse.md): the account's explicit grants and care-team
// memberships reach its AE, as its role and department do. Until 6 Dec 2026 the AE was `ae:<account>` to the
// policies, which no grant or care team names: a radiologist's AE did not find the restricted study granted to
// the radiologist, and a student's AE was refused (0x0124) the study granted to the student.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { findscuTo, getscuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startTestServer, type TestServer, postStow, markRestricted } from './support/test-server.js';

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;

describe.each(backends())(
  "an AE bound to an account gets the account's grants and care team, on %s",
  (backend) => {
    let s: TestServer;
    let work: string;
    const operator = systemPrincipal('test');
    const tokens: Record<string, string> = {};
    const study = {
      /** Restricted, of the radiologist's department: granted to the radiologist. */
      vip: { study: uid(1), series: uid(2), sop: uid(3), department: 'Radiology' },
      /** Of the radiologist's department. */
      radiology: { study: uid(4), series: uid(5), sop: uid(6), department: 'Radiology' },
      /** Another department: granted to the student. */
      cardiology: { study: uid(7), series: uid(8), sop: uid(9), department: 'Cardiology' },
      /** Another department: the radiologist is on its care team. */
      oncology: { study: uid(10), series: uid(11), sop: uid(12), department: 'Oncology' },
      /** Another department, nobody's. */
      neurology: { study: uid(13), series: uid(14), sop: uid(15), department: 'Neurology' },
    };
    type Name = keyof typeof study;

    /** The studies findscu (Study Root, STUDY level, every study) answers the AE. */
    const found = async (aet: string) => {
      const r = await findscuTo(s.dicomPort, aet, 'QueryRetrieveLevel=STUDY', 'StudyInstanceUID');
      expect(r.code, r.stderr).toBe(0);
      const uids = [...r.stderr.matchAll(/\(0020,000d\) UI \[([0-9.]+)[^\]]*\]/g)].map((m) => m[1]!);
      // An odd-length UID is padded (a NUL, PS3.5 §6.2), which findscu prints inside the brackets.
      return names(uids);
    };
    /** The studies QIDO-RS answers the account. */
    const searched = async (who: string) => {
      const res = await fetch(`${s.dicomweb}/studies`, {
        headers: { Authorization: `Bearer ${tokens[who]}` },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as Record<string, { Value: string[] }>[];
      return names(body.map((j) => j['0020000D']!.Value[0]!));
    };
    const names = (uids: string[]) =>
      (Object.keys(study) as Name[]).filter((n) => uids.includes(study[n].study)).sort();

    /** getscu (Study Root, STUDY level) of one study from the AE: its status line and the files it received. */
    const get = async (aet: string, name: Name) => {
      const out = await mkdtemp(join(work, `get-${aet}-${name}-`));
      const r = await getscuTo(
        s.dicomPort,
        aet,
        out,
        'QueryRetrieveLevel=STUDY',
        `StudyInstanceUID=${study[name].study}`,
      );
      return { code: r.code, stderr: r.stderr, files: await readdir(out) };
    };

    beforeAll(async () => {
      s = await startTestServer(backend);
      work = await mkdtemp(join(tmpdir(), 'custos-ae-grants-'));
      const stored = await postStow(
        s,
        Object.values(study).map((u) =>
          makeInstance({
            studyUid: u.study,
            seriesUid: u.series,
            sopInstanceUid: u.sop,
            patientId: `PID-${u.department}`,
            rows: 4,
            columns: 4,
            extra: [{ tag: t(0x0008, 0x1040), vr: 'LO', value: u.department }],
          }),
        ),
      );
      expect(stored.status, await stored.clone().text()).toBe(200);
      await markRestricted(s, study.vip.study);
      await s.app.accounts.add(operator, { username: 'rad1', role: 'radiologist', department: 'Radiology' });
      await s.app.accounts.add(operator, { username: 'stud1', role: 'student' });
      for (const who of ['rad1', 'stud1']) tokens[who] = (await s.app.auth.createToken(operator, who)).token;
      // As `custos grant --user … --study … --days 1 --reason …` does.
      await s.app.accounts.grant(operator, 'rad1', study.vip.study, { days: 1, reason: 'tumour board' });
      await s.app.accounts.grant(operator, 'stud1', study.cardiology.study, {
        days: 1,
        reason: 'teaching file',
      });
      await s.app.accounts.addToCareTeam(operator, 'rad1', study.oncology.study, 'consulting radiologist');
      await s.app.aes.add(operator, { title: 'RADAE', host: '127.0.0.1', port: 104, user: 'rad1' });
      await s.app.aes.add(operator, { title: 'STUDAE', host: '127.0.0.1', port: 104, user: 'stud1' });
    });
    afterAll(async () => {
      expect(s.unexpected).toEqual([]);
      await s.stop();
      await rm(work, { recursive: true, force: true });
    });

    it('finds over C-FIND what the account finds over QIDO-RS: department, grants (restricted too) and care team', async () => {
      expect(await searched('rad1')).toEqual(['oncology', 'radiology', 'vip']);
      expect(await found('RADAE')).toEqual(['oncology', 'radiology', 'vip']);
      expect(await searched('stud1')).toEqual(['cardiology']);
      expect(await found('STUDAE')).toEqual(['cardiology']);
    });

    it('retrieves by C-GET the studies the account was granted or is on the care team of, and nothing else', async () => {
      for (const [aet, name] of [
        ['RADAE', 'vip'],
        ['RADAE', 'oncology'],
        ['STUDAE', 'cardiology'],
      ] as const) {
        const r = await get(aet, name);
        expect(r.code, `${aet} ${name}: ${r.stderr}`).toBe(0);
        expect(r.files, `${aet} ${name}`).toHaveLength(1);
      }
      for (const [aet, name] of [
        ['RADAE', 'neurology'],
        ['RADAE', 'cardiology'],
        ['STUDAE', 'vip'],
        ['STUDAE', 'radiology'],
      ] as const) {
        const r = await get(aet, name);
        expect(r.stderr, `${aet} ${name}`).toMatch(/Unknown Status: 0x124|Refused: NotAuthorized/);
        expect(r.files, `${aet} ${name}`).toHaveLength(0);
      }
      // Recorded for the AE, by the policy that allowed it.
      const records = await s.app.auditStore.search({ actor: 'STUDAE', outcome: 'success', limit: 100 });
      expect(records.some((r) => r.studyUid === study.cardiology.study && r.policy === 'granted-read')).toBe(
        true,
      );
    });
  },
);
