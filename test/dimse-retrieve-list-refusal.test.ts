// A C-MOVE or C-GET listing several studies (`StudyInstanceUID=A\B\C`, a PACS prefetch list) of which one is not in
// the archive or not readable by the caller sends the others: the refused study is one failed sub-operation, listed
// by its UID in the final response (0xB000), an unknown and a forbidden UID answering alike, and its refusal is
// recorded as a single-UID refusal is (PS3.4 C.4.2.3.1, C.4.3.3.1). Until 7 Dec 2026 the whole request was refused
// (0x0124) and nothing was sent. A request whose every study is refused keeps the single UID's answer, 0x0124.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { Tags } from '../src/dicom/tags.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { openScuAssociation } from '../src/transports/dimse/scu-association.js';
import { encodeDataset, parseDataset } from '../src/transports/dimse/dimse-dataset.js';
import { backends } from './support/backends.js';
import { dcmtk, freePort, spawnDcmtk, stopChild } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import {
  ledgerHead,
  ledgerSince,
  markRestricted,
  postStow,
  startTestServer,
  type TestServer,
} from './support/test-server.js';

const operator = systemPrincipal('test');
const t = (g: number, e: number) => ((g << 16) | e) >>> 0;

/** The SOP Instance UIDs of the Part 10 files in `dir`. */
async function receivedUids(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    const el = (await parsePart10(await readFile(join(dir, name)))).dataset.get(Tags.SOPInstanceUID);
    out.push(el?.kind === 'text' ? el.values[0]! : '');
  }
  return out.sort();
}

