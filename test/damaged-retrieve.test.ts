// A C-MOVE or C-GET of a study in which some instances are damaged sends the sound ones; each damaged one is a
// failed sub-operation, listed in the final response (PS3.4 C.4.2.3.1, C.4.3.3.1) and in the ledger. WADO-RS
// serves the sound ones too, 206 with a Warning. Until 6 Dec 2026 one instance the fixity job had marked refused the
// whole retrieve (0xA701 or 500, nothing sent), and damage that a C-GET met while reading ended the requestor's
// association with an A-ABORT.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { Tags } from '../src/dicom/tags.js';
import { openScuAssociation } from '../src/transports/dimse/scu-association.js';
import { encodeDataset, parseDataset } from '../src/transports/dimse/dimse-dataset.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk, freePort, spawnDcmtk, stopChild } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import {
  blobFileOf,
  ledgerHead,
  ledgerSince,
  postStow,
  startTestServer,
  type TestServer,
} from './support/test-server.js';

const admin = systemPrincipal('test');
const require = createRequire(import.meta.url);
(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= require('xhr2');
const { api } = require('dicomweb-client') as {
  api: {
    DICOMwebClient: new (o: { url: string; headers: Record<string, string> }) => {
      retrieveStudy(o: { studyInstanceUID: string }): Promise<ArrayBuffer[]>;
    };
  };
};

/** The SOP Instance UIDs of the Part 10 files in `dir`. */
async function receivedUids(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    const el = (await parsePart10(await readFile(join(dir, name)))).dataset.get(Tags.SOPInstanceUID);
    out.push(el?.kind === 'text' ? el.values[0]! : '');
  }
  return out.sort();
}

