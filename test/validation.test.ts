// Issue 6 items 1-3: validation outcomes at ingest (STOW-RS and import), the quarantine workflow (admin API and
// CLI) and the correction overlay served by retrieve. Runs on every backend.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/app/cli.js';
import { dropPostgresSchema } from '../src/adapters/sql/open-index-db.js';
import { asBlobId } from '../src/domain/ids.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { getString } from '../src/dicom/dataset.js';
import { Tags } from '../src/dicom/tags.js';
import { backends, postgresUrl } from './support/backends.js';
import { captureIO } from './support/cli-io.js';
import { makeInstance, pixelBytes, stowBody, uid, type FixtureSpec } from './support/fixtures.js';
import { collect, multipartParts } from './support/http.js';
import { fileNames } from './support/files.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { insertOrder } from './support/orders.js';

type Item = Record<string, { vr: string; Value?: unknown[] }>;
const KVP = 0x00180060;
const MODALITY = 0x00080060;

async function* walk(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}

/** Data steward tokens, per server: the quarantine queue is theirs (policy data-steward-quarantine). */
const stewards = new Map<TestServer, string>();

async function withSteward(s: TestServer): Promise<void> {
  const operator = systemPrincipal('test');
  await s.app.accounts.add(operator, { username: 'steward', role: 'data-steward' });
  stewards.set(s, (await s.app.auth.createToken(operator, 'steward')).token);
}

function client(s: TestServer) {
  const auth = { Authorization: `Bearer ${stewards.get(s) ?? s.token}` };
  return {
    stow: async (parts: Buffer[]) => {
      const { body, contentType } = stowBody(parts.map((bytes) => ({ bytes })));
      return fetch(`${s.dicomweb}/studies`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
        body,
      });
    },
    // The quarantine API is the steward's; reading the archive (QIDO, WADO) the administrator's.
    get: (path: string, accept = 'application/json') =>
      fetch(`${s.url}${path}`, {
        headers: {
          ...(path.startsWith('/api/quarantine') ? auth : { Authorization: `Bearer ${s.token}` }),
          Accept: accept,
        },
      }),
    post: (path: string, body: unknown) =>
      fetch(`${s.url}${path}`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      }),
  };
}

const ledger = (s: TestServer, action: string) =>
  s.app.index.db
    .selectFrom('audit_ledger')
    .select(['action', 'outcome', 'record'])
    .where('action', '=', action)
    .orderBy('seq')
    .execute();

const spec = (over: Partial<FixtureSpec> = {}): FixtureSpec => ({
  studyUid: uid(1),
  seriesUid: uid(2),
  sopInstanceUid: uid(3),
  ...over,
});