describe.each(backends())('C-MOVE and C-GET of a study list with a refused study, on %s', (backend) => {
  let s: TestServer;
  let work: string;
  let destPort: number;
  let dest: ReturnType<typeof spawnDcmtk>;
  let destDir: string;
  const readable = { study: uid(1), series: uid(2), sops: [uid(3), uid(4)] };
  const second = { study: uid(5), series: uid(6), sops: [uid(7)] };
  const restricted = { study: uid(8), series: uid(9), sops: [uid(10)] };
  // The same length as the restricted study's UID (dcmtk prints lengths), in no study.
  const unknown = `${restricted.study.slice(0, -1)}${(Number(restricted.study.slice(-1)) + 5) % 10}`;

  /** dcmtk's movescu or getscu -d (Study Root, STUDY level) of these study UIDs as TESTSCU, into a new folder. */
  const retrieve = async (tool: 'movescu' | 'getscu', studies: string[]) => {
    const out = tool === 'getscu' ? await mkdtemp(join(work, 'got-')) : destDir;
    for (const f of await readdir(destDir)) await rm(join(destDir, f));
    const r = await dcmtk(tool, [
      '-d',
      '-aet',
      'TESTSCU',
      '-aec',
      'CUSTOS',
      '-S',
      ...(tool === 'movescu' ? ['-aem', 'LISTDEST'] : ['-od', out]),
      '127.0.0.1',
      String(s.dicomPort),
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `StudyInstanceUID=${studies.join('\\')}`,
    ]);
    const text = r.stdout + r.stderr;
    // The final response: the last status dcmtk printed, with its counts and Error Comment.
    const last = (re: RegExp) => [...text.matchAll(re)].at(-1)?.[1]?.trim();
    return {
      code: r.code,
      text,
      final: {
        status: last(/DIMSE Status\s*: (0x[0-9a-f]+)/gi),
        completed: last(/Completed Suboperations\s*: (\d+)/gi),
        failed: last(/Failed Suboperations\s*: (\d+)/gi),
        warning: last(/Warning Suboperations\s*: (\d+)/gi),
        comment: last(/\(0000,0902\) LO \[(.*)\]/g),
      },
      received: await receivedUids(out),
    };
  };

  /** The Failed SOP Instance UID List (0008,0058) of a Study Root C-MOVE's final response, by Custos's own SCU. */
  const failedList = async (studies: string[]) => {
    const MOVE = '1.2.840.10008.5.1.4.1.2.2.2';
    const ts = '1.2.840.10008.1.2.1';
    const a = await openScuAssociation({
      host: '127.0.0.1',
      port: s.dicomPort!,
      calledAe: 'CUSTOS',
      callingAe: 'TESTSCU',
      timeoutMs: 10_000,
      contexts: [{ abstractSyntax: MOVE, transferSyntaxes: [ts] }],
    });
    try {
      const identifier = encodeDataset(
        [
          { tag: 0x00080052, vr: 'CS', value: 'STUDY' },
          { tag: 0x0020000d, vr: 'UI', value: studies.join('\\') },
        ],
        ts,
      );
      const rsp = await a.request(
        a.context(MOVE)!.id,
        {
          commandField: 0x0021,
          messageId: 1,
          affectedSopClassUid: MOVE,
          priority: 0,
          commandDataSetType: 0,
          moveDestination: 'LISTDEST',
        },
        identifier,
      );
      const list = rsp.data ? (await parseDataset(rsp.data, ts)).get(0x00080058) : undefined;
      return { cmd: rsp.cmd, failed: list?.kind === 'text' ? list.values : [] };
    } finally {
      await a.release();
    }
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    work = await mkdtemp(join(tmpdir(), 'custos-list-refusal-'));
    destDir = await mkdtemp(join(work, 'dest-'));
    const stored = await postStow(
      s,
      [readable, second, restricted].flatMap((u, k) =>
        u.sops.map((sop, i) =>
          makeInstance({
            studyUid: u.study,
            seriesUid: u.series,
            sopInstanceUid: sop,
            patientId: `PID-${k}`,
            instanceNumber: i + 1,
            rows: 4,
            columns: 4,
            extra: [{ tag: t(0x0008, 0x1040), vr: 'LO', value: 'Radiology' }],
          }),
        ),
      ),
    );
    expect(stored.status, await stored.clone().text()).toBe(200);
    // The administrator reads every normal study, and no restricted one without a grant.
    await markRestricted(s, restricted.study);
    await s.app.aes.add(operator, { title: 'TESTSCU', host: '127.0.0.1', port: 104, user: 'admin' });
    destPort = await freePort();
    dest = spawnDcmtk('storescp', ['-aet', 'LISTDEST', '-od', destDir, String(destPort)]);
    await s.app.aes.add(operator, { title: 'LISTDEST', host: '127.0.0.1', port: destPort });
    await new Promise((r) => setTimeout(r, 300));
  });
  afterAll(async () => {
    if (dest) await stopChild(dest);
    expect(s.unexpected).toEqual([]);
    await s.stop();
    await rm(work, { recursive: true, force: true });
  });

  for (const tool of ['movescu', 'getscu'] as const)
    it(`${tool}: sends the readable studies of a list and answers 0xB000 with the refused one failed, an unknown UID alike`, async () => {
      const since = await ledgerHead(s);
      const withRestricted = await retrieve(tool, [readable.study, restricted.study, second.study]);
      const withUnknown = await retrieve(tool, [readable.study, unknown, second.study]);
      const sent = [...readable.sops, ...second.sops].sort();
      for (const r of [withRestricted, withUnknown]) {
        // dcmtk's movescu exits 68 when the final response is a warning; getscu 0.
        expect(r.code, r.text).toBe(tool === 'movescu' ? 68 : 0);
        expect(r.received).toEqual(sent);
        expect(r.final).toMatchObject({ status: '0xb000', completed: '3', failed: '1', warning: '0' });
        expect(r.final.comment).toMatch(/^not authorised or unknown: study /);
      }
      // Nothing tells the restricted study from the unknown UID.
      expect({
        ...withUnknown.final,
        comment: withUnknown.final.comment?.replace(unknown, 'UID'),
      }).toEqual({
        ...withRestricted.final,
        comment: withRestricted.final.comment?.replace(restricted.study, 'UID'),
      });
      expect(withRestricted.text).not.toContain(restricted.sops[0]);
      // Each refusal is recorded as a single UID's refusal is; what was sent is recorded as sent.
      const records = await ledgerSince(s, since);
      const denied = records.filter((r) => r.outcome === 'denied' && r.action === 'view-pixels');
      expect(denied.map((r) => [r.studyUid, r.policy])).toEqual([
        [restricted.study, 'restricted-needs-grant'],
        [unknown, 'builtin:unknown-study'],
      ]);
      expect(records.filter((r) => r.action === 'view-pixels' && r.outcome === 'failure')).toEqual([]);
      const allowed = records.filter((r) => r.action === 'view-pixels' && r.outcome === 'success');
      expect(allowed.map((r) => r.studyUid).sort()).toEqual(
        [readable.study, second.study, readable.study, second.study].sort(),
      );
    });

  it('lists the refused Study Instance UID in the final response’s Failed SOP Instance UID List', async () => {
    const a = await failedList([readable.study, restricted.study]);
    const b = await failedList([readable.study, unknown]);
    expect(a.cmd).toMatchObject({ status: 0xb000, completed: 2, failed: 1, warning: 0 });
    expect(a.failed).toEqual([restricted.study]);
    expect(b.cmd).toMatchObject({ status: 0xb000, completed: 2, failed: 1, warning: 0 });
    expect(b.failed).toEqual([unknown]);
  });

  for (const tool of ['movescu', 'getscu'] as const)
    it(`${tool}: a list whose every study is refused is answered 0x0124, as one refused UID is, and sends nothing`, async () => {
      for (const studies of [[restricted.study, unknown], [restricted.study], [unknown]]) {
        const r = await retrieve(tool, studies);
        expect(r.final.status, r.text).toBe('0x0124');
        expect(r.received).toEqual([]);
      }
    });
});
