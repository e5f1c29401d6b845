// docs/audit.md, "where": every record made for a request names the interface it came in by (`channel`), a DIMSE
// operation its service and a C-MOVE its destination; and every refused credential leaves a record naming the
// account when one was found, the source, the channel and the path. Against the real server, dcmtk and curl-like
// fetches, on every backend.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk, findscuTo, movescuTo } from './support/dcmtk.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { ledgerHead, ledgerSince, startTestServer, type TestServer } from './support/test-server.js';

const admin = systemPrincipal('test');

describe.each(backends())('audit records name their channel on %s', (backend) => {
  let s: TestServer;
  let work: string;
  const study = uid(1);
  const series = uid(2);
  const sop = uid(3);
  const cstoreSop = uid(4);

  const since = (after: number) => ledgerSince(s, after);
  const head = () => ledgerHead(s);

  beforeAll(async () => {
    s = await startTestServer(backend);
    work = await mkdtemp(join(tmpdir(), 'custos-audit-channel-'));
    const { body, contentType } = stowBody([
      {
        bytes: makeInstance({
          studyUid: study,
          seriesUid: series,
          sopInstanceUid: sop,
          patientId: 'PID-CHANNEL',
          rows: 4,
          columns: 4,
        }),
      },
    ]);
    const stow = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    expect(stow.status, await stow.clone().text()).toBe(200);
    await s.app.accounts.add(admin, { username: 'chan-student', role: 'student' });
    await s.app.aes.add(admin, { title: 'CHANSCU', host: '127.0.0.1', port: 104, user: 'admin' });
    await s.app.aes.add(admin, { title: 'STUDSCU', host: '127.0.0.1', port: 104, user: 'chan-student' });
    await s.app.aes.add(admin, { title: 'CHANDEST', host: '127.0.0.1', port: 11112 });
  });

  afterAll(async () => {
    await s?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('records QIDO-RS, WADO-RS and WADO-URI accesses with their channel', async () => {
    const before = await head();
    const auth = { Authorization: `Bearer ${s.token}` };
    const qido = await fetch(`${s.dicomweb}/studies?PatientID=PID-CHANNEL`, { headers: auth });
    expect(qido.status).toBe(200);
    const meta = await fetch(`${s.dicomweb}/studies/${study}/metadata`, { headers: auth });
    expect(meta.status).toBe(200);
    const uri = await fetch(
      `${s.url}/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${sop}&contentType=application%2Fdicom`,
      { headers: auth },
    );
    expect(uri.status).toBe(200);
    await uri.arrayBuffer();
    const records = await since(before);
    const query = records.find((r) => r.action === 'query')!;
    expect(query.channel).toBe('dicomweb');
    const metadata = records.find((r) => r.action === 'view-metadata')!;
    expect(metadata.channel).toBe('dicomweb');
    const pixels = records.find((r) => r.action === 'view-pixels')!;
    expect(pixels.channel).toBe('wado-uri');
  });

  it('records a denial with the channel the request came in by', async () => {
    const { token } = await s.app.auth.createToken(admin, 'chan-student');
    const before = await head();
    const res = await fetch(`${s.dicomweb}/studies/${study}/metadata`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(403);
    const denied = (await since(before)).filter((r) => r.outcome === 'denied');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({
      actor: { name: 'chan-student' },
      action: 'view-metadata',
      channel: 'dicomweb',
    });
  });

  it('records STOW-RS and C-STORE store records with their channel, not only inside objects', async () => {
    const f = join(work, 'cstore.dcm');
    await writeFile(
      f,
      makeInstance({ studyUid: uid(5), seriesUid: uid(6), sopInstanceUid: cstoreSop, rows: 4, columns: 4 }),
    );
    const before = await head();
    const r = await dcmtk('storescu', [
      '-aet',
      'CHANSCU',
      '-aec',
      'CUSTOS',
      '127.0.0.1',
      String(s.dicomPort),
      f,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const store = (await since(before)).find((x) => x.action === 'store')!;
    expect(store).toMatchObject({ channel: 'dimse', detail: { service: 'c-store' } });
    expect(store.objects?.channel).toBe('c-store');
    const stowed = await s.app.index.db
      .selectFrom('audit_ledger')
      .select(['record'])
      .where('action', '=', 'store')
      .where('study_uid', '=', study)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(stowed.record)).toMatchObject({ channel: 'dicomweb', objects: { channel: 'stow-rs' } });
  });

  it('tells a C-FIND from a QIDO-RS by the same account', async () => {
    const before = await head();
    const r = await findscuTo(s.dicomPort, 'CHANSCU', 'QueryRetrieveLevel=STUDY', 'PatientID=PID-CHANNEL');
    expect(r.code, r.stderr).toBe(0);
    const query = (await since(before)).find((x) => x.action === 'query')!;
    expect(query).toMatchObject({ channel: 'dimse', detail: { service: 'c-find' } });
  });

  it('records a refused C-MOVE with its service and destination', async () => {
    const before = await head();
    const r = await movescuTo(s.dicomPort, 'STUDSCU', 'CHANDEST', [
      'QueryRetrieveLevel=STUDY',
      `StudyInstanceUID=${study}`,
    ]);
    expect(r.stderr + r.stdout).toMatch(/Move response with error status/i);
    const denied = (await since(before)).filter((x) => x.outcome === 'denied');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({
      actor: { kind: 'ae', name: 'STUDSCU' },
      action: 'view-pixels',
      studyUid: study,
      channel: 'dimse',
      detail: { service: 'c-move', destination: 'CHANDEST' },
    });
  });

  it('records logins and the CLI with their channel', async () => {
    const before = await head();
    await s.app.auth
      .localPrincipal('chan-student', 'cli')
      .then((p) => s.app.audit.search(p, { limit: 1 }).catch(() => undefined));
    const login = await fetch(`${s.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'chan-student', password: 'not-the-password-1' }),
    });
    expect(login.status).toBe(401);
    const records = await since(before);
    expect(records.find((r) => r.action === 'read-audit')).toMatchObject({ channel: 'cli' });
    expect(records.find((r) => r.action === 'login')).toMatchObject({
      outcome: 'failure',
      channel: 'admin-api',
    });
  });
});

describe.each(backends())('refused credentials leave a record on %s', (backend) => {
  let s: TestServer;
  const since = (after: number) => ledgerSince(s, after);
  const head = () => ledgerHead(s);

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.app.accounts.add(admin, { username: 'refused-rad', role: 'radiologist' });
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('records a request without credentials, once, with source, channel and path', async () => {
    const before = await head();
    const res = await fetch(`${s.dicomweb}/studies`);
    expect(res.status).toBe(401);
    const records = await since(before);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      actor: { name: 'unknown' },
      action: 'token-use',
      outcome: 'failure',
      source: expect.stringMatching(/127\.0\.0\.1/),
      channel: 'dicomweb',
      detail: { reason: 'no credentials', path: '/dicom-web/studies' },
    });
  });

  it('records a Basic (or any non-Bearer) Authorization without keeping the password', async () => {
    const before = await head();
    const res = await fetch(`${s.url}/api/admin/users`, {
      headers: { Authorization: `Basic ${Buffer.from('refused-rad:Spray-Password-1').toString('base64')}` },
    });
    expect(res.status).toBe(401);
    const records = await since(before);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      action: 'token-use',
      outcome: 'failure',
      channel: 'admin-api',
      detail: { reason: "Authorization scheme 'Basic' is not Bearer", path: '/api/admin/users' },
    });
    const text = JSON.stringify(records[0]);
    expect(text).not.toContain('Spray-Password-1');
    expect(text).not.toContain(Buffer.from('refused-rad:Spray-Password-1').toString('base64'));
  });

  it('never records the value of an Authorization header without a known scheme', async () => {
    const secret = 'cst_aVeryPrivateTokenSentWithoutItsScheme0123456789';
    for (const value of [secret, 'Bearer', `Bearer ${secret} extra`]) {
      const before = await head();
      const res = await fetch(`${s.dicomweb}/studies`, { headers: { Authorization: value } });
      expect(res.status).toBe(401);
      const records = await since(before);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ action: 'token-use', outcome: 'failure', channel: 'dicomweb' });
      expect(JSON.stringify(records[0])).not.toContain('aVeryPrivateToken');
    }
  });

  it('records a revoked or expired token under its account, with the path', async () => {
    const revoked = await s.app.auth.createToken(admin, 'refused-rad');
    await s.app.auth.revokeToken(admin, 'refused-rad', revoked.id, 'test');
    const before = await head();
    const res = await fetch(`${s.dicomweb}/studies`, {
      headers: { Authorization: `Bearer ${revoked.token}` },
    });
    expect(res.status).toBe(401);
    const records = await since(before);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      actor: { name: 'refused-rad', role: 'radiologist', via: `token:${revoked.id}` },
      action: 'token-use',
      outcome: 'failure',
      channel: 'dicomweb',
      detail: { reason: 'token expired, revoked or account inactive', path: '/dicom-web/studies' },
    });
  });

  it('records a confined session (one-time password) refused a data route', async () => {
    const { password } = await s.app.accounts.add(admin, { username: 'confined', role: 'radiologist' });
    const login = await fetch(`${s.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'confined', password }),
    });
    expect(login.status).toBe(200);
    const { token } = (await login.json()) as { token: string };
    const before = await head();
    const res = await fetch(`${s.dicomweb}/studies`, { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe('auth.password-change-required');
    const records = await since(before);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      actor: { name: 'confined' },
      action: 'token-use',
      outcome: 'denied',
      policy: 'builtin:confined-session',
      channel: 'dicomweb',
      detail: { reason: 'auth.password-change-required', path: '/dicom-web/studies' },
    });
  });

  it('records a DIMSE User Identity with a bad passcode under the AE with the claimed user', async () => {
    await s.app.aes.add(admin, { title: 'IDSCU', host: '127.0.0.1', port: 104 });
    let records: AuditRecord[] = [];
    const work = await mkdtemp(join(tmpdir(), 'custos-audit-identity-'));
    try {
      const f = join(work, 'one.dcm');
      await writeFile(f, makeInstance({ studyUid: uid(7), seriesUid: uid(8), sopInstanceUid: uid(9) }));
      const before = await head();
      // dcmtk's storescu sends a User Identity of type 2 (user name and passcode); echoscu has no such option.
      const r = await dcmtk('storescu', [
        '-aet',
        'IDSCU',
        '-aec',
        'CUSTOS',
        '--user',
        'refused-rad',
        '--password',
        'cst_not-a-real-token',
        '127.0.0.1',
        String(s.dicomPort),
        f,
      ]);
      expect(r.stderr + r.stdout).toMatch(/Association Rejected/);
      records = await since(before);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    expect(records.find((x) => x.action === 'token-use')).toMatchObject({
      outcome: 'failure',
      channel: 'dimse',
    });
    expect(records.find((x) => x.action === 'dicom-associate')).toMatchObject({
      actor: { name: 'IDSCU' },
      outcome: 'denied',
      channel: 'dimse',
      detail: { user: 'refused-rad' },
    });
  });
});
