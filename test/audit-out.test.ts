// Issue 5, standards out, end to end: DICOMweb traffic lands in the ledger, is read back as FHIR AuditEvents
// with each search parameter, and reaches a syslog audit record repository as DICOM audit messages.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { standardEvent } from '../src/domain/audit-codes.js';
import type { FhirAuditEvent, SearchsetBundle } from '../src/domain/audit-fhir.js';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { makeInstance, stowBody, uid } from './support/fixtures.js';
import { startTlsReceiver, type ReceivedSyslog, type SyslogReceiver } from './support/syslog-receiver.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { makeTestPki, type TestPki } from './support/tls-certs.js';

interface Coded {
  '@csd-code': string;
}
interface AuditMessage {
  EventIdentification: {
    '@EventActionCode': string;
    '@EventOutcomeIndicator': string;
    '@EventDateTime': string;
    EventID: Coded;
  };
  ActiveParticipant: Record<string, unknown>[];
  ParticipantObjectIdentification?: { '@ParticipantObjectID': string; ParticipantObjectIDTypeCode: Coded }[];
}

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  isArray: (n) => n === 'ActiveParticipant' || n === 'ParticipantObjectIdentification',
});
const auditMessage = (m: ReceivedSyslog) => (xml.parse(m.msg) as { AuditMessage: AuditMessage }).AuditMessage;

