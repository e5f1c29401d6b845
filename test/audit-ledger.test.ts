import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { captureIO } from './support/cli-io.js';
import type { CustosApp } from '../src/app/custos-app.js';
import { KNOWN_AUDIT_ACTIONS, type AuditRecord } from '../src/domain/audit-record.js';
import { canonicalJson } from '../src/domain/canonical-json.js';
import { linkHash, type VerifyReport } from '../src/domain/ledger-chain.js';
import { asUserId } from '../src/domain/ids.js';
import type { Principal } from '../src/domain/principal.js';
import { backends } from './support/backends.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const someone = (name: string): Principal => ({
  kind: 'user',
  id: asUserId(name),
  name,
  role: 'radiologist',
  source: '10.1.2.3',
  via: 'token:7',
});

/** Reads the ledger; the built-in administrator role is the one the first-day policy lets do so. */
const auditor: Principal = { ...someone('auditor'), role: 'administrator' };

/** Append n events as three people looking at five patients' studies, then seal them. */
async function fill(app: CustosApp, n: number): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      app.ledger.append({
        principal: someone(`user${i % 3}`),
        action: i % 2 ? 'view-pixels' : 'query',
        outcome: 'success',
        policy: 'test-policy',
        patientId: `PID${i % 5}`,
        studyUid: `1.2.826.0.1.${i % 7}`,
        objects: { count: i },
      }),
    ),
  );
  await app.audit.checkpoint();
}

type Raw = { seq: number; record: string; prev_hash: string; hash: string };

