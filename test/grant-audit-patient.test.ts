import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { makeInstance, uid } from './support/fixtures.js';
import { markRestricted, postStow, startTestServer, type TestServer } from './support/test-server.js';

describe.each(backends())('grant and care-team records name the patient on %s', (backend) => {
  let s: TestServer;
  const operator = systemPrincipal('cli');
  const study = uid(1);
  const patientId = `VIP-${uid(2)}`;

  beforeAll(async () => {
    s = await startTestServer(backend);
    const res = await postStow(s, [
      makeInstance({ studyUid: study, seriesUid: `${study}.1`, sopInstanceUid: `${study}.1.1`, patientId }),
    ]);
    expect(res.status).toBe(200);
    await markRestricted(s, study);
    await s.app.accounts.add(operator, { username: 'rad7', role: 'radiologist', department: 'Radiology' });
  });
  afterAll(async () => {
    await s?.stop();
  });
  afterEach(() => expect(s.unexpected).toEqual([]));

  it("shows a privacy officer searching by patient who was given access to the patient's study", async () => {
    await s.app.accounts.grant(operator, 'rad7', study, { days: 1, reason: 'tumour board' });
    await s.app.accounts.addToCareTeam(operator, 'rad7', study, 'consultant');
    // A grant on a study not (yet) stored still records, without a patient.
    const absent = uid(3);
    await s.app.accounts.grant(operator, 'rad7', absent, { days: 1, reason: 'outside prior expected' });

    const auth = { Authorization: `Bearer ${s.token}` };
    const byPatient = (await (
      await fetch(
        `${s.url}/api/audit/records?patient=${encodeURIComponent(patientId)}&action=grant-create,care-team-add`,
        {
          headers: auth,
        },
      )
    ).json()) as { records: AuditRecord[] };
    expect(
      byPatient.records.map((r) => [
        r.action,
        r.patientId,
        r.studyUid,
        (r.objects as { user?: string }).user,
      ]),
    ).toEqual([
      ['care-team-add', patientId, study, 'rad7'],
      ['grant-create', patientId, study, 'rad7'],
    ]);

    const fhir = (await (
      await fetch(`${s.url}/fhir/r4/AuditEvent?patient=${encodeURIComponent(patientId)}`, { headers: auth })
    ).json()) as { entry?: { resource: { subtype: { code: string }[] } }[] };
    const actions = (fhir.entry ?? []).flatMap((e) => e.resource.subtype.map((c) => c.code));
    expect(actions).toEqual(expect.arrayContaining(['grant-create', 'care-team-add']));

    const noPatient = (await (
      await fetch(`${s.url}/api/audit/records?study=${absent}`, { headers: auth })
    ).json()) as { records: AuditRecord[] };
    expect(noPatient.records).toHaveLength(1);
    expect(noPatient.records[0]).toMatchObject({ action: 'grant-create', studyUid: absent });
    expect(noPatient.records[0]!.patientId).toBeUndefined();
  });
});