for (const backend of backends()) {
  describe(`standards out end to end (${backend})`, () => {
    let s: TestServer;
    let rx: SyslogReceiver;
    let pkiDir: string;
    let serverPki: TestPki;
    let auth: Record<string, string>;
    const patientA = `AO-A-${backend}`;
    const patientB = `AO-B-${backend}`;
    const studyA = uid(1);
    const studyB = uid(2);
    const seriesA = uid(3);
    const sopA = uid(4);
    let started: string;

    const fhir = async (query: string) => {
      const res = await fetch(`${s.url}/fhir/r4/AuditEvent${query}`, { headers: auth });
      return res;
    };
    const search = async (query: string): Promise<SearchsetBundle> => {
      const res = await fhir(query);
      expect(res.status, query).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
      return (await res.json()) as SearchsetBundle;
    };
    const events = (b: SearchsetBundle): FhirAuditEvent[] => b.entry.map((e) => e.resource);
    const custosAction = (e: FhirAuditEvent) =>
      e.subtype!.find((c) => c.system === 'urn:custos:audit-action')!.code;

    beforeAll(async () => {
      serverPki = makeTestPki();
      const pki = serverPki;
      pkiDir = await mkdtemp(join(tmpdir(), 'custos-arr-'));
      await writeFile(join(pkiDir, 'ca.pem'), pki.ca);
      rx = await startTlsReceiver({ cert: pki.serverCert, key: pki.serverKey });
      s = await startTestServer(backend, {
        audit: { syslog: { transport: 'tls', host: '127.0.0.1', port: rx.port, ca: join(pkiDir, 'ca.pem') } },
      });
      auth = { Authorization: `Bearer ${s.token}` };
      started = new Date().toISOString();
      const { body, contentType } = stowBody([
        {
          bytes: makeInstance({
            studyUid: studyA,
            seriesUid: seriesA,
            sopInstanceUid: sopA,
            patientId: patientA,
          }),
        },
        {
          bytes: makeInstance({
            studyUid: studyB,
            seriesUid: uid(5),
            sopInstanceUid: uid(6),
            patientId: patientB,
          }),
        },
      ]);
      const stow = await fetch(`${s.dicomweb}/studies`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': contentType },
        body,
      });
      expect(stow.status).toBe(200);
      const qido = await fetch(`${s.dicomweb}/studies?PatientID=${patientA}`, { headers: auth });
      expect(qido.status).toBe(200);
      await qido.arrayBuffer();
      const meta = await fetch(`${s.dicomweb}/studies/${studyA}/metadata`, { headers: auth });
      expect(meta.status).toBe(200);
      await meta.arrayBuffer();
    });
    afterAll(async () => {
      await s.stop();
      await rx.close();
      await rm(pkiDir, { recursive: true, force: true });
      expect(s.unexpected).toEqual([]);
    });

    it('answers a searchset Bundle of AuditEvents, newest first', async () => {
      const b = await search('');
      expect(b).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });
      const ids = events(b).map((e) => Number(e.id));
      expect(ids).toEqual([...ids].sort((x, y) => y - x));
      expect(b.entry[0]!.fullUrl).toBe(`${s.url}/fhir/r4/AuditEvent/${ids[0]}`);
      const actions = events(b).map(custosAction);
      expect(actions).toEqual(expect.arrayContaining(['store', 'query', 'view-metadata']));
    });

    it('searches by patient (identifier or reference)', async () => {
      for (const q of [
        `?patient=${patientA}`,
        `?patient=Patient/${patientA}`,
        `?patient=urn:x|${patientA}`,
      ]) {
        const es = events(await search(q));
        // The QIDO-RS by PatientID answered this patient's study: a disclosure like the metadata read.
        expect(es.map(custosAction).sort(), q).toEqual(['query', 'store', 'view-metadata']);
        for (const e of es) {
          expect(e.entity!.find((x) => x.what?.type === 'Patient')!.what!.identifier!.value).toBe(patientA);
        }
      }
    });

    it('searches by entity (study UID)', async () => {
      const es = events(await search(`?entity=urn:oid:${studyB}`));
      expect(es.map(custosAction)).toEqual(['store']);
      expect(es[0]!.entity!.find((x) => x.what?.type === 'ImagingStudy')!.what!.identifier!.value).toBe(
        `urn:oid:${studyB}`,
      );
      expect(es[0]!.type.code).toBe('110104');
      expect(es[0]!.action).toBe('C');
    });

    it('searches by agent', async () => {
      const mine = events(await search(`?agent=${s.config.admin.username}&patient=${patientA}`));
      expect(mine).toHaveLength(3);
      expect(mine.every((e) => e.agent[0]!.who!.identifier!.value === s.config.admin.username)).toBe(true);
      expect(events(await search('?agent=nobody'))).toEqual([]);
    });

    it('searches by action code', async () => {
      const created = events(await search(`?action=C&patient=${patientA}`));
      expect(created.map(custosAction)).toEqual(['store']);
      const read = events(await search(`?action=R&patient=${patientA}`));
      expect(read.map(custosAction)).toEqual(['view-metadata']);
      const executed = events(await search('?action=E&_count=1000'));
      expect(executed.map(custosAction)).toContain('query');
      expect(executed.every((e) => e.action === 'E')).toBe(true);
    });

    it('searches by date with prefixes, repeated for a range', async () => {
      const now = new Date(Date.now() + 1000).toISOString();
      const inRange = events(await search(`?patient=${patientA}&date=ge${started}&date=le${now}`));
      expect(inRange).toHaveLength(3);
      expect(events(await search(`?patient=${patientA}&date=lt${started}`))).toEqual([]);
      expect(events(await search(`?patient=${patientA}&date=gt${now}`))).toEqual([]);
      const today = started.slice(0, 10);
      expect(events(await search(`?patient=${patientA}&date=${today}`)).length).toBeGreaterThanOrEqual(1);
    });

    it('pages with _count and a next link', async () => {
      const first = await search(`?patient=${patientA}&_count=1`);
      expect(first.entry).toHaveLength(1);
      const next = first.link.find((l) => l.relation === 'next')!.url;
      expect(next).toContain('_cursor=');
      const res = await fetch(next, { headers: auth });
      const second = (await res.json()) as SearchsetBundle;
      expect(second.entry).toHaveLength(1);
      expect(Number(second.entry[0]!.resource.id)).toBeLessThan(Number(first.entry[0]!.resource.id));
      const both = [custosAction(first.entry[0]!.resource), custosAction(second.entry[0]!.resource)];
      expect(both).toEqual(['view-metadata', 'query']);
    });

    it('reads one AuditEvent by id; 404 for an unknown id, 400 naming a bad one', async () => {
      const [e] = events(await search(`?entity=${studyB}`));
      const res = await fhir(`/${e!.id}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(e);
      expect((await fhir('/999999999')).status).toBe(404);
      const missing = await fhir('/999999999');
      expect(await missing.json()).toMatchObject({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'not-found', diagnostics: 'no AuditEvent 999999999' }],
      });
      const bad = await fhir('/abc');
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({
        resourceType: 'OperationOutcome',
        issue: [{ code: 'invalid', expression: ['id'] }],
      });
    });

    it('refuses bad parameters with an OperationOutcome naming the parameter', async () => {
      for (const [q, parameter] of [
        ['?date=2026-13-40', 'date'],
        ['?action=X', 'action'],
        ['?_count=0', '_count'],
        ['?subtype=read', 'subtype'],
        ['?entity=abc', 'entity'],
      ] as const) {
        const res = await fhir(q);
        expect(res.status, q).toBe(400);
        expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
        const outcome = (await res.json()) as { resourceType: string; issue: Record<string, unknown>[] };
        expect(outcome, q).toMatchObject({
          resourceType: 'OperationOutcome',
          issue: [
            {
              severity: 'error',
              code: 'invalid',
              expression: [parameter],
              details: { coding: [{ system: 'urn:custos:problem', code: 'fhir.bad-parameter' }] },
            },
          ],
        });
        expect(outcome.issue[0]!.diagnostics).toMatch(new RegExp(`^${parameter}: `));
      }
    });

    it('describes itself in a CapabilityStatement without credentials, and answers 401 as an OperationOutcome', async () => {
      const meta = await fetch(`${s.url}/fhir/r4/metadata`);
      expect(meta.status).toBe(200);
      expect(meta.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
      const cs = (await meta.json()) as {
        resourceType: string;
        fhirVersion: string;
        rest: {
          mode: string;
          resource: { type: string; interaction: { code: string }[]; searchParam: { name: string }[] }[];
        }[];
      };
      expect(cs).toMatchObject({
        resourceType: 'CapabilityStatement',
        status: 'active',
        kind: 'instance',
        fhirVersion: '4.0.1',
      });
      const [auditEvent] = cs.rest[0]!.resource;
      expect(auditEvent!.type).toBe('AuditEvent');
      expect(auditEvent!.interaction.map((i) => i.code)).toEqual(['read', 'search-type']);
      // Each declared parameter is one the search takes: a bad value of it is refused for its value, never as an
      // unknown parameter (an undeclared one is).
      const refusal = async (q: string) =>
        ((await (await fhir(q)).json()) as { issue?: { diagnostics: string }[] }).issue?.[0]?.diagnostics ??
        '';
      expect(await refusal('?subtype=zz')).toMatch(/unknown search parameter/);
      for (const p of auditEvent!.searchParam.map((x) => x.name))
        expect(await refusal(`?${p}=zz`), p).not.toMatch(/unknown search parameter/);
      expect(auditEvent!.searchParam.map((x) => x.name).sort()).toEqual([
        '_count',
        'action',
        'agent',
        'date',
        'entity',
        'patient',
      ]);

      const anonymous = await fetch(`${s.url}/fhir/r4/AuditEvent`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(anonymous.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
      expect(await anonymous.json()).toMatchObject({
        resourceType: 'OperationOutcome',
        issue: [{ code: 'login' }],
      });
    });

    it('records each read of the ledger, and refuses and records a reader without read-audit', async () => {
      const before = Number((await s.app.auditStore.head()).seq);
      await search(`?patient=${patientB}`);
      const reads = await s.app.auditStore.search({
        action: ['read-audit'],
        afterSeq: before,
        order: 'asc',
        limit: 10,
      });
      expect(reads).toHaveLength(1);
      expect(reads[0]).toMatchObject({
        outcome: 'success',
        channel: 'fhir',
        actor: { name: s.config.admin.username },
      });

      const now = new Date().toISOString();
      const userPk = await s.app.index.db
        .insertInto('users')
        .values({
          username: 'viewer1',
          display_name: '',
          role: 'viewer',
          password_hash: null,
          active: 1,
          created_at: now,
        })
        .returning('pk')
        .executeTakeFirstOrThrow();
      expect(userPk.pk).toBeGreaterThan(0);
      const { token } = await s.app.auth.createToken(systemPrincipal('test'), 'viewer1');
      const res = await fetch(`${s.url}/fhir/r4/AuditEvent?patient=${patientA}`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
      expect(await res.json()).toMatchObject({
        resourceType: 'OperationOutcome',
        issue: [{ code: 'forbidden' }],
      });
      const denied = await s.app.auditStore.search({ actor: 'viewer1', action: ['read-audit'], limit: 10 });
      expect(denied.map((r) => r.outcome)).toEqual(['denied']);
    });

    it('forwards the same events to the syslog repository as DICOM audit messages', async () => {
      const wanted = (msgs: AuditMessage[]) => {
        const about = (id: string) =>
          msgs.filter((m) =>
            (m.ParticipantObjectIdentification ?? []).some((o) => o['@ParticipantObjectID'] === id),
          );
        return {
          storeA: about(studyA).filter((m) => m.EventIdentification.EventID['@csd-code'] === '110104'),
          viewA: about(studyA).filter((m) => m.EventIdentification.EventID['@csd-code'] === '110103'),
          query: msgs.filter((m) => m.EventIdentification.EventID['@csd-code'] === '110112'),
          auditRead: msgs.filter((m) => m.EventIdentification.EventID['@csd-code'] === '110101'),
        };
      };
      const t0 = Date.now();
      let found = wanted([]);
      while (Date.now() - t0 < 15_000) {
        found = wanted(rx.messages.map(auditMessage));
        if (found.storeA.length && found.viewA.length && found.query.length && found.auditRead.length) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(found.storeA[0]!.EventIdentification).toMatchObject({
        '@EventActionCode': 'C',
        '@EventOutcomeIndicator': '0',
      });
      expect(found.viewA[0]!.EventIdentification['@EventActionCode']).toBe('R');
      expect(found.query[0]!.EventIdentification['@EventActionCode']).toBe('E');
      expect(found.auditRead.length).toBeGreaterThan(0);
      const m = rx.messages[0]!;
      expect([m.pri, m.appName, m.msgId, m.hostname]).toEqual([
        85,
        'custos',
        'IHE+RFC-3881',
        s.config.nodeName,
      ]);
      // Every ledger record up to the forwarder's committed cursor reached the repository, in ledger order.
      const head = Number((await s.app.auditStore.head()).seq);
      const t1 = Date.now();
      while (s.app.auditForwarder!.status().committed < head && Date.now() - t1 < 15_000)
        await new Promise((r) => setTimeout(r, 100));
      const committed = s.app.auditForwarder!.status().committed;
      expect(committed).toBeGreaterThanOrEqual(head);
      const rows = await s.app.auditStore.rowsAfter(0, committed);
      const sent = rx.messages.slice(0, committed).map(auditMessage);
      expect(
        sent.map((m) => [
          m.EventIdentification['@EventDateTime'],
          m.EventIdentification.EventID['@csd-code'],
        ]),
      ).toEqual(
        rows.map((r) => {
          const rec = JSON.parse(r.text) as AuditRecord;
          return [rec.ts, standardEvent(rec.action).eventId.code];
        }),
      );
    });

    it('keeps forwarding through a repository outage: records made meanwhile arrive once it is back', async () => {
      const port = rx.port;
      const before = rx.messages.length;
      await rx.close();
      const patientC = `AO-C-${backend}`;
      const studyC = uid(7);
      const { body, contentType } = stowBody([
        {
          bytes: makeInstance({
            studyUid: studyC,
            seriesUid: uid(8),
            sopInstanceUid: uid(9),
            patientId: patientC,
          }),
        },
      ]);
      const stow = await fetch(`${s.dicomweb}/studies`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': contentType },
        body,
      });
      expect(stow.status).toBe(200);
      const t0 = Date.now();
      while (s.app.auditForwarder!.status().consecutiveFailures < 1 && Date.now() - t0 < 15_000)
        await new Promise((r) => setTimeout(r, 50));
      expect(s.app.auditForwarder!.status().consecutiveFailures).toBeGreaterThanOrEqual(1);
      expect(rx.messages.length).toBe(before);
      const pki = makeTestPki();
      // The repository comes back on the same port with a new certificate from a CA Custos does not trust:
      // nothing may be delivered to it.
      const impostor = await startTlsReceiver({ cert: pki.serverCert, key: pki.serverKey, port });
      await new Promise((r) => setTimeout(r, 1500));
      expect(impostor.messages).toEqual([]);
      await impostor.close();
      rx = await startTlsReceiver({ cert: serverPki.serverCert, key: serverPki.serverKey, port });
      const t1 = Date.now();
      const storedC = () =>
        rx.messages
          .map(auditMessage)
          .filter((m) =>
            (m.ParticipantObjectIdentification ?? []).some((o) => o['@ParticipantObjectID'] === studyC),
          );
      while (!storedC().length && Date.now() - t1 < 20_000) await new Promise((r) => setTimeout(r, 100));
      expect(storedC().map((m) => m.EventIdentification.EventID['@csd-code'])).toEqual(['110104']);
      // The outage was reported to the operator once (the first failure of the run), and nothing else went wrong.
      expect(s.unexpected.map((e) => (e as { code?: string }).code)).toEqual(['syslog.connect-failed']);
      s.unexpected.length = 0;
    });
  });
}