describe.each(backends())('audit ledger on %s', (backend) => {
  let s: TestServer;
  const db = () => s.app.index.db;
  const pg = backend === 'postgres';

  /** What an attacker with database access does first: switch the append-only triggers off. */
  async function disableTriggers() {
    if (pg) {
      await sql`alter table audit_ledger disable trigger audit_ledger_append_only`.execute(db());
      await sql`alter table audit_checkpoints disable trigger audit_checkpoints_append_only`.execute(db());
    } else {
      for (const t of ['audit_ledger', 'audit_checkpoints'])
        for (const op of ['update', 'delete']) await sql.raw(`drop trigger ${t}_no_${op}`).execute(db());
    }
  }
  const row = async (seq: number) =>
    (await sql<Raw>`select seq, record, prev_hash, hash from audit_ledger where seq = ${seq}`.execute(db()))
      .rows[0]!;
  const edit = (text: string, f: (r: AuditRecord) => void) => {
    const r = JSON.parse(text) as AuditRecord;
    f(r);
    return canonicalJson(r);
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
  });
  afterAll(async () => {
    await s?.stop();
  });
  afterEach(() => expect(s.unexpected).toEqual([]));

  it('refuses UPDATE, DELETE (and TRUNCATE) on the ledger tables', async () => {
    await fill(s.app, 5);
    await expect(sql`update audit_ledger set actor = 'x'`.execute(db())).rejects.toThrow(/append-only/);
    await expect(sql`delete from audit_ledger`.execute(db())).rejects.toThrow(/append-only/);
    await expect(sql`update audit_checkpoints set seq = 0`.execute(db())).rejects.toThrow(/append-only/);
    await expect(sql`delete from audit_checkpoints`.execute(db())).rejects.toThrow(/append-only/);
    if (pg) await expect(sql`truncate audit_ledger`.execute(db())).rejects.toThrow(/append-only/);
    expect((await s.app.audit.verify(auditor)).ok).toBe(true);
  });

  it('group-commits concurrent appends into one gapless chain, each resolved only once durable', async () => {
    const before = (await s.app.auditStore.head()).seq;
    let resolved = 0;
    const committedWhenResolved: number[] = [];
    await Promise.all(
      Array.from({ length: 600 }, (_, i) =>
        s.app.ledger
          .append({
            principal: someone('burst'),
            action: 'query',
            outcome: 'success',
            policy: 'p',
            objects: { i },
          })
          .then(async () => {
            resolved += 1;
            const mine = resolved;
            committedWhenResolved.push((await s.app.auditStore.head()).seq - before - mine);
          }),
      ),
    );
    // When a caller resumes, at least as many records are committed as callers have resumed.
    expect(Math.min(...committedWhenResolved)).toBeGreaterThanOrEqual(0);
    const head = (await s.app.auditStore.head()).seq;
    expect(head - before).toBe(600);
    const seqs = (
      await sql<{ seq: number }>`select seq from audit_ledger order by seq`.execute(db())
    ).rows.map((r) => Number(r.seq));
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect((await s.app.audit.verify(auditor)).ok).toBe(true);
  });

  it('records who, what, which, when, where and why for a DICOMweb store, query and retrieve', async () => {
    const studyUid = uid(1);
    const series = uid(2);
    const sop = uid(3);
    const { body, contentType } = stowBody([
      { bytes: makeInstance({ studyUid, seriesUid: series, sopInstanceUid: sop, patientId: 'LEDGER-1' }) },
    ]);
    const auth = { Authorization: `Bearer ${s.token}` };
    expect(
      (
        await fetch(`${s.dicomweb}/studies`, {
          method: 'POST',
          headers: { ...auth, 'Content-Type': contentType },
          body,
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await fetch(`${s.dicomweb}/studies?PatientID=LEDGER-1`, {
          headers: { ...auth, 'X-Purpose-Of-Use': 'treat' },
        })
      ).status,
    ).toBe(200);
    const badPurpose = await fetch(`${s.dicomweb}/studies`, {
      headers: { ...auth, 'X-Purpose-Of-Use': 'to <snoop>' },
    });
    expect(badPurpose.status).toBe(400);
    // A word of the right form that is no HL7 v3 PurposeOfUse code: refused, not recorded and exported as one.
    const bogus = await fetch(`${s.dicomweb}/studies?PatientID=LEDGER-1`, {
      headers: { ...auth, 'X-Purpose-Of-Use': 'BOGUS' },
    });
    expect(bogus.status).toBe(400);
    const bogusProblem = (await bogus.json()) as { detail: string; code: string };
    expect(bogusProblem.code).toBe('http.bad-purpose');
    expect(bogusProblem.detail).toContain('X-Purpose-Of-Use');
    expect(bogusProblem.detail).toContain("'BOGUS'");
    const etreat = await fetch(`${s.dicomweb}/studies?PatientID=LEDGER-1`, {
      headers: { ...auth, 'X-Purpose-Of-Use': 'ETREAT' },
    });
    expect(etreat.status).toBe(200);
    await etreat.arrayBuffer();
    const wado = await fetch(`${s.dicomweb}/studies/${studyUid}/series/${series}/instances/${sop}`, {
      headers: auth,
    });
    expect(wado.status).toBe(200);
    await wado.arrayBuffer();
    const recs = await s.app.auditStore.search({ patientId: 'LEDGER-1', order: 'asc', limit: 10 });
    // The two queries answered (TREAT, ETREAT) disclosed this patient; the refused ones answered nothing.
    expect(recs.map((r) => r.action)).toEqual(['store', 'query', 'query', 'view-pixels']);
    const [store, , , view] = recs as [AuditRecord, AuditRecord, AuditRecord, AuditRecord];
    expect(store).toMatchObject({
      actor: {
        kind: 'user',
        name: 'admin',
        role: 'administrator',
        via: expect.stringMatching(/^token:\d+$/),
      },
      outcome: 'success',
      policy: 'archive-store',
      studyUid,
      source: '127.0.0.1',
      node: s.config.nodeName,
    });
    expect(store.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(view.objects?.sopInstanceUids).toEqual([sop]);
    const queries = await s.app.auditStore.search({
      action: ['query'],
      actor: 'admin',
      order: 'asc',
      limit: 10,
    });
    const query = queries.find((q) => q.purpose === 'TREAT')!;
    expect(query.objects).toMatchObject({ count: 1, matches: [{ key: 'PatientID', value: 'LEDGER-1' }] });
    expect(queries.map((q) => q.purpose).filter(Boolean)).toEqual(['TREAT', 'ETREAT']);
  });

  it('serves search, paging, disclosures and export in the admin API, and records each read', async () => {
    await fill(s.app, 30);
    const auth = { Authorization: `Bearer ${s.token}` };
    const page1 = (await (
      await fetch(`${s.url}/api/audit/records?patient=PID1&action=view-pixels,query&limit=4`, {
        headers: auth,
      })
    ).json()) as { records: AuditRecord[]; next: { before: number } };
    expect(page1.records).toHaveLength(4);
    expect(page1.records.every((r) => r.patientId === 'PID1')).toBe(true);
    const page2 = (await (
      await fetch(`${s.url}/api/audit/records?patient=PID1&limit=4&before=${page1.next.before}`, {
        headers: auth,
      })
    ).json()) as { records: AuditRecord[] };
    expect(page2.records[0]!.seq).toBeLessThan(page1.records[3]!.seq);

    const bad = await fetch(`${s.url}/api/audit/records?since=yesterday`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/problem\+json/);
    expect(await bad.json()).toMatchObject({ parameter: 'since', detail: expect.stringMatching(/^since:/) });
    const unknown = await fetch(`${s.url}/api/audit/records?patientid=x`, { headers: auth });
    expect(await unknown.json()).toMatchObject({ status: 400, parameter: 'patientid' });

    const disc = (await (
      await fetch(`${s.url}/api/audit/disclosures?patient=PID2`, { headers: auth })
    ).json()) as {
      disclosures: { actor: string; count: number; actions: string[]; sources: string[] }[];
      records: number;
    };
    expect(disc.disclosures.map((d) => d.actor).sort()).toEqual(['user0', 'user1', 'user2']);
    expect(disc.disclosures.reduce((n, d) => n + d.count, 0)).toBe(disc.records);
    expect(disc.disclosures[0]!.sources).toEqual(['10.1.2.3']);

    const exp = await fetch(`${s.url}/api/audit/export?format=jsonl&user=user1`, { headers: auth });
    expect(exp.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await exp.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord);
    expect(lines.length).toBeGreaterThanOrEqual(10);
    expect(lines.every((r) => r.actor.name === 'user1')).toBe(true);
    expect(lines.map((r) => r.seq)).toEqual([...lines.map((r) => r.seq)].sort((a, b) => a - b));

    const fhir = await fetch(`${s.url}/api/audit/export?format=fhir&user=user1`, { headers: auth });
    expect(fhir.headers.get('content-type')).toMatch(/^application\/fhir\+ndjson/);
    const events = (await fhir.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { resourceType: string; id: string });
    expect(events.map((e) => e.resourceType)).toEqual(Array(lines.length).fill('AuditEvent'));
    expect(events.map((e) => Number(e.id))).toEqual(lines.map((r) => r.seq));
    const xml = await (
      await fetch(`${s.url}/api/audit/export?format=dicom&user=user1`, { headers: auth })
    ).text();
    expect(
      xml
        .trim()
        .split('\n')
        .every((l) => /^<\?xml .*<AuditMessage.*<\/AuditMessage>$/.test(l)),
    ).toBe(true);
    const csv = await fetch(`${s.url}/api/audit/export?format=csv&user=user1`, { headers: auth });
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).toBe('attachment; filename="custos-audit.csv"');
    const rows = (await csv.text()).trim().split('\r\n');
    expect(rows[0]).toMatch(/^seq,ts,actor,role,kind,action,outcome,policy/);
    expect(rows.slice(1).map((r) => Number(r.split(',')[0]))).toEqual(lines.map((r) => r.seq));
    const badFormat = await fetch(`${s.url}/api/audit/export?format=xlsx`, { headers: auth });
    expect(await badFormat.json()).toMatchObject({ status: 400, parameter: 'format' });

    const reads = await s.app.auditStore.search({ action: ['read-audit'], actor: 'admin', limit: 50 });
    const ops = reads.map((r) => (r.objects?.query as { operation: string }).operation);
    expect(ops).toEqual(expect.arrayContaining(['search', 'disclosures', 'export']));
    expect(
      reads.find((r) => (r.objects?.query as { operation: string }).operation === 'disclosures')?.patientId,
    ).toBe('PID2');
    const noToken = await fetch(`${s.url}/api/audit/records`);
    expect(noToken.status).toBe(401);
  });

  it("finds an account's records by its name in any letter case, as account names are everywhere else", async () => {
    const auth = { Authorization: `Bearer ${s.token}` };
    const exact = (await (
      await fetch(`${s.url}/api/audit/records?user=admin&limit=20`, { headers: auth })
    ).json()) as { records: AuditRecord[] };
    expect(exact.records.length).toBeGreaterThan(0);
    const upper = (await (
      await fetch(`${s.url}/api/audit/records?user=ADMIN&limit=20`, { headers: auth })
    ).json()) as { records: AuditRecord[] };
    // The second search is itself recorded, so it sees one more read-audit record of admin than the first.
    expect(upper.records.length).toBeGreaterThan(0);
    expect(upper.records.every((r) => r.actor.name === 'admin')).toBe(true);
    expect(upper.records.map((r) => r.seq)).toEqual(
      expect.arrayContaining(exact.records.slice(0, 10).map((r) => r.seq)),
    );
    const exported = (
      await (await fetch(`${s.url}/api/audit/export?format=jsonl&user=Admin`, { headers: auth })).text()
    )
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord);
    expect(exported.length).toBeGreaterThan(0);
    expect(exported.every((r) => r.actor.name === 'admin')).toBe(true);
    // A name no account answers to (an AE title, an OIDC subject) is matched as given.
    const none = (await (
      await fetch(`${s.url}/api/audit/records?user=nobody-here`, { headers: auth })
    ).json()) as { records: AuditRecord[] };
    expect(none.records).toEqual([]);
  });

  // The tamper cases run last and in this order: each one breaks the chain for good.
  describe('tampering directly in the database', () => {
    it('catches a changed field and names its seq (HTTP and CLI agree)', async () => {
      await fill(s.app, 20);
      const ok = await fetch(`${s.url}/api/audit/verify`, {
        headers: { Authorization: `Bearer ${s.token}` },
      });
      expect(ok.status).toBe(200);
      await disableTriggers();
      const head = (await s.app.auditStore.head()).seq;
      const target = head - 10;
      const r = await row(target);
      await sql`update audit_ledger set record = ${edit(r.record, (x) => (x.outcome = 'failure'))}, outcome = 'failure' where seq = ${target}`.execute(
        db(),
      );
      const res = await fetch(`${s.url}/api/audit/verify`, {
        headers: { Authorization: `Bearer ${s.token}` },
      });
      expect(res.status).toBe(409);
      expect(await res.json()).toMatchObject({ ok: false, problem: { seq: target, kind: 'changed' } });
      // Put it back so the next cases each start from one fresh break.
      await sql`update audit_ledger set record = ${r.record}, outcome = 'success' where seq = ${target}`.execute(
        db(),
      );
      expect((await s.app.audit.verify(auditor)).ok).toBe(true);
    });

    it('refuses to sign a tampered ledger and records a security alert instead', async () => {
      await fill(s.app, 5);
      for (let i = 0; i < 2; i++)
        await s.app.ledger.append({
          principal: someone('x'),
          action: 'query',
          outcome: 'success',
          policy: 'p',
        });
      const target = (await s.app.auditStore.head()).seq - 1;
      const r = await row(target);
      await sql`update audit_ledger set record = ${edit(r.record, (x) => (x.policy = 'forged'))} where seq = ${target}`.execute(
        db(),
      );
      await expect(s.app.audit.checkpoint()).rejects.toThrow(/not signed/);
      const alert = (await s.app.auditStore.search({ action: ['alert'], limit: 1 }))[0]!;
      expect(alert.detail).toMatchObject({
        alert: 'ledger-tampered',
        problem: { seq: target, kind: 'changed' },
      });
      await sql`update audit_ledger set record = ${r.record} where seq = ${target}`.execute(db());
      expect(await s.app.audit.checkpoint()).toMatchObject({ seq: target + 2 });
    });

    /** Each case on a ledger of its own: verify appends its own record, so a repaired chain is not the same. */
    async function fresh(): Promise<{
      head: number;
      verify: () => Promise<VerifyReport>;
      done: () => Promise<void>;
    }> {
      const own = await startTestServer(backend);
      const outer = s;
      s = own;
      await fill(own.app, 20);
      await disableTriggers();
      return {
        head: (await own.app.auditStore.head()).seq,
        verify: () => own.app.audit.verify(auditor),
        done: async () => {
          s = outer;
          await own.stop();
        },
      };
    }

    it('catches a deleted row', async () => {
      const f = await fresh();
      try {
        await sql`delete from audit_ledger where seq = ${f.head - 15}`.execute(db());
        expect((await f.verify()).problem).toMatchObject({ seq: f.head - 15, kind: 'removed' });
      } finally {
        await f.done();
      }
    });

    it('catches an inserted row (the rows after it renumbered to make room)', async () => {
      const f = await fresh();
      try {
        const k = f.head - 12;
        const prev = await row(k - 1);
        await sql`update audit_ledger set seq = -seq where seq >= ${k}`.execute(db());
        await sql`update audit_ledger set seq = -seq + 1 where seq < 0`.execute(db());
        const forged = edit(prev.record, (x) => {
          x.seq = k;
          x.actor.name = 'nobody';
        });
        await insertRaw(k, forged, prev.hash, linkHash(prev.hash, forged), 'nobody');
        expect((await f.verify()).problem).toMatchObject({ seq: k, kind: 'inserted' });
      } finally {
        await f.done();
      }
    });

    it('catches two swapped rows', async () => {
      const f = await fresh();
      try {
        const [a, b] = [f.head - 8, f.head - 6];
        await sql`update audit_ledger set seq = 0 where seq = ${a}`.execute(db());
        await sql`update audit_ledger set seq = ${a} where seq = ${b}`.execute(db());
        await sql`update audit_ledger set seq = ${b} where seq = 0`.execute(db());
        expect((await f.verify()).problem).toMatchObject({ seq: a, kind: 'reordered' });
      } finally {
        await f.done();
      }
    });

    it('catches a truncated tail by the signed checkpoint', async () => {
      const f = await fresh();
      try {
        const signedAt = (await s.app.auditStore.checkpoints()).at(-1)!.seq;
        await sql`delete from audit_ledger where seq > ${signedAt - 3}`.execute(db());
        expect((await f.verify()).problem).toMatchObject({ seq: signedAt - 2, kind: 'removed' });
      } finally {
        await f.done();
      }
    });

    async function insertRaw(seq: number, record: string, prevHash: string, hash: string, actor: string) {
      const r = JSON.parse(record) as AuditRecord;
      await db()
        .insertInto('audit_ledger')
        .values({
          seq,
          ts: r.ts,
          actor,
          action: r.action,
          outcome: r.outcome,
          patient_id: r.patientId ?? '',
          study_uid: r.studyUid ?? '',
          record,
          prev_hash: prevHash,
          hash,
        })
        .execute();
    }
  });
});

