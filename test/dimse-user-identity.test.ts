// User Identity negotiation (PS3.7 D.3.3.7) as dcmtk's requestors send it: what Custos answers for each type, with
// and without a positive response asked for, and that an identity Custos does not verify grants nothing.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { storescuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

describe.each(backends())('DIMSE User Identity negotiation with dcmtk, on %s', (backend) => {
  let s: TestServer;
  let work: string;
  const admin = systemPrincipal('test');

  beforeAll(async () => {
    s = await startTestServer(backend);
    work = await mkdtemp(join(tmpdir(), 'custos-ident-'));
    await s.app.aes.add(admin, { title: 'IDSCU', host: '127.0.0.1', port: 104, user: 'admin' });
    await s.app.accounts.add(admin, { username: 'ident-student', role: 'student' });
    await s.app.aes.add(admin, { title: 'STUDENTWS', host: '127.0.0.1', port: 104, user: 'ident-student' });
  });
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
    await rm(work, { recursive: true, force: true });
  });

  const lastAssociation = async () => {
    const r = await s.app.index.db
      .selectFrom('audit_ledger')
      .select(['outcome', 'record'])
      .where('action', '=', 'dicom-associate')
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirstOrThrow();
    return {
      outcome: r.outcome,
      ...(JSON.parse(r.record) as { actor: unknown; detail: Record<string, unknown> }),
    };
  };

  it('answers a bare user name asked for a positive response (PS3.15 B.4), and grants nothing by it', async () => {
    const sop = uid(3);
    const f = join(work, 'type1.dcm');
    await writeFile(f, makeInstance({ studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: sop }));
    // A student's workstation claiming to be the administrator: the name is not verified, so the AE's own account
    // (a student, who may not store) decides. Until 7 Dec 2026 dcmtk gave up before associating ("Positive response
    // requested but none received").
    const r = await storescuTo(s.dicomPort, 'STUDENTWS', [f], '--user', 'admin', '--pos-response');
    expect(r.stderr + r.stdout).toMatch(/Association Accepted/);
    expect(r.stderr + r.stdout).not.toMatch(/User Identity Negotiation failed/);
    expect(r.stderr).toMatch(/Store Response \(Unknown Status: 0x124\)|Refused: NotAuthorized/);
    const sops = await s.app.index.db
      .selectFrom('instances')
      .select('sop_instance_uid')
      .where('sop_instance_uid', '=', sop)
      .execute();
    expect(sops).toEqual([]);
    expect(await lastAssociation()).toMatchObject({
      outcome: 'success',
      actor: { kind: 'ae', name: 'STUDENTWS', role: 'student' },
      detail: { userIdentity: 1, unverifiedUser: 'admin' },
    });
    // Without a positive response asked for, the same: associated, named, nothing granted.
    const quiet = await storescuTo(s.dicomPort, 'STUDENTWS', [f], '--user', 'dr.house');
    expect(quiet.stderr).toMatch(/Store Response \(Unknown Status: 0x124\)|Refused: NotAuthorized/);
    expect(await lastAssociation()).toMatchObject({
      actor: { kind: 'ae', name: 'STUDENTWS' },
      detail: { userIdentity: 1, unverifiedUser: 'dr.house' },
    });
  });

  it('takes a Kerberos or SAML identity as not given: no positive response, the AE stays the principal', async () => {
    const f = join(work, 'kerberos.dcm');
    await writeFile(f, makeInstance({ studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: uid(3) }));
    const ticket = join(work, 'ticket');
    await writeFile(ticket, 'not a ticket');
    for (const kind of ['--kerberos', '--saml']) {
      // dcmtk 3.6.7 goes on without the response for these types.
      const r = await storescuTo(s.dicomPort, 'IDSCU', [f], kind, ticket, '--pos-response');
      expect(r.code, r.stderr).toBe(0);
      const record = await lastAssociation();
      expect(record).toMatchObject({ outcome: 'success', actor: { kind: 'ae', name: 'IDSCU' } });
      expect(record.detail).not.toHaveProperty('userIdentity');
    }
  });
});
