// A refusal tells nothing about whether a study exists (docs/access-control.md, "What a refusal says"), also for
// the roles that read every normal study but not restricted ones: the administrator and the data steward. Until
// 6 Dec 2026 they got 404 (or, over DIMSE, success with no sub-operations) for an unknown UID and 403 (0x0124)
// for a restricted study, and so could tell which UIDs were restricted studies.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk, findscuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startTestServer, type TestServer, postStow, markRestricted } from './support/test-server.js';

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;

describe.each(backends())('an unknown study UID answered as a restricted study, on %s', (backend) => {
  let s: TestServer;
  let work: string;
  const operator = systemPrincipal('test');
  const tokens: Record<string, string> = {};
  const normal = { study: uid(1), series: uid(2), sop: uid(3) };
  const vip = { study: uid(4), series: uid(5), sop: uid(6) };
  // UIDs of the same length as the restricted study's (dcmtk prints lengths), in no study.
  const unused = (u: string) => `${u.slice(0, -1)}${(Number(u.slice(-1)) + 5) % 10}`;
  const guessed = { study: unused(vip.study), series: unused(vip.series), sop: unused(vip.sop) };
  type Uids = typeof vip;

  /** The text with this set's UIDs replaced, so that two answers compare byte for byte but for the UIDs asked. */
  const blind = (text: string, u: Uids) =>
    text.replaceAll(u.sop, 'SOP').replaceAll(u.series, 'SERIES').replaceAll(u.study, 'STUDY');

  /** Every read of a study by its UIDs over HTTP: DICOMweb, WADO-URI and the console's study page. */
  const reads = (u: Uids): [string, string, string][] => {
    const inst = `/dicom-web/studies/${u.study}/series/${u.series}/instances/${u.sop}`;
    const multipart = (type: string) => `multipart/related; type="${type}"`;
    return [
      ['WADO-RS study', `/dicom-web/studies/${u.study}`, multipart('application/dicom')],
      ['WADO-RS series', `/dicom-web/studies/${u.study}/series/${u.series}`, multipart('application/dicom')],
      ['WADO-RS instance', inst, multipart('application/dicom')],
      ['study metadata', `/dicom-web/studies/${u.study}/metadata`, 'application/dicom+json'],
      [
        'series metadata',
        `/dicom-web/studies/${u.study}/series/${u.series}/metadata`,
        'application/dicom+json',
      ],
      ['instance metadata', `${inst}/metadata`, 'application/dicom+json'],
      ['frames', `${inst}/frames/1`, multipart('application/octet-stream')],
      ['bulk data', `${inst}/bulkdata/7FE00010`, multipart('application/octet-stream')],
      ['study bulk data', `/dicom-web/studies/${u.study}/bulkdata`, multipart('application/octet-stream')],
      ['study pixel data', `/dicom-web/studies/${u.study}/pixeldata`, multipart('application/octet-stream')],
      [
        'series bulk data',
        `/dicom-web/studies/${u.study}/series/${u.series}/bulkdata`,
        multipart('application/octet-stream'),
      ],
      ['instance pixel data', `${inst}/pixeldata`, multipart('application/octet-stream')],
      ['rendered instance', `${inst}/rendered`, 'image/jpeg'],
      ['rendered frame', `${inst}/frames/1/rendered`, 'image/png'],
      ['study thumbnail', `/dicom-web/studies/${u.study}/thumbnail`, 'image/jpeg'],
      ['series thumbnail', `/dicom-web/studies/${u.study}/series/${u.series}/thumbnail`, 'image/jpeg'],
      ['instance thumbnail', `${inst}/thumbnail`, 'image/jpeg'],
      [
        'WADO-URI',
        `/wado?requestType=WADO&studyUID=${u.study}&seriesUID=${u.series}&objectUID=${u.sop}&contentType=application%2Fdicom`,
        'application/dicom',
      ],
      [
        'WADO-URI rendered',
        `/wado?requestType=WADO&studyUID=${u.study}&seriesUID=${u.series}&objectUID=${u.sop}`,
        'image/jpeg',
      ],
      ['console study page', `/api/studies/${u.study}`, 'application/json'],
    ];
  };
  /** Searches naming the study: they answer nothing, alike, for a study the caller may not see and for none. */
  const searches = (u: Uids): string[] => [
    `/dicom-web/studies?StudyInstanceUID=${u.study}`,
    `/dicom-web/studies?StudyInstanceUID=${u.study}&includefield=all`,
    `/dicom-web/series?StudyInstanceUID=${u.study}`,
    `/dicom-web/instances?StudyInstanceUID=${u.study}`,
    `/dicom-web/studies/${u.study}/series`,
    `/dicom-web/studies/${u.study}/instances`,
    `/dicom-web/studies/${u.study}/series/${u.series}/instances`,
    `/api/studies?PatientID=${u === vip ? 'PID-VIP' : 'PID-GUESSED'}`,
  ];

  const get = async (who: string, path: string, accept: string) => {
    const res = await fetch(`${s.url}${path}`, {
      headers: { Authorization: `Bearer ${tokens[who]}`, Accept: accept },
    });
    const headers = [...res.headers.entries()].filter(([k]) => !['date', 'content-length'].includes(k));
    return { status: res.status, headers, body: await res.text() };
  };

  /** dcmtk's movescu or getscu (Study Root) from `aet` at this level for these UIDs: what it printed. */
  const retrieve = async (tool: 'movescu' | 'getscu', aet: string, level: string, u: Uids) => {
    const keys = [
      `QueryRetrieveLevel=${level}`,
      `StudyInstanceUID=${u.study}`,
      ...(level !== 'STUDY' ? [`SeriesInstanceUID=${u.series}`] : []),
      ...(level === 'IMAGE' ? [`SOPInstanceUID=${u.sop}`] : []),
    ];
    const out = await mkdtemp(join(work, `${tool}-`));
    const r = await dcmtk(tool, [
      '-v',
      '-aet',
      aet,
      '-aec',
      'CUSTOS',
      ...(tool === 'movescu' ? ['-aem', 'NOWHERE'] : ['-od', out]),
      '-S',
      '127.0.0.1',
      String(s.dicomPort),
      ...keys.flatMap((k) => ['-k', k]),
    ]);
    expect(await readdir(out)).toEqual([]);
    return { code: r.code, printed: blind(r.stdout + r.stderr, u) };
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    work = await mkdtemp(join(tmpdir(), 'custos-unknown-study-'));
    const make = (u: Uids, patientId: string) =>
      makeInstance({
        studyUid: u.study,
        seriesUid: u.series,
        sopInstanceUid: u.sop,
        patientId,
        rows: 4,
        columns: 4,
        extra: [{ tag: t(0x0008, 0x1040), vr: 'LO', value: 'Radiology' }],
      });
    const stored = await postStow(s, [make(normal, 'PID-NORMAL'), make(vip, 'PID-VIP')]);
    expect(stored.status, await stored.clone().text()).toBe(200);
    await markRestricted(s, vip.study);
    for (const [username, role] of [
      ['steward', 'data-steward'],
      ['po', 'privacy-officer'],
    ] as const) {
      await s.app.accounts.add(operator, { username, role });
      tokens[username] = (await s.app.auth.createToken(operator, username)).token;
    }
    tokens.admin = s.token;
    await s.app.aes.add(operator, { title: 'ADMINSCU', host: '127.0.0.1', port: 104, user: 'admin' });
    await s.app.aes.add(operator, { title: 'STEWSCU', host: '127.0.0.1', port: 104, user: 'steward' });
    await s.app.aes.add(operator, { title: 'NOWHERE', host: '127.0.0.1', port: 9 });
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('the administrator and the data steward read the normal study (the probes are real reads)', async () => {
    expect(
      (await get('admin', `/dicom-web/studies/${normal.study}/metadata`, 'application/json')).status,
    ).toBe(200);
    expect(
      (await get('steward', `/dicom-web/studies/${normal.study}/metadata`, 'application/json')).status,
    ).toBe(200);
    for (const [name, path, accept] of reads(normal))
      expect((await get('admin', path, accept)).status, name).toBe(200);
  });

  it('refuses the administrator and the data steward a restricted study and an unknown UID alike, on every read route', async () => {
    for (const who of ['admin', 'steward'])
      for (const [[name, restrictedPath, accept], [, unknownPath]] of reads(vip).map(
        (r, i) => [r, reads(guessed)[i]!] as const,
      )) {
        // The console's study page shows any study to whoever reads the ledger archive-wide (the administrator):
        // below.
        if (who === 'admin' && name === 'console study page') continue;
        const restricted = await get(who, restrictedPath, accept);
        const unknown = await get(who, unknownPath, accept);
        expect(restricted.status, `${who} ${name}: ${restricted.body}`).toBe(403);
        expect({ ...unknown, body: blind(unknown.body, guessed) }, `${who} ${name}`).toEqual({
          ...restricted,
          body: blind(restricted.body, vip),
        });
        expect(restricted.body).not.toMatch(/restricted|PID-VIP|Radiology/i);
      }
    // The ledger keeps what the answer leaves out.
    const denied = await s.app.auditStore.search({ actor: 'admin', outcome: 'denied', limit: 500 });
    expect(denied.some((r) => r.studyUid === vip.study && r.policy === 'restricted-needs-grant')).toBe(true);
    expect(denied.some((r) => r.studyUid === guessed.study && r.policy === 'builtin:unknown-study')).toBe(
      true,
    );
  });

  it('answers searches naming a restricted study exactly as searches naming an unknown UID', async () => {
    for (const who of ['admin', 'steward'])
      for (const [restrictedPath, unknownPath] of searches(vip).map((p, i) => [p, searches(guessed)[i]!])) {
        const restricted = await get(who, restrictedPath!, 'application/json');
        const unknown = await get(who, unknownPath!, 'application/json');
        expect(restricted.status, `${who} ${restrictedPath}: ${restricted.body}`).toBeLessThan(500);
        expect({ ...unknown, body: blind(unknown.body, guessed) }, `${who} ${unknownPath}`).toEqual({
          ...restricted,
          body: blind(restricted.body, vip),
        });
        expect(restricted.body).not.toContain(vip.study);
      }
  });

  it('refuses C-MOVE and C-GET of a restricted study and of an unknown UID alike (0x0124), at every level', async () => {
    for (const aet of ['ADMINSCU', 'STEWSCU'])
      for (const tool of ['movescu', 'getscu'] as const)
        for (const level of ['STUDY', 'SERIES', 'IMAGE']) {
          const restricted = await retrieve(tool, aet, level, vip);
          const unknown = await retrieve(tool, aet, level, guessed);
          expect(restricted.printed, `${aet} ${tool} ${level}`).toMatch(/Refused: NotAuthorized|0x0?124/);
          expect(unknown, `${aet} ${tool} ${level}`).toEqual(restricted);
        }
  });

  it('answers C-FIND naming a restricted study exactly as C-FIND naming an unknown UID: no match', async () => {
    for (const aet of ['ADMINSCU', 'STEWSCU'])
      for (const level of ['STUDY', 'SERIES', 'IMAGE']) {
        const find = async (u: Uids) => {
          const r = await findscuTo(
            s.dicomPort,
            aet,
            `QueryRetrieveLevel=${level}`,
            `StudyInstanceUID=${u.study}`,
            'PatientID',
            'NumberOfStudyRelatedInstances',
          );
          return { code: r.code, printed: blind(r.stdout + r.stderr, u) };
        };
        const restricted = await find(vip);
        expect(restricted.printed, `${aet} ${level}`).not.toMatch(/Find Response: \d+ \(Pending\)/);
        expect(await find(guessed), `${aet} ${level}`).toEqual(restricted);
      }
  });

  it("tells whoever reads the ledger archive-wide that a study is missing from the console's study page", async () => {
    // They see every study's page (its governance state and access history): a 404 tells them nothing more.
    for (const who of ['admin', 'po']) {
      expect((await get(who, `/api/studies/${vip.study}`, 'application/json')).status, who).toBe(200);
      const unknown = await get(who, `/api/studies/${guessed.study}`, 'application/json');
      expect(unknown.status, who).toBe(404);
      expect(JSON.parse(unknown.body)).toMatchObject({ code: 'study.not-found' });
    }
  });

  it('tells a principal allowed every study, restricted or not, that an unknown UID is not there', async () => {
    // A policy version without the restriction: the administrator then reads every study.
    const text = (await s.app.policies.show()).text.replace(/@id\("restricted-needs-grant"\)[\s\S]*$/, '');
    expect(s.app.policies.validate(text)).toEqual([]);
    await s.app.policies.apply(operator, text, 'no restricted studies (test)');
    const [, path, accept] = reads(vip).find(([name]) => name === 'study metadata')!;
    expect((await get('admin', path, accept)).status).toBe(200);
    const unknown = await get('admin', `/dicom-web/studies/${guessed.study}/metadata`, accept);
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body)).toMatchObject({ code: 'wado.not-found' });
    const got = await retrieve('getscu', 'ADMINSCU', 'STUDY', guessed);
    expect(got.code, got.printed).toBe(0);
    expect(got.printed).not.toMatch(/NotAuthorized/);
    // The steward still may not read pixels of any study: refused, whether or not the study exists.
    const steward = await get('steward', `/dicom-web/studies/${guessed.study}/thumbnail`, 'image/jpeg');
    expect(steward.status).toBe(403);
  });
});