/** The configuration `custos audit verify --data` needs to reach the test server's database. */
function cliDbConfig(s: TestServer, backend: string): object {
  return backend === 'postgres'
    ? { database: { url: s.config.database.url, schema: s.config.database.schema } }
    : {};
}

describe.each(backends())('a deleted external checkpoint file on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('fails `custos audit verify` when the external checkpoint file is gone', async () => {
    await fill(s.app, 10);
    const first = (await s.app.auditStore.checkpoints())[0]!;
    const moved = `${s.config.audit.checkpointFile}.moved`;
    await rename(s.config.audit.checkpointFile, moved);
    try {
      await writeFile(`${s.dataDir}/custos.json`, JSON.stringify(cliDbConfig(s, backend)));
      const out = captureIO(s.dataDir);
      const code = await main(['audit', 'verify', '--data', s.dataDir], out);
      expect(code, out.stderr).toBe(1);
      expect(out.stdout).toContain(`TAMPERED at seq ${first.seq} (checkpoint)`);
      expect(out.stdout).toContain('deleted, emptied or replaced');
    } finally {
      await rename(moved, s.config.audit.checkpointFile);
    }
    const out = captureIO(s.dataDir);
    expect(await main(['audit', 'verify', '--data', s.dataDir], out), out.stdout).toBe(0);
  });
});

