// C-FIND answers every match, page after page of limits.maxQueryResults (PS3.4 C.4.1.3.1). Each page reads and
// decides its own rows only: until 5 Dec 2026 each page was asked for by its offset among the rows the caller may
// see, which read and decided every row before it again, so a C-FIND of n matches cost O(n²) decisions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessGate } from '../src/services/access-gate.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { findscuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const PAGE = 4;
const STUDIES = 20;

describe.each(backends())('C-FIND past one page of query results, on %s', (backend) => {
  let s: TestServer;
  const studies = Array.from({ length: STUDIES }, () => uid(1));
  /** The studies the gate was asked about for queries, in order. */
  const decided: string[] = [];
  let counting = false;

  beforeAll(async () => {
    s = await startTestServer(backend, {
      limits: { maxQueryResults: PAGE },
      wrapGate: (gate: AccessGate) => {
        const decideEach = gate.decideEach.bind(gate);
        gate.decideEach = async (principal, action, resources) => {
          if (counting && action === 'query') decided.push(...resources.map((r) => r.studyUid!));
          return decideEach(principal, action, resources);
        };
        return gate;
      },
    });
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'PAGESCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    const parts = studies.map((st, i) =>
      makeInstance({
        studyUid: st,
        seriesUid: uid(2),
        sopInstanceUid: uid(3),
        patientId: 'PID-PAGING',
        patientName: 'Paging^Pia',
        studyDate: `202401${String(i + 1).padStart(2, '0')}`,
      }),
    );
    expect((await postStow(s, parts)).status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const findStudies = () =>
    findscuTo(s.dicomPort, 'PAGESCU', 'QueryRetrieveLevel=STUDY', 'PatientID=PID-PAGING', 'StudyInstanceUID');

  it('answers each match once, decides each row about once, and records each page', async () => {
    const ledgerBefore = (await s.app.index.db.selectFrom('audit_ledger').select('seq').execute()).length;
    decided.length = 0;
    counting = true;
    const r = await findStudies();
    counting = false;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/Find Response: \d+ \(Pending\)/g)).toHaveLength(STUDIES);
    // findscu prints a UID as [uid], with the NUL that pads it to an even length where there is one.
    const answered = [...r.stderr.matchAll(/\(0020,000d\) UI \[([0-9.]+)[^\]0-9.]?\]/g)].map((m) => m[1]);
    expect(answered.sort()).toEqual([...studies].sort());
    // Each page reads one row past its end to know there is more; the next page starts at that row. Five pages of
    // four: 20 rows, and 4 read twice. Paging by offset decided 5 + 9 + 13 + 17 + 20 = 64.
    expect(decided).toHaveLength(STUDIES + STUDIES / PAGE - 1);
    expect(new Set(decided).size).toBe(STUDIES);
    const pages = await s.app.index.db
      .selectFrom('audit_ledger')
      .select(['record', 'action'])
      .where('action', '=', 'query')
      .orderBy('seq')
      .execute();
    const counts = pages
      .slice(-STUDIES / PAGE)
      .map((p) => (JSON.parse(p.record) as { objects: { count: number } }).objects.count);
    expect(counts).toEqual(Array(STUDIES / PAGE).fill(PAGE));
    expect(ledgerBefore).toBeGreaterThan(0);
  });
});
