// docs/audit.md, "Reading the ledger": a search whose answer held a patient's rows (name, ID, study details) is a
// disclosure of that patient, listed by `custos audit disclosures --patient` like a retrieve; a search that returned
// other patients only is not. QIDO-RS over HTTP and C-FIND with dcmtk's findscu against the real server, read back
// through the CLI, on every backend; the ledger still verifies.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import type { Disclosure } from '../src/services/audit-service.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { captureIO } from './support/cli-io.js';
import { findscuTo } from './support/dcmtk.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { shareIndexWithCli, startTestServer, type TestServer } from './support/test-server.js';

const admin = systemPrincipal('test');

describe.each(backends())('searches in the accounting of disclosures on %s', (backend) => {
  let s: TestServer;
  // PID-ALPHA: two studies, the first with two series (two instances and one), the second one series of one.
  const alpha = [uid(1), uid(1)];
  const alphaSeries = [uid(2), uid(2), uid(2)];
  // PID-BETA: one study that the negative searches return.
  const beta = uid(1);

  const cli = async (...args: string[]) => {
    const io = captureIO(s.dataDir);
    const code = await main([...args, '--data', s.dataDir], io);
    return { code, stdout: io.stdout, stderr: io.stderr };
  };
  const disclosuresOf = async (patient: string) => {
    const r = await cli('audit', 'disclosures', '--patient', patient, '--json');
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { patientId: string; disclosures: Disclosure[]; records: number };
  };
  const qido = async (path: string) => {
    const res = await fetch(`${s.dicomweb}${path}`, { headers: { Authorization: `Bearer ${s.token}` } });
    expect(res.status, path).toBe(200);
    return (await res.json()) as unknown[];
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    const object = (patientId: string, patientName: string, studyUid: string, seriesUid: string) => ({
      bytes: makeInstance({
        studyUid,
        seriesUid,
        sopInstanceUid: uid(3),
        patientId,
        patientName,
        rows: 4,
        columns: 4,
      }),
    });
    const { body, contentType } = stowBody([
      object('PID-ALPHA', 'Alpha^Ann', alpha[0]!, alphaSeries[0]!),
      object('PID-ALPHA', 'Alpha^Ann', alpha[0]!, alphaSeries[0]!),
      object('PID-ALPHA', 'Alpha^Ann', alpha[0]!, alphaSeries[1]!),
      object('PID-ALPHA', 'Alpha^Ann', alpha[1]!, alphaSeries[2]!),
      object('PID-BETA', 'Beta^Bob', beta, uid(2)),
    ]);
    const stow = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    expect(stow.status, await stow.clone().text()).toBe(200);
    await s.app.aes.add(admin, { title: 'DISCSCU', host: '127.0.0.1', port: 104, user: 'admin' });
    await shareIndexWithCli(s);
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('lists the QIDO-RS and C-FIND searches that returned the patient, and not those that returned others', async () => {
    // Searches that returned PID-ALPHA's rows.
    expect(await qido('/studies?PatientName=Alpha*')).toHaveLength(2);
    expect(await qido('/series?PatientID=PID-ALPHA')).toHaveLength(3);
    expect(await qido(`/studies/${alpha[0]}/instances`)).toHaveLength(3);
    const both = await findscuTo(s.dicomPort, 'DISCSCU', 'QueryRetrieveLevel=STUDY', 'PatientID=PID-*');
    expect(both.code, both.stderr).toBe(0);
    expect(both.stderr.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(3);
    // Searches that returned other patients only, or nothing.
    expect(await qido('/studies?PatientID=PID-BETA')).toHaveLength(1);
    const other = await findscuTo(s.dicomPort, 'DISCSCU', 'QueryRetrieveLevel=STUDY', 'PatientID=PID-BETA');
    expect(other.code, other.stderr).toBe(0);
    expect(other.stderr.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(1);
    expect(await qido('/studies?PatientID=NOBODY')).toEqual([]);

    const { disclosures } = await disclosuresOf('PID-ALPHA');
    const web = disclosures.find((d) => d.kind === 'user' && d.actor === 'admin')!;
    expect(web.actions).toEqual(['query']);
    expect(web.channels).toEqual(['dicomweb']);
    expect(web.searches).toBe(3);
    expect(web.recentSearches.map(({ seq: _seq, ts: _ts, ...rest }) => rest)).toEqual([
      {
        channel: 'dicomweb',
        query: `instance: StudyInstanceUID=${alpha[0]}`,
        studies: 1,
        series: 2,
        instances: 3,
      },
      { channel: 'dicomweb', query: 'series: PatientID=PID-ALPHA', studies: 2, series: 3 },
      { channel: 'dicomweb', query: 'study: PatientName=Alpha*', studies: 2 },
    ]);
    const dimse = disclosures.find((d) => d.kind === 'ae')!;
    expect(dimse.actor).toBe('DISCSCU');
    expect(dimse.channels).toEqual(['dimse']);
    expect(dimse.searches).toBe(1);
    expect(dimse.recentSearches.map(({ seq: _seq, ts: _ts, ...rest }) => rest)).toEqual([
      { channel: 'dimse', query: 'study: PatientID=PID-*', studies: 2 },
    ]);
    expect(disclosures).toHaveLength(2);

    // The other patient's accounting holds the searches that returned it: one over HTTP, both C-FINDs.
    const b = await disclosuresOf('PID-BETA');
    const bWeb = b.disclosures.find((d) => d.kind === 'user')!;
    expect(bWeb.recentSearches.map((q) => q.query)).toEqual(['study: PatientID=PID-BETA']);
    expect(bWeb.recentSearches[0]!.studies).toBe(1);
    expect(b.disclosures.find((d) => d.kind === 'ae')!.recentSearches.map((q) => q.query)).toEqual([
      'study: PatientID=PID-BETA',
      'study: PatientID=PID-*',
    ]);
    // A search that returned nothing discloses nobody.
    expect((await disclosuresOf('NOBODY')).disclosures).toEqual([]);

    const text = await cli('audit', 'disclosures', '--patient', 'PID-ALPHA');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('admin (administrator): 3× query');
    expect(text.stdout).toContain('via dicomweb');
    expect(text.stdout).toMatch(
      /search \S+Z dicomweb \[series: PatientID=PID-ALPHA\] returned 2 studies, 3 series\n/,
    );
    expect(text.stdout).toMatch(/search \S+Z dimse \[study: PatientID=PID-\*\] returned 2 studies\n/);
    expect(text.stdout).not.toContain('PID-BETA');

    const verified = await cli('audit', 'verify');
    expect(verified.code, verified.stdout).toBe(0);
    expect(verified.stdout).toContain('ledger OK');
  });

  it('still lists a search recorded before its record named the patients returned', async () => {
    // A record as Custos wrote it until 7 Dec 2026 for a search narrowed to one patient by the caller's code:
    // the patient in the record's own column, no `objects.patients`.
    await s.app.ledger.append({
      principal: { ...admin, name: 'legacy-viewer', role: 'radiologist', source: '10.9.8.7' },
      action: 'query',
      outcome: 'success',
      policy: 'p',
      patientId: 'PID-ALPHA',
      objects: {
        level: 'study',
        matches: [{ key: 'PatientID', type: 'equals', value: 'PID-ALPHA' }],
        count: 1,
      },
    });
    const legacy = (await disclosuresOf('PID-ALPHA')).disclosures.find((d) => d.actor === 'legacy-viewer')!;
    expect(legacy.recentSearches.map(({ seq: _seq, ts: _ts, ...rest }) => rest)).toEqual([
      { channel: '', query: 'study: PatientID=PID-ALPHA' },
    ]);
    const verified = await cli('audit', 'verify');
    expect(verified.code, verified.stdout).toBe(0);
  });

  it('refuses changes to the patient index, and verification names a row removed from it', async () => {
    const db = s.app.index.db;
    await expect(sql`update audit_ledger_patients set patient_id = 'x'`.execute(db)).rejects.toThrow(
      /append-only/,
    );
    await expect(sql`delete from audit_ledger_patients`.execute(db)).rejects.toThrow(/append-only/);
    if (backend === 'postgres')
      await expect(sql`truncate audit_ledger_patients`.execute(db)).rejects.toThrow(/append-only/);
    // What someone hiding a disclosure with full database access does: the triggers off, the index row gone.
    if (backend === 'postgres')
      await sql`alter table audit_ledger_patients disable trigger audit_ledger_patients_append_only`.execute(
        db,
      );
    else await sql`drop trigger audit_ledger_patients_no_delete`.execute(db);
    const hidden = await db
      .selectFrom('audit_ledger_patients')
      .select('seq')
      .where('patient_id', '=', 'PID-BETA')
      .orderBy('seq')
      .executeTakeFirstOrThrow();
    await sql`delete from audit_ledger_patients where seq = ${hidden.seq} and patient_id = 'PID-BETA'`.execute(
      db,
    );
    const verified = await cli('audit', 'verify');
    expect(verified.code, verified.stdout).toBe(1);
    expect(verified.stdout).toContain(`TAMPERED at seq ${Number(hidden.seq)} (changed)`);
    expect(verified.stdout).toContain('patients column');
  });
});