describe.each(backends())('a consistent rewrite of the whole ledger on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('is caught by the external checkpoint file, with the place named, by `custos audit verify`', async () => {
    await fill(s.app, 40);
    const signed = (await s.app.auditStore.checkpoints()).at(-1)!;
    const db = s.app.index.db;
    // The attacker rewrites record 5, recomputes every hash after it, and removes the database's checkpoints
    // (they cannot forge new ones without the signing key).
    if (backend === 'postgres') {
      await sql`alter table audit_ledger disable trigger audit_ledger_append_only`.execute(db);
      await sql`alter table audit_checkpoints disable trigger audit_checkpoints_append_only`.execute(db);
    } else {
      for (const t of ['audit_ledger', 'audit_checkpoints'])
        for (const op of ['update', 'delete']) await sql.raw(`drop trigger ${t}_no_${op}`).execute(db);
    }
    const rows = (
      await sql<Raw>`select seq, record, prev_hash, hash from audit_ledger order by seq`.execute(db)
    ).rows;
    let prev = rows[3]!.hash;
    for (const r of rows.slice(4)) {
      const rec = JSON.parse(r.record) as AuditRecord;
      if (Number(r.seq) === 5) rec.policy = 'rewritten';
      const text = canonicalJson(rec);
      const hash = linkHash(prev, text);
      await sql`update audit_ledger set record = ${text}, prev_hash = ${prev}, hash = ${hash} where seq = ${r.seq}`.execute(
        db,
      );
      prev = hash;
    }
    await sql`delete from audit_checkpoints`.execute(db);
    await writeFile(`${s.dataDir}/custos.json`, JSON.stringify(cliDbConfig(s, backend)));
    const out = captureIO(s.dataDir);
    const code = await main(['audit', 'verify', '--data', s.dataDir], out);
    expect(code, out.stderr).toBe(1);
    expect(out.stdout).toMatch(
      new RegExp(`TAMPERED at seq 1 \\(changed\\).*at seq ${signed.seq}.*external signed checkpoint`),
    );
    expect(await readFile(s.config.audit.checkpointFile, 'utf8')).toContain(`"seq":${signed.seq}`);
  });
});