describe.each(backends())('validation at ingest and quarantine on %s', (backend) => {
  let s: TestServer;
  let strict: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend);
    strict = await startTestServer(backend, { validation: { default: 'strict' } });
    await withSteward(s);
    await withSteward(strict);
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
    await strict.stop();
  });

  it('reports accepted, warning, quarantined and rejected objects of one STOW-RS request independently', async () => {
    const ok = spec();
    const warn = spec({ omit: [KVP] });
    const held = spec({ omit: [MODALITY], patientName: 'Quarantaine^Zoe' });
    const res = await client(s).stow([
      makeInstance(ok),
      makeInstance(warn),
      makeInstance(held),
      makeInstance({ ...spec(), omit: [Tags.SOPInstanceUID] }),
    ]);
    expect(res.status).toBe(202);
    const body = (await res.json()) as Record<string, { Value: Item[] }>;
    const referenced = body['00081199']!.Value;
    const bySop = new Map(referenced.map((i) => [i['00081155']!.Value![0], i]));
    expect(bySop.get(ok.sopInstanceUid)!['00081196']).toBeUndefined();
    expect(bySop.get(ok.sopInstanceUid)!['00081190']).toBeDefined();
    // PS3.18 Table 10.5.3-3 B007: stored, but the data set does not match its SOP class.
    expect(bySop.get(warn.sopInstanceUid)!['00081196']!.Value).toEqual([0xb007]);
    expect(bySop.get(warn.sopInstanceUid)!['00081190']).toBeDefined();
    expect(bySop.get(held.sopInstanceUid)!['00081196']!.Value).toEqual([0xb007]);
    expect(bySop.get(held.sopInstanceUid)!['00081190']).toBeUndefined();
    expect(body['00081198']!.Value).toHaveLength(1);
    const warning = res.headers.get('warning')!;
    expect(warning).toMatch(/\(0018,0060\) KVP Type 2 missing/);
    expect(warning).toMatch(/stored in quarantine .*\(0008,0060\) Modality Type 1 missing/);

    // The quarantined object is not in the archive; the other two are.
    const studies = (await (
      await client(s).get(`/dicom-web/studies?StudyInstanceUID=${held.studyUid}`, 'application/dicom+json')
    ).json()) as unknown[];
    expect(studies).toEqual([]);
    for (const o of [ok, warn]) {
      const got = await client(s).get(
        `/dicom-web/studies/${o.studyUid}/series/${o.seriesUid}/instances/${o.sopInstanceUid}/metadata`,
        'application/dicom+json',
      );
      expect(got.status).toBe(200);
    }
    // A warning travels with the store record.
    const stores = await ledger(s, 'store');
    expect(
      stores.some((r) => r.record.includes(warn.sopInstanceUid) && r.record.includes('KVP Type 2 missing')),
    ).toBe(true);
    // The data steward is told: a quarantine record and an alert, both naming the defect.
    const q = await ledger(s, 'quarantine');
    expect(
      q.some((r) => r.record.includes(held.sopInstanceUid) && r.record.includes('Modality Type 1 missing')),
    ).toBe(true);
    const alerts = await ledger(s, 'alert');
    expect(
      alerts.some((r) => r.record.includes('"alert":"quarantine"') && r.record.includes(held.sopInstanceUid)),
    ).toBe(true);
  });

  it('takes a NUL inside a text value: a warning on StudyDescription, quarantine on PatientName and PatientID', async () => {
    // Before 4 Dec 2026 the first failed on PostgreSQL (0110: its text takes no NUL) and stored on SQLite, and a
    // warning quoting a NUL (or any non-Latin-1 character) made the whole answer a 500 after storing.
    const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
    const described = spec({ extra: [{ tag: t(0x0008, 0x1030), vr: 'LO', value: 'CT\0HEAD' }] });
    const named = spec({ patientName: 'Doe\0^山田' });
    const identified = spec({ patientId: 'PID\x007' });
    const res = await client(s).stow([described, named, identified].map((o) => makeInstance(o)));
    expect(res.status).toBe(202);
    const body = (await res.json()) as Record<string, { Value: Item[] }>;
    const bySop = new Map(body['00081199']!.Value.map((i) => [i['00081155']!.Value![0], i]));
    for (const o of [described, named, identified])
      expect(bySop.get(o.sopInstanceUid)!['00081196']!.Value).toEqual([0xb007]);
    expect(bySop.get(described.sopInstanceUid)!['00081190']).toBeDefined();
    expect(bySop.get(named.sopInstanceUid)!['00081190']).toBeUndefined();
    expect(bySop.get(identified.sopInstanceUid)!['00081190']).toBeUndefined();
    const warning = res.headers.get('warning')!;
    expect(warning).toContain(
      "StudyDescription invalid LO: 'CTU+0000HEAD' contains the control character U+0000",
    );
    expect(warning).toMatch(/stored in quarantine .*PatientName invalid PN: 'DoeU\+0000\^U\+5C71U\+7530'/);
    expect(warning).toMatch(/stored in quarantine .*PatientID invalid LO: 'PIDU\+00007'/);
    // Archived as sent; the index holds the description without the NUL, which is what a query can name.
    const found = (await (
      await client(s).get(`/dicom-web/studies?StudyDescription=CTHEAD`, 'application/dicom+json')
    ).json()) as Item[];
    expect(found.map((r) => r['0020000D']!.Value![0])).toEqual([described.studyUid]);
    expect(found[0]!['00081030']!.Value).toEqual(['CT\0HEAD']);
  });

  it('warns about text bytes its character set does not define, naming the attribute, and stores the object as sent', async () => {
    // Until 6 Dec 2026 these were read as U+FFFD or '?' without a word.
    const described = (charset: string, value: Buffer) =>
      spec({ charset, extra: [{ tag: 0x00081030, vr: 'LO', value }] });
    const utf8 = described('ISO_IR 192', Buffer.from('M\xfcller', 'latin1'));
    const kana = described('ISO_IR 13', Buffer.from([0xb1, 0x80]));
    const jis = described('\\ISO 2022 IR 87', Buffer.from('\x1b$B\x3b\x33\x45\x1b(B', 'latin1'));
    const escape = described('\\ISO 2022 IR 87', Buffer.from('A\x1b$(Q\x30\x21\x1b(BZ', 'latin1'));
    const hebrew = described('ISO_IR 138', Buffer.from([0xf9, 0xa1]));
    const gb = described('GB18030', Buffer.from([0x41, 0x81, 0x20, 0x20]));
    const multi = described('ISO_IR 192\\ISO 2022 IR 87', Buffer.from('Müller', 'utf8'));
    const objects = [utf8, kana, jis, escape, hebrew, gb, multi];
    const res = await client(s).stow(objects.map((o) => makeInstance(o)));
    expect(res.status).toBe(202);
    const body = (await res.json()) as Record<string, { Value: Item[] }>;
    const bySop = new Map(body['00081199']!.Value.map((i) => [i['00081155']!.Value![0], i]));
    for (const o of objects) expect(bySop.get(o.sopInstanceUid)!['00081190']).toBeDefined();
    const warning = res.headers.get('warning')!;
    const expected: [FixtureSpec, string][] = [
      [utf8, '(0008,1030) StudyDescription: not valid UTF-8, read as U+FFFD'],
      [kana, '(0008,1030) StudyDescription: not valid JIS X 0201, read as U+FFFD'],
      [jis, '(0008,1030) StudyDescription: not valid JIS X 0208, read as U+FFFD'],
      [escape, "(0008,1030) StudyDescription: unknown escape ESC $(Q, read as '?'"],
      [hebrew, '(0008,1030) StudyDescription: not valid ISO-8859-8, read as U+FFFD'],
      [gb, '(0008,1030) StudyDescription: not valid GB18030, read as U+FFFD'],
      [
        multi,
        "Specific Character Set 'ISO_IR 192/ISO 2022 IR 87': ISO_IR 192 must be its only value; text read as ISO_IR 192",
      ],
    ];
    for (const [o, text] of expected) expect(warning).toContain(`${o.sopInstanceUid}: ${text}`);
    // Stored as received: the served bytes are the bytes sent.
    const url = `/dicom-web/studies/${utf8.studyUid}/series/${utf8.seriesUid}/instances/${utf8.sopInstanceUid}`;
    const [part] = await multipartParts(
      await client(s).get(url, 'multipart/related; type="application/dicom"'),
    );
    expect(part!.body).toEqual(makeInstance(utf8));
  });

  it('holds native pixel data shorter than its header describes in quarantine (standard), refuses it (strict)', async () => {
    const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
    // 8 × 8 × 16 bits × 3 frames = 384 bytes; 200 hold one whole frame.
    const cut = () => spec({ extra: [{ tag: t(0x7fe0, 0x0010), vr: 'OW', value: Buffer.alloc(200) }] });
    const held = cut();
    const res = await client(s).stow([makeInstance({ ...held, frames: 3 })]);
    expect(res.status).toBe(202);
    const body = (await res.json()) as Record<string, { Value: Item[] }>;
    const [item] = body['00081199']!.Value;
    expect(item!['00081196']!.Value).toEqual([0xb007]);
    expect(item!['00081190']).toBeUndefined();
    expect(res.headers.get('warning')).toMatch(
      /stored in quarantine .*\(7FE0,0010\) PixelData holds 200 bytes; the Image Pixel module describes 3 frame\(s\) of 128 bytes \(384\), so only 1 whole frame\(s\)/,
    );
    const refused = cut();
    const strictRes = await client(strict).stow([makeInstance({ ...refused, frames: 3 })]);
    expect(strictRes.status).toBe(409);
    const failed = ((await strictRes.json()) as Record<string, { Value: Item[] }>)['00081198']!.Value;
    expect(failed[0]!['00081197']!.Value).toEqual([0xa900]);
    expect(strictRes.headers.get('warning')).toMatch(/PixelData holds 200 bytes/);
  });

  it('keeps quarantined bytes encrypted: the patient name is nowhere in clear in the data directory', async () => {
    const rows = await s.app.index.db.selectFrom('quarantine').select(['blob_id', 'size']).execute();
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(await s.app.blobs.exists(asBlobId(r.blob_id))).toBe(true);
    const needles = [Buffer.from('Quarantaine^Zoe'), Buffer.from('QUARANTAINE^ZOE')];
    for await (const f of walk(s.dataDir)) {
      const bytes = await readFile(f);
      for (const n of needles) expect(bytes.includes(n), `${f} contains ${n.toString()}`).toBe(false);
    }
  });

  it('rejects at strict level with A900 naming the attribute, and stores the rest of the request', async () => {
    const bad = spec({ omit: [Tags.PatientID] });
    const good = spec();
    const res = await client(strict).stow([makeInstance(bad), makeInstance(good)]);
    expect(res.status).toBe(202);
    const body = (await res.json()) as Record<string, { Value: Item[] }>;
    const failed = body['00081198']!.Value[0]!;
    expect(failed['00081155']!.Value).toEqual([bad.sopInstanceUid]);
    expect(failed['00081197']!.Value).toEqual([0xa900]);
    expect(res.headers.get('warning')).toMatch(/\(0010,0020\) PatientID Type 2 missing/);
    expect(body['00081199']!.Value.map((i) => i['00081155']!.Value![0])).toEqual([good.sopInstanceUid]);
    const nothing = await strict.app.index.db
      .selectFrom('instances')
      .select('sop_instance_uid')
      .where('sop_instance_uid', '=', bad.sopInstanceUid)
      .execute();
    expect(nothing).toEqual([]);
    // Its blob, made durable while the checks ran, was removed again: every object file is an indexed or
    // quarantined object's.
    const files = await fileNames(join(strict.dataDir, 'blobs', 'objects'));
    const kept = [
      ...(await strict.app.index.db.selectFrom('instances').select('blob_id').execute()),
      ...(await strict.app.index.db.selectFrom('quarantine').select('blob_id').execute()),
    ].map((r) => r.blob_id);
    expect(files.sort()).toEqual(kept.sort());
  });

  it('never files a study under a second Patient ID: quarantined (standard), refused (strict)', async () => {
    for (const [server, expected] of [
      [s, 'quarantined'],
      [strict, 'rejected'],
    ] as const) {
      const first = spec({ patientId: 'PID-A' });
      expect((await client(server).stow([makeInstance(first)])).status).toBe(200);
      const second = spec({ studyUid: first.studyUid, seriesUid: uid(9), patientId: 'PID-B' });
      const res = await client(server).stow([makeInstance(second)]);
      const body = (await res.json()) as Record<string, { Value: Item[] }>;
      const warning = res.headers.get('warning')!;
      expect(warning).toMatch(
        /\(0010,0020\) PatientID does not match: study .* already filed under another patient/,
      );
      if (expected === 'quarantined') {
        expect(res.status).toBe(202);
        expect(body['00081199']!.Value[0]!['00081196']!.Value).toEqual([0xb007]);
      } else {
        expect(res.status).toBe(409);
        expect(body['00081198']!.Value[0]!['00081197']!.Value).toEqual([0xa900]);
      }
      const studyPatients = await server.app.index.db
        .selectFrom('studies as st')
        .innerJoin('patients as p', 'p.pk', 'st.patient_pk')
        .select('p.patient_id')
        .where('st.study_uid', '=', first.studyUid)
        .execute();
      expect(studyPatients).toEqual([{ patient_id: 'PID-A' }]);
    }
  });

  it('lists, inspects, corrects, releases and rejects through the admin API, every step audited', async () => {
    const c = client(s);
    const defective = spec({ omit: [Tags.PatientID, MODALITY], patientName: 'Fix^Me', rows: 4, columns: 4 });
    const original = makeInstance(defective);
    const other = spec({ omit: [MODALITY] });
    await c.stow([makeInstance(other)]);
    const stowed = await c.stow([original]);
    expect(stowed.status).toBe(202);

    const page1 = (await (await c.get('/api/quarantine?limit=1')).json()) as {
      entries: { id: string; sopInstanceUid: string }[];
      total: number;
      next: { offset: number } | null;
    };
    expect(page1.entries).toHaveLength(1);
    expect(page1.total).toBeGreaterThanOrEqual(3);
    expect(page1.next).toEqual({ offset: 1, limit: 1 });
    const page2 = (await (await c.get('/api/quarantine?limit=1&offset=1')).json()) as typeof page1;
    expect(page2.entries[0]!.id).not.toBe(page1.entries[0]!.id);
    expect((await c.get('/api/quarantine?status=bogus')).status).toBe(400);
    const all = (await (await c.get('/api/quarantine?limit=1000')).json()) as typeof page1;
    const id = all.entries.find((e) => e.sopInstanceUid === defective.sopInstanceUid)!.id;
    const otherId = all.entries.find((e) => e.sopInstanceUid === other.sopInstanceUid)!.id;

    const shown = (await (await c.get(`/api/quarantine/${id}`)).json()) as {
      defects: { message: string; disposition: string }[];
      header: Item;
    };
    expect(shown.defects.map((d) => d.message)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\(0010,0020\) PatientID Type 2 missing/),
        expect.stringMatching(/^\(0008,0060\) Modality Type 1 missing/),
      ]),
    );
    expect(shown.header['00100010']!.Value).toEqual([{ Alphabetic: 'Fix^Me' }]);

    // Releasing before the header is fixed is refused, naming what is still wrong.
    const early = await c.post(`/api/quarantine/${id}/release`, {});
    expect(early.status).toBe(409);
    expect(((await early.json()) as { detail: string }).detail).toMatch(/PatientID Type 2 missing/);

    const bad = await c.post(`/api/quarantine/${id}/corrections`, { '(0010,0020)': 'x\\y' });
    expect(bad.status).toBe(400);
    const corrected = await c.post(`/api/quarantine/${id}/corrections`, {
      '(0010,0020)': 'PID-FIXED',
      Modality: 'CT',
      PatientName: 'Fixed^Name',
    });
    expect(corrected.status, await corrected.clone().text()).toBe(200);
    const audit = (await ledger(s, 'correct-header')).map(
      (r) => JSON.parse(r.record) as { detail: { changes: unknown[] } },
    );
    expect(audit.at(-1)!.detail.changes).toEqual(
      expect.arrayContaining([
        { tag: '00100020', attribute: '(0010,0020) PatientID', old: null, new: ['PID-FIXED'] },
        {
          tag: '00100010',
          attribute: '(0010,0010) PatientName',
          old: [{ Alphabetic: 'Fix^Me' }],
          new: [{ Alphabetic: 'Fixed^Name' }],
        },
      ]),
    );

    const released = await c.post(`/api/quarantine/${id}/release`, {});
    expect(released.status, await released.clone().text()).toBe(200);
    expect(((await released.json()) as { status: string }).status).toBe('released');
    expect((await c.post(`/api/quarantine/${id}/release`, {})).status).toBe(409);

    // QIDO and WADO-RS metadata serve the corrected values.
    const found = (await (
      await c.get(`/dicom-web/studies?PatientID=PID-FIXED`, 'application/dicom+json')
    ).json()) as Item[];
    expect(found.map((f) => f['0020000D']!.Value![0])).toEqual([defective.studyUid]);
    const instanceUrl = `/dicom-web/studies/${defective.studyUid}/series/${defective.seriesUid}/instances/${defective.sopInstanceUid}`;
    const meta = (await (await c.get(`${instanceUrl}/metadata`, 'application/dicom+json')).json()) as Item[];
    expect(meta[0]!['00100020']!.Value).toEqual(['PID-FIXED']);
    expect(meta[0]!['00100010']!.Value).toEqual([{ Alphabetic: 'Fixed^Name' }]);

    // WADO-RS bytes: corrected header, pixel data unchanged.
    const wado = await c.get(instanceUrl, 'multipart/related; type="application/dicom"');
    expect(wado.status).toBe(200);
    const [part] = await multipartParts(wado);
    const served = await parsePart10(part!.body);
    expect(getString(served.dataset, Tags.PatientID)).toBe('PID-FIXED');
    expect(getString(served.dataset, Tags.PatientName)).toBe('Fixed^Name');
    expect(getString(served.dataset, Tags.Modality)).toBe('CT');
    expect(part!.body.subarray(part!.body.length - 32)).toEqual(pixelBytes(4, 4, 1).subarray(-32));
    // WADO-URI too.
    const uri = await c.get(
      `/wado?requestType=WADO&studyUID=${defective.studyUid}&seriesUID=${defective.seriesUid}&objectUID=${defective.sopInstanceUid}&contentType=application/dicom`,
      'application/dicom',
    );
    expect(uri.status).toBe(200);
    const uriBytes = Buffer.from(await uri.arrayBuffer());
    expect(Number(uri.headers.get('content-length'))).toBe(uriBytes.length);
    expect(getString((await parsePart10(uriBytes)).dataset, Tags.PatientID)).toBe('PID-FIXED');

    // The stored blob is the original upload, byte for byte.
    const row = await s.app.index.db
      .selectFrom('instances')
      .select(['blob_id', 'sha256', 'status'])
      .where('sop_instance_uid', '=', defective.sopInstanceUid)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('active');
    expect(row.sha256).toBe(createHash('sha256').update(original).digest('hex'));
    const stored = await collect(
      s.app.blobs.read(asBlobId(row.blob_id), await studyKey(s, defective.studyUid)),
    );
    expect(stored.equals(original)).toBe(true);

    // Reject the other one; its bytes stay, encrypted, marked rejected.
    expect((await c.post(`/api/quarantine/${otherId}/reject`, {})).status).toBe(400);
    const rejected = await c.post(`/api/quarantine/${otherId}/reject`, {
      reason: 'test object, not a patient',
    });
    expect(rejected.status).toBe(200);
    const gone = await s.app.index.db
      .selectFrom('quarantine')
      .select(['status', 'reason', 'blob_id'])
      .where('id', '=', otherId)
      .executeTakeFirstOrThrow();
    expect(gone).toMatchObject({ status: 'rejected', reason: 'test object, not a patient' });
    expect(await s.app.blobs.exists(asBlobId(gone.blob_id))).toBe(true);

    for (const action of ['release', 'reject', 'correct-header', 'view-metadata', 'administer'])
      expect((await ledger(s, action)).length, action).toBeGreaterThan(0);
  });

  it('refuses the quarantine to an account no policy allows, and records the refusal', async () => {
    await s.app.index.db
      .insertInto('users')
      .values({
        username: 'tech1',
        display_name: 'Technologist',
        role: 'technologist',
        password_hash: null,
        active: 1,
        created_at: new Date().toISOString(),
      })
      .execute();
    const { token } = await s.app.auth.createToken(systemPrincipal('test'), 'tech1');
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    const list = await fetch(`${s.url}/api/quarantine`, { headers });
    expect(list.status).toBe(403);
    const correct = await fetch(`${s.url}/api/quarantine/any/corrections`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ PatientID: 'X' }),
    });
    expect(correct.status).toBe(403);
    const denied = await s.app.index.db
      .selectFrom('audit_ledger')
      .select(['action', 'actor'])
      .where('outcome', '=', 'denied')
      .where('actor', '=', 'tech1')
      .execute();
    expect(denied.map((d) => d.action).sort()).toEqual(['correct-header', 'correct-header']);
  });

  it('quarantines an AccessionNumber that matches no order once orders are known (last: it adds an order)', async () => {
    // The HL7 order feed fills `orders`; while it is empty the check answers 'unknown'.
    const before = spec({ accessionNumber: 'ACC-NO-ORDER' });
    expect((await client(s).stow([makeInstance(before)])).status).toBe(200);
    await insertOrder(s.app.index.db, 'ACC-ORDERED');
    const ordered = spec({ accessionNumber: 'ACC-ORDERED' });
    const unordered = spec({ accessionNumber: 'ACC-NO-ORDER' });
    const res = await client(s).stow([makeInstance(ordered), makeInstance(unordered)]);
    expect(res.status).toBe(202);
    const items = ((await res.json()) as Record<string, { Value: Item[] }>)['00081199']!.Value;
    const bySop = new Map(items.map((i) => [i['00081155']!.Value![0], i]));
    expect(bySop.get(ordered.sopInstanceUid)!['00081196']).toBeUndefined();
    expect(bySop.get(unordered.sopInstanceUid)!['00081196']!.Value).toEqual([0xb007]);
    expect(res.headers.get('warning')).toMatch(
      /\(0008,0050\) AccessionNumber 'ACC-NO-ORDER' matches no known order/,
    );
  });

  it('runs the same workflow through custos import and custos quarantine', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'custos-quarantine-cli-'));
    const schema = backend === 'postgres' ? `custos_test_${randomBytes(6).toString('hex')}` : undefined;
    const env = schema ? { CUSTOS_DATABASE_URL: postgresUrl!, CUSTOS_DATABASE_SCHEMA: schema } : {};
    const run = async (args: string[], extraEnv: Record<string, string> = {}) => {
      const io = captureIO(cwd);
      io.env = { ...env, ...extraEnv };
      const code = await main([...args, '--data', 'd'], io);
      return { code, out: io.stdout, err: io.stderr };
    };
    try {
      const src = join(cwd, 'incoming');
      await mkdir(src, { recursive: true });
      const good = spec();
      const held = spec({ omit: [Tags.PatientID] });
      const refused = spec({ sex: 'female' });
      await writeFile(join(src, 'good.dcm'), makeInstance(good));
      await writeFile(join(src, 'held.dcm'), makeInstance(held));
      const imported = await run(['import', src]);
      expect(imported.code).toBe(0);
      expect(JSON.parse(imported.out)).toMatchObject({ stored: 1, quarantined: 1, failed: 0 });
      expect(imported.err).toMatch(/quarantined held\.dcm as \S+: \(0010,0020\) PatientID Type 2 missing/);
      // Again: the held file is still reported as quarantined, under the same id, not as "already stored".
      const heldId = /quarantined held\.dcm as (\S+):/.exec(imported.err)![1]!;
      const twice = await run(['import', src]);
      expect(JSON.parse(twice.out)).toMatchObject({ stored: 0, unchanged: 1, quarantined: 1, failed: 0 });
      expect(twice.err).toContain(`quarantined held.dcm as ${heldId}`);

      // Strict for this run: the CS value 'female' is rejected, naming the attribute.
      await writeFile(join(src, 'refused.dcm'), makeInstance(refused));
      const strictRun = await run(['import', src], { CUSTOS_VALIDATION_DEFAULT: 'strict' });
      expect(strictRun.code).toBe(3);
      expect(strictRun.err).toMatch(/failed refused\.dcm: rejected: \(0010,0040\) PatientSex invalid CS/);

      // The quarantine is worked by a named data steward account.
      const added = await run(['user', 'add', 'steward', '--role', 'data-steward']);
      expect(added.code, added.err).toBe(0);
      const nobody = await run(['quarantine', 'list', '--as', 'nobody']);
      expect(nobody.err).toMatch(/no active account named 'nobody'/);
      const list = await run(['quarantine', 'list', '--as', 'steward', '--json']);
      const { entries } = JSON.parse(list.out) as { entries: { id: string; sopInstanceUid: string }[] };
      expect(entries.map((e) => e.sopInstanceUid)).toEqual([held.sopInstanceUid]);
      const id = entries[0]!.id;
      const shown = await run(['quarantine', 'show', '--as', 'steward', id]);
      expect(JSON.parse(shown.out)).toMatchObject({ id, status: 'quarantined' });
      const early = await run(['quarantine', 'release', '--as', 'steward', id]);
      expect(early.code).toBe(1);
      expect(early.err).toMatch(/PatientID Type 2 missing/);
      const fixed = await run(['quarantine', 'correct', '--as', 'steward', id, '(0010,0020)=PID-CLI']);
      expect(fixed.code).toBe(0);
      expect(fixed.out).toMatch(/\(0010,0020\) PatientID = PID-CLI/);
      const released = await run(['quarantine', 'release', '--as', 'steward', id]);
      expect(released.code, released.err).toBe(0);
      expect(released.out).toMatch(new RegExp(`released ${held.sopInstanceUid.replace(/\./g, '\\.')}`));
      expect(
        JSON.parse(
          (await run(['quarantine', 'list', '--as', 'steward', '--status', 'released', '--json'])).out,
        ).total,
      ).toBe(1);
      const search = await run(['audit', 'search', '--action', 'correct-header,release', '--json']);
      expect(search.out).toMatch(/PID-CLI/);
      expect(search.out).toMatch(/"action":"release"/);

      // A second quarantined object, rejected from the CLI.
      await writeFile(join(src, 'held2.dcm'), makeInstance(spec({ omit: [MODALITY] })));
      await run(['import', src]);
      const again = JSON.parse((await run(['quarantine', 'list', '--as', 'steward', '--json'])).out) as {
        entries: { id: string }[];
      };
      const rejected = await run([
        'quarantine',
        'reject',
        '--as',
        'steward',
        again.entries[0]!.id,
        '--reason',
        'duplicate test scan',
      ]);
      expect(rejected.code).toBe(0);
      expect(rejected.out).toMatch(/rejected .*: duplicate test scan/);
    } finally {
      if (schema) await dropPostgresSchema(postgresUrl!, schema);
      await rm(cwd, { recursive: true, force: true });
    }
  });
});

/** The study's data key, as retrieve uses it (the test reads the stored blob to compare with the upload). */
async function studyKey(s: TestServer, studyUid: string): Promise<Buffer> {
  const { StudyKeyService } = await import('../src/services/study-keys.js');
  return new StudyKeyService(s.app.index, s.app.keys, { now: () => new Date() }).keyForRead(studyUid);
}