describe.each(backends())('C-MOVE and C-GET of a study with damaged instances, on %s', (backend) => {
  let s: TestServer;
  let work: string;
  const studyUid = uid(1);
  const seriesUid = uid(2);
  const sops = Array.from({ length: 5 }, (_, i) => uid(10 + i));
  const keys = ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${studyUid}`].flatMap((k) => ['-k', k]);
  const scu = ['-aet', 'TESTSCU', '-aec', 'CUSTOS'];
  const flipByte = async (sop: string) => {
    const file = await blobFileOf(s, sop);
    const bytes = await readFile(file);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x40;
    await writeFile(file, bytes);
  };
  const fixityOf = async (sop: string) =>
    (
      await s.app.index.db
        .selectFrom('instances')
        .select('fixity_status')
        .where('sop_instance_uid', '=', sop)
        .executeTakeFirstOrThrow()
    ).fixity_status;
  /** dcmtk's getscu -d of the study (Study Root) as TESTSCU into `dir`. */
  const getStudy = (dir: string) =>
    dcmtk('getscu', ['-d', ...scu, '-S', '-od', dir, '127.0.0.1', String(s.dicomPort), ...keys]);
  /** The ledger's view-pixels failure records since seq `after`. */
  const failures = async (after: number) =>
    (await ledgerSince(s, after)).filter((r) => r.action === 'view-pixels' && r.outcome === 'failure');

  /**
   * The final response of a C-MOVE (Study Root) to `destination` sent by Custos's own SCU, with its identifier's
   * Failed SOP Instance UID List (0008,0058), which dcmtk's movescu and getscu do not print.
   */
  const moveFinal = async (destination: string, level: 'STUDY' | 'IMAGE', sop?: string) => {
    const MOVE = '1.2.840.10008.5.1.4.1.2.2.2';
    const ts = '1.2.840.10008.1.2.1';
    const scuA = await openScuAssociation({
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
          { tag: 0x00080052, vr: 'CS', value: level },
          { tag: 0x0020000d, vr: 'UI', value: studyUid },
          ...(sop
            ? [
                { tag: 0x0020000e, vr: 'UI' as const, value: seriesUid },
                { tag: 0x00080018, vr: 'UI' as const, value: sop },
              ]
            : []),
        ],
        ts,
      );
      const rsp = await scuA.request(
        scuA.context(MOVE)!.id,
        {
          commandField: 0x0021,
          messageId: 1,
          affectedSopClassUid: MOVE,
          priority: 0,
          commandDataSetType: 0,
          moveDestination: destination,
        },
        identifier,
      );
      const list = rsp.data ? (await parseDataset(rsp.data, ts)).get(0x00080058) : undefined;
      return { cmd: rsp.cmd, failed: list?.kind === 'text' ? list.values : [] };
    } finally {
      await scuA.release();
    }
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    work = await mkdtemp(join(tmpdir(), 'custos-damaged-'));
    const res = await postStow(
      s,
      sops.map((sop, i) =>
        makeInstance({ studyUid, seriesUid, sopInstanceUid: sop, patientId: 'DMG', instanceNumber: i + 1 }),
      ),
    );
    expect(res.status).toBe(200);
    await s.app.aes.add(admin, { title: 'TESTSCU', host: '127.0.0.1', port: 104, user: 'admin' });
    // sops[1] is damaged, and the fixity job finds it.
    await flipByte(sops[1]!);
    const report = await s.app.fixity.runPass(admin);
    expect(report.corrupt.map((c) => c.sopInstanceUid)).toEqual([sops[1]]);
    expect(await fixityOf(sops[1]!)).toBe('corrupt');
  });
  afterAll(async () => {
    await s?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('C-MOVE sends the sound instances and answers 0xB000 listing the damaged one as failed', async () => {
    const port = await freePort();
    const out = await mkdtemp(join(work, 'moved-'));
    const scp = spawnDcmtk('storescp', ['-aet', 'DMGDEST', '-od', out, String(port)]);
    const since = await ledgerHead(s);
    let r;
    let final;
    try {
      await s.app.aes.add(admin, { title: 'DMGDEST', host: '127.0.0.1', port });
      await new Promise((res) => setTimeout(res, 300));
      r = await dcmtk('movescu', [
        '-d',
        ...scu,
        '-S',
        '-aem',
        'DMGDEST',
        '127.0.0.1',
        String(s.dicomPort),
        ...keys,
      ]);
      final = await moveFinal('DMGDEST', 'STUDY');
    } finally {
      await stopChild(scp);
    }
    // dcmtk's movescu exits 68 when the final response is a warning.
    expect(r.code, r.stderr).toBe(68);
    expect(await receivedUids(out)).toEqual([sops[0], sops[2], sops[3], sops[4]].sort());
    expect(r.stderr).toMatch(/DIMSE Status\s+: 0xb000/);
    expect(r.stderr).toMatch(/Completed Suboperations\s*: 4/i);
    expect(r.stderr).toMatch(/Failed Suboperations\s*: 1/i);
    expect(r.stderr).toContain('failed the fixity check');
    // The final response's identifier lists it (Failed SOP Instance UID List).
    expect(final?.cmd).toMatchObject({ status: 0xb000, completed: 4, failed: 1, warning: 0 });
    expect(final?.failed).toEqual([sops[1]]);
    const [record] = await failures(since);
    expect(record?.objects?.sopInstanceUids).toEqual([sops[1]]);
    expect(record?.detail).toMatchObject({ destination: 'DMGDEST', sent: 4, unsent: 1 });
    expect(record?.detail).toMatchObject({ destination: 'DMGDEST', sent: 4, unsent: 1 });
    expect(String(record?.detail?.reason)).toContain('failed the fixity check');
    expect(s.unexpected).toEqual([]);
  });

  it("WADO-RS serves the sound instances to dicomweb-client's retrieveStudy, 206 with a Warning", async () => {
    const client = new api.DICOMwebClient({
      url: `${s.url}/dicom-web`,
      headers: { Authorization: `Bearer ${s.token}` },
    });
    const parts = await client.retrieveStudy({ studyInstanceUID: studyUid });
    const uids = parts.map((p) => sops.find((sop) => Buffer.from(p).includes(Buffer.from(sop))));
    expect(uids.sort()).toEqual([sops[0], sops[2], sops[3], sops[4]].sort());
    const res = await fetch(`${s.url}/dicom-web/studies/${studyUid}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    await res.arrayBuffer();
    expect(res.status).toBe(206);
    expect(res.headers.get('warning')).toContain(
      `1 of 5 instances left out: instance ${sops[1]} failed the fixity check`,
    );
  });

  it('C-GET sends the sound instances back, and an instance damaged since the last check fails alone', async () => {
    const marked = await mkdtemp(join(work, 'got-'));
    const first = await getStudy(marked);
    expect(first.code, first.stderr).toBe(0);
    expect(await receivedUids(marked)).toEqual([sops[0], sops[2], sops[3], sops[4]].sort());
    expect(first.stderr).toMatch(/DIMSE Status\s+: 0xb000/);

    // sops[3] is damaged after the check: the read before its C-STORE-RQ finds it, that sub-operation fails, and
    // the association goes on with sops[4] (until 6 Dec 2026 it ended with an A-ABORT).
    await flipByte(sops[3]!);
    const since = await ledgerHead(s);
    const unmarked = await mkdtemp(join(work, 'got-'));
    const r = await getStudy(unmarked);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/A-ABORT|Association Aborted/i);
    expect(await receivedUids(unmarked)).toEqual([sops[0], sops[2], sops[4]].sort());
    expect(r.stderr).toMatch(/DIMSE Status\s+: 0xb000/);
    expect(r.stderr).toMatch(/Failed Suboperations\s*: 2/i);
    // Found, marked and alerted as any read marks damage.
    expect(await fixityOf(sops[3]!)).toBe('corrupt');
    const alerts = await s.app.auditStore.search({ action: ['alert'], studyUid, limit: 10 });
    expect(alerts.map((a) => a.objects?.sopInstanceUids?.[0])).toContain(sops[3]);
    const [record] = await failures(since);
    expect(record?.objects?.sopInstanceUids?.slice().sort()).toEqual([sops[1], sops[3]].sort());
    expect(s.unexpected).toEqual([]);
  });

  it('answers 0xA702 listing the instance when all those asked for are damaged, calling no destination', async () => {
    // DMGDEST's storescp is gone: had it been called, the Error Comment would name the refused connection.
    const final = await moveFinal('DMGDEST', 'IMAGE', sops[1]);
    expect(final.cmd).toMatchObject({ status: 0xa702, completed: 0, failed: 1, warning: 0 });
    expect(final.failed).toEqual([sops[1]]);
    expect(final.cmd.errorComment).toMatch(/^instance .* failed the fixity check/);
    expect(s.unexpected).toEqual([]);
  });
});