describe.each(backends())('audited events on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('logout revokes the token it was made with and is recorded', async () => {
    const { token } = await s.app.auth.createToken(auditor, 'admin', { name: 'session' });
    const auth = { Authorization: `Bearer ${token}` };
    expect((await fetch(`${s.url}/api/auth/logout`, { method: 'POST', headers: auth })).status).toBe(204);
    const after = await fetch(`${s.dicomweb}/studies`, { headers: auth });
    expect(after.status).toBe(401);
    const [rec] = await s.app.auditStore.search({ action: ['logout'], limit: 1 });
    expect(rec).toMatchObject({
      actor: { name: 'admin', via: expect.stringMatching(/^token:\d+$/) },
      outcome: 'success',
    });
  });

  it('records the configuration at first start and what changed at a later start, without secrets', async () => {
    const [first] = await s.app.auditStore.search({ action: ['config-change'], limit: 1 });
    expect(first?.detail).toMatchObject({ first: true, settings: { dataDir: s.dataDir } });
    const { openApp, auditableSettings } = await import('../src/app/custos-app.js');
    const masked = JSON.stringify(
      auditableSettings({ ...s.config, database: { url: 'postgres://custos:s3cret@db.example/pacs' } }),
    );
    expect(masked).toContain('postgres://custos:***@db.example/pacs');
    expect(masked).not.toContain('s3cret');
    const again = await openApp({ ...s.config, audit: { ...s.config.audit, checkpointSeconds: 7 } });
    await again.close();
    const [latest] = await s.app.auditStore.search({ action: ['config-change'], limit: 1 });
    expect(latest?.detail?.changed).toEqual(['audit.checkpointSeconds']);
    const same = await openApp({ ...s.config, audit: { ...s.config.audit, checkpointSeconds: 7 } });
    await same.close();
    expect((await s.app.auditStore.search({ action: ['config-change'], limit: 10 })).length).toBe(2);
  });

  it('raises an alert when a stored object fails its integrity check, and serves none of it', async () => {
    const studyUid = uid(1);
    const series = uid(2);
    const sop = uid(3);
    const { body, contentType } = stowBody([
      { bytes: makeInstance({ studyUid, seriesUid: series, sopInstanceUid: sop, patientId: 'ROT' }) },
    ]);
    const auth = { Authorization: `Bearer ${s.token}` };
    await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': contentType },
      body,
    });
    const { blob_id } = await s.app.index.db
      .selectFrom('instances')
      .select('blob_id')
      .where('sop_instance_uid', '=', sop)
      .executeTakeFirstOrThrow();
    const { readdir } = await import('node:fs/promises');
    const found = (await readdir(`${s.dataDir}/blobs`, { recursive: true })).find((f) => f.endsWith(blob_id));
    const file = `${s.dataDir}/blobs/${found}`;
    const bytes = await readFile(file);
    const at = bytes.length - 40;
    bytes[at] = bytes[at]! ^ 0x01;
    await writeFile(file, bytes);
    // The damage is in the object's only chunk, found before the status line: none of it is sent, and the answer
    // says why (until 6 Dec 2026 the connection was cut, which said nothing).
    const served = await fetch(`${s.dicomweb}/studies/${studyUid}/series/${series}/instances/${sop}`, {
      headers: auth,
    });
    expect(served.status).toBe(500);
    expect(served.headers.get('content-type')).toContain('application/problem+json');
    expect(await served.json()).toMatchObject({ code: 'object.corrupt' });
    const [alert] = await s.app.auditStore.search({ action: ['alert'], studyUid, limit: 1 });
    expect(alert).toMatchObject({
      outcome: 'failure',
      detail: { alert: 'object-integrity' },
      objects: { sopInstanceUids: [sop] },
    });
  });
});

describe.each(backends())('an audit search by action on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend);
    await fill(s.app, 4);
    // A name no current code records, as an older version may have left in the ledger.
    await s.app.ledger.append({
      principal: someone('user0'),
      action: 'legacy-view',
      outcome: 'success',
      policy: 'test-policy',
      patientId: 'PID-LEGACY',
    });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('refuses a misspelt action in the admin API and in `custos audit search`, naming it and the known ones', async () => {
    const auth = { Authorization: `Bearer ${s.token}` };
    const misspelt = await fetch(`${s.url}/api/audit/records?action=view-pixels,view-pixel`, {
      headers: auth,
    });
    expect(misspelt.status).toBe(400);
    const problem = (await misspelt.json()) as { detail: string; parameter: string };
    expect(problem.parameter).toBe('action');
    expect(problem.detail).toContain("'view-pixel'");
    expect(problem.detail).toContain('view-pixels');
    expect(problem.detail).toContain('hl7-patient-merge');

    await writeFile(`${s.dataDir}/custos.json`, JSON.stringify(cliDbConfig(s, backend)));
    const cli = captureIO(s.dataDir);
    expect(await main(['audit', 'search', '--data', s.dataDir, '--action', 'view-pixel'], cli)).not.toBe(0);
    expect(cli.stderr).toContain("'view-pixel'");
    expect(cli.stderr).toContain('view-pixels');
    expect(cli.stdout).toBe('');
  });

  it('still searches a known action with no records, and a name only the ledger holds', async () => {
    const auth = { Authorization: `Bearer ${s.token}` };
    const none = await fetch(`${s.url}/api/audit/records?action=hl7-order`, { headers: auth });
    expect(none.status).toBe(200);
    expect(((await none.json()) as { records: AuditRecord[] }).records).toEqual([]);
    const legacy = await fetch(`${s.url}/api/audit/records?action=legacy-view`, { headers: auth });
    expect(legacy.status).toBe(200);
    expect(((await legacy.json()) as { records: AuditRecord[] }).records.map((r) => r.patientId)).toEqual([
      'PID-LEGACY',
    ]);

    await writeFile(`${s.dataDir}/custos.json`, JSON.stringify(cliDbConfig(s, backend)));
    const cli = captureIO(s.dataDir);
    expect(
      await main(['audit', 'search', '--data', s.dataDir, '--action', 'view-pixels', '--json'], cli),
      cli.stderr,
    ).toBe(0);
    expect(cli.stdout).toContain('"action":"view-pixels"');
  });
});

describe('the known audit actions', () => {
  it('hold every action name a module in src records', async () => {
    const root = new URL('../src/', import.meta.url);
    const files = (await readdir(root, { recursive: true })).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
    );
    const recorded = new Set<string>();
    for (const f of files)
      for (const m of (await readFile(new URL(f, root), 'utf8')).matchAll(/\baction: '([a-z0-9-]+)'/g))
        recorded.add(m[1]!);
    expect(recorded.size).toBeGreaterThan(20);
    expect([...recorded].filter((a) => !KNOWN_AUDIT_ACTIONS.includes(a))).toEqual([]);
  });
});
